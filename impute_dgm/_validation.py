"""Input checks that say which column is wrong, before torch ever sees the data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data


def _column_label(columns: Any, index: int) -> str:
    if columns is not None:
        return repr(columns[index])
    return f"index {index}"


def _column_list(columns: Any, indices: np.ndarray, limit: int = 5) -> str:
    labels = [_column_label(columns, int(i)) for i in indices[:limit]]
    more = len(indices) - limit
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def _refuse_duplicate_columns(X: Any) -> None:
    """Two columns of one name cannot be told apart (by the user, or in the fitted names)."""
    if isinstance(X, pd.DataFrame) and X.columns.has_duplicates:
        repeated = list(dict.fromkeys(X.columns[X.columns.duplicated()]))
        raise ValueError(
            f"Column name(s) {', '.join(map(repr, repeated[:5]))} appear more than once; give "
            "every column its own name."
        )


def _check_strings(X: Any) -> None:
    """Refuse text in numeric data, naming the first offending columns and a sample value."""
    if isinstance(X, pd.DataFrame):
        bad = []
        for position in range(X.shape[1]):
            series = X.iloc[:, position]
            dtype = series.dtype
            if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                continue
            text_categories = isinstance(dtype, pd.CategoricalDtype) and not (
                pd.api.types.is_numeric_dtype(dtype.categories.dtype)
            )
            if text_categories or isinstance(dtype, pd.StringDtype):
                # Text by declaration, even where every cell is missing.
                bad.append((position, f"dtype {str(dtype)!r}"))
                continue
            converted = pd.to_numeric(series, errors="coerce")
            offending = series[converted.isna() & series.notna()]
            if len(offending):
                bad.append((position, f"e.g. {offending.iloc[0]!r}"))
        if bad:
            where = ", ".join(f"{X.columns[p]!r} ({v})" for p, v in bad[:5])
            raise ValueError(
                f"Non-numeric values found in column(s) {where}. This estimator needs numeric "
                "data: encode categories as numbers and use NaN for missing values."
            )
        return
    array = np.asarray(X) if not hasattr(X, "dtype") else X
    if getattr(array, "dtype", None) is not None and array.dtype.kind in "OUS" and array.ndim == 2:
        for j in range(array.shape[1]):
            for value in array[:, j]:
                # Only text is reported here; other objects get numpy's own TypeError.
                if not isinstance(value, (str, bytes, np.str_, np.bytes_)):
                    continue
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"Non-numeric value {value!r} found in column index {j}. This estimator "
                        "needs numeric data: encode categories as numbers and use NaN for "
                        "missing values."
                    ) from None


def _missing_as_nan(X: Any) -> Any:
    """A DataFrame's nullable (``Int64``, ``boolean``, ...) and object columns as float64.

    They hold ``pd.NA`` or ``None`` for missing cells, which NumPy cannot cast to float; here
    missing is NaN. Called after :func:`_check_strings`, so no text is left to convert.
    """
    if not isinstance(X, pd.DataFrame) or all(
        isinstance(dtype, np.dtype) and dtype.kind in "biuf" for dtype in X.dtypes
    ):
        return X
    columns = {
        name: pd.to_numeric(X.iloc[:, j], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        for j, name in enumerate(X.columns)
    }
    return pd.DataFrame(columns, index=X.index, columns=X.columns)


# Rows checked at once where a check would otherwise copy the whole table.
ROWS_PER_CHUNK = 1 << 16

# Larger magnitudes cannot be standardised: their squares overflow float64 (about 1.8e308).
MAX_ABS_VALUE = 1e150


def _refuse_infinity(X: np.ndarray, columns: Any, max_abs: float = MAX_ABS_VALUE) -> None:
    """Infinity, and finite values beyond ``max_abs``, each named with their columns."""
    # In row chunks: the table-sized temporaries of np.abs and np.isinf would otherwise
    # set the peak memory of a fit (a float64 copy of the table and a boolean one).
    infinite = np.zeros(X.shape[1], dtype=bool)
    huge = np.zeros(X.shape[1], dtype=bool)
    for start in range(0, len(X), ROWS_PER_CHUNK):
        block = X[start : start + ROWS_PER_CHUNK]
        infinite |= np.isinf(block).any(axis=0)
        with np.errstate(invalid="ignore"):
            huge |= (np.abs(block) > max_abs).any(axis=0)
    if infinite.any():
        raise ValueError(
            "Input X contains infinity in column(s) "
            f"{_column_list(columns, np.flatnonzero(infinite))}; use NaN to mark missing values."
        )
    if huge.any():
        why = (
            "too large to standardise (their squares overflow)"
            if max_abs >= MAX_ABS_VALUE
            else "too large for the float32 arithmetic of training"
        )
        raise ValueError(
            f"Input X has values beyond +-{max_abs:g} in column(s) "
            f"{_column_list(columns, np.flatnonzero(huge))}: {why}; rescale those columns."
        )


def _refuse_empty_columns(missing: np.ndarray, columns: Any) -> None:
    empty = missing.all(axis=0)
    if empty.any():
        raise ValueError(
            "Column(s) "
            f"{_column_list(columns, np.flatnonzero(empty))} have no observed value; "
            "drop them before fitting (nothing can be learned about them)."
        )


def check_integer_levels(X: np.ndarray, n_levels: int | None, requirement: str) -> None:
    """Refuse observed values that are not integer levels 0, 1, ..., n_levels - 1.

    Parameters
    ----------
    X : ndarray
        Data; NaN (missing) entries are ignored.
    n_levels : int or None
        Number of levels; None checks only that the values are non-negative integers.
    requirement : str
        What asks for levels (e.g. "likelihood='categorical'"), named in the message.
    """
    observed = X[~np.isnan(X)]
    if not observed.size:
        return
    if not np.array_equal(observed, np.round(observed)) or observed.min() < 0:
        raise ValueError(
            f"{requirement} needs non-negative integer levels (0, 1, ..., n_levels - 1)."
        )
    if n_levels is not None and observed.max() >= n_levels:
        raise ValueError(
            f"Values up to {observed.max():g} found, but n_levels={n_levels} allows at most "
            f"{n_levels - 1}."
        )


def check_array_input(
    estimator: Any,
    X: Any,
    *,
    reset: bool,
    allow_nan: bool = True,
    forbid_all_missing_columns: bool = False,
    max_abs: float = MAX_ABS_VALUE,
) -> np.ndarray:
    """Validate ``X`` for ``estimator`` and return it as a float64 array (NaN = missing).

    Wraps :func:`sklearn.utils.validation.validate_data` (feature count and names are checked
    against ``fit`` when ``reset`` is False) and adds the checks it words too vaguely: text in
    numeric columns, infinities and columns that are missing everywhere, each reported with the
    column's name or index.

    Parameters
    ----------
    estimator : estimator instance
        The estimator whose ``n_features_in_`` / ``feature_names_in_`` are set or checked.
    X : array-like of shape (n_samples, n_features)
        Input data.
    reset : bool
        True in ``fit`` (record the features), False afterwards (compare against them).
    allow_nan : bool, default=True
        Whether NaN marks a missing value; if False, NaN is refused with a pointer to
        ``VAEImputer``.
    forbid_all_missing_columns : bool, default=False
        Refuse columns with no observed value (used in ``fit``: nothing can be learned there).
    max_abs : float, default=MAX_ABS_VALUE
        Largest magnitude accepted (models trained in float32 need less than its 3.4e38).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float64
    """
    _refuse_duplicate_columns(X)
    _check_strings(X)
    X = _missing_as_nan(X)
    columns = getattr(X, "columns", None)
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=np.float64,
        ensure_all_finite=False,
        ensure_min_samples=1,
        ensure_min_features=1,
        copy=False,
        # One memory layout for every input: BLAS rounds differently on strided data, and a
        # row's result must not depend on how the caller laid out the table.
        order="C",
    )
    if columns is None and hasattr(estimator, "feature_names_in_"):
        columns = estimator.feature_names_in_
    _refuse_infinity(X, columns, max_abs)
    missing = np.isnan(X)
    if not allow_nan and missing.any():
        raise ValueError(
            "Input X contains NaN in column(s) "
            f"{_column_list(columns, np.flatnonzero(missing.any(axis=0)))}. "
            f"{type(estimator).__name__} needs complete data; impute it first, for example with "
            "impute_dgm.VAEImputer."
        )
    if forbid_all_missing_columns:
        _refuse_empty_columns(missing, columns)
    return X


def is_mixed_table(X: Any) -> bool:
    """Whether ``X`` is a DataFrame that a float array cannot stand for: one with a boolean,
    nullable-integer (``Int64``), category or text column. Such tables keep a kind per column.

    A DataFrame of NumPy floats and integers is handled as the float array it equals, so that
    it gives the same results as that array (scikit-learn's rule for estimators).
    """
    from impute_dgm.schema import column_kind

    def plain_number(series: pd.Series) -> bool:
        return isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf"

    return isinstance(X, pd.DataFrame) and any(
        not plain_number(X.iloc[:, j]) and column_kind(X.iloc[:, j]) != "continuous"
        for j in range(X.shape[1])
    )


def check_table_input(
    estimator: Any,
    X: Any,
    *,
    reset: bool,
    table: bool | None = None,
    forbid_all_missing_columns: bool = False,
) -> Any:
    """Validate ``X`` as a table with a kind per column, or as a float array.

    A DataFrame with integer, boolean, category or text columns (``table=None`` decides from
    ``X`` itself; after ``fit`` the estimator's schema says) is checked column by column and
    returned as a DataFrame: names and count against ``fit``, text in a numeric column, infinity
    and columns with no observed value are refused with the column named. Anything else goes
    through :func:`check_array_input` and comes back as a float64 array.
    """
    if table is None:
        table = is_mixed_table(X)
    if not table:
        return check_array_input(
            estimator, X, reset=reset, forbid_all_missing_columns=forbid_all_missing_columns
        )
    _refuse_duplicate_columns(X)
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"{type(estimator).__name__} was fitted on a DataFrame with integer, boolean or "
            f"category columns; pass a DataFrame with the same columns, not {type(X).__name__}."
        )
    from impute_dgm.schema import column_kind

    validate_data(estimator, X, reset=reset, skip_check_array=True)
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    numeric = [j for j in range(X.shape[1]) if column_kind(X.iloc[:, j]) == "continuous"]
    if numeric:
        # Text among numbers, then infinity, in the continuous columns.
        _check_strings(X.iloc[:, numeric])
        values = _missing_as_nan(X.iloc[:, numeric])
        _refuse_infinity(values.to_numpy(dtype=np.float64), list(values.columns))
    if forbid_all_missing_columns:
        _refuse_empty_columns(X.isna().to_numpy(), list(X.columns))
    return X
