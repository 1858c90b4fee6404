"""Property-based inputs (hypothesis): every case ends in a correct result or a clear error.

A small profile runs here; ``benchmarks/fuzz.py`` (roadmap) is the large one.
"""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from impute_dgm import FlowDensityEstimator, VAEImputer  # noqa: E402

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, 1e300, -1e300, 1e-300, 5.0]
cells = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), st.sampled_from(SPECIAL)
)
tables = st.tuples(st.integers(1, 25), st.integers(1, 4)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=cells)
)


def raised_by_us(error: BaseException) -> bool:
    """The error comes from impute-dgm's or scikit-learn's checks, not from inside torch or
    numpy (whose messages do not name the problem in the user's terms)."""
    last = traceback.extract_tb(error.__traceback__)[-1].filename
    return "/torch/" not in last and "/numpy/" not in last


def check_outcome(run, X: np.ndarray) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(X)
    except (ValueError, TypeError) as error:
        assert str(error), "an error without a message"
        assert raised_by_us(error), traceback.format_exception(error)
        return
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_imputer_returns_a_complete_table_or_a_clear_error(X):
    def run(X):
        imputer = VAEImputer(n_epochs=1, hidden_dims=(4,), latent_dim=2, n_eval_samples=4)
        return imputer.fit(X).transform(X)

    result = check_outcome(run, X)
    if result is not None:
        assert result.shape == X.shape
        assert np.isfinite(result).all()
        observed = ~np.isnan(X)
        assert np.array_equal(result[observed], X[observed])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_flow_scores_finite_or_refuses(X):
    def run(X):
        flow = FlowDensityEstimator(n_layers=2, hidden_dims=(4,), n_epochs=1)
        return flow.fit(X).score_samples(X)

    result = check_outcome(run, X)
    if result is not None:
        assert result.shape == (X.shape[0],)
        assert not np.isnan(result).any()


def test_values_too_large_to_standardise_are_refused_by_name():
    X = np.array([[0.0, 1.0], [1e300, 2.0], [np.nan, 3.0]])
    with pytest.raises(ValueError, match=r"beyond \+-1e\+150 in column\(s\) index 0"):
        VAEImputer(n_epochs=1).fit(X)


def test_flow_refuses_columns_too_narrow_for_float32():
    X = np.array([[7e-62, 1.0], [0.0, 2.0], [3e-62, 0.5]])
    with pytest.raises(ValueError, match=r"Column\(s\) \[0\] vary by less than 1e-30"):
        FlowDensityEstimator(n_epochs=1).fit(X)
