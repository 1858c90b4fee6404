"""VAEImputer behaviour: quality, the observed-values contract, reproducibility, I/O."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from statistical import check, seed

from impute_dgm import VAEImputer


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def fast_imputer(**params):
    defaults = dict(hidden_dims=(16,), latent_dim=2, n_epochs=5, n_eval_samples=50)
    return VAEImputer(**{**defaults, **params})


@pytest.mark.slow
@pytest.mark.statistical
def test_beats_mean_imputation_on_breast_cancer(fitted_imputer, breast_cancer):
    X, X_missing = breast_cancer
    missing = np.isnan(X_missing)
    vae_error = rmse(fitted_imputer.transform(X_missing)[missing], X[missing])
    mean_error = rmse(SimpleImputer().fit_transform(X_missing)[missing], X[missing])
    # Mean imputation scores about 1.0 here; MIWAE reaches about 0.58 after this short fit.
    check("VAEImputer RMSE / mean-imputation RMSE", vae_error / mean_error, "<", 0.7)


def test_observed_values_unchanged_bit_for_bit_and_no_nan(fitted_imputer, breast_cancer):
    _, X_missing = breast_cancer
    X_imputed = fitted_imputer.transform(X_missing)
    observed = ~np.isnan(X_missing)
    assert np.array_equal(X_imputed[observed], X_missing[observed])
    assert np.isfinite(X_imputed).all()


def test_rows_with_nothing_observed_get_finite_values(fitted_imputer, breast_cancer):
    _, X_missing = breast_cancer
    X = X_missing[:3].copy()
    X[1] = np.nan
    X_imputed = fitted_imputer.transform(X)
    assert np.isfinite(X_imputed).all()
    assert fitted_imputer.score_samples(X)[1] == 0.0


@pytest.mark.statistical
def test_original_units_are_restored(small_table):
    """Columns far from zero mean and unit scale come back in their own units."""
    X = small_table * np.array([1.0, 1000.0, 0.001, 1.0]) + np.array([0.0, 5e4, 0.0, -7.0])
    imputer = VAEImputer(n_epochs=200, random_state=seed(0), hidden_dims=(32,), latent_dim=2).fit(X)
    X_imputed = imputer.transform(X)
    missing = np.isnan(X)
    worst = 0.0
    for j in range(X.shape[1]):
        observed_column = X[~missing[:, j], j]
        low, high = observed_column.min(), observed_column.max()
        filled = X_imputed[missing[:, j], j]
        # How far beyond the observed range an imputation lies, in units of that range.
        worst = max(worst, np.max(np.maximum(low - filled, filled - high)) / (high - low))
    check("largest excursion beyond the observed range / range", worst, "<", 1.0)


def test_same_random_state_same_imputations(small_table):
    first = fast_imputer(random_state=3).fit(small_table).transform(small_table)
    second = fast_imputer(random_state=3).fit(small_table).transform(small_table)
    other = fast_imputer(random_state=4).fit(small_table).transform(small_table)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_evaluation_in_one_row_chunks_agrees_with_one_chunk(small_table, monkeypatch):
    """Evaluation writes each chunk's rows into one output array: with a chunk a row, every
    row must land where it belongs, with the value it gets when all rows go at once."""
    import impute_dgm._device

    imputer = fast_imputer(random_state=0).fit(small_table)
    whole = imputer.transform(small_table), imputer.score_samples(small_table)
    monkeypatch.setattr(impute_dgm._device, "CPU_CHUNK_ELEMENTS", 1)
    by_row = imputer.transform(small_table), imputer.score_samples(small_table)
    # Equal to float32 rounding: a matrix product of 1 row and of 60 may round differently.
    np.testing.assert_allclose(by_row[0], whole[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(by_row[1], whole[1], rtol=1e-5, atol=1e-4)
    # Rows in their places: shuffled rows would differ by far more than rounding.
    assert np.abs(by_row[1] - whole[1]).max() < 0.01 * np.ptp(whole[1])


def test_float32_evaluation_agrees_with_float64_to_float32_rounding(small_table):
    imputer = fast_imputer(random_state=0).fit(small_table)
    exact = imputer.transform(small_table), imputer.score_samples(small_table)
    fast = imputer.set_params(eval_dtype="float32")
    single = fast.transform(small_table), fast.score_samples(small_table)
    observed = ~np.isnan(small_table)
    assert np.array_equal(single[0][observed], small_table[observed])
    assert not np.array_equal(single[0], exact[0])  # the float32 path did run
    np.testing.assert_allclose(single[0], exact[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(single[1], exact[1], rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="eval_dtype"):
        fast_imputer(eval_dtype="float16").fit(small_table)


def test_fit_does_not_touch_the_global_torch_rng(small_table):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast_imputer(random_state=0).fit(small_table).transform(small_table)
    assert torch.equal(torch.rand(3), expected)


def test_pickle_round_trip_gives_identical_outputs(small_table):
    imputer = fast_imputer(random_state=0).fit(small_table)
    restored = pickle.loads(pickle.dumps(imputer))
    assert np.array_equal(restored.transform(small_table), imputer.transform(small_table))
    assert np.array_equal(restored.score_samples(small_table), imputer.score_samples(small_table))
    assert "model_" not in pickle.loads(pickle.dumps(imputer)).__getstate__()


def test_clone_and_get_params():
    imputer = VAEImputer(latent_dim=3, hidden_dims=(7, 5), likelihood="student_t")
    cloned = clone(imputer)
    assert cloned.get_params() == imputer.get_params()
    assert cloned.get_params()["hidden_dims"] == (7, 5)


def test_pandas_in_and_out(small_table):
    frame = pd.DataFrame(small_table, columns=["a", "b", "c", "d"], index=range(100, 160))
    imputer = fast_imputer(random_state=0).set_output(transform="pandas")
    result = imputer.fit_transform(frame)
    assert isinstance(result, pd.DataFrame)
    assert list(result.columns) == ["a", "b", "c", "d"]
    assert list(result.index) == list(frame.index)
    assert not result.isna().any().any()
    assert list(imputer.get_feature_names_out()) == ["a", "b", "c", "d"]
    assert list(imputer.feature_names_in_) == ["a", "b", "c", "d"]
    assert imputer.n_features_in_ == 4


def test_pandas_nullable_dtypes_are_accepted(small_table):
    frame = pd.DataFrame(small_table, columns=["a", "b", "c", "d"]).astype("Float64")
    result = fast_imputer(random_state=0).fit_transform(frame)
    assert np.isfinite(result).all()


def test_score_samples_change_of_units(small_table):
    """Scaling column j by c multiplies its density by 1/c: the score drops by log c on
    every row where column j is observed, and the imputations scale with it."""
    c = 10.0
    scaled = small_table.copy()
    scaled[:, 1] *= c
    base = fast_imputer(random_state=0).fit(small_table)
    rescaled = fast_imputer(random_state=0).fit(scaled)
    observed = ~np.isnan(small_table[:, 1])
    shift = rescaled.score_samples(scaled) - base.score_samples(small_table)
    np.testing.assert_allclose(shift, -np.log(c) * observed, atol=1e-4)
    np.testing.assert_allclose(
        rescaled.transform(scaled)[:, 1], c * base.transform(small_table)[:, 1], rtol=1e-4
    )


@pytest.mark.statistical
def test_score_samples_ranks_outliers_low(fitted_imputer, breast_cancer):
    _, X_missing = breast_cancer
    rows = X_missing[:20].copy()
    outliers = rows.copy()
    outliers[~np.isnan(outliers)] += 8.0
    gap = fitted_imputer.score_samples(outliers) - fitted_imputer.score_samples(rows)
    check("largest score(shifted row) - score(row)", gap.max(), "<", 0.0)
    assert fitted_imputer.score(rows) == pytest.approx(fitted_imputer.score_samples(rows).mean())


@pytest.mark.statistical
@pytest.mark.parametrize("likelihood", ["gaussian", "student_t"])
def test_continuous_likelihoods_impute_better_than_the_mean(small_table, likelihood):
    # Hide entries whose true values we keep, on a one-factor table where they are predictable.
    rng = np.random.default_rng(seed(5))
    latent = rng.normal(size=(300, 1))
    X = latent @ np.array([[1.0, 2.0, -1.0, 0.5, 1.5]]) + 0.05 * rng.normal(size=(300, 5))
    hidden = rng.random(X.shape) < 0.3
    hidden[:, 0] = False
    X_missing = np.where(hidden, np.nan, X)
    imputer = VAEImputer(likelihood=likelihood, n_epochs=150, latent_dim=2, random_state=seed(0))
    X_imputed = imputer.fit(X_missing).transform(X_missing)
    mean_error = rmse(SimpleImputer().fit_transform(X_missing)[hidden], X[hidden])
    check("RMSE / mean-imputation RMSE", rmse(X_imputed[hidden], X[hidden]) / mean_error, "<", 0.5)


@pytest.mark.statistical
def test_bernoulli_likelihood_imputes_probabilities():
    rng = np.random.default_rng(seed(0))
    source = rng.random((400, 1)) < 0.5
    X = np.repeat(source, 6, axis=1).astype(float)
    flips = rng.random(X.shape) < 0.05
    X[flips] = 1 - X[flips]
    hidden = rng.random(X.shape) < 0.3
    X_missing = np.where(hidden, np.nan, X)
    imputer = VAEImputer(likelihood="bernoulli", n_epochs=100, latent_dim=2, random_state=seed(0))
    X_imputed = imputer.fit(X_missing).transform(X_missing)
    filled = X_imputed[hidden]
    assert np.all((filled >= 0) & (filled <= 1))
    # Rounded probabilities recover the copies of the hidden source bit far better than chance.
    check("accuracy of rounded imputations", np.mean(np.round(filled) == X[hidden]), ">", 0.85)


@pytest.mark.statistical
def test_early_stopping_keeps_the_best_epoch(small_table):
    imputer = fast_imputer(
        random_state=seed(0), early_stopping=True, n_iter_no_change=3, n_epochs=300, lr=0.05
    ).fit(small_table)
    history = imputer.history_
    assert len(history.validation_loss) == imputer.n_epochs_
    check("epochs run before early stopping", imputer.n_epochs_, "<", 300)
    assert history.stopped_early
    assert history.best_epoch == int(np.argmin(history.validation_loss))
    assert imputer.n_epochs_ == history.best_epoch + 1 + 3


def test_callbacks_see_every_epoch(small_table):
    seen = []
    fast_imputer(n_epochs=4, callbacks=[lambda epoch, logs: seen.append((epoch, logs))]).fit(
        small_table
    )
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3]
    assert all(np.isfinite(logs["train_loss"]) for _, logs in seen)


def test_progress_bar_only_when_verbose(small_table, capsys):
    fast_imputer(verbose=0).fit(small_table)
    assert "VAEImputer" not in capsys.readouterr().err
    fast_imputer(verbose=1).fit(small_table)
    assert "VAEImputer" in capsys.readouterr().err


def test_evaluation_bar_only_when_verbose_and_long(small_table, capsys, monkeypatch):
    import impute_dgm.estimators._vae as vae

    imputer = fast_imputer(verbose=0).fit(small_table)
    capsys.readouterr()
    monkeypatch.setattr(vae, "chunk_elements", lambda device: 1)  # one row a chunk
    imputer.transform(small_table)
    assert "evaluating" not in capsys.readouterr().err
    imputer.set_params(verbose=1).transform(small_table[:1])  # a single chunk: no bar
    assert "evaluating" not in capsys.readouterr().err
    imputer.transform(small_table)
    bar = capsys.readouterr().err
    incomplete = int(np.isnan(small_table).any(axis=1).sum())  # the rows transform evaluates
    assert "evaluating" in bar and f"/{incomplete} " in bar and "rows/s" in bar


def test_device_auto_and_cpu_agree(small_table):
    auto = fast_imputer(random_state=0, device="auto").fit(small_table)
    cpu = fast_imputer(random_state=0, device="cpu").fit(small_table)
    import torch

    if not torch.cuda.is_available():
        assert np.array_equal(auto.transform(small_table), cpu.transform(small_table))
    assert next(auto.model_.parameters()).device.type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )


@pytest.mark.statistical
def test_silu_default_follows_rows_far_from_the_bulk():
    """Heavy-tailed columns that move together: a tanh network saturates and imputes the cells
    of outlying rows far too close to the centre; the default SiLU network follows them."""
    rng = np.random.default_rng(seed(0))
    signal = rng.standard_t(2.5, size=300)
    X = np.column_stack([signal + 0.1 * rng.normal(size=300) for _ in range(4)])
    missing = rng.random(X.shape) < 0.2
    missing[missing.all(axis=1)] = False
    X_missing = np.where(missing, np.nan, X)
    errors = {}
    for activation in ("tanh", "silu"):
        imputer = VAEImputer(
            activation=activation, hidden_dims=(64, 64), n_epochs=60, random_state=seed(0)
        )
        errors[activation] = rmse(imputer.fit_transform(X_missing)[missing], X[missing])
    assert VAEImputer().activation == "auto"
    assert VAEImputer()._activation() == "silu"
    assert VAEImputer(missingness="self_masking")._activation() == "tanh"
    # SiLU / tanh RMSE over eight seeds: 0.22 to 0.77.
    check("RMSE with SiLU / RMSE with tanh", errors["silu"] / errors["tanh"], "<", 0.9)


def test_activation_is_validated_and_reaches_every_network(small_table):
    from torch import nn

    imputer = fast_imputer(activation="relu", random_state=0).fit(small_table)
    kinds = {type(m) for m in imputer.model_.modules()}
    assert nn.ReLU in kinds and nn.Tanh not in kinds and nn.SiLU not in kinds
    with pytest.raises(ValueError, match="activation"):
        fast_imputer(activation="swish").fit(small_table)


def test_estimator_saved_before_activation_existed_loads_as_tanh(small_table):
    from torch import nn

    imputer = fast_imputer(activation="tanh", random_state=0).fit(small_table)
    state = imputer.__getstate__()
    del state["activation"]  # as in a file written before the parameter existed
    loaded = VAEImputer.__new__(VAEImputer)
    loaded.__setstate__(state)
    assert loaded.get_params()["activation"] == "tanh"
    assert any(isinstance(m, nn.Tanh) for m in loaded.model_.modules())
    np.testing.assert_array_equal(loaded.transform(small_table), imputer.transform(small_table))


def test_auto_likelihood_rounds_the_normal_on_whole_number_columns():
    from impute_dgm.distributions.likelihoods import (
        ColumnLikelihoods,
        DiscretizedGaussianLikelihood,
        GaussianLikelihood,
    )

    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=200).astype(float)  # whole numbers stored as floats
    X = np.column_stack([counts, counts + rng.normal(size=200), np.full(200, 7.0)])
    X[rng.random(X.shape) < 0.2] = np.nan
    imputer = fast_imputer(random_state=0).fit(X)
    assert imputer.get_params()["likelihood"] == "auto"
    likelihood = imputer.schema_.likelihood_
    assert isinstance(likelihood, ColumnLikelihoods)
    parts = zip(likelihood.parts, likelihood.columns, strict=True)
    kinds = {tuple(columns): type(part) for part, columns in parts}
    # The counts are integers; a fractional and a constant column stay Gaussian.
    assert kinds == {(0,): DiscretizedGaussianLikelihood, (1, 2): GaussianLikelihood}
    # A fraction at transform is scored, not refused, and imputations are means (floats).
    X_new = X[:20].copy()
    X_new[0, 0] = 2.5
    X_imputed = imputer.transform(X_new)
    assert np.isfinite(X_imputed).all() and X_imputed[0, 0] == 2.5
    assert np.isfinite(imputer.score_samples(X_new)).all()
    # Asked for, the Gaussian serves every column as before.
    single = fast_imputer(likelihood="gaussian", random_state=0).fit(X).schema_.likelihood_
    assert isinstance(single, GaussianLikelihood)


def test_auto_likelihood_under_a_model_of_the_mask_is_gaussian():
    from impute_dgm.distributions.likelihoods import GaussianLikelihood

    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, size=(100, 3)).astype(float)
    X[rng.random(X.shape) < 0.2] = np.nan
    imputer = fast_imputer(missingness="self_masking", random_state=0).fit(X)
    assert isinstance(imputer.schema_.likelihood_, GaussianLikelihood)
    assert np.isfinite(imputer.transform(X)).all()
