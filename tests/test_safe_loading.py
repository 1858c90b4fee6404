"""Loading a model file never runs code from it; bad files get clear errors."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from impute_dgm import VAEImputer
from impute_dgm.persistence import (
    ESTIMATOR_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    load_estimator,
    save_estimator,
)
from impute_dgm.safe_unpickling import UnsafeModelFileError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X = np.random.default_rng(0).normal(size=(40, 3))
    X[::4, 1] = np.nan
    imputer = VAEImputer(n_epochs=2, hidden_dims=(8,), n_eval_samples=10, random_state=0).fit(X)
    directory = tmp_path_factory.mktemp("model")
    save_estimator(imputer, directory)
    return directory, imputer, X


def copy_of(saved, tmp_path):
    directory = tmp_path / "copy"
    directory.mkdir()
    for name in (ESTIMATOR_FILE, WEIGHTS_FILE, MANIFEST_FILE):
        (directory / name).write_bytes((saved[0] / name).read_bytes())
    return directory


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Evaluates:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def test_manifest_records_format_and_versions(saved):
    manifest = json.loads((saved[0] / MANIFEST_FILE).read_text())
    assert manifest["format"] == FORMAT_VERSION
    assert {"impute_dgm", "torch", "scikit-learn", "numpy", "pandas", "python"} <= set(
        manifest["versions"]
    )
    loaded = load_estimator(saved[0])
    np.testing.assert_array_equal(loaded.transform(saved[2]), saved[1].transform(saved[2]))


@pytest.mark.parametrize("payload", ["shell", "eval", "memmap"])
def test_a_crafted_malicious_file_does_not_execute(saved, tmp_path, payload):
    directory = copy_of(saved, tmp_path)
    marker = tmp_path / "pwned"
    evil = {
        "shell": RunsAShellCommand(marker),
        "eval": Evaluates(),
        # numpy.memmap would create (and could overwrite) a file of the attacker's choosing.
        "memmap": np.memmap(tmp_path / "scratch.bin", dtype="uint8", mode="w+", shape=(4,)),
    }[payload]
    # The harmful object hidden inside an otherwise normal estimator's state.
    (directory / ESTIMATOR_FILE).write_bytes(pickle.dumps({"estimator": saved[1], "x": evil}))
    with pytest.raises(UnsafeModelFileError, match="does not load"):
        load_estimator(directory)
    assert not marker.exists()


def test_newer_format_missing_manifest_and_corruption_are_named(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    (directory / MANIFEST_FILE).write_text(json.dumps({**manifest, "format": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match="upgrade"):
        load_estimator(directory)
    (directory / MANIFEST_FILE).unlink()
    with pytest.raises(ValueError, match="no manifest.json"):
        load_estimator(directory)
    (directory / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        load_estimator(directory)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    data = (saved[0] / ESTIMATOR_FILE).read_bytes()
    (directory / ESTIMATOR_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupted"):
        load_estimator(directory)
    (directory / ESTIMATOR_FILE).write_bytes(data)
    (directory / WEIGHTS_FILE).write_bytes(b"not a torch archive")
    with pytest.raises(ValueError, match="corrupted"):
        load_estimator(directory)
