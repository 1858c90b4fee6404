"""Rubin's rules: one inference from an analysis repeated on several imputed data sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class PooledEstimate:
    """The pooled result of m analyses, one per imputed data set (arrays over parameters).

    Attributes
    ----------
    estimate : ndarray
        Mean of the m estimates, Q-bar.
    within_variance : ndarray
        Mean of the m squared standard errors, U-bar.
    between_variance : ndarray
        Variance of the m estimates across imputations (ddof=1), B.
    total_variance : ndarray
        T = U-bar + (1 + 1/m) B.
    degrees_of_freedom : ndarray
        Barnard-Rubin degrees of freedom of the t reference distribution (Rubin's large-sample
        value when the complete-data degrees of freedom are not given).
    fraction_missing_information : ndarray
        lambda = (1 + 1/m) B / T, the share of the variance due to the missing values.
    """

    estimate: np.ndarray
    within_variance: np.ndarray
    between_variance: np.ndarray
    total_variance: np.ndarray
    degrees_of_freedom: np.ndarray
    fraction_missing_information: np.ndarray

    @property
    def standard_error(self) -> np.ndarray:
        """sqrt(T)."""
        return np.sqrt(self.total_variance)

    def confidence_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper ends of the ``level`` interval, Q-bar -/+ t_df * sqrt(T)."""
        quantile = stats.t.ppf(0.5 + level / 2, self.degrees_of_freedom)
        half_width = quantile * self.standard_error
        return self.estimate - half_width, self.estimate + half_width


def pool(estimates, standard_errors, complete_data_dof: float | None = None) -> PooledEstimate:
    """Combine per-imputation estimates and standard errors by Rubin's rules.

    Parameters
    ----------
    estimates : array-like of shape (m,) or (m, p)
        The analysis' estimate(s) on each of the m imputed data sets.
    standard_errors : array-like of the same shape
        Their standard errors from the complete-data analysis.
    complete_data_dof : float or None, default=None
        Degrees of freedom the analysis would have without missing values (n - p for a
        regression with p coefficients); gives the Barnard & Rubin (1999) small-sample
        degrees of freedom. None uses Rubin's (1987) large-sample value.

    Returns
    -------
    PooledEstimate

    References
    ----------
    D. B. Rubin. Multiple Imputation for Nonresponse in Surveys. Wiley, 1987.
    J. Barnard and D. B. Rubin. Small-sample degrees of freedom with multiple imputation.
    Biometrika 86(4), 1999.

    Examples
    --------
    >>> from impute_dgm.pooling import pool
    >>> pooled = pool([1.0, 1.2, 0.8], [0.1, 0.1, 0.1], complete_data_dof=100)
    >>> round(float(pooled.estimate), 6), round(float(pooled.total_variance), 6)
    (1.0, 0.063333)
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    variances = np.asarray(standard_errors, dtype=np.float64) ** 2
    if estimates.shape != variances.shape:
        raise ValueError(
            f"estimates {estimates.shape} and standard_errors {variances.shape} differ in shape."
        )
    m = estimates.shape[0]
    if m < 2:
        raise ValueError(f"Pooling needs at least 2 imputations, got {m}.")
    estimate = estimates.mean(axis=0)
    within = variances.mean(axis=0)
    between = estimates.var(axis=0, ddof=1)
    total = within + (1 + 1 / m) * between
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(total > 0, (1 + 1 / m) * between / total, 0.0)
        # Rubin (1987): infinite when the imputations agree (no missing information).
        dof_old = np.where(fraction > 0, (m - 1) / fraction**2, np.inf)
        if complete_data_dof is None:
            dof = dof_old
        else:
            nu = float(complete_data_dof)
            dof_observed = (nu + 1) / (nu + 3) * nu * (1 - fraction)
            dof = np.where(
                np.isinf(dof_old), dof_observed, dof_old * dof_observed / (dof_old + dof_observed)
            )
    return PooledEstimate(estimate, within, between, total, dof, fraction)
