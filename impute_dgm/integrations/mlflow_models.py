"""impute-dgm estimators as MLflow ``pyfunc`` models: log, save, register, load, serve.

A logged model is a standard MLflow model directory whose ``python_function`` flavour points at
this module (``loader_module``), with the estimator under ``data/`` in the format of
:mod:`impute_dgm.persistence` (torch weights in ``weights.pt``, loaded with
``weights_only=True``; the scikit-learn structure in ``estimator.pkl``). No ``PythonModel`` is
cloudpickled: loading needs only ``impute_dgm`` importable where the model runs.

The pyfunc ``predict`` does what the estimator is for:

========================================  ==============================================
estimator                                 ``predict`` returns
========================================  ==============================================
``VAEImputer`` (or a pipeline ending in   the completed table (same columns)
a transformer)
``VAEEmbedder``                           the codes, columns ``vaeembedder0..``
``FlowDensityEstimator``                  one column ``log_density`` (``score_samples``)
a pipeline or classifier with predict     its ``predict``
========================================  ==============================================

The input signature has one column per feature (the fitted feature names, or ``x0..`` for
estimators fitted on arrays); JSON ``null`` and NaN mean missing. Float columns are ``double``, so
that they can hold a missing value. A mixed-type table's integer, categorical and boolean
columns are of MLflow's ``Any`` type: JSON carries categories as strings or numbers, booleans as
``true``/``false`` and integers with gaps as floats, pandas callers pass their own (nullable)
dtypes, and the model restores each column to its fitted dtype
(:meth:`impute_dgm.schema.TableSchema.restore_dtypes`) before it imputes, so the served table
comes back with the fitted levels and dtypes. (MLflow's ``boolean`` type would read a JSON
``null`` as ``False``, its ``string`` type refuses a pandas ``category`` column and its
``double`` type an ``Int64`` one.)
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impute_dgm.evaluation_settings import (
    evaluation_parameter_keys,
    nested_parameter_keys,
    set_evaluation_parameters,
)
from impute_dgm.persistence import load_estimator as _load_directory
from impute_dgm.persistence import save_estimator as _save_directory

METHODS = ("predict", "transform", "score_samples", "predict_proba")
_CONFIG_FILE = "pyfunc.json"
LOG_DENSITY_COLUMN = "log_density"
#: Most rows a served request may hold unless ``max_rows`` says otherwise (about 3 minutes of
#: imputation at the default 500 importance samples on one core).
DEFAULT_MAX_ROWS = 100_000


def _mlflow():
    try:
        import mlflow
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "impute-dgm's MLflow integration needs mlflow: pip install 'impute-dgm[mlflow]'."
        ) from error
    return mlflow


def default_method(estimator: Any) -> str:
    """The method a served model answers with.

    ``predict`` where there is one; ``score_samples`` for density estimators (by their
    scikit-learn tags); else ``transform``, else ``score_samples``.
    """
    from sklearn.utils import get_tags

    if hasattr(estimator, "predict"):
        return "predict"
    if get_tags(estimator).estimator_type == "density_estimator":
        return "score_samples"
    for method in ("transform", "score_samples"):
        if hasattr(estimator, method):
            return method
    raise ValueError(f"{type(estimator).__name__} has none of predict, transform, score_samples.")


def table_schema(estimator: Any):
    """The fitted :class:`~impute_dgm.schema.TableSchema` of a table-fitted estimator (or of a
    pipeline's first step), else None."""
    first = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    schema = getattr(first, "schema_", None)
    return schema if getattr(schema, "is_table_", False) else None


def input_columns(estimator: Any) -> list[str]:
    """Column names of the model input: the fitted feature names, else ``x0, x1, ...``."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ValueError(f"{type(estimator).__name__} is not fitted (no n_features_in_).")
    return [f"x{i}" for i in range(n_features)]


class EstimatorPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: a fitted estimator and the method to call.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
    method : {"predict", "transform", "score_samples", "predict_proba"}
    max_rows : int or None, default=None
        Largest request served; a larger one is refused (a 400 from ``mlflow models serve``)
        instead of holding a worker for minutes. None: no limit.
    """

    def __init__(self, estimator: Any, method: str, max_rows: int | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not one of {METHODS}.")
        if not hasattr(estimator, method):
            raise ValueError(f"{type(estimator).__name__} has no {method}.")
        self.estimator = estimator
        self.method = method
        self.max_rows = max_rows
        self.columns = input_columns(estimator)
        # The inference params: the evaluation settings of the estimator or its steps.
        self.parameter_keys = evaluation_parameter_keys(estimator)
        nested = estimator.get_params(deep=True) if self.parameter_keys else {}
        self.defaults = {name: nested[keys[0]] for name, keys in self.parameter_keys.items()}
        # Per-request settings are set on the shared estimator and put back after the call;
        # the lock keeps a concurrent request from seeing another's.
        self._lock = threading.Lock()

    def _as_model_input(self, data: Any) -> Any:
        n_rows = len(data) if hasattr(data, "__len__") else None
        if self.max_rows is not None and n_rows is not None and n_rows > self.max_rows:
            raise ValueError(
                f"The request has {n_rows} rows; this model serves at most {self.max_rows} per "
                "request (max_rows when it was saved): send smaller batches."
            )
        if isinstance(data, pd.DataFrame):
            missing = [c for c in self.columns if c not in data.columns]
            if missing:
                raise ValueError(f"The input lacks the columns {missing}.")
            data = data[self.columns]
            if not hasattr(self.estimator, "feature_names_in_"):
                return data.to_numpy()
            schema = table_schema(self.estimator)
            return data if schema is None else schema.restore_dtypes(data)
        return data

    def _settings(self, params: dict | None) -> dict:
        """The estimator parameters (nested keys) a request's ``params`` ask for."""
        settings = {}
        for name, value in (params or {}).items():
            if name not in self.parameter_keys:
                known = ", ".join(self.parameter_keys) or "none"
                raise ValueError(
                    f"Unknown inference parameter {name!r} (this model takes: {known})."
                )
            if value is not None and value != self.defaults[name]:
                settings.update(dict.fromkeys(self.parameter_keys[name], value))
        return settings

    def predict(self, model_input: Any, params: dict | None = None) -> Any:
        """Apply the estimator's method; tables come back as DataFrames with named columns.

        ``params`` may set ``n_eval_samples`` and ``eval_dtype`` for this call (where the
        estimator has them; the signature lists them with the saved values as defaults)."""
        try:
            settings = self._settings(params)
            data = self._as_model_input(model_input)
            with self._lock:
                if not settings:
                    return self._predict(data)
                saved = set_evaluation_parameters(self.estimator, settings)
                try:
                    return self._predict(data)
                finally:
                    self.estimator.set_params(**saved)
        except ValueError as error:
            # Our message in the 400 of ``mlflow models serve``, not its generic "unexpected error".
            from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error

    def _predict(self, data: Any) -> Any:
        index = data.index if isinstance(data, pd.DataFrame) else None
        result = getattr(self.estimator, self.method)(data)
        if self.method == "score_samples":
            return pd.DataFrame({LOG_DENSITY_COLUMN: np.asarray(result, float)}, index=index)
        if self.method == "transform":
            if isinstance(result, pd.DataFrame):
                return result
            names = (
                self.estimator.get_feature_names_out()
                if hasattr(self.estimator, "get_feature_names_out")
                else None
            )
            return pd.DataFrame(np.asarray(result), columns=names, index=index)
        if self.method == "predict_proba":
            classes = getattr(self.estimator, "classes_", None)
            columns = [str(c) for c in classes] if classes is not None else None
            return pd.DataFrame(np.asarray(result), columns=columns, index=index)
        return result


def _load_pyfunc(data_path: str, model_config: dict | None = None) -> EstimatorPyfunc:
    """MLflow's entry point for ``loader_module`` models."""
    data_path = Path(data_path)
    config = json.loads((data_path / _CONFIG_FILE).read_text())
    estimator = _load_directory(data_path)
    # Served requests and Spark batches print no progress bars, whatever the fit showed.
    quiet = dict.fromkeys(nested_parameter_keys(estimator, "verbose"), 0)
    return EstimatorPyfunc(estimator.set_params(**quiet), config["method"], config.get("max_rows"))


def _input_example_frame(estimator: Any, input_example: Any) -> pd.DataFrame | None:
    if input_example is None:
        return None
    columns = input_columns(estimator)
    if isinstance(input_example, pd.DataFrame):
        if not set(columns) <= set(input_example.columns):
            raise ValueError(f"input_example needs the columns {columns}.")
        frame = input_example[columns]
    else:
        frame = pd.DataFrame(np.asarray(input_example, dtype=float), columns=columns)
    schema = table_schema(estimator)
    numeric = [
        name
        for name, kind in zip(
            columns,
            [c.kind for c in schema.columns_] if schema else ["continuous"] * len(columns),
            strict=True,
        )
        if kind == "continuous"
    ]
    # Float columns are double: NaN (JSON null) must be a valid value of them. The others are
    # stored as plain objects (what JSON gives back), None where missing.
    frame = frame.reset_index(drop=True).astype({name: np.float64 for name in numeric})
    others = [name for name in columns if name not in numeric]
    for name in others:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _signature(pyfunc: EstimatorPyfunc, example: pd.DataFrame | None):
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType, ParamSchema, ParamSpec

    estimator, method = pyfunc.estimator, pyfunc.method
    schema = table_schema(estimator)
    kinds = [c.kind for c in schema.columns_] if schema else ["continuous"] * len(pyfunc.columns)
    inputs = Schema(
        [
            ColSpec("double" if kind == "continuous" else AnyType(), name)
            for name, kind in zip(pyfunc.columns, kinds, strict=True)
        ]
    )
    outputs = None
    if example is not None:
        output = pyfunc._predict(pyfunc._as_model_input(example))
        outputs = infer_signature(example, output).outputs
    elif method == "score_samples":
        outputs = Schema([ColSpec("double", LOG_DENSITY_COLUMN)])
    elif method == "transform" and hasattr(estimator, "get_feature_names_out"):
        outputs = Schema([ColSpec("double", str(n)) for n in estimator.get_feature_names_out()])
    kinds_of_params = {"n_eval_samples": "long", "eval_dtype": "string"}
    params = [
        ParamSpec(name, kinds_of_params[name], default) for name, default in pyfunc.defaults.items()
    ]
    return ModelSignature(
        inputs=inputs, outputs=outputs, params=ParamSchema(params) if params else None
    )


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("impute-dgm", "torch", "scikit-learn", "pandas", "numpy", "tqdm"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            pins.append(package)
    return pins


def _pyfunc_arguments(
    estimator: Any,
    staging: str,
    input_example: Any,
    method: str | None,
    metadata: dict | None,
    max_rows: int | None,
) -> dict[str, Any]:
    """Write the estimator under ``staging`` and return the arguments of MLflow's save/log."""
    method = method or default_method(estimator)
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows={max_rows} must be a positive number of rows, or None.")
    # Fails early on a bad method or an unfitted estimator.
    pyfunc = EstimatorPyfunc(estimator, method, max_rows)
    example = _input_example_frame(estimator, input_example)
    data_path = _save_directory(estimator, Path(staging) / "estimator")
    (data_path / _CONFIG_FILE).write_text(json.dumps({"method": method, "max_rows": max_rows}))
    return dict(
        loader_module=__name__,
        data_path=str(data_path),
        signature=_signature(pyfunc, example),
        input_example=example,
        pip_requirements=_requirements(),
        metadata={"estimator": type(estimator).__name__, "method": method, **(metadata or {})},
    )


def save_model(
    estimator: Any,
    path: str | Path,
    *,
    input_example: Any = None,
    method: str | None = None,
    metadata: dict | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> None:
    """Save a fitted estimator as an MLflow pyfunc model directory at ``path``.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
    path : str or Path
        Must not exist yet.
    input_example : array-like or DataFrame, optional
        A few rows (NaN allowed); stored with the model and used to infer the output schema.
    method : {"predict", "transform", "score_samples", "predict_proba"}, optional
        What ``predict`` of the pyfunc model calls; default :func:`default_method`.
    metadata : dict, optional
        Stored in the MLmodel file.
    max_rows : int or None, default=100_000
        Most rows one request may hold; larger requests are refused with a 400 that says so
        (imputation costs ``n_eval_samples`` decoder passes per row). None: no limit.
    """
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as staging:
        arguments = _pyfunc_arguments(estimator, staging, input_example, method, metadata, max_rows)
        mlflow.pyfunc.save_model(path=str(path), **arguments)


def log_model(
    estimator: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    method: str | None = None,
    registered_model_name: str | None = None,
    metadata: dict | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
):
    """Log a fitted estimator to the active MLflow run (one is started if none is active).

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
    name : str, default="model"
        Name of the logged model in the run.
    input_example, method, metadata, max_rows
        As in :func:`save_model`.
    registered_model_name : str, optional
        Also register the model under this name (a new version).

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_info.model_uri`` loads it back.

    Examples
    --------
    >>> import mlflow  # doctest: +SKIP
    >>> from impute_dgm.integrations.mlflow import log_model, register_model
    >>> with mlflow.start_run():  # doctest: +SKIP
    ...     info = log_model(imputer, "imputer", input_example=X[:5])
    >>> register_model(info.model_uri, "breast-cancer-imputer", alias="champion")  # doctest: +SKIP
    """
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as staging:
        arguments = _pyfunc_arguments(estimator, staging, input_example, method, metadata, max_rows)
        return mlflow.pyfunc.log_model(
            name=name, registered_model_name=registered_model_name, **arguments
        )


def register_model(model_uri: str, name: str, alias: str | None = "champion"):
    """Register ``model_uri`` as a new version of ``name`` and point ``alias`` at it.

    Needs a tracking URI with a model registry (e.g. ``sqlite:///mlflow.db``, MLflow 3's
    default). Load it back with ``mlflow.pyfunc.load_model(f"models:/{name}@{alias}")``.

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
    """
    mlflow = _mlflow()
    version = mlflow.register_model(model_uri, name)
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version.version)
    return version


def load_estimator(model_uri: str) -> Any:
    """The fitted estimator itself (not the pyfunc wrapper) from any MLflow model URI."""
    mlflow = _mlflow()
    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    return _load_directory(Path(local) / "data" / "estimator")
