"""MLflow tracking against a real MLflow (sqlite store in a temporary folder, no mocks)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow", reason="MLflow is the optional [mlflow] extra")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from statistical import check, seed  # noqa: E402

from impute_dgm import FlowDensityEstimator, VAEEmbedder, VAEImputer  # noqa: E402
from impute_dgm.integrations.mlflow import MlflowCallback, track_fit  # noqa: E402


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # artifacts go under the working folder
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield mlflow.MlflowClient()
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def metric_history(client, run_id, key):
    return sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)


def test_track_fit_logs_params_epochs_score_and_curve(tracking, small_table):
    imputer = VAEImputer(
        hidden_dims=(8,),
        latent_dim=2,
        n_epochs=4,
        early_stopping=False,
        n_eval_samples=20,
        random_state=0,
    )
    run_id = track_fit(imputer, small_table, run_name="imputer")
    run = tracking.get_run(run_id)
    assert run.data.params["latent_dim"] == "2"
    assert run.data.params["hidden_dims"] == "(8,)"
    history = metric_history(tracking, run_id, "train_loss")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert np.allclose([m.value for m in history], imputer.history_.train_loss)
    assert run.data.metrics["score"] == pytest.approx(imputer.score(small_table))
    assert run.data.metrics["fit_seconds"] > 0
    artifacts = [a.path for a in tracking.list_artifacts(run_id)]
    assert "training_curve.png" in artifacts
    assert imputer.callbacks is None  # the estimator's own parameter is left as it was


def test_validation_losses_and_nested_runs(tracking, small_table):
    flow = FlowDensityEstimator(n_layers=2, hidden_dims=(8,), n_epochs=3, random_state=0)
    with mlflow.start_run(run_name="parent") as parent:
        child_id = track_fit(flow, np.nan_to_num(small_table, nan=3.0))
    child = tracking.get_run(child_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert len(metric_history(tracking, child_id, "validation_loss")) == flow.n_epochs_


@pytest.mark.statistical
def test_pipeline_steps_are_tracked_with_their_names(tracking):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = X[:200].copy()
    y = y[:200]
    X[np.random.default_rng(seed(0)).random(X.shape) < 0.2] = np.nan
    X[0] = load_breast_cancer().data[0]
    pipeline = make_pipeline(
        VAEImputer(
            hidden_dims=(8,), latent_dim=2, n_epochs=2, n_eval_samples=10, random_state=seed(0)
        ),
        StandardScaler(),
        LogisticRegression(max_iter=500),
    )
    run_id = track_fit(pipeline, X, y)
    run = tracking.get_run(run_id)
    assert run.data.params["vaeimputer__latent_dim"] == "2"
    assert len(metric_history(tracking, run_id, "vaeimputer.train_loss")) == 2
    assert run.data.metrics["score"] <= 1.0
    check("logged training accuracy", run.data.metrics["score"], ">", 0.5)


def test_sample_grid_for_images(tracking):
    from sklearn.datasets import load_digits

    embedder = VAEEmbedder(
        likelihood="categorical",
        latent_dim=2,
        n_epochs=1,
        hidden_dims=(16,),
        n_eval_samples=5,
        random_state=0,
    )
    run_id = track_fit(embedder, load_digits().data[:200], image_shape=(8, 8))
    assert "samples.png" in [a.path for a in tracking.list_artifacts(run_id)]


def test_callback_in_an_estimator_clones_and_pickles(tracking, small_table):
    imputer = VAEImputer(
        hidden_dims=(8,),
        latent_dim=2,
        n_epochs=2,
        callbacks=[MlflowCallback(prefix="m.")],
        random_state=0,
    )
    with mlflow.start_run() as run:
        imputer.fit(small_table)
    assert len(metric_history(tracking, run.info.run_id, "m.train_loss")) == 2
    assert repr(clone(imputer).callbacks[0]) == "MlflowCallback(prefix='m.', run_id=None)"
    restored = pickle.loads(pickle.dumps(imputer))
    assert np.array_equal(restored.transform(small_table), imputer.transform(small_table))


def test_the_core_does_not_import_mlflow():
    code = (
        "import sys, impute_dgm, impute_dgm.flows, impute_dgm.plotting; "
        "assert 'mlflow' not in sys.modules, 'mlflow imported by the core'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
