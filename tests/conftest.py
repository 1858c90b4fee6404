"""Shared data: scikit-learn's breast cancer set with half its entries removed at random."""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from statistical import seed

from impute_dgm import VAEImputer

if os.environ.get("IMPUTE_DGM_TEST_THREADS"):
    # Set by benchmarks/test_spread.py to measure the statistical tests under other thread
    # counts (float reductions split differently, so seeded fits follow other trajectories).
    torch.set_num_threads(int(os.environ["IMPUTE_DGM_TEST_THREADS"]))
elif os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per xdist worker: several workers each using every core only thrash.
    torch.set_num_threads(1)


def remove_completely_at_random(X: np.ndarray, rate: float, random_seed: int) -> np.ndarray:
    """Copy of X with ``rate`` of its entries set to NaN, keeping one value per column."""
    rng = np.random.default_rng(random_seed)
    missing = rng.random(X.shape) < rate
    missing[0] = False  # every column keeps an observed value
    X_missing = X.copy()
    X_missing[missing] = np.nan
    return X_missing


@pytest.fixture(scope="session", autouse=True)
def temporary_files_stay_in_the_run(tmp_path_factory):
    """Point ``TMPDIR`` (this process and its subprocesses) into the run's pytest folder.

    Libraries leave temporary folders behind: torchrun's rendezvous folders in the Spark
    tests, MLflow projects' staging folders, the MLflow notebook's workspace. Under the run's
    folder they go when pytest rotates its old runs instead of piling up in /tmp.
    """
    folder = tmp_path_factory.mktemp("tmp")
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(folder))
    patch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="session")
def fit_once(tmp_path_factory, worker_id):
    """``fit_once(name, make)``: ``make()``, computed by one xdist worker for all of them.

    Each worker builds its own session and module fixtures, and work stealing can split a
    module's tests across workers, so an expensive fitted fixture would be trained twice. The
    first worker to ask trains it and pickles it into the run's shared temporary folder; the
    other waits on the lock and unpickles the same model.
    """

    def get(name: str, make):
        if worker_id == "master":  # not under xdist
            return make()
        path = tmp_path_factory.getbasetemp().parent / f"fit-once-{name}.pickle"
        with FileLock(f"{path}.lock"):
            if path.exists():
                return pickle.loads(path.read_bytes())
            value = make()
            path.write_bytes(pickle.dumps(value))
            return value

    return get


@pytest.fixture(scope="session")
def breast_cancer():
    """(X, X_missing): standardised breast cancer data and a 50% MCAR copy."""
    X = StandardScaler().fit_transform(load_breast_cancer().data)
    return X, remove_completely_at_random(X, 0.5, random_seed=seed(0))


@pytest.fixture(scope="session")
def fitted_imputer(breast_cancer, fit_once):
    """A VAEImputer trained for a few seconds on the 50% MCAR breast cancer data."""
    _, X_missing = breast_cancer
    return fit_once(
        "breast-cancer-imputer",
        lambda: VAEImputer(n_epochs=120, random_state=seed(0)).fit(X_missing),
    )


@pytest.fixture
def small_table():
    """60 rows of 4 correlated columns, with about 20% of the entries missing."""
    rng = np.random.default_rng(seed(1))
    latent = rng.normal(size=(60, 1))
    X = latent @ np.array([[1.0, 2.0, -1.0, 0.5]]) + 0.1 * rng.normal(size=(60, 4)) + 3.0
    return remove_completely_at_random(X, 0.2, random_seed=seed(2))


@pytest.fixture
def model_server(tmp_path):
    """Serve a model with ``mlflow models serve --env-manager local`` on a free local port.

    Used as ``with model_server(uri, env, cwd) as post: status, text = post(json_bytes)``;
    the server is stopped when the block ends.
    """
    from impute_dgm.integrations.mlflow_serving import local_model_server

    @contextlib.contextmanager
    def serve(model_uri: str, env: dict, cwd: Path):
        with local_model_server(
            model_uri, env=env, cwd=cwd, log_path=tmp_path / "serve.log"
        ) as base:

            def post(body: bytes) -> tuple[int, str]:
                request = urllib.request.Request(
                    f"{base}/invocations",
                    data=body,
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        return response.status, response.read().decode()
                except urllib.error.HTTPError as error:
                    return error.code, error.read().decode()

            yield post

    return serve
