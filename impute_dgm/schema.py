"""The path between a table and the model: column kinds, likelihoods and scaling.

:class:`TableSchema` gives every column of a table a kind (continuous, integer, binary,
categorical) and a likelihood, standardises the columns whose likelihood wants it (a
scikit-learn ``StandardScaler`` fitted on their observed values: it ignores NaN in ``fit`` and
passes it through ``transform``), and converts tables to model units and back to their own
dtypes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from impute_dgm.distributions.likelihoods import (
    CategoricalLikelihood,
    ColumnLikelihoods,
    DiscretizedGaussianLikelihood,
    Likelihood,
    make_likelihood,
)

# --- tables: one kind and one likelihood per column --------------------------------------

# Rows per chunk where the whole table would otherwise be copied (scaling, its statistics).
ROWS_PER_CHUNK = 1 << 16

#: Default likelihood per column kind (``likelihood`` replaces the continuous one).
DEFAULT_LIKELIHOODS = {
    "continuous": "gaussian",
    "integer": "discretized_gaussian",
    "binary": "bernoulli",
    "categorical": "categorical",
}


#: The block name of float columns that ``likelihood="auto"`` found integral.
AUTO_INTEGER = "auto: integral floats"

#: The block name of a table's category columns (one categorical likelihood for them all).
CATEGORIES_BLOCK = "categories"


def _auto_likelihood(values: np.ndarray) -> str:
    """``likelihood="auto"`` for one float column: a normal rounded to the integers (lenient
    about fractions later) when every observed value is a whole number and the column is not
    constant, else the Gaussian. Pixel intensities, counts and scores stored as
    floats are integers: a density on them wastes the model on the gaps (digits, 20% MCAR:
    RMSE 0.64 against 0.80 with the Gaussian)."""
    observed = values[~np.isnan(values)]
    if (
        observed.size
        and np.array_equal(observed, np.round(observed))
        and np.unique(observed).size >= 2
    ):
        return AUTO_INTEGER
    return "gaussian"


def column_kind(series: pd.Series) -> str:
    """The kind of a DataFrame column, from its dtype (object columns from their values).

    float -> "continuous"; integer (``int64``, nullable ``Int64``, ...) -> "integer"; bool and
    nullable ``boolean`` -> "binary"; ``category``, ``string`` and object columns of text ->
    "categorical". An object column of numbers (or numeric strings) is "continuous"; one that
    mixes text and numbers is refused by :func:`impute_dgm._validation.check_table_input`.
    """
    dtype = series.dtype
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        and not (pd.api.types.is_object_dtype(dtype))
    ):
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype):
        return "binary"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "continuous"
    observed = series.dropna()
    if len(observed) and all(isinstance(v, (bool, np.bool_)) for v in observed):
        return "binary"
    if len(observed) and all(isinstance(v, str) for v in observed):
        return "categorical"
    return "continuous"


@dataclass
class ColumnSpec:
    """What the schema knows of one column.

    Attributes
    ----------
    name : object
        The column's label (its index for arrays).
    kind : {"continuous", "integer", "binary", "categorical"}
    dtype : object
        The dtype to return it in (None for arrays: float64).
    levels : pandas.Index or None
        The categories seen in ``fit``, in order (categorical columns only).
    """

    name: object
    kind: str
    dtype: object = None
    levels: pd.Index | None = None


class TableSchema:
    """Per-column kinds, likelihoods and scaling: the path between a table and the model.

    Fitted on the training table, it turns any table with the same columns into model units
    (``encode``: floats with NaN where missing -- standardised numbers, 0/1 flags, category
    codes) and back (``decode`` to numbers in the original units, ``fill`` to a table of the
    original dtypes). Columns with the same likelihood form one block of a
    :class:`~impute_dgm.distributions.likelihoods.ColumnLikelihoods`; a table of one kind
    (every NumPy array) keeps a single likelihood, exactly as before tables had kinds.

    Parameters
    ----------
    likelihood : str or Likelihood, default="gaussian"
        For continuous columns, and for every column of an array. "auto": a normal rounded to
        the integers ("discretized_gaussian", lenient about fractions at ``encode``) for a
        column whose observed values are all whole numbers (not constant), else "gaussian".
    column_likelihoods : dict or None, default=None
        Per-column overrides, keyed by column name (DataFrames) or position (arrays).
    handle_unknown : {"error", "missing"}, default="error"
        What ``encode`` does with a category level that ``fit`` never saw.
    """

    def __init__(
        self,
        likelihood: str | Likelihood = "gaussian",
        column_likelihoods: dict | None = None,
        handle_unknown: str = "error",
    ) -> None:
        self.likelihood = likelihood
        self.column_likelihoods = column_likelihoods
        self.handle_unknown = handle_unknown

    # --- fit ---------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame | np.ndarray) -> TableSchema:
        """Learn kinds, levels, likelihoods and scaling from ``X`` (NaN / NA = missing)."""
        self.is_table_ = isinstance(X, pd.DataFrame)
        if self.is_table_:
            self.columns_ = [self._column_spec(name, X[name]) for name in X.columns]
        else:
            self.columns_ = [ColumnSpec(j, "continuous") for j in range(X.shape[1])]
        overrides = dict(self.column_likelihoods or {})
        unknown = [key for key in overrides if key not in {c.name for c in self.columns_}]
        if unknown:
            raise ValueError(
                f"column_likelihoods names column(s) {unknown!r} that the data do not have."
            )
        numbers = self._numbers(X)
        blocks: dict[str, tuple[Likelihood, list[int]]] = {}
        for j, column in enumerate(self.columns_):
            if column.name in overrides:
                spec = overrides[column.name]
            elif column.kind == "continuous":
                spec = self.likelihood
                if isinstance(spec, str) and spec == "auto":
                    spec = _auto_likelihood(numbers[:, j])
            else:
                spec = DEFAULT_LIKELIHOODS[column.kind]
            if (
                column.kind == "categorical"
                and spec != "categorical"
                and not (isinstance(spec, CategoricalLikelihood))
            ):
                raise ValueError(
                    f"Column {column.name!r} holds categories; its likelihood must be "
                    f"'categorical', not {spec!r}."
                )
            if spec == AUTO_INTEGER:
                likelihood = DiscretizedGaussianLikelihood(integers_only=False)
            else:
                likelihood = make_likelihood(spec)
            if isinstance(likelihood, CategoricalLikelihood) and column.kind == "categorical":
                likelihood = CategoricalLikelihood(len(column.levels), ordered=False)
            # Columns that share a named likelihood share a block, the table's categories too
            # (however many levels each has: one block costs a few tensor operations a step,
            # which dominate small tables' steps); objects get one each.
            if column.kind == "categorical":
                key = CATEGORIES_BLOCK if isinstance(spec, str) else f"#{j}"
            else:
                key = spec if isinstance(spec, str) else f"#{j}"
            if key not in blocks:
                blocks[key] = (likelihood, [])
            blocks[key][1].append(j)
        if CATEGORIES_BLOCK in blocks:
            columns = blocks[CATEGORIES_BLOCK][1]
            levels = [len(self.columns_[j].levels) for j in columns]
            blocks[CATEGORIES_BLOCK] = (CategoricalLikelihood(levels, ordered=False), columns)
        fitted_blocks = []
        for likelihood, columns in blocks.values():
            try:
                # A view when the block is the whole table (no copy of it).
                whole = columns == list(range(numbers.shape[1]))
                fitted = likelihood.fitted(numbers if whole else numbers[:, columns])
            except ValueError as error:
                names = ", ".join(repr(self.columns_[j].name) for j in columns[:5])
                raise ValueError(f"Column(s) {names}: {error}") from None
            fitted_blocks.append((fitted, columns))
        standardize = np.zeros(len(self.columns_), dtype=bool)
        for likelihood, columns in fitted_blocks:
            standardize[columns] = likelihood.standardize
        # One scaler for the columns whose likelihood works in standardised units; the others
        # (flags, category codes, counts) stay as they are: location 0, scale 1.
        self.standardized_ = np.flatnonzero(standardize)
        self.location_ = np.zeros(len(self.columns_))
        self.scale_ = np.ones(len(self.columns_))
        self.scaler_ = None
        column_lowest = np.zeros(len(self.columns_))
        column_highest = np.zeros(len(self.columns_))
        if self.standardized_.size:
            # In row chunks: the NaN-aware mean and variance (and the column slice) would
            # otherwise make several temporary copies of the whole table.
            self.scaler_ = StandardScaler()
            highest = np.full(self.standardized_.size, -np.inf)
            lowest = np.full(self.standardized_.size, np.inf)
            for start in range(0, max(len(numbers), 1), ROWS_PER_CHUNK):
                chunk = numbers[start : start + ROWS_PER_CHUNK][:, self.standardized_]
                self.scaler_.partial_fit(chunk)
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a chunk's all-NaN column
                    highest = np.fmax(highest, np.nanmax(chunk, axis=0))
                    lowest = np.fmin(lowest, np.nanmin(chunk, axis=0))
            # The float mean of equal values can miss them by an ulp, and an ulp of a large
            # value is large (1e134 at 1e150, beyond float32 after scaling by 1): centre
            # constant columns on their value exactly, so that they standardise to 0.
            constant = highest == lowest
            self.scaler_.mean_[constant] = highest[constant]
            self.location_[self.standardized_] = self.scaler_.mean_
            self.scale_[self.standardized_] = self.scaler_.scale_
            column_lowest[self.standardized_] = lowest
            column_highest[self.standardized_] = highest
        for likelihood, columns in fitted_blocks:
            if isinstance(likelihood, DiscretizedGaussianLikelihood):
                likelihood.set_grid(
                    self.location_[columns], self.scale_[columns],
                    column_lowest[columns], column_highest[columns],
                )  # fmt: skip
        if len(fitted_blocks) == 1 and fitted_blocks[0][1] == list(range(len(self.columns_))):
            self.likelihood_ = fitted_blocks[0][0]
        else:
            self.likelihood_ = ColumnLikelihoods(fitted_blocks)
        # A density in original units differs from one in model units by the scaling of the
        # continuous columns; integer, binary and category columns have probabilities.
        continuous = np.array([c.kind == "continuous" for c in self.columns_])
        discrete = np.zeros(len(self.columns_), dtype=bool)
        for likelihood, columns in fitted_blocks:
            discrete[columns] = isinstance(likelihood, DiscretizedGaussianLikelihood)
        self.log_scale_ = np.where(continuous & ~discrete, np.log(self.scale_), 0.0)
        # Column by column: a model-unit copy of the whole table would double fit's memory.
        self.fallback_ = np.array(
            [
                self._fallback((numbers[:, j] - self.location_[j]) / self.scale_[j], c)
                for j, c in enumerate(self.columns_)
            ]
        )
        return self

    @staticmethod
    def _column_spec(name, series: pd.Series) -> ColumnSpec:
        kind = column_kind(series)
        levels = None
        if kind == "categorical":
            if isinstance(series.dtype, pd.CategoricalDtype):
                levels = series.dtype.categories
            else:
                levels = pd.Index(sorted(series.dropna().unique()))
        return ColumnSpec(name, kind, series.dtype, levels)

    @staticmethod
    def _fallback(values: np.ndarray, column: ColumnSpec) -> float:
        """A value to use where the model gives none (a diverged fit): mean or mode."""
        observed = values[~np.isnan(values)]
        if not observed.size:
            return 0.0
        if column.kind in ("categorical", "binary"):
            levels, counts = np.unique(observed, return_counts=True)
            return float(levels[np.argmax(counts)])
        return float(observed.mean())

    # --- to the model and back ---------------------------------------------------------
    def _numbers(self, X) -> np.ndarray:
        """Original numbers (category codes for categories), NaN where missing."""
        if not self.is_table_:
            return np.asarray(X, dtype=np.float64)
        out = np.empty(X.shape, dtype=np.float64)
        for j, column in enumerate(self.columns_):
            out[:, j] = self._column_numbers(X.iloc[:, j], column)
        return out

    def _column_numbers(self, series: pd.Series, column: ColumnSpec) -> np.ndarray:
        kind = column_kind(series)
        if kind != column.kind and not (kind == "continuous" and column.kind == "integer"):
            raise ValueError(
                f"Column {column.name!r} was {column.kind} in fit but is {kind} now "
                f"(dtype {series.dtype})."
            )
        if column.kind == "categorical":
            codes = column.levels.get_indexer(series.astype(object)).astype(np.float64)
            unknown = (codes < 0) & series.notna().to_numpy()
            if unknown.any():
                if self.handle_unknown == "error":
                    raise _unknown_level(column, series[unknown].iloc[0])
            codes[codes < 0] = np.nan
            return codes
        if column.kind == "binary":
            return series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.to_numeric(series).astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)

    def encode(self, X, dtype: type = np.float64) -> np.ndarray:
        """Model units (n, D) in ``dtype``, NaN where missing; checks the values against each
        likelihood. Scaled in float64 whatever ``dtype``: float32 units are the float64 ones
        rounded, without a float64 copy of the table on the way (training takes float32)."""
        numbers = self._numbers(X)
        try:
            self.likelihood_.check_data(numbers)
        except ValueError as error:
            raise ValueError(self._locate(numbers, error)) from None
        return self._standardize(numbers, dtype)

    def _standardize(self, numbers: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        out = np.empty(numbers.shape, dtype=dtype)
        for start in range(0, max(len(out), 1), ROWS_PER_CHUNK):
            block = np.array(numbers[start : start + ROWS_PER_CHUNK], dtype=np.float64)
            if self.scaler_ is not None:
                block[:, self.standardized_] = self.scaler_.transform(block[:, self.standardized_])
            out[start : start + ROWS_PER_CHUNK] = block
        return out

    def _rescale_in_place(self, out: np.ndarray, scale) -> None:
        """Apply the scaler's ``transform`` or ``inverse_transform`` to the standardised
        columns of ``out``, in row chunks: its copies are then of a chunk, not of the table."""
        columns = self.standardized_
        for start in range(0, len(out), ROWS_PER_CHUNK):
            block = out[start : start + ROWS_PER_CHUNK]
            block[:, columns] = scale(block[:, columns])

    def _locate(self, numbers: np.ndarray, error: ValueError) -> str:
        """The likelihood's complaint with the column and the first value it refuses."""
        parts = getattr(self.likelihood_, "parts", [self.likelihood_])
        blocks = getattr(self.likelihood_, "columns", [range(numbers.shape[1])])
        for part, columns in zip(parts, blocks, strict=True):
            for j in columns:
                values = numbers[:, j]
                for value in pd.unique(values[~np.isnan(values)]):
                    try:
                        part.check_data(np.array([[value]]))
                    except ValueError as complaint:
                        name = self.columns_[j].name if self.is_table_ else j
                        return f"Column {name!r} has value {float(value)!r}: {complaint}"
        return str(error)

    def restore_dtypes(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with each column back in the dtype it had in ``fit``, where a transport lost it.

        JSON (``mlflow models serve``) and Spark carry categories as strings or numbers,
        booleans as numbers or objects and nullable integers as floats. A categorical value
        is matched to a fitted level by equality, then by its text (``"3"`` and ``3.0`` find
        the level ``3``); a value that matches none is handled by ``handle_unknown``. A
        boolean may come as True/False, 0/1 or "true"/"false". Numeric columns become numbers.
        Missing cells (None, NaN, NA) stay missing.
        """
        if not self.is_table_:
            return X
        out = X.copy()
        for j, column in enumerate(self.columns_):
            series = out.iloc[:, j]
            if series.dtype == column.dtype:
                continue
            out.isetitem(j, self._restore_column(series, column))
        return out

    def _restore_column(self, series: pd.Series, column: ColumnSpec) -> pd.Series:
        missing = series.isna().to_numpy()
        values = series.astype(object).to_numpy()
        if column.kind == "categorical":
            by_text = {_level_text(level): level for level in column.levels}
            restored = []
            for value, gap in zip(values, missing, strict=True):
                if gap:
                    restored.append(np.nan)
                elif value in column.levels:
                    restored.append(column.levels[column.levels.get_loc(value)])
                elif _level_text(value) in by_text:
                    restored.append(by_text[_level_text(value)])
                elif self.handle_unknown == "missing":
                    restored.append(np.nan)
                else:
                    raise _unknown_level(column, value)
            return pd.Series(restored, index=series.index, dtype=object).astype(column.dtype)
        if column.kind == "binary":
            truth = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
            restored = []
            for value, gap in zip(values, missing, strict=True):
                text = str(value).strip().lower()
                if gap:
                    restored.append(pd.NA)
                elif text in truth:
                    restored.append(truth[text])
                else:
                    raise ValueError(f"Column {column.name!r} is boolean, but has value {value!r}.")
            return pd.Series(restored, index=series.index, dtype="boolean")
        try:
            numbers = pd.to_numeric(series, errors="raise").astype("float64")
        except (TypeError, ValueError):
            raise ValueError(f"Column {column.name!r} is numeric, but has text in it.") from None
        if column.kind == "integer":
            try:
                return numbers.astype("Int64")
            except (TypeError, ValueError):
                return numbers  # fractions: encode names the column and the value
        return numbers

    def decode(self, values: np.ndarray) -> np.ndarray:
        """Original units (n, D) from model units; non-finite values become the fallback."""
        out = np.where(np.isfinite(values), values, self.fallback_).astype(np.float64, copy=False)
        if self.scaler_ is not None:
            self._rescale_in_place(out, self.scaler_.inverse_transform)
        return out

    def fill(self, X, values: np.ndarray, missing: np.ndarray):
        """``X`` with its missing cells replaced by ``values`` (original units, from
        :meth:`decode`): an array for arrays, a DataFrame of the original dtypes for tables.
        Observed cells are returned unchanged."""
        if not self.is_table_:
            out = np.array(X, dtype=np.float64, copy=True)
            out[missing] = values[missing]
            return out
        out = X.copy()
        for j, column in enumerate(self.columns_):
            rows = missing[:, j]
            if not rows.any():
                continue
            out.isetitem(j, self._fill_column(out.iloc[:, j], values[:, j], rows, column))
        return out

    @staticmethod
    def _fill_column(series: pd.Series, values: np.ndarray, rows: np.ndarray, column: ColumnSpec):
        if column.kind == "categorical":
            codes = np.clip(np.round(values[rows]), 0, len(column.levels) - 1).astype(int)
            filled = column.levels.take(codes).to_numpy(dtype=object)
        elif column.kind == "binary":
            filled = values[rows] >= 0.5
        elif column.kind == "integer":
            filled = np.round(values[rows]).astype(np.int64)
        else:
            filled = values[rows]
        # Through object values and back to the column's own dtype: categories keep their
        # order, nullable dtypes stay nullable, and observed cells are not touched.
        result = series.astype(object)
        result.iloc[np.flatnonzero(rows)] = list(filled)
        return result.astype(series.dtype)


def _level_text(value) -> str:
    """A level as text, with integral floats written as integers (3.0 -> "3")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _unknown_level(column: ColumnSpec, level) -> ValueError:
    """The error for a category level that fit never saw, naming column and level."""
    return ValueError(
        f"Column {column.name!r} has level {level!r}, which fit never saw "
        f"(known: {list(column.levels)[:10]}); pass handle_unknown='missing' "
        "to treat such values as missing."
    )
