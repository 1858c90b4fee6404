"""Column scaling learned from observed values only, and undone exactly on output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ObservedScaler:
    """Per-column affine map ``(x - location) / scale`` fitted on the observed entries.

    Missing entries (NaN) are ignored when fitting, so the statistics are those of the data
    actually seen. Columns with zero spread get scale 1 (they are then only shifted), which keeps
    the map invertible. With ``standardize=False`` the map is the identity (used for likelihoods
    with a fixed support, such as Bernoulli).

    Parameters
    ----------
    standardize : bool, default=True
        Whether to centre and scale the columns.
    """

    standardize: bool = True
    location_: np.ndarray | None = None
    scale_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> ObservedScaler:
        n_features = X.shape[1]
        if not self.standardize:
            self.location_ = np.zeros(n_features)
            self.scale_ = np.ones(n_features)
            return self
        self.location_ = np.nan_to_num(np.nanmean(X, axis=0))
        spread = np.nan_to_num(np.nanstd(X, axis=0))
        self.scale_ = np.where(
            spread > 1e-12 * np.maximum(1.0, np.abs(self.location_)), spread, 1.0
        )
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.location_) / self.scale_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.location_

    def log_abs_det_jacobian(self) -> float:
        """log |det d transform / dx|, for densities reported in original units."""
        return float(-np.log(self.scale_).sum())
