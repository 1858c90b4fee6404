"""MLflow tracking for impute-dgm estimators (optional: ``pip install 'impute-dgm[mlflow]'``).

Tracking:

- :class:`MlflowCallback`, for the ``callbacks=`` parameter of every estimator: logs the
  per-epoch training and validation losses as MLflow metrics with ``step = epoch``.
- :func:`track_fit`, which fits an estimator or a ``Pipeline`` inside an MLflow run (the active
  one as a nested run, or a new one) and logs its parameters, per-epoch losses, fit seconds,
  final score and figures.

Models (from :mod:`impute_dgm.integrations.mlflow_models`, re-exported here):

- :func:`log_model` / :func:`save_model`: any fitted estimator or pipeline as a ``pyfunc``
  model with a NaN-accepting signature (torch weights stored as tensors, loaded with
  ``weights_only=True``);
- :func:`register_model`: a registry version plus an alias such as ``champion``;
- :func:`load_estimator`: the estimator itself back from any model URI.

The tracking URI is MLflow's own: ``MLFLOW_TRACKING_URI`` when set, otherwise MLflow's default
(``sqlite:///mlflow.db`` in the working directory for MLflow 3), so no server is needed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from impute_dgm.integrations.mlflow_models import (
    _mlflow,
    load_estimator,
    log_model,
    register_model,
    save_model,
)

__all__ = [
    "MlflowCallback",
    "load_estimator",
    "log_model",
    "register_model",
    "save_model",
    "track_fit",
]

# MLflow refuses parameter values longer than this.
_MAX_PARAM_LENGTH = 6000


class MlflowCallback:
    """Log each epoch's losses to MLflow (``train_loss``, ``validation_loss``, step = epoch).

    Parameters
    ----------
    prefix : str, default=""
        Put before every metric name (e.g. the pipeline step's name).
    run_id : str or None, default=None
        Log to this run; None logs to the active run (one is started if there is none).

    Examples
    --------
    >>> from impute_dgm import VAEImputer
    >>> from impute_dgm.integrations.mlflow import MlflowCallback
    >>> imputer = VAEImputer(callbacks=[MlflowCallback()])  # doctest: +SKIP
    """

    def __init__(self, prefix: str = "", run_id: str | None = None) -> None:
        self.prefix = prefix
        self.run_id = run_id

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        metrics = {f"{self.prefix}{name}": float(value) for name, value in logs.items()}
        _mlflow().log_metrics(metrics, step=epoch, run_id=self.run_id)

    def __repr__(self) -> str:
        return f"MlflowCallback(prefix={self.prefix!r}, run_id={self.run_id!r})"


def _loggable_params(estimator: Any) -> dict[str, str]:
    """get_params (deep, so pipelines give ``step__param``) as strings MLflow accepts."""
    params = {}
    for name, value in estimator.get_params(deep=True).items():
        if name.endswith("callbacks") or hasattr(value, "get_params"):
            continue  # callbacks are plumbing; nested estimators are logged by their params
        text = repr(value) if not isinstance(value, str) else value
        params[name] = text[:_MAX_PARAM_LENGTH]
    return params


def _tracked_steps(estimator: Any) -> list[tuple[str, Any]]:
    """(metric prefix, estimator) for every estimator inside that takes ``callbacks``."""
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return [("", estimator)] if "callbacks" in estimator.get_params(deep=False) else []
    found = []
    for name, step in steps:
        found += [(f"{name}.{prefix}", inner) for prefix, inner in _tracked_steps(step)]
    return found


def track_fit(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    run_name: str | None = None,
    score_data: tuple[Any, Any] | None = None,
    image_shape: Sequence[int] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Fit ``estimator`` on (X, y) inside an MLflow run and log what the fit produced.

    Logs the parameters (``get_params(deep=True)``), every epoch's training and validation
    loss of each impute-dgm estimator inside (prefixed with its pipeline step), the fit
    seconds, the final ``score`` on ``score_data`` (default: the training data) and, with
    matplotlib, the training curves and, for ``image_shape``, a grid of samples.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Fitted in place.
    X, y : array-like
        Training data.
    run_name : str, optional
    score_data : (X, y), optional
        Data for the logged ``score``.
    image_shape : (H, W), optional
        Log a grid of samples drawn by ``estimator.sample`` as images of this shape.
    tags : dict, optional
        Run tags.

    Returns
    -------
    run_id : str
        The run that was logged to (nested in the active run, if there was one).
    """
    mlflow = _mlflow()
    nested = mlflow.active_run() is not None
    tracked = _tracked_steps(estimator)
    with mlflow.start_run(run_name=run_name, nested=nested, tags=tags) as run:
        run_id = run.info.run_id
        mlflow.log_params(_loggable_params(estimator))
        saved = [(step, step.callbacks) for _, step in tracked]
        try:
            for prefix, step in tracked:
                step.set_params(
                    callbacks=[*(step.callbacks or ()), MlflowCallback(prefix, run_id=run_id)]
                )
            start = time.perf_counter()
            estimator.fit(X) if y is None else estimator.fit(X, y)
            seconds = time.perf_counter() - start
        finally:
            for step, callbacks in saved:
                step.set_params(callbacks=callbacks)
        metrics = {"fit_seconds": seconds}
        if hasattr(estimator, "score"):
            X_score, y_score = score_data if score_data is not None else (X, y)
            score = (
                estimator.score(X_score) if y_score is None else estimator.score(X_score, y_score)
            )
            if np.isfinite(score):
                metrics["score"] = float(score)
        for prefix, step in tracked:
            if hasattr(step, "n_epochs_"):
                metrics[f"{prefix}n_epochs"] = float(step.n_epochs_)
        mlflow.log_metrics(metrics)
        _log_figures(mlflow, estimator, tracked, image_shape)
    return run_id


def _log_figures(mlflow, estimator, tracked, image_shape) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from impute_dgm.plotting import plot_image_grid, plot_training_curves

    for prefix, step in tracked:
        if hasattr(step, "history_"):
            ax = plot_training_curves(step)
            mlflow.log_figure(ax.figure, f"{prefix}training_curve.png")
            plt.close(ax.figure)
    if image_shape is not None and hasattr(estimator, "sample"):
        figure = plot_image_grid(estimator.sample(50, random_state=0), image_shape)
        mlflow.log_figure(figure, "samples.png")
        plt.close(figure)
