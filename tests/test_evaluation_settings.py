"""Evaluation settings found and set on an estimator or the steps of a pipeline."""

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from impute_dgm import FlowDensityEstimator, VAEImputer
from impute_dgm.evaluation_settings import evaluation_parameter_keys, set_evaluation_parameters


def test_keys_are_found_on_the_estimator_and_in_pipeline_steps():
    assert evaluation_parameter_keys(VAEImputer()) == {
        "n_eval_samples": ["n_eval_samples"],
        "eval_dtype": ["eval_dtype"],
    }
    assert evaluation_parameter_keys(FlowDensityEstimator()) == {"eval_dtype": ["eval_dtype"]}
    pipeline = make_pipeline(StandardScaler(), VAEImputer())
    assert evaluation_parameter_keys(pipeline) == {
        "n_eval_samples": ["vaeimputer__n_eval_samples"],
        "eval_dtype": ["vaeimputer__eval_dtype"],
    }
    assert evaluation_parameter_keys(StandardScaler()) == {}


def test_set_returns_what_it_replaced_and_refuses_a_bad_value_untouched():
    imputer = VAEImputer(n_eval_samples=40)
    pipeline = make_pipeline(StandardScaler(), imputer)
    previous = set_evaluation_parameters(pipeline, {"vaeimputer__n_eval_samples": 7})
    assert previous == {"vaeimputer__n_eval_samples": 40} and imputer.n_eval_samples == 7
    with pytest.raises(ValueError, match="eval_dtype"):
        set_evaluation_parameters(pipeline, {"vaeimputer__eval_dtype": "float16"})
    assert imputer.eval_dtype == "auto"  # put back
    with pytest.raises(ValueError, match="n_eval_samples"):
        set_evaluation_parameters(imputer, {"n_eval_samples": 0})
    assert imputer.n_eval_samples == 7
