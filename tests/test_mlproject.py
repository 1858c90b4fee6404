"""The MLproject's entry points, run with ``mlflow run`` from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow", reason="MLflow is the optional [mlflow] extra")

from sklearn.datasets import load_iris  # noqa: E402

from impute_dgm.missingness import ampute  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project_store(tmp_path_factory):
    """A sqlite store with an experiment whose artifacts live in the temporary folder."""
    folder = tmp_path_factory.mktemp("mlproject")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.create_experiment("mlproject-test", artifact_location=(folder / "artifacts").as_uri())
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {"uri": uri, "folder": folder, "env": env, "client": client}


def mlflow_run(store, entry_point: str, **parameters) -> str:
    command = [
        sys.executable, "-m", "mlflow", "run", "mlproject", "-e", entry_point,
        "--env-manager", "local", "--experiment-name", "mlproject-test",
    ]  # fmt: skip
    for name, value in parameters.items():
        command += ["-P", f"{name}={value}"]
    finished = subprocess.run(
        command, cwd=ROOT, env=store["env"], capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout + finished.stderr


@pytest.fixture(scope="module")
def registered_iris_imputer(project_store) -> str:
    """The train entry point, run once for the tests that use its registered model."""
    mlflow_run(
        project_store, "train", data="iris", n_epochs=5, missing_rate=0.2, model_name="iris-imputer"
    )
    return "models:/iris-imputer@champion"


def test_train_registers_then_impute_fills_a_csv(project_store, registered_iris_imputer, tmp_path):
    client = project_store["client"]
    version = client.get_model_version_by_alias("iris-imputer", "champion")
    run = client.get_run(version.run_id)
    assert run.data.params["data"] == "iris"

    iris = load_iris(as_frame=True).data
    holes = iris.mask(np.isnan(ampute(iris.to_numpy(), 0.3, "mcar", random_state=1)))
    holes.to_csv(tmp_path / "holes.csv", index=False)
    mlflow_run(
        project_store,
        "impute",
        input=tmp_path / "holes.csv",
        output=tmp_path / "filled.csv",
        model_uri=registered_iris_imputer,
    )
    filled = pd.read_csv(tmp_path / "filled.csv")
    assert list(filled.columns) == list(iris.columns)
    assert np.isfinite(filled.to_numpy()).all()
    observed = holes.notna().to_numpy()
    np.testing.assert_allclose(filled.to_numpy()[observed], holes.to_numpy()[observed])

    # The model's inference params, from the entry point's parameters.
    mlflow_run(
        project_store,
        "impute",
        input=tmp_path / "holes.csv",
        output=tmp_path / "fast.csv",
        model_uri=registered_iris_imputer,
        n_eval_samples=5,
        eval_dtype="float32",
    )
    fast = pd.read_csv(tmp_path / "fast.csv").to_numpy()
    mlflow.set_tracking_uri(project_store["uri"])
    try:
        model = mlflow.pyfunc.load_model(registered_iris_imputer)
        expected = model.predict(holes, params={"n_eval_samples": 5, "eval_dtype": "float32"})
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(fast, expected.to_numpy(), rtol=1e-6, atol=1e-6)
    assert np.abs(fast - filled.to_numpy()).max() > 1e-3


def readme_curl_body() -> bytes:
    """The JSON of the README's curl example, read from the README itself."""
    text = (ROOT / "README.md").read_text()
    start = text.index("-d '", text.index("## Track and serve")) + len("-d '")
    return text[start : text.index("'", start)].encode()


def test_readme_serve_and_curl_example(project_store, registered_iris_imputer, model_server):
    """The README's train -> serve -> curl commands, on the model the MLproject registered."""
    with model_server(
        registered_iris_imputer, project_store["env"], project_store["folder"]
    ) as post:
        status, text = post(readme_curl_body())
    assert status == 200, text
    rows = json.loads(text)["predictions"]
    sent = json.loads(readme_curl_body())["dataframe_split"]
    assert len(rows) == len(sent["data"])
    for row, values in zip(rows, sent["data"], strict=True):
        assert list(row) == sent["columns"]
        for column, value in zip(sent["columns"], values, strict=True):
            assert np.isfinite(row[column])
            if value is not None:
                assert row[column] == value  # observed values come back untouched


def test_evaluate_logs_rmse_and_mae_for_every_imputer(project_store):
    mlflow_run(project_store, "evaluate", data="iris", n_epochs=5, mechanism="mar")
    client = project_store["client"]
    experiment = client.get_experiment_by_name("mlproject-test")
    runs = client.search_runs([experiment.experiment_id], filter_string="params.mechanism = 'mar'")
    parent = runs[0]
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    rmse = {run.info.run_name: run.data.metrics["rmse"] for run in children}
    assert set(rmse) == {"VAEImputer", "SimpleImputer(mean)", "KNNImputer", "IterativeImputer"}
    assert all(np.isfinite(value) for value in rmse.values())
    # Iris columns are strongly correlated: a model-based imputer beats the column means.
    assert rmse["IterativeImputer"] < rmse["SimpleImputer(mean)"]
    assert parent.data.metrics["removed_share"] == pytest.approx(0.3, abs=0.05)
