"""save_estimator / load_estimator: weights apart from the pickle, identical outputs after load."""

import pickle
import pickletools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from impute_dgm import FlowDensityEstimator, VAEEmbedder, VAEImputer
from impute_dgm.persistence import ESTIMATOR_FILE, WEIGHTS_FILE, load_estimator, save_estimator

FAST = dict(hidden_dims=(16,), latent_dim=2, n_epochs=3, n_eval_samples=20, random_state=0)


def digits_with_holes():
    data = load_digits()
    X = data.data[:300].copy()
    X[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    X[0] = data.data[0]  # every column keeps an observed value
    return X, data.target[:300]


CASES = {
    "imputer": (lambda: VAEImputer(**FAST), "transform"),
    "embedder_vamp": (
        lambda: VAEEmbedder(prior="vamp", n_components=3, likelihood="categorical", **FAST),
        "transform",
    ),
    "embedder_flow_prior": (lambda: VAEEmbedder(prior="flow", **FAST), "score_samples"),
    "flow": (
        lambda: FlowDensityEstimator(n_layers=2, hidden_dims=(16,), n_epochs=2, random_state=0),
        "score_samples",
    ),
    "pipeline": (
        lambda: make_pipeline(VAEImputer(**FAST), StandardScaler(), LogisticRegression()),
        "predict_proba",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_round_trip_gives_identical_outputs(case, tmp_path):
    make, method = CASES[case]
    X, y = digits_with_holes()
    if case == "flow":
        X = np.nan_to_num(X)  # densities need complete rows
    estimator = make().fit(X, y)
    loaded = load_estimator(save_estimator(estimator, tmp_path))
    assert np.array_equal(getattr(loaded, method)(X), getattr(estimator, method)(X))


def test_weights_file_loads_with_weights_only_and_the_pickle_holds_no_tensor(tmp_path):
    X, _ = digits_with_holes()
    estimator = VAEEmbedder(prior="vamp", n_components=3, **FAST).fit(X)
    save_estimator(estimator, tmp_path)
    weights = torch.load(tmp_path / WEIGHTS_FILE, weights_only=True)
    state = estimator.model_.state_dict()
    stored = [t for t in weights.values() if t.shape in {v.shape for v in state.values()}]
    assert len(stored) >= len(state)
    for key, value in state.items():  # every module weight is among the stored tensors
        assert any(t.shape == value.shape and torch.equal(t, value.cpu()) for t in stored), key
    opcodes = {op.name for op, _, _ in pickletools.genops((tmp_path / ESTIMATOR_FILE).read_bytes())}
    assert "BINPERSID" in opcodes  # tensors are references into weights.pt ...
    with pytest.raises(pickle.UnpicklingError):  # ... which a plain unpickler cannot resolve
        pickle.loads((tmp_path / ESTIMATOR_FILE).read_bytes())
