"""Property-based inputs for every estimator, and the judge of what each one did with them.

What users hand an estimator: tables of 1 row, 1 column or 60 columns; NaN in whole rows, whole
columns or nowhere; infinities, huge and tiny magnitudes, constant columns; object, text,
boolean, nullable and category columns; DataFrames with duplicate or non-string column names;
sparse matrices and plain lists. Every case must end in a correct result (right shape, names and
dtypes, observed values unchanged, no NaN or infinity) or in a ``ValueError`` / ``TypeError``
that the package or scikit-learn raised with a message -- never in an exception from inside
torch, NumPy, pandas or SciPy.

Needs ``hypothesis`` (the ``[dev]`` extra). ``tests/test_fuzz.py`` runs a small profile;
``benchmarks/fuzz.py`` runs thousands of examples per estimator and counts the outcomes.

Examples
--------
>>> from hypothesis import given, settings
>>> from impute_dgm.fuzzing import ESTIMATORS, inputs, run_case
>>> @settings(max_examples=5, deadline=None)
... @given(inputs())
... def check(case):
...     assert run_case("VAEImputer", case).acceptable
>>> check()
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# Values that break naive code: infinities, overflow when squared, underflow, denormals.
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e300, 1e150, 1e-300, 5e-324, 5.0]

# Raising frames in these libraries mean the package let bad data through to them.
FOREIGN_LIBRARIES = ("torch", "numpy", "pandas", "scipy")


@functools.cache
def _library_directories() -> tuple[str, ...]:
    """Where the foreign libraries are installed. Matched as directories, not as names in a
    path: a virtual environment under /opt/torch/ holds scikit-learn too."""
    directories = []
    for name in FOREIGN_LIBRARIES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            directories.append(os.path.join(os.path.realpath(location), ""))
    return tuple(directories)


# --- inputs --------------------------------------------------------------------------------


@dataclass
class Case:
    """One input: ``X`` as the user passes it, labels for classifiers, and what it is."""

    X: Any
    y: np.ndarray
    container: str
    pandas_output: bool = False

    def __repr__(self) -> str:  # hypothesis prints failing cases with this
        return (
            f"Case(container={self.container!r}, pandas_output={self.pandas_output}, "
            f"y={self.y!r},\nX=\n{self.X!r})"
        )

    def first_row(self) -> Any:
        """X's first row, in X's container (a one-row table after fitting on more)."""
        return self.X.iloc[:1] if isinstance(self.X, pd.DataFrame) else self.X[:1]


ordinary = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
# Special values in one cell of five: a table of a few cells still often has none.
numbers = st.one_of(ordinary, ordinary, ordinary, ordinary, st.sampled_from(SPECIAL_VALUES))


@st.composite
def float_tables(draw) -> np.ndarray:
    """Float tables: small ones cell by cell, large and wide ones from a seeded generator with
    drawn scale, missing rate and special values; then a whole-row / whole-column pattern."""
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 12)), draw(st.integers(1, 5)))
        X = draw(arrays(np.float64, shape, elements=numbers))
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        shape = (draw(st.integers(1, 40)), draw(st.sampled_from([1, 2, 3, 8, 60])))
        # Everyday scales most often, and now and then any magnitude a float can hold.
        scale = 10.0 ** draw(st.one_of(st.just(0), st.integers(-6, 6), st.integers(-300, 300)))
        X = rng.normal(loc=draw(numbers.filter(np.isfinite)), scale=scale, size=shape)
        X[rng.random(shape) < draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))] = np.nan
        for _ in range(draw(st.integers(0, 3))):
            X[rng.integers(shape[0]), rng.integers(shape[1])] = draw(
                st.sampled_from(SPECIAL_VALUES)
            )
    pattern = draw(
        st.sampled_from(["as drawn", "nan row", "nan column", "constant column", "complete"])
    )
    X = X.copy()
    if pattern == "nan row":
        X[draw(st.integers(0, X.shape[0] - 1))] = np.nan
    elif pattern == "nan column":
        X[:, draw(st.integers(0, X.shape[1] - 1))] = np.nan
    elif pattern == "constant column":
        X[:, draw(st.integers(0, X.shape[1] - 1))] = draw(numbers.filter(np.isfinite))
    elif pattern == "complete":
        X = np.where(np.isnan(X), 1.0, X)
    return X


def column_names(n: int) -> st.SearchStrategy:
    """Labels users give columns: text (most often), integers, a mix, duplicates."""
    text = [f"col {j}" for j in range(n)]
    return st.sampled_from(
        [
            text,
            text,
            text,
            list(range(n)),
            [j if j % 2 else f"c{j}" for j in range(n)],
            ["x"] * n,
            text[:-1] + text[:1] if n > 1 else text,
        ]
    )


@st.composite
def mixed_columns(draw, n_rows: int) -> pd.Series:
    """One column of a kind a DataFrame can hold, with missing cells drawn in."""
    kind = draw(
        st.sampled_from(
            [
                "float",
                "int64",
                "Int64",
                "bool",
                "boolean",
                "category",
                "string",
                "object text",
                "object mixed",
                "object bool",
                "object numbers",
            ]
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    missing = rng.random(n_rows) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    levels = np.array(["red", "green", "blue"])[: draw(st.integers(1, 3))]
    if kind == "float":
        values = pd.Series(rng.normal(size=n_rows)).mask(missing)
    elif kind == "int64":
        values = pd.Series(rng.integers(0, 5, n_rows), dtype="int64")
    elif kind == "Int64":
        values = pd.Series(rng.integers(0, 5, n_rows), dtype="Int64").mask(missing)
    elif kind == "bool":
        values = pd.Series(rng.random(n_rows) < 0.5)
    elif kind == "boolean":
        values = pd.Series(rng.random(n_rows) < 0.5, dtype="boolean").mask(missing)
    elif kind == "category":
        values = pd.Series(pd.Categorical(rng.choice(levels, n_rows), categories=levels)).mask(
            missing
        )
    elif kind == "string":
        values = pd.Series(rng.choice(levels, n_rows), dtype="string").mask(missing)
    elif kind == "object text":
        values = pd.Series(rng.choice(levels, n_rows).astype(object)).mask(missing)
    elif kind == "object mixed":  # text among numbers: refused
        values = pd.Series(
            [("3.5" if i % 3 else "n/a") if i % 2 else float(i) for i in range(n_rows)],
            dtype=object,
        )
    elif kind == "object bool":
        values = pd.Series(list(rng.random(n_rows) < 0.5), dtype=object).mask(missing)
    else:  # numbers stored as objects, as CSV readers sometimes leave them
        values = pd.Series(list(rng.normal(size=n_rows)), dtype=object).mask(missing, None)
    return values


@st.composite
def mixed_frames(draw) -> pd.DataFrame:
    n_rows = draw(st.integers(1, 30))
    n_columns = draw(st.integers(1, 5))
    columns = [draw(mixed_columns(n_rows)) for _ in range(n_columns)]
    frame = pd.concat(columns, axis=1, ignore_index=True)
    frame.columns = draw(column_names(n_columns))
    return frame


@st.composite
def inputs(draw) -> Case:
    """Any input a user might pass, in any container, with labels for the classifiers."""
    container = draw(
        st.sampled_from(
            [
                "ndarray",
                "ndarray float32",
                "ndarray object",
                "list",
                "sparse",
                "DataFrame",
                "mixed DataFrame",
            ]
        )
    )
    if container == "mixed DataFrame":
        X = draw(mixed_frames())
    else:
        table = draw(float_tables())
        if container == "ndarray":
            X = table
        elif container == "ndarray float32":
            with np.errstate(over="ignore"):
                X = table.astype(np.float32)
        elif container == "ndarray object":
            X = table.astype(object)
            if draw(st.booleans()):  # a word among the numbers
                X[draw(st.integers(0, X.shape[0] - 1)), 0] = draw(
                    st.sampled_from(["abc", "1e3", ""])
                )
        elif container == "list":
            X = [
                [None if np.isnan(v) and k % 2 else float(v) for k, v in enumerate(row)]
                for row in table
            ]
        elif container == "sparse":
            X = scipy.sparse.csr_matrix(np.nan_to_num(table, nan=0.0))
        else:
            X = pd.DataFrame(table, columns=draw(column_names(table.shape[1])))
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    y = np.asarray(draw(st.lists(st.sampled_from([-1, 0, 1, 2]), min_size=n_rows, max_size=n_rows)))
    return Case(X=X, y=y, container=container, pandas_output=draw(st.booleans()))


# --- judging what an estimator did -------------------------------------------------------


@dataclass
class Outcome:
    """What one case ended in.

    ``kind`` is ``"result"`` (a correct result), ``"refused"`` (a clear ValueError/TypeError),
    ``"unexpected exception"``, ``"changed observed value"`` or ``"bad output"``; ``detail``
    is the reason (the error message with numbers and quoted names blanked out, or what was
    wrong with the result).
    """

    kind: str
    detail: str = ""

    @property
    def acceptable(self) -> bool:
        return self.kind in ("result", "refused")


class BadResult(AssertionError):
    """A result that breaks the contract (the case's outcome, not a bug in the judge)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def message_key(error: BaseException) -> str:
    """An error's message with names and numbers blanked, so that counts group by reason."""
    text = str(error).split("\n")[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"[-+]?\d[\d.e+-]*", "N", text)
    return f"{type(error).__name__}: {text[:90]}"


def raised_by_us(error: BaseException) -> bool:
    """The error was raised by a ``raise`` statement of impute-dgm or scikit-learn.

    Not from a numeric library's Python code, and not from compiled code (torch's and NumPy's
    C++ errors carry the calling line as their last frame: a line that is no ``raise``).
    """
    last = traceback.extract_tb(error.__traceback__)[-1]
    if os.path.realpath(last.filename).startswith(_library_directories()):
        return False
    return (last.line or "").lstrip().startswith("raise")


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True).set_axis(range(X.shape[1]), axis=1)
    return pd.DataFrame(np.asarray(X, dtype=object))


def _check_finite(values: np.ndarray, what: str) -> None:
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise BadResult("bad output", f"{what} holds NaN or infinity")


def _check_shape(result: Any, shape: tuple, what: str) -> None:
    if np.shape(result) != shape:
        raise BadResult("bad output", f"{what} has shape {np.shape(result)}, expected {shape}")


def check_imputation(X: Any, result: Any, names: Any = None) -> None:
    """Same shape, every cell filled, observed cells unchanged, DataFrame names and dtypes kept.

    ``names`` are the expected column names when they are not X's (``set_output`` names
    columns by ``get_feature_names_out``: ``x0, x1, ...`` for non-text labels, as in
    scikit-learn).
    """
    original, completed = _as_frame(X), _as_frame(result)
    _check_shape(completed, original.shape, "the completed table")
    if completed.isna().to_numpy().any():
        raise BadResult("bad output", "the completed table has missing cells")
    for j in range(original.shape[1]):
        observed = original.iloc[:, j].notna().to_numpy()
        before, after = original.iloc[:, j][observed], completed.iloc[:, j][observed]
        try:
            same = np.array_equal(
                before.to_numpy(dtype=np.float64), after.to_numpy(dtype=np.float64)
            )
            _check_finite(completed.iloc[:, j].to_numpy(dtype=np.float64), f"column {j}")
        except (TypeError, ValueError):  # text and categories compare as they are
            same = list(before) == list(after)
        if not same:
            raise BadResult("changed observed value", f"observed cells of column {j} changed")
    if isinstance(X, pd.DataFrame) and isinstance(result, pd.DataFrame):
        expected = list(X.columns) if names is None else list(names)
        if list(result.columns) != expected or not result.index.equals(X.index):
            raise BadResult("bad output", "the completed DataFrame lost its columns or index")
        from impute_dgm._validation import is_mixed_table

        if is_mixed_table(X) and list(result.dtypes) != list(X.dtypes):
            raise BadResult("bad output", f"dtypes {list(X.dtypes)} became {list(result.dtypes)}")


def _n_rows(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _transformer(make: Callable, case: Case):
    estimator = make()
    if case.pandas_output:
        estimator.set_output(transform="pandas")
    return estimator.fit(case.X)


def _impute(make: Callable) -> Callable:
    def run(case: Case) -> None:
        imputer = _transformer(make, case)
        names = imputer.get_feature_names_out() if case.pandas_output else None
        check_imputation(case.X, imputer.transform(case.X), names)
        check_imputation(case.first_row(), imputer.transform(case.first_row()), names)
        for completed in imputer.sample_imputations(case.X, n_imputations=2, random_state=0):
            check_imputation(case.X, completed, names)
        log_likelihoods = imputer.score_samples(case.X)
        _check_shape(log_likelihoods, (_n_rows(case.X),), "the log-likelihoods")
        _check_finite(log_likelihoods, "the log-likelihoods")

    return run


def _embed(make: Callable) -> Callable:
    def run(case: Case) -> None:
        embedder = _transformer(make, case)
        for X in (case.X, case.first_row()):
            codes = embedder.transform(X)
            _check_shape(codes, (_n_rows(X), embedder.latent_dim), "the codes")
            _check_finite(codes, "the codes")

    return run


def _score(make: Callable) -> Callable:
    def run(case: Case) -> None:
        flow = make().fit(case.X)
        scores = flow.score_samples(case.X)
        _check_shape(scores, (_n_rows(case.X),), "the log-densities")
        _check_finite(scores, "the log-densities")
        _check_finite(flow.sample(3, random_state=0), "the samples")

    return run


def _classify(make: Callable) -> Callable:
    def run(case: Case) -> None:
        classifier = make().fit(case.X, case.y)
        predicted = classifier.predict(case.X)
        _check_shape(predicted, (_n_rows(case.X),), "the predictions")
        if not np.isin(predicted, classifier.classes_).all():
            raise BadResult("bad output", "a prediction outside classes_")
        probabilities = classifier.predict_proba(case.X)
        _check_finite(probabilities, "the probabilities")
        if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4):
            raise BadResult("bad output", "probabilities do not sum to one")

    return run


def _tiny_vae(cls: type) -> Callable:
    def make():
        return cls(
            n_epochs=1,
            hidden_dims=(4,),
            latent_dim=2,
            n_importance=2,
            n_eval_samples=4,
            batch_size=16,
            random_state=0,
            verbose=0,
        )

    return make


def _estimators() -> dict[str, Callable[[Case], None]]:
    from impute_dgm import (
        EmbedThenClassify,
        FlowDensityEstimator,
        SemiSupervisedEnsemble,
        VAEClassifier,
        VAEEmbedder,
        VAEImputer,
    )

    def tiny_flow():
        return FlowDensityEstimator(
            n_layers=2, hidden_dims=(4,), n_epochs=1, batch_size=16, random_state=0, verbose=0
        )

    def tiny_m1():
        return EmbedThenClassify(embedder=_tiny_vae(VAEEmbedder)())

    def tiny_pool():
        from impute_dgm.estimators.ensemble import impute_then_spread

        spread = impute_then_spread(_tiny_vae(VAEImputer)())
        return SemiSupervisedEnsemble(
            [("spread", spread), ("m2", _tiny_vae(VAEClassifier)())], weights=[0.7, 0.3]
        )

    return {
        "VAEImputer": _impute(_tiny_vae(VAEImputer)),
        "VAEImputer (self-masking)": _impute(
            _tiny_vae(functools.partial(VAEImputer, missingness="self_masking"))
        ),
        # Held-out rows and their hidden-cell error (on by default above 16,384 rows).
        "VAEImputer (early stopping)": _impute(
            _tiny_vae(functools.partial(VAEImputer, early_stopping=True, n_iter_no_change=1))
        ),
        "VAEEmbedder": _embed(_tiny_vae(VAEEmbedder)),
        "FlowDensityEstimator": _score(tiny_flow),
        "VAEClassifier": _classify(_tiny_vae(VAEClassifier)),
        "EmbedThenClassify": _classify(tiny_m1),
        "SemiSupervisedEnsemble": _classify(tiny_pool),
    }


#: The estimators :func:`run_case` knows, each with tiny settings (one epoch).
ESTIMATORS = (
    "VAEImputer",
    "VAEImputer (self-masking)",
    "VAEImputer (early stopping)",
    "VAEEmbedder",
    "FlowDensityEstimator",
    "VAEClassifier",
    "EmbedThenClassify",
    "SemiSupervisedEnsemble",
)


def run_case(estimator: str, case: Case) -> Outcome:
    """Fit ``estimator`` (a name in :data:`ESTIMATORS`, tiny settings) on ``case`` and judge it.

    Parameters
    ----------
    estimator : str
        Which estimator; fitted, then asked for its main output (``transform``,
        ``score_samples`` and ``sample``, or ``predict`` and ``predict_proba``).
    case : Case
        The input, from :func:`inputs`.

    Returns
    -------
    Outcome
    """
    run = _estimators()[estimator]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(case)
    except BadResult as bad:
        return Outcome(bad.kind, str(bad))
    except (ValueError, TypeError) as error:
        if str(error) and raised_by_us(error):
            return Outcome("refused", message_key(error))
        return Outcome("unexpected exception", _where(error))
    except Exception as error:  # noqa: BLE001 -- any other exception is what we count
        return Outcome("unexpected exception", _where(error))
    return Outcome("result")


def _where(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{message_key(error)} (at {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno})"
