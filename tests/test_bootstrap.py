"""BootstrapImputer: imputers fitted on bootstrap resamples, drawn from in turn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impute_dgm import BootstrapImputer, VAEImputer

SMALL = {"hidden_dims": (16,), "latent_dim": 2, "n_epochs": 10, "n_eval_samples": 50}


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(150, 1))
    X = latent @ rng.normal(size=(1, 4)) + 0.3 * rng.normal(size=(150, 4))
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < 0.25] = np.nan
    X_missing[0] = X[0]
    return X, X_missing


@pytest.fixture(scope="module")
def fitted(table):
    return BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=3, random_state=0).fit(table[1])


def test_each_fit_sees_its_own_resample(fitted, table):
    assert len(fitted.estimators_) == 3
    seeds = {member.random_state for member in fitted.estimators_}
    assert len(seeds) == 3  # every fit has its own seed
    # Different resamples and seeds give different models: their imputations differ.
    first, second = (member.transform(table[1]) for member in fitted.estimators_[:2])
    missing = np.isnan(table[1])
    assert np.abs(first[missing] - second[missing]).mean() > 1e-3


def test_draws_come_from_every_fit_in_turn(fitted, table):
    X_missing = table[1]
    draws = fitted.sample_imputations(X_missing, n_imputations=6, random_state=1)
    observed = ~np.isnan(X_missing)
    for draw in draws:
        assert np.array_equal(draw[observed], X_missing[observed])
        assert np.isfinite(draw).all()
    # Draw i comes from fit i % 3, seeded from random_state: the same call repeats them.
    again = fitted.sample_imputations(X_missing, n_imputations=6, random_state=1)
    assert all(np.array_equal(a, b) for a, b in zip(draws, again, strict=True))
    missing = ~observed
    assert len({round(float(draw[missing].sum()), 6) for draw in draws}) == 6


def test_transform_is_the_mean_of_the_fits(fitted, table):
    X_missing = table[1]
    combined = fitted.transform(X_missing)
    members = np.mean([member.transform(X_missing) for member in fitted.estimators_], axis=0)
    observed = ~np.isnan(X_missing)
    assert np.array_equal(combined[observed], X_missing[observed])
    np.testing.assert_allclose(combined[~observed], members[~observed])


def test_mixed_tables_keep_their_dtypes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    frame = pd.DataFrame(
        {"x": x, "y": 2 * x + 0.1 * rng.normal(size=120),
         "kind": pd.Categorical(np.where(x > 0, "high", "low"))}
    )  # fmt: skip
    frame.loc[::5, "x"] = np.nan
    frame.loc[1::7, "kind"] = np.nan
    imputer = BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=2, random_state=0).fit(frame)
    filled = imputer.transform(frame)
    pd.testing.assert_series_equal(filled.dtypes, frame.dtypes)
    assert not filled.isna().any().any()
    kept = frame.notna()
    assert (filled[kept["kind"]]["kind"] == frame[kept["kind"]]["kind"]).all()
    draws = imputer.sample_imputations(frame, n_imputations=2, random_state=0)
    assert all(list(draw.dtypes) == list(frame.dtypes) for draw in draws)


def test_same_random_state_same_fits(table):
    a = BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=2, random_state=5).fit(table[1])
    b = BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=2, random_state=5).fit(table[1])
    np.testing.assert_array_equal(a.transform(table[1]), b.transform(table[1]))


def test_bad_input_gets_the_imputers_message(table):
    X = table[1].copy()
    X[:, 2] = np.nan
    with pytest.raises(ValueError, match="no observed value|entirely missing|all missing"):
        BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=2).fit(X)


def test_round_trip_through_save_and_load(fitted, table, tmp_path):
    from impute_dgm.persistence import load_estimator, save_estimator

    save_estimator(fitted, tmp_path / "model")
    loaded = load_estimator(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(table[1]), fitted.transform(table[1]))
    a = loaded.sample_imputations(table[1], n_imputations=3, random_state=0)
    b = fitted.sample_imputations(table[1], n_imputations=3, random_state=0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_members_returning_dataframes_for_an_array(table):
    X_missing = table[1]
    template = VAEImputer(**SMALL).set_output(transform="pandas")
    imputer = BootstrapImputer(template, n_bootstrap=2, random_state=0).fit(X_missing)
    combined = imputer.transform(X_missing)
    members = np.mean([m.transform(X_missing).to_numpy() for m in imputer.estimators_], axis=0)
    observed = ~np.isnan(X_missing)
    assert np.array_equal(combined.to_numpy()[observed], X_missing[observed])
    np.testing.assert_allclose(combined.to_numpy()[~observed], members[~observed])


def _flat_weights(estimator) -> np.ndarray:
    return np.concatenate([p.detach().cpu().numpy().ravel() for p in estimator.model_.parameters()])


def test_refit_epochs_continues_one_full_fit_on_each_resample(table):
    X_missing = table[1]
    warm = BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=2, refit_epochs=3, random_state=0).fit(
        X_missing
    )
    full = _flat_weights(warm.full_estimator_)
    members = [_flat_weights(member) for member in warm.estimators_]
    # Every member trained on (its weights moved, each its own way) ...
    assert all(np.abs(w - full).max() > 0 for w in members)
    assert np.abs(members[0] - members[1]).max() > 0
    assert all(member.n_epochs_ == 3 for member in warm.estimators_)
    # ... starting from the full fit, so it stays far closer to it than a fit from scratch.
    cold = BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=1, random_state=1).fit(X_missing)
    from_scratch = np.linalg.norm(_flat_weights(cold.estimators_[0]) - full)
    assert max(np.linalg.norm(w - full) for w in members) < 0.5 * from_scratch
    # The members keep the full fit's schema and scaling.
    for member in warm.estimators_:
        np.testing.assert_array_equal(
            member.schema_.scaler_.mean_, warm.full_estimator_.schema_.scaler_.mean_
        )
    draws = warm.sample_imputations(X_missing, n_imputations=4, random_state=0)
    observed = ~np.isnan(X_missing)
    assert all(np.array_equal(d[observed], X_missing[observed]) for d in draws)
    again = BootstrapImputer(
        VAEImputer(**SMALL), n_bootstrap=2, refit_epochs=3, random_state=0
    ).fit(X_missing)
    np.testing.assert_array_equal(again.transform(X_missing), warm.transform(X_missing))


def test_refit_epochs_needs_an_estimator_that_can_continue(table):
    from sklearn.impute import SimpleImputer

    class DrawingImputer(SimpleImputer):
        def sample_imputations(self, X, n_imputations=1, random_state=None):
            return [self.transform(X)] * n_imputations

    with pytest.raises(ValueError, match="warm_start"):
        BootstrapImputer(DrawingImputer(), refit_epochs=5).fit(table[1])


def test_refit_epochs_reports_bad_input_with_the_imputers_message(table):
    X = table[1].copy()
    X[:, 2] = np.nan
    with pytest.raises(ValueError, match="no observed value|entirely missing|all missing"):
        BootstrapImputer(VAEImputer(**SMALL), n_bootstrap=2, refit_epochs=2).fit(X)
