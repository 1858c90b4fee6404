"""Evaluation settings of a fitted estimator, found and changed wherever they live.

``n_eval_samples`` (importance samples a row) and ``eval_dtype`` (float64 or float32 arithmetic)
trade accuracy for speed after a fit, without refitting. The command line (``--samples``,
``--float32``) and the MLflow pyfunc models (inference ``params``) set them on a loaded
estimator, or on the steps of a pipeline that have them.
"""

from __future__ import annotations

from typing import Any

EVALUATION_PARAMETERS = ("n_eval_samples", "eval_dtype")


def nested_parameter_keys(estimator: Any, name: str) -> list[str]:
    """The ``get_params(deep=True)`` keys of parameter ``name``: the estimator's own
    (``"n_eval_samples"``) and its steps' (``"vaeimputer__n_eval_samples"``)."""
    nested = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    return [key for key in nested if key == name or key.endswith(f"__{name}")]


def evaluation_parameter_keys(estimator: Any) -> dict[str, list[str]]:
    """Where each evaluation parameter lives: ``{name: [get_params keys]}``; names no part of
    the estimator has are left out."""
    keys = {name: nested_parameter_keys(estimator, name) for name in EVALUATION_PARAMETERS}
    return {name: found for name, found in keys.items() if found}


def set_evaluation_parameters(estimator: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Set ``settings`` (``get_params`` keys) and check each against its estimator's own
    parameter constraints (scikit-learn's ``InvalidParameterError``, a ValueError that names
    it). Returns the values they replaced, for putting them back."""
    nested = estimator.get_params(deep=True)
    previous = {key: nested[key] for key in settings}
    estimator.set_params(**settings)
    nested = estimator.get_params(deep=True)
    try:
        for key in settings:
            owner = nested[key.rpartition("__")[0]] if "__" in key else estimator
            owner._validate_params()
    except ValueError:
        estimator.set_params(**previous)
        raise
    return previous
