"""VAEEmbedder on scikit-learn's digits, with the categorical likelihood and every prior."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from statistical import check, seed

from impute_dgm import VAEEmbedder


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return train_test_split(data.data, data.target, test_size=0.3, random_state=seed(0))


def digits_embedder(**params):
    defaults = dict(
        likelihood="categorical",
        latent_dim=8,
        n_epochs=25,
        batch_size=128,
        n_importance=5,
        n_eval_samples=100,
        random_state=seed(0),
    )
    return VAEEmbedder(**{**defaults, **params})


@pytest.fixture(scope="module")
def fitted(digits, fit_once):
    X_train, _, _, _ = digits
    return fit_once("digits-embedder", lambda: digits_embedder(n_epochs=50).fit(X_train))


@pytest.mark.statistical
def test_reconstruction_beats_the_column_means(fitted, digits):
    _, X_test, _, _ = digits
    reconstruction = fitted.inverse_transform(fitted.transform(X_test))
    error = np.mean((reconstruction - X_test) ** 2)
    baseline = np.mean((X_test - X_test.mean(0)) ** 2)
    # About 0.51 of the baseline after this 6-second fit.
    check("reconstruction MSE / column-mean MSE", error / baseline, "<", 0.65)


@pytest.mark.statistical
def test_codes_carry_the_labels(fitted, digits):
    X_train, X_test, y_train, y_test = digits
    classifier = LogisticRegression(max_iter=2000).fit(fitted.transform(X_train), y_train)
    # chance is 0.1
    check(
        "test accuracy of LogReg on the codes",
        classifier.score(fitted.transform(X_test), y_test),
        ">",
        0.7,
    )


def test_codes_names_and_shapes(fitted, digits):
    _, X_test, _, _ = digits
    assert fitted.transform(X_test).shape == (len(X_test), 8)
    assert list(fitted.get_feature_names_out()) == [f"vaeembedder{i}" for i in range(8)]
    assert fitted.likelihood_.n_levels == 17


@pytest.mark.statistical
def test_samples_are_pixel_levels(fitted):
    draws = fitted.sample(50, random_state=0)
    assert draws.shape == (50, 64)
    assert set(np.unique(draws)) <= set(range(17))
    assert np.array_equal(draws, fitted.sample(50, random_state=0))
    # Samples look like digits on average: pixel means close to the data's.
    pixel_means = fitted.sample(500, random_state=seed(1)).mean(0)
    # 0.8-1.2 over seeds; samples of an untrained decoder (uniform levels) are off by about 4.
    check(
        "mean |sample pixel mean - data pixel mean|",
        np.abs(pixel_means - load_digits().data.mean(0)).mean(),
        "<",
        2.0,
    )


def test_missing_pixels_in_fit_and_transform(digits):
    X_train, X_test, _, _ = digits
    rng = np.random.default_rng(0)
    holes = np.where(rng.random(X_train.shape) < 0.3, np.nan, X_train)
    holes[0] = X_train[0]  # every column keeps a value
    embedder = digits_embedder(n_epochs=5).fit(holes)
    codes = embedder.transform(np.where(rng.random(X_test.shape) < 0.3, np.nan, X_test))
    assert np.isfinite(codes).all()
    assert np.isfinite(embedder.score_samples(holes[:20])).all()


@pytest.mark.statistical
def test_score_samples_is_a_likelihood_of_levels(fitted, digits):
    _, X_test, _, _ = digits
    scores = fitted.score_samples(X_test[:50])
    # A discrete likelihood: log-probabilities are negative, and far better than uniform.
    assert np.all(scores < 0)
    check("mean score - uniform model's", scores.mean() + 64 * np.log(17), ">", 50.0)
    with pytest.raises(ValueError, match="integer levels"):
        fitted.score_samples(X_test[:2] + 0.5)


@pytest.mark.parametrize("prior", ["standard", "mog", "vamp", "flow"])
def test_every_prior_fits_and_round_trips_through_pickle(prior, digits):
    X_train, X_test, _, _ = digits
    embedder = digits_embedder(prior=prior, n_components=5, n_epochs=3).fit(X_train[:300])
    restored = pickle.loads(pickle.dumps(embedder))
    assert np.array_equal(restored.score_samples(X_test[:10]), embedder.score_samples(X_test[:10]))
    assert np.array_equal(restored.transform(X_test[:10]), embedder.transform(X_test[:10]))
    assert np.isfinite(embedder.score(X_test[:10]))


def test_a_prior_object_is_not_mutated(digits):
    from impute_dgm.distributions import MixtureOfGaussiansPrior

    X_train, _, _, _ = digits
    prior = MixtureOfGaussiansPrior(8, 3)
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    embedder = digits_embedder(prior=prior, n_epochs=2).fit(X_train[:200])
    assert all(torch_equal(before[k], v) for k, v in prior.state_dict().items())
    assert embedder.model_.prior is not prior
    assert clone(embedder).get_params()["prior"] is not prior


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_reproducible_and_pandas(digits):
    X_train, _, _, _ = digits
    frame = pd.DataFrame(X_train[:200], columns=[f"p{i}" for i in range(64)])
    first = digits_embedder(n_epochs=2).set_output(transform="pandas").fit(frame)
    second = digits_embedder(n_epochs=2).set_output(transform="pandas").fit(frame)
    codes = first.transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == [f"vaeembedder{i}" for i in range(8)]
    pd.testing.assert_frame_equal(codes, second.transform(frame))


@pytest.mark.parametrize("prior", ["standard", "mog", "vamp", "flow"])
def test_random_state_fixes_every_prior_whatever_the_global_torch_seed(digits, prior):
    import torch

    X_train = digits[0][:200]
    models = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        models.append(digits_embedder(prior=prior, n_components=3, n_epochs=1).fit(X_train))
    first, second = (model.model_.state_dict() for model in models)
    assert all(torch.equal(first[name], second[name]) for name in first)
    np.testing.assert_array_equal(models[0].transform(X_train), models[1].transform(X_train))
    # The fit draws from its own seeded stream, not from (and not advancing) the global one.
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    digits_embedder(prior=prior, n_components=3, n_epochs=1).fit(X_train)
    assert torch.equal(torch.rand(1), expected)


def test_inverse_transform_checks_its_input(fitted):
    with pytest.raises(ValueError, match="shape"):
        fitted.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        fitted.inverse_transform(np.full((1, 8), np.nan))


def test_kl_warmup_keeps_training_through_the_warmup(digits):
    X_train = digits[0][:300]
    embedder = digits_embedder(
        prior="vamp",
        n_components=5,
        kl_warmup=8,
        early_stopping=True,
        n_iter_no_change=2,
        n_epochs=40,
        hidden_dims=(32,),
    ).fit(X_train)
    assert embedder.n_epochs_ >= 8 + 2
    assert embedder.history_.best_epoch >= 8
    assert np.isfinite(embedder.score(X_train))
