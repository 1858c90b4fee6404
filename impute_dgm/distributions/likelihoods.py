"""Observation models p(x | z): decoder outputs in, element-wise ``torch.distributions`` out.

Each likelihood turns the decoder's raw output, ``n_params`` numbers per feature, into a
distribution whose batch shape ends in the feature axis, so that the bound can sum
``log_prob`` over the observed entries only.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Normal, StudentT
from torch.nn.functional import softplus

from impute_dgm._validation import check_integer_levels


class Likelihood(nn.Module):
    """Base class for observation models.

    Attributes
    ----------
    n_params : int
        Decoder outputs per feature.
    standardize : bool
        Whether the data should be standardised before the model sees it (continuous supports).
    """

    n_params: int = 1
    standardize: bool = True

    def forward(self, params: torch.Tensor) -> Distribution:
        """Map decoder output of shape (..., n_features * n_params) to a distribution."""
        raise NotImplementedError  # pragma: no cover - abstract

    def mean(self, distribution: Distribution) -> torch.Tensor:
        """E[x | z], used for single imputation."""
        return distribution.mean

    def check_data(self, X: np.ndarray) -> None:
        """Raise ValueError if observed values lie outside the support."""

    def encoder_view(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder sees of x: the data themselves, unless their scale is awkward."""
        return x

    def fitted(self, X: np.ndarray) -> Likelihood:
        """A copy configured for ``X`` (checked against the support); the original is untouched."""
        self.check_data(X)
        return copy.deepcopy(self)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n_features = params.shape[-1] // self.n_params
        return tuple(params.unflatten(-1, (self.n_params, n_features)).unbind(-2))


class GaussianLikelihood(Likelihood):
    """Gaussian observation model with a floor on the standard deviation.

    Without the floor the likelihood is unbounded: the decoder can put a spike of vanishing
    variance on a single observed value and drive the bound to infinity.

    Parameters
    ----------
    min_scale : float, default=0.01
        Smallest standard deviation, in standardised units.
    """

    n_params = 2

    def __init__(self, min_scale: float = 0.01) -> None:
        super().__init__()
        if not min_scale > 0:
            raise ValueError(f"min_scale must be positive, got {min_scale!r}.")
        self.min_scale = min_scale

    def forward(self, params: torch.Tensor) -> Distribution:
        loc, raw_scale = self._split(params)
        return Normal(loc, softplus(raw_scale) + self.min_scale, validate_args=False)


class StudentTLikelihood(Likelihood):
    """Student-t observation model (MIWAE's choice for UCI data): heavy tails, robust fits.

    The degrees of freedom are learned per entry and kept above ``min_df`` (> 1), so that the
    mean, used for imputation, exists.

    Parameters
    ----------
    min_scale : float, default=0.01
        Smallest scale, in standardised units.
    min_df : float, default=3.0
        Smallest number of degrees of freedom.
    """

    n_params = 3

    def __init__(self, min_scale: float = 0.01, min_df: float = 3.0) -> None:
        super().__init__()
        if not min_scale > 0:
            raise ValueError(f"min_scale must be positive, got {min_scale!r}.")
        if not min_df > 1:
            raise ValueError(f"min_df must exceed 1 so that the mean exists, got {min_df!r}.")
        self.min_scale = min_scale
        self.min_df = min_df

    def forward(self, params: torch.Tensor) -> Distribution:
        loc, raw_scale, raw_df = self._split(params)
        return StudentT(
            softplus(raw_df) + self.min_df,
            loc,
            softplus(raw_scale) + self.min_scale,
            validate_args=False,
        )

    def mean(self, distribution: Distribution) -> torch.Tensor:
        # df > 1 always, so the mean is the location; skip StudentT.mean's NaN masking.
        return distribution.loc


class BernoulliLikelihood(Likelihood):
    """Bernoulli observation model for binary data (values 0 and 1)."""

    n_params = 1
    standardize = False

    def forward(self, params: torch.Tensor) -> Distribution:
        return Bernoulli(logits=params, validate_args=False)

    def check_data(self, X: np.ndarray) -> None:
        observed = X[~np.isnan(X)]
        if observed.size and not np.isin(observed, (0.0, 1.0)).all():
            raise ValueError(
                "likelihood='bernoulli' needs binary data: observed values must be 0 or 1."
            )


class CategoricalLikelihood(Likelihood):
    """Categorical observation model over integer levels 0..n_levels-1 (e.g. pixel values).

    The decoder outputs one logit per level and feature. The mean used for imputation is the
    expected level, which suits ordered levels such as intensities.

    Parameters
    ----------
    n_levels : int or None, default=None
        Number of levels; inferred at fit time as max(X) + 1 when None.
    """

    standardize = False

    def __init__(self, n_levels: int | None = None) -> None:
        super().__init__()
        self.n_levels = n_levels

    @property
    def n_params(self) -> int:  # type: ignore[override]
        if self.n_levels is None:
            raise RuntimeError("CategoricalLikelihood needs n_levels; fit it to data first.")
        return self.n_levels

    def forward(self, params: torch.Tensor) -> Distribution:
        logits = params.unflatten(-1, (-1, self.n_levels))
        return Categorical(logits=logits, validate_args=False)

    def encoder_view(self, x: torch.Tensor) -> torch.Tensor:
        # Levels 0..L-1 are not standardised (the likelihood needs them as they are); the
        # encoder gets them in [0, 1] so that its tanh units are not saturated from the start.
        return x / (self.n_levels - 1)

    def mean(self, distribution: Distribution) -> torch.Tensor:
        levels = torch.arange(
            self.n_levels, dtype=distribution.probs.dtype, device=distribution.probs.device
        )
        return distribution.probs @ levels

    def check_data(self, X: np.ndarray) -> None:
        check_integer_levels(X, self.n_levels, "likelihood='categorical'")

    def fitted(self, X: np.ndarray) -> Likelihood:
        self.check_data(X)
        configured = copy.deepcopy(self)
        if configured.n_levels is None:
            observed = X[~np.isnan(X)]
            configured.n_levels = max(int(observed.max()) + 1 if observed.size else 2, 2)
        return configured


_LIKELIHOODS: dict[str, type[Likelihood]] = {
    "gaussian": GaussianLikelihood,
    "student_t": StudentTLikelihood,
    "bernoulli": BernoulliLikelihood,
    "categorical": CategoricalLikelihood,
}


def make_likelihood(likelihood: str | Likelihood) -> Likelihood:
    """Build an observation model from its name, or copy a :class:`Likelihood` instance."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    try:
        return _LIKELIHOODS[likelihood]()
    except KeyError:
        raise ValueError(
            f"likelihood={likelihood!r} is not one of {sorted(_LIKELIHOODS)}."
        ) from None
