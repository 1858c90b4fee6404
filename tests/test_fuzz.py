"""Property-based inputs (hypothesis): every case ends in a correct result or a clear error.

A small profile runs here; ``benchmarks/fuzz.py`` runs 2,000 examples per estimator. The
inputs and the judge are :mod:`impute_dgm.fuzzing`; the tests below the property pin the bugs
that fuzzing found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from impute_dgm import FlowDensityEstimator, VAEClassifier, VAEImputer  # noqa: E402
from impute_dgm.fuzzing import (  # noqa: E402
    ESTIMATORS,
    Case,
    check_imputation,
    inputs,
    raised_by_us,
    run_case,
)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_input_ends_in_a_correct_result_or_a_clear_error(estimator):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(inputs())
    def property_holds(case):
        outcome = run_case(estimator, case)
        assert outcome.acceptable, outcome

    property_holds()


def test_the_judge_catches_a_changed_observed_value_and_a_torch_error():
    # A judge that passes everything would make the property above unable to fail.
    X = np.array([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(AssertionError, match="observed cells of column 0 changed"):
        check_imputation(X, np.array([[1.5, 0.0], [2.0, 3.0]]))
    with pytest.raises(AssertionError, match="missing cells"):
        check_imputation(X, X)
    import torch

    try:
        torch.zeros(2) @ torch.zeros(3)
    except RuntimeError as error:
        assert not raised_by_us(error)
    case = Case(X=np.ones((3, 2)), y=np.zeros(3), container="ndarray")
    assert run_case("VAEImputer", case).acceptable


def test_the_judge_tells_libraries_by_their_install_directory_not_by_names_in_the_path():
    # Found on a GPU machine whose virtual environment lives under /opt/torch/: scikit-learn's
    # own "raise TypeError(...)" there was taken for an error from inside torch.
    import linecache

    fake = "/opt/torch/.venv/lib/python3.12/site-packages/sklearn/utils/validation.py"
    source = "raise TypeError('Sparse data was passed for X, but dense data is required.')\n"
    linecache.cache[fake] = (len(source), None, [source], fake)
    try:
        exec(compile(source, fake, "exec"))
    except TypeError as error:
        assert raised_by_us(error)
    finally:
        linecache.cache.pop(fake, None)


def test_duplicate_column_names_are_refused_by_name():
    X = pd.DataFrame(np.ones((4, 3)), columns=["a", "x", "x"])
    for estimator in (VAEImputer(n_epochs=1), FlowDensityEstimator(n_epochs=1)):
        with pytest.raises(ValueError, match=r"Column name\(s\) 'x' appear more than once"):
            estimator.fit(X)


def test_flow_names_category_columns_and_reads_nullable_ones():
    categories = pd.DataFrame({"a": pd.Categorical([None] * 4, categories=["u"]), "b": [1.0] * 4})
    with pytest.raises(ValueError, match=r"'a' \(dtype 'category'\)"):
        FlowDensityEstimator(n_epochs=1).fit(categories)
    nullable = pd.DataFrame(
        {
            "count": pd.array([1, 2, 3, 5], dtype="Int64"),
            "flag": pd.array([True, False, True, None], dtype="boolean"),
        }
    )
    with pytest.raises(ValueError, match=r"contains NaN in column\(s\) 'flag'"):
        FlowDensityEstimator(n_epochs=1).fit(nullable)
    complete = nullable.fillna({"flag": False})
    scores = FlowDensityEstimator(n_epochs=1).fit(complete).score_samples(complete)
    assert np.isfinite(scores).all()


def test_flow_refuses_values_beyond_float32():
    X = np.column_stack([np.linspace(-1, 1, 10) * 1e57, np.arange(10.0)])
    with pytest.raises(ValueError, match=r"beyond \+-1e\+38 in column\(s\) index 0.*float32"):
        FlowDensityEstimator(n_epochs=1).fit(X)


def test_constant_column_of_a_large_value_standardises_to_zero():
    # The float mean of 37 copies of 1e150 missed it by ~1e134: NaN losses in float32.
    X = np.full((37, 3), 1e150)
    y = np.array([0, 1, -1] * 12 + [0])
    VAEClassifier(n_epochs=1, batch_size=16, random_state=0).fit(X, y)
    X_missing = X.copy()
    X_missing[0, 0] = np.nan
    completed = VAEImputer(n_epochs=1, random_state=0).fit(X_missing).transform(X_missing)
    assert completed[0, 0] == 1e150


def test_sample_imputations_follow_set_output_like_transform():
    X = pd.DataFrame({0: pd.Series(["a", "b", None, "a"], dtype=object), 1: [1, 2, 3, 4]})
    imputer = VAEImputer(n_epochs=1, random_state=0).set_output(transform="pandas").fit(X)
    expected = list(imputer.transform(X).columns)
    for table in imputer.sample_imputations(X, n_imputations=2, random_state=0):
        assert list(table.columns) == expected


def test_values_too_large_to_standardise_are_refused_by_name():
    X = np.array([[0.0, 1.0], [1e300, 2.0], [np.nan, 3.0]])
    with pytest.raises(ValueError, match=r"beyond \+-1e\+150 in column\(s\) index 0"):
        VAEImputer(n_epochs=1).fit(X)


def test_flow_refuses_columns_too_narrow_for_float32():
    X = np.array([[7e-62, 1.0], [0.0, 2.0], [3e-62, 0.5]])
    with pytest.raises(ValueError, match=r"Column\(s\) \[0\] vary by less than 1e-30"):
        FlowDensityEstimator(n_epochs=1).fit(X)
