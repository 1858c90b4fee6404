"""MLflow models against a real MLflow: pyfunc round trips, the registry, serving, Spark.

Everything runs on a sqlite tracking store in a temporary folder; the server and the registry
loads run in fresh processes, as a user would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

mlflow = pytest.importorskip("mlflow", reason="MLflow is the optional [mlflow] extra")

from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sparkutil import spark_session  # noqa: E402

from impute_dgm import FlowDensityEstimator, VAEEmbedder, VAEImputer  # noqa: E402
from impute_dgm.integrations.mlflow import (  # noqa: E402
    load_estimator,
    log_model,
    register_model,
    save_model,
)

MODEL_NAME = "breast-cancer-imputer"
FAST = dict(hidden_dims=(32,), latent_dim=4, n_epochs=20, n_eval_samples=50, random_state=0)


def breast_cancer_with_holes(rate=0.3, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    X = data.data
    missing = np.random.default_rng(seed).random(X.shape) < rate
    missing[0] = False
    return X.mask(missing), data.target.to_numpy()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sqlite tracking store (and its artifacts) in a temporary folder, as an env for
    subprocesses too."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = os.getcwd()
    os.chdir(folder)  # the default artifact root is under the working folder
    mlflow.set_tracking_uri(uri)
    # Subprocesses compute with as many threads as this process: float64 products summed by
    # another number of threads differ in the last bits, and the round trips compare exactly.
    threads = str(torch.get_num_threads())
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": threads}
    yield {"uri": uri, "folder": folder, "env": env}
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    os.chdir(previous)


@pytest.fixture(scope="module")
def champion(store):
    """A VAEImputer on breast cancer (30% MCAR), logged, registered, aliased ``champion``."""
    X, _ = breast_cancer_with_holes()
    imputer = VAEImputer(**FAST).fit(X)
    with mlflow.start_run(run_name="champion"):
        info = log_model(imputer, "imputer", input_example=X.iloc[:5])
    version = register_model(info.model_uri, MODEL_NAME, alias="champion")
    return {"imputer": imputer, "X": X, "version": version, "model_uri": info.model_uri}


def _digits_with_holes():
    data = load_digits()
    X = pd.DataFrame(data.data[:400], columns=data.feature_names)
    X = X.mask(np.random.default_rng(1).random(X.shape) < 0.2)
    X.iloc[0] = data.data[0]
    return X, data.target[:400]


# estimator factory, what pyfunc predict must equal, and the expected output columns
CASES = {
    "imputer": (lambda: VAEImputer(**FAST), lambda e, X: e.transform(X), "features"),
    "embedder": (
        lambda: VAEEmbedder(likelihood="categorical", prior="vamp", n_components=5, **FAST),
        lambda e, X: e.transform(X),
        ["vaeembedder0", "vaeembedder1", "vaeembedder2", "vaeembedder3"],
    ),
    "flow": (
        lambda: FlowDensityEstimator(n_layers=2, hidden_dims=(16,), n_epochs=3, random_state=0),
        lambda e, X: e.score_samples(X),
        ["log_density"],
    ),
    "pipeline": (
        lambda: make_pipeline(VAEImputer(**FAST), StandardScaler(), LogisticRegression()),
        lambda e, X: e.predict(X),
        None,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_logged_pyfunc_predicts_what_the_estimator_does(case, store):
    make, expected, columns = CASES[case]
    X, y = _digits_with_holes()
    if case == "flow":
        X = X.fillna(0.0)  # densities of complete rows
    estimator = make().fit(X, y)
    with mlflow.start_run(run_name=case):
        info = log_model(estimator, case, input_example=X.iloc[:3])
    model = mlflow.pyfunc.load_model(info.model_uri)
    # The signature: one double column per feature, so NaN (JSON null) is a valid value.
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == list(X.columns)
    assert {str(t) for t in schema.input_types()} == {"DataType.double"}
    predicted = model.predict(X)
    reference = expected(estimator, X)
    if columns is None:
        assert np.array_equal(np.asarray(predicted), reference)
    else:
        assert isinstance(predicted, pd.DataFrame)
        assert list(predicted.columns) == (list(X.columns) if columns == "features" else columns)
        assert np.array_equal(predicted.to_numpy(), np.asarray(reference).reshape(len(X), -1))
    if case == "imputer":  # observed values untouched, nothing missing
        observed = X.notna().to_numpy()
        assert np.array_equal(predicted.to_numpy()[observed], X.to_numpy()[observed])
        assert np.isfinite(predicted.to_numpy()).all()
    # The estimator itself comes back too, with identical outputs.
    again = load_estimator(info.model_uri)
    assert np.array_equal(np.asarray(expected(again, X)), np.asarray(reference))


def transform_with(imputer, X, **settings) -> np.ndarray:
    """``imputer.transform(X)`` under other evaluation settings, the imputer left as it was."""
    saved = {name: getattr(imputer, name) for name in settings}
    try:
        return np.asarray(imputer.set_params(**settings).transform(X))
    finally:
        imputer.set_params(**saved)


def test_inference_params_set_the_evaluation_for_one_call(champion):
    imputer, X = champion["imputer"], champion["X"].iloc[:30]
    model = mlflow.pyfunc.load_model(champion["model_uri"])
    params = model.metadata.get_params_schema()
    assert {p.name: p.default for p in params.params} == {
        "n_eval_samples": 50,
        "eval_dtype": "auto",
    }
    saved = np.asarray(imputer.transform(X))
    fast = model.predict(X, params={"n_eval_samples": 5, "eval_dtype": "float32"}).to_numpy()
    expected = transform_with(imputer, X, n_eval_samples=5, eval_dtype="float32")
    assert np.array_equal(fast, expected) and not np.array_equal(fast, saved)
    observed = X.notna().to_numpy()
    assert np.array_equal(fast[observed], X.to_numpy()[observed])
    # The loaded model is back to its saved settings after the call.
    assert np.array_equal(model.predict(X).to_numpy(), saved)
    with pytest.raises(mlflow.exceptions.MlflowException, match="n_eval_samples"):
        model.predict(X, params={"n_eval_samples": -3})
    with pytest.raises(mlflow.exceptions.MlflowException, match="eval_dtype"):
        model.predict(X, params={"eval_dtype": "float16"})


def test_inference_params_reach_a_pipeline_step_and_are_absent_where_none_applies(champion):
    from impute_dgm.integrations.mlflow_models import EstimatorPyfunc

    imputer, X = champion["imputer"], champion["X"].iloc[:10]
    pipeline = EstimatorPyfunc(make_pipeline(imputer), "transform")
    assert pipeline.parameter_keys == {
        "n_eval_samples": ["vaeimputer__n_eval_samples"],
        "eval_dtype": ["vaeimputer__eval_dtype"],
    }
    expected = transform_with(imputer, X, n_eval_samples=3)
    predicted = pipeline.predict(X, params={"n_eval_samples": 3})
    assert np.array_equal(np.asarray(predicted), np.asarray(expected))
    assert imputer.n_eval_samples == 50
    scaler = EstimatorPyfunc(StandardScaler().fit(X.fillna(0.0)), "transform")
    assert scaler.parameter_keys == {} and scaler.defaults == {}
    with pytest.raises(mlflow.exceptions.MlflowException, match="this model takes: none"):
        scaler.predict(X.fillna(0.0), params={"n_eval_samples": 3})


def test_a_model_fitted_verbose_predicts_without_progress_bars(tmp_path, capfd):
    X, _ = breast_cancer_with_holes()
    imputer = VAEImputer(**{**FAST, "n_epochs": 1, "verbose": 1}).fit(X.iloc[:100])
    save_model(imputer, tmp_path / "model")
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    capfd.readouterr()
    model.predict(X.iloc[:200])  # several evaluation chunks
    assert "evaluating" not in capfd.readouterr().err
    assert load_estimator(str(tmp_path / "model")).verbose == 1  # the estimator keeps it


def test_save_model_for_an_array_fitted_estimator_names_columns_x0(tmp_path):
    X, _ = _digits_with_holes()
    flow = FlowDensityEstimator(n_layers=2, hidden_dims=(8,), n_epochs=1, random_state=0)
    flow.fit(X.fillna(0.0).to_numpy())
    save_model(flow, tmp_path / "flow")
    model = mlflow.pyfunc.load_model(str(tmp_path / "flow"))
    frame = pd.DataFrame(X.fillna(0.0).to_numpy(), columns=[f"x{i}" for i in range(64)])
    assert np.array_equal(
        model.predict(frame)["log_density"].to_numpy(), flow.score_samples(frame.to_numpy())
    )
    with pytest.raises(ValueError, match="has no predict"):
        save_model(flow, tmp_path / "bad", method="predict")


def test_registry_alias_loads_in_a_fresh_process(store, champion, tmp_path):
    X = champion["X"]
    X.iloc[:50].to_csv(tmp_path / "input.csv", index=False)
    script = (
        "import mlflow, pandas as pd, sys\n"
        f"model = mlflow.pyfunc.load_model('models:/{MODEL_NAME}@champion')\n"
        f"frame = pd.read_csv(r'{tmp_path / 'input.csv'}')\n"
        f"model.predict(frame).to_csv(r'{tmp_path / 'output.csv'}', index=False)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, env=store["env"], cwd=store["folder"]
    )
    served = pd.read_csv(tmp_path / "output.csv")
    frame = pd.read_csv(tmp_path / "input.csv")  # the same bytes the fresh process read
    local = champion["imputer"].transform(frame)
    assert list(served.columns) == list(X.columns)
    np.testing.assert_allclose(served.to_numpy(), np.asarray(local), rtol=1e-15, atol=0)
    client = mlflow.MlflowClient()
    alias = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert alias.version == champion["version"].version


def _dataframe_split(frame: pd.DataFrame) -> bytes:
    # json.dumps writes floats exactly (repr) and NaN as null once converted to None.
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in frame.to_numpy()]
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": rows}}).encode()


def test_mlflow_models_serve_answers_with_the_imputed_table(store, champion, model_server):
    with model_server(f"models:/{MODEL_NAME}@champion", store["env"], store["folder"]) as post:
        X = champion["X"].iloc[:20]
        assert X.isna().any().any()
        status, text = post(_dataframe_split(X))
        assert status == 200, text
        served = pd.DataFrame(json.loads(text)["predictions"])
        assert list(served.columns) == list(X.columns)
        local = champion["imputer"].transform(X)
        assert np.array_equal(served.to_numpy(), np.asarray(local))
        observed = X.notna().to_numpy()
        assert np.array_equal(served.to_numpy()[observed], X.to_numpy()[observed])

        # Malformed requests: a 4xx with a message that says what is wrong; the server lives.
        status, text = post(b"{not json")
        assert 400 <= status < 500 and "JSON" in text
        wrong_columns = json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1.0]]}})
        status, text = post(wrong_columns.encode())
        assert 400 <= status < 500 and "mean radius" in text
        infinite = X.iloc[:1].copy()
        infinite.iloc[0, 0] = np.inf
        body = _dataframe_split(infinite).replace(b"Infinity", b"1e999")
        status, text = post(body)
        assert 400 <= status < 500 and "infinity" in text.lower(), text

        status, text = post(_dataframe_split(X.iloc[:1]))
        assert status == 200, text
        single = pd.DataFrame(json.loads(text)["predictions"]).to_numpy()
        assert np.array_equal(single, np.asarray(champion["imputer"].transform(X.iloc[:1])))

        # Per-request evaluation settings (inference params), then the saved ones again.
        body = json.loads(_dataframe_split(X))
        body["params"] = {"n_eval_samples": 5, "eval_dtype": "float32"}
        status, text = post(json.dumps(body).encode())
        assert status == 200, text
        fast = pd.DataFrame(json.loads(text)["predictions"]).to_numpy()
        reference = transform_with(champion["imputer"], X, n_eval_samples=5, eval_dtype="float32")
        assert np.array_equal(fast, reference)
        assert not np.array_equal(fast, served.to_numpy())
        status, text = post(_dataframe_split(X))
        assert np.array_equal(pd.DataFrame(json.loads(text)["predictions"]).to_numpy(), local)
        body["params"] = {"n_eval_samples": 0}
        status, text = post(json.dumps(body).encode())
        assert 400 <= status < 500 and "n_eval_samples" in text, text


def _mixed_table_with_holes():
    """A float, a nullable integer, a flag and two category columns, 20% missing."""
    rng = np.random.default_rng(0)
    n = 200
    z = rng.normal(size=n)
    table = pd.DataFrame(
        {
            "x": z + 0.1 * rng.normal(size=n),
            "kids": pd.array(np.clip(np.round(2 + z), 0, None).astype(int), dtype="Int64"),
            "flag": pd.array(z > 0, dtype="boolean"),
            "grade": pd.Categorical(np.where(z > 0.5, 3, np.where(z > -0.5, 2, 1))),
            "city": pd.Categorical(np.where(z > 0, "Paris", "Oslo")),
        }
    )
    holes = rng.random(table.shape) < 0.2
    holes[0] = False
    return table.mask(holes)


def _records_json(frame: pd.DataFrame) -> bytes:
    # Exact floats (repr), numbers for integers, true/false, categories as their values,
    # null where missing: what a client of the REST API sends.
    def cell(value):
        if pd.isna(value):
            return None
        if isinstance(value, (np.bool_, bool)):
            return bool(value)
        if isinstance(value, (np.integer, int)):
            return int(value)
        return float(value) if isinstance(value, (np.floating, float)) else value

    rows = [[cell(v) for v in row] for row in frame.astype(object).to_numpy()]
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": rows}}).encode()


def test_mixed_table_model_keeps_its_dtypes_through_pyfunc_and_serving(
    store, model_server, tmp_path
):
    X = _mixed_table_with_holes()
    imputer = VAEImputer(**{**FAST, "n_epochs": 5}).fit(X)
    path = tmp_path / "mixed"
    save_model(imputer, path, input_example=X.iloc[:5])
    model = mlflow.pyfunc.load_model(str(path))
    types = dict(
        zip(
            model.metadata.get_input_schema().input_names(),
            [str(t) for t in model.metadata.get_input_schema().input_types()],
            strict=True,
        )
    )
    # Floats are double (NaN allowed); the other kinds accept what JSON or pandas gives.
    assert types["x"] == "DataType.double"
    assert all("any" in types[name].lower() for name in ("kids", "flag", "grade", "city"))

    local = imputer.transform(X)
    predicted = model.predict(X)
    pd.testing.assert_frame_equal(predicted, local)

    with model_server(str(path), store["env"], store["folder"]) as post:
        status, text = post(_records_json(X.iloc[:30]))
        assert status == 200, text
        served = pd.DataFrame(json.loads(text)["predictions"])
    expected = local.iloc[:30].reset_index(drop=True)
    assert list(served.columns) == list(X.columns)
    observed = X["x"].iloc[:30].notna().to_numpy()
    served_x, expected_x = served["x"].to_numpy(float), expected["x"].to_numpy(float)
    np.testing.assert_array_equal(served_x[observed], expected_x[observed])
    # Imputed cells: the server is another process (its threads, its batch of rows), which may
    # round the last bit differently (seen: 1 ulp).
    np.testing.assert_allclose(served_x, expected_x, rtol=1e-9)
    for name in ("kids", "flag", "grade", "city"):
        assert served[name].tolist() == expected[name].astype(object).tolist(), name
    # A level the model never saw is named, as a client error.
    unseen = X.iloc[:2].astype({"city": object})
    unseen.loc[unseen.index[0], "city"] = "Rome"
    with pytest.raises(mlflow.exceptions.MlflowException, match="'city' has level 'Rome'"):
        model.predict(unseen)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # pyspark on pandas 3
def test_spark_udf_imputes_like_the_process(store, champion):
    spark = spark_session()
    try:
        from pyspark.sql.functions import col, struct

        X = champion["X"].iloc[:120]
        udf = mlflow.pyfunc.spark_udf(spark, f"models:/{MODEL_NAME}@champion", env_manager="local")
        columns = [col(f"`{name}`") for name in X.columns]
        # Keep the row order: a row number travels with each row through the partitions.
        frame = spark.createDataFrame(X.assign(row=np.arange(len(X)))).repartition(2)
        result = (
            frame.withColumn("imputed", udf(struct(*columns)))
            .select("row", "imputed.*")
            .toPandas()
            .sort_values("row")
        )
        imputed = result[list(X.columns)].to_numpy()
        local = np.asarray(champion["imputer"].transform(X))
        observed = X.notna().to_numpy()
        assert np.array_equal(imputed[observed], X.to_numpy()[observed])
        # Spark hands the model batches of other shapes than the in-process call; in float64
        # that changes only the last bits of the matrix products.
        np.testing.assert_allclose(imputed, local, rtol=1e-9, atol=1e-12)

        # Inference params reach the executors' models.
        fast = mlflow.pyfunc.spark_udf(
            spark, f"models:/{MODEL_NAME}@champion", env_manager="local",
            params={"n_eval_samples": 5, "eval_dtype": "float32"},
        )  # fmt: skip
        result = (
            frame.withColumn("imputed", fast(struct(*columns)))
            .select("row", "imputed.*")
            .toPandas()
            .sort_values("row")
        )
        expected = transform_with(champion["imputer"], X, n_eval_samples=5, eval_dtype="float32")
        # float32 products of other batch shapes: agreement to float32 rounding.
        np.testing.assert_allclose(
            result[list(X.columns)].to_numpy(), expected, rtol=1e-4, atol=1e-4
        )
        assert np.abs(expected - local).max() > 1e-3  # and they are another setting's values
    finally:
        spark.stop()


def test_local_model_server_reports_a_server_that_cannot_start(tmp_path):
    from impute_dgm.integrations.mlflow_serving import local_model_server

    with pytest.raises(RuntimeError, match="exited"):
        with local_model_server(str(tmp_path / "no-model-here"), log_path=tmp_path / "log"):
            pass


def test_serving_process_reports_the_output_of_a_server_that_exits_and_leaves_no_log(
    tmp_path, monkeypatch
):
    import tempfile

    from impute_dgm.integrations.mlflow_serving import free_local_port, serving_process

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    command = [sys.executable, "-c", "print('cannot bind the port')"]
    with pytest.raises(RuntimeError, match="exited:\n.*cannot bind the port"):
        with serving_process(command, free_local_port()):
            pass
    assert list(tmp_path.iterdir()) == []  # its temporary log went with it
