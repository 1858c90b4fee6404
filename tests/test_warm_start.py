"""warm_start=True: a second fit continues from the fitted weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impute_dgm import FlowDensityEstimator, VAEClassifier, VAEImputer


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 1)) @ rng.normal(size=(1, 4)) + 0.2 * rng.normal(size=(200, 4))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[0] = 0.0
    return X


def test_imputer_continues_where_it_stopped(table):
    settings = {"hidden_dims": (16,), "n_epochs": 15, "random_state": 0}
    cold = VAEImputer(**settings).fit(table)
    first_losses = list(cold.history_.train_loss)
    weights = {k: v.clone() for k, v in cold.model_.state_dict().items()}
    schema = cold.schema_
    cold.set_params(warm_start=True, n_epochs=5).fit(table)
    assert cold.schema_ is schema and cold.n_epochs_ == 5
    # The second call starts from the trained weights, not from a fresh initialisation.
    assert cold.history_.train_loss[0] < first_losses[1]
    assert (
        abs(cold.history_.train_loss[0] - first_losses[-1])
        < abs(first_losses[0] - first_losses[-1]) / 4
    )
    assert any(not np.array_equal(weights[k], v) for k, v in cold.model_.state_dict().items())
    # warm_start=False starts over: the same first epoch as the first fit.
    again = cold.set_params(warm_start=False, n_epochs=15).fit(table)
    assert again.history_.train_loss == first_losses


def test_warm_start_keeps_the_columns_it_was_fitted_on(table):
    frame = pd.DataFrame(table, columns=list("abcd"))
    imputer = VAEImputer(hidden_dims=(8,), n_epochs=2, warm_start=True, random_state=0)
    imputer.fit(frame)
    with pytest.raises(ValueError, match="feature names|columns"):
        imputer.fit(frame.rename(columns={"a": "z"}))


def test_flow_continues_where_it_stopped():
    X = np.random.default_rng(1).normal(size=(300, 2)) * [1.0, 3.0]
    flow = FlowDensityEstimator(
        n_layers=2, hidden_dims=(16,), n_epochs=10, early_stopping=False, random_state=0
    ).fit(X)
    losses = list(flow.history_.train_loss)
    scaler = flow.scaler_
    flow.set_params(warm_start=True, n_epochs=3).fit(X)
    assert flow.scaler_ is scaler and flow.n_epochs_ == 3
    assert flow.history_.train_loss[0] < losses[1]


def test_classifier_refuses_other_classes_on_warm_start():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 0] > 0, 1, 0)
    model = VAEClassifier(hidden_dims=(8,), n_epochs=2, warm_start=True, random_state=0)
    model.fit(X, y)
    with pytest.raises(ValueError, match="warm_start=True continues a model of classes"):
        model.fit(X, y + 5)
