"""Remove values from a complete table under a chosen missingness mechanism (for evaluation).

- ``"mcar"``: every entry is missing with probability ``rate``, independently of everything.
- ``"mar"``: half of the columns stay complete; each entry of the others is missing with a
  logistic probability of a random linear score of the complete columns (so missingness
  depends on observed values only).
- ``"mnar"``: self-masking; an entry is missing with a logistic probability of its own
  (standardised) value, larger values more often, so missingness depends on what is removed.

In every case the logistic offsets are set so that the expected share of removed entries in the
whole table is ``rate`` (for "mar" while that needs at most 95% of the other columns), and at
least one value per column is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

MECHANISMS = ("mcar", "mar", "mnar")


def _calibrated_probabilities(scores: np.ndarray, rate: float) -> np.ndarray:
    """sigmoid(scores + b), with b found by bisection so that the mean probability is rate."""
    low, high = -50.0, 50.0
    for _ in range(100):
        offset = (low + high) / 2
        mean = np.mean(1 / (1 + np.exp(-(scores + offset))))
        low, high = (offset, high) if mean < rate else (low, offset)
    return 1 / (1 + np.exp(-(scores + (low + high) / 2)))


def ampute(
    X: np.ndarray | pd.DataFrame,
    rate: float,
    mechanism: str = "mcar",
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray | pd.DataFrame:
    """A copy of the complete table ``X`` with entries set to missing.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        Complete data. A DataFrame may mix types (see :func:`impute_dgm.schema.column_kind`):
        its categorical columns enter the missingness scores ("mar", "mnar") through their
        category codes, booleans as 0/1. It comes back as a DataFrame with missing cells as
        NaN / ``pd.NA``; ``int64`` and ``bool`` columns become the nullable ``Int64`` and
        ``boolean`` so that they can hold a missing value (the estimators return those
        dtypes), other dtypes are kept.
    rate : float in [0, 1)
        Expected share of removed entries.
    mechanism : {"mcar", "mar", "mnar"}, default="mcar"
    random_state : int, RandomState instance or None

    Returns
    -------
    ndarray or DataFrame of shape (n_samples, n_features)
        A DataFrame when ``X`` is one, else an array of floats.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(2000, 4))
    >>> X_missing = ampute(X, 0.3, "mnar", random_state=0)
    >>> round(float(np.isnan(X_missing).mean()), 1)
    0.3
    """
    if isinstance(X, pd.DataFrame):
        return _ampute_frame(X, rate, mechanism, random_state)
    X = np.array(X, dtype=float)
    if np.isnan(X).any():
        raise ValueError("ampute needs complete data: X already has NaN.")
    if not 0 <= rate < 1:
        raise ValueError(f"rate={rate} is not in [0, 1).")
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism={mechanism!r} is not one of {MECHANISMS}.")
    rng = check_random_state(random_state)
    n_rows, n_columns = X.shape
    standardised = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    probabilities = np.zeros_like(X)
    if rate == 0:
        pass
    elif mechanism == "mcar":
        probabilities[:] = rate
    elif mechanism == "mar":
        complete = rng.permutation(n_columns)[: max(1, n_columns // 2)]
        affected = np.setdiff1d(np.arange(n_columns), complete)
        if affected.size:
            weights = rng.normal(size=(complete.size, affected.size))
            scores = standardised[:, complete] @ weights / np.sqrt(complete.size)
            # The complete columns lose nothing, so the others lose more (up to 95%).
            share = min(rate * n_columns / affected.size, 0.95)
            probabilities[:, affected] = _calibrated_probabilities(2 * scores, share)
    else:
        probabilities = _calibrated_probabilities(2 * standardised, rate)
    missing = rng.random_sample(X.shape) < probabilities
    # Keep one value per column: the estimators refuse all-missing columns.
    full = missing.all(axis=0)
    missing[rng.randint(n_rows, size=full.sum()), np.flatnonzero(full)] = False
    X[missing] = np.nan
    return X


def _numeric_view(column: pd.Series) -> np.ndarray:
    """A column's values as floats for the missingness scores (categories by their codes)."""
    from impute_dgm.schema import column_kind

    kind = column_kind(column)
    if kind == "categorical":
        return pd.Categorical(column).codes.astype(float)
    if kind == "binary":
        return column.astype(float).to_numpy()
    try:
        return column.astype(float).to_numpy()
    except (TypeError, ValueError):
        raise ValueError(
            f"ampute cannot read column {column.name!r} as numbers or categories."
        ) from None


def _ampute_frame(frame: pd.DataFrame, rate, mechanism, random_state) -> pd.DataFrame:
    incomplete = [name for name in frame.columns if frame[name].isna().any()]
    if incomplete:
        raise ValueError(f"ampute needs complete data: column(s) {incomplete} have missing values.")
    numbers = np.column_stack([_numeric_view(frame[name]) for name in frame.columns])
    missing = np.isnan(ampute(numbers, rate, mechanism, random_state))
    out = frame.copy()
    for j, name in enumerate(frame.columns):
        column = out[name]
        if pd.api.types.is_bool_dtype(column.dtype) and not isinstance(
            column.dtype, pd.BooleanDtype
        ):
            column = column.astype("boolean")
        elif pd.api.types.is_integer_dtype(column.dtype) and not isinstance(
            column.dtype, pd.api.extensions.ExtensionDtype
        ):
            column = column.astype("Int64")
        out[name] = column.mask(missing[:, j])
    return out
