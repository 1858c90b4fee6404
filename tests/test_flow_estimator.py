"""FlowDensityEstimator: normalised densities, recovered distributions, samples, I/O."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm
from sklearn.datasets import make_moons
from statistical import check, seed

from impute_dgm import FlowDensityEstimator


def small_flow(**params):
    defaults = dict(n_layers=4, hidden_dims=(32, 32), n_epochs=60, random_state=seed(0))
    return FlowDensityEstimator(**{**defaults, **params})


@pytest.fixture(scope="module")
def moons():
    X, _ = make_moons(3000, noise=0.08, random_state=seed(0))
    return X


@pytest.fixture(scope="module")
def fitted_moons(moons, fit_once):
    return fit_once(
        "moons-flow", lambda: small_flow(n_layers=6, n_epochs=80, lr=2e-3).fit(moons[:2000])
    )


@pytest.mark.statistical
def test_two_dimensional_density_integrates_to_one(fitted_moons):
    step = 0.02
    xs = np.arange(-4.0, 5.0, step)
    ys = np.arange(-3.5, 4.0, step)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    mass = np.exp(fitted_moons.score_samples(grid)).sum() * step**2
    check("|grid mass - 1|", abs(mass - 1.0), "<", 0.01)


@pytest.mark.statistical
def test_learns_the_moons_better_than_a_gaussian(fitted_moons, moons):
    held_out = moons[2000:]
    mean, cov = moons[:2000].mean(0), np.cov(moons[:2000].T)
    from scipy.stats import multivariate_normal

    gaussian = multivariate_normal(mean, cov).logpdf(held_out).mean()
    check(
        "held-out log-likelihood gain over a Gaussian",
        fitted_moons.score(held_out) - gaussian,
        ">",
        0.5,
    )


@pytest.mark.statistical
def test_samples_follow_the_fitted_density(fitted_moons, moons):
    """Draws match held-out data in mean and covariance, and score like held-out data.

    Bounds from the spread over seeds (make test-seeds); draws that skip the un-standardising
    step would be off by about 0.5 in the mean and 0.75 in the covariance.
    """
    held_out = moons[2000:]
    draws = fitted_moons.sample(5000, random_state=seed(0))
    check("largest |mean difference|", np.abs(draws.mean(0) - held_out.mean(0)).max(), "<", 0.14)
    check(
        "largest |covariance difference|",
        np.abs(np.cov(draws.T) - np.cov(held_out.T)).max(),
        "<",
        0.08,
    )
    # Average log density of the model's own draws (its negative entropy) is close to the
    # average on real data when the model fits.
    check(
        "|score(draws) - score(held-out)|",
        abs(fitted_moons.score(draws) - fitted_moons.score(held_out)),
        "<",
        0.15,
    )


@pytest.mark.statistical
def test_recovers_an_affine_gaussian():
    """x = 2u + 1 with u ~ N(0, 1): the flow gives N(1, 4) back."""
    rng = np.random.default_rng(seed(0))
    X = 2.0 * rng.normal(size=(20000, 1)) + 1.0
    # A cosine schedule anneals away the jitter that constant-rate Adam leaves in the scale.
    # The affine family on N(0, I) contains N(1, 4) exactly: its maximum likelihood is the MLE.
    flow = small_flow(
        coupling="affine", base="normal", n_epochs=15, early_stopping=False, lr_schedule="cosine"
    ).fit(X)
    grid = np.linspace(-5, 7, 25)[:, None]
    # Maximum likelihood within the flow family reaches the Gaussian MLE of the sample ...
    mle = norm(X.mean(), X.std()).logpdf(grid[:, 0])
    scores = flow.score_samples(grid)
    check("largest |log p - Gaussian MLE log p|", np.abs(scores - mle).max(), "<", 0.02)
    # ... which is N(1, 4) up to the sampling error of 20000 draws: the MLE's log density at
    # z standard deviations from the mean has standard error sqrt((z^2 + (z^2 - 1)^2 / 2) / n),
    # 0.005 at the centre and 0.045 at z = 3. Allow the fit's 0.02 plus 4 standard errors.
    truth = norm(1.0, 2.0).logpdf(grid[:, 0])
    z = (grid[:, 0] - 1.0) / 2.0
    standard_error = np.sqrt((z**2 + (z**2 - 1) ** 2 / 2) / len(X))
    check(
        "largest |log p - N(1, 4) log p| / (0.02 + 4 standard errors)",
        (np.abs(scores - truth) / (0.02 + 4 * standard_error)).max(),
        "<",
        1.0,
    )
    draws = flow.sample(20000, random_state=seed(1))
    # Draws against the training sample's moments (the truth adds the sample's own error).
    check("|draws' mean - data mean|", abs(draws.mean() - X.mean()), "<", 0.05)
    check("|draws' variance / data variance - 1|", abs(draws.var() / X.var() - 1.0), "<", 0.05)
    # ... and the latent code is the standardised variable.
    codes = flow.transform(grid)[:, 0]
    check("largest |code - (x - 1) / 2|", np.abs(codes - (grid[:, 0] - 1.0) / 2.0).max(), "<", 0.05)


@pytest.mark.statistical
def test_transform_and_inverse_transform_round_trip(fitted_moons, moons):
    codes = fitted_moons.transform(moons[:50])
    # float32 rounding: 1e-6 apart on a GPU, whose kernels sum in another order.
    np.testing.assert_allclose(fitted_moons.inverse_transform(codes), moons[:50], atol=1e-5)
    held_out_codes = fitted_moons.transform(moons[2000:])
    # Codes of held-out rows are centred (0.07-0.12 over seeds here, 0.17 on an AVX-512
    # machine); codes that were the rows themselves would have a mean of 0.5.
    check("largest |mean of held-out codes|", np.abs(held_out_codes.mean(0)).max(), "<", 0.3)
    assert list(fitted_moons.get_feature_names_out()) == [
        "flowdensityestimator0",
        "flowdensityestimator1",
    ]


def test_float32_evaluation_agrees_with_float64_to_float32_rounding(fitted_moons, moons):
    single = pickle.loads(pickle.dumps(fitted_moons)).set_params(eval_dtype="float32")
    rows = moons[2000:2500]
    exact, fast = fitted_moons.score_samples(rows), single.score_samples(rows)
    assert not np.array_equal(fast, exact)  # the float32 path did run
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-4)
    codes = single.transform(rows)
    np.testing.assert_allclose(codes, fitted_moons.transform(rows), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(single.inverse_transform(codes), rows, atol=1e-4)
    with pytest.raises(ValueError, match="eval_dtype"):
        small_flow(eval_dtype="half", n_epochs=1).fit(rows)


@pytest.mark.statistical
def test_dequantized_model_is_a_normalised_discrete_distribution():
    """With uniform dequantisation the model's discrete law is P(x) = integral of p over the
    unit bin [x, x + 1). Integrating numerically over every bin gives probabilities that sum to
    one, less the little mass the logit margin (alpha) leaves outside [0, n_levels): a lost
    log bin-width or logit log-determinant would be off by a factor of 3 or more per feature.
    score_samples, the importance-weighted bound with K = 200 noise draws, estimates log P(x):
    below it in expectation, and within Monte Carlo error of it (|gap| 0.005-0.035 over seeds;
    the average of log p(x + u) it replaced was up to 0.5 below)."""
    import torch

    rng = np.random.default_rng(seed(0))
    levels = np.array([0, 1, 2])
    X = np.stack([rng.choice(levels, 3000, p=[0.5, 0.3, 0.2]), rng.integers(0, 3, 3000)], 1)
    X[:, 1] = (X[:, 0] + X[:, 1]) % 3  # make the two features dependent
    flow = small_flow(dequantize=True, n_epochs=60, n_dequantization_samples=200).fit(X)
    assert flow.n_levels_ == 3
    offsets = (np.arange(100) + 0.5) / 100  # midpoint rule on each unit bin
    u = np.stack(np.meshgrid(offsets, offsets), -1).reshape(-1, 2)
    states = np.stack(np.meshgrid(levels, levels), -1).reshape(-1, 2).astype(float)
    with torch.no_grad():
        points = torch.tensor(
            (states[:, None, :] + u[None]).reshape(-1, 2),
            dtype=torch.float32,
            device=next(flow.model_.parameters()).device,
        )
        density = flow.model_.log_prob(points).exp().reshape(len(states), -1).double().cpu()
    probabilities = density.mean(1).numpy()
    assert probabilities.sum() <= 1.0 + 1e-3
    # Below 1 by the mass the logit margin leaves outside [0, 3)^2 (3-6% over seeds); a lost
    # log-determinant would put it near 1/9 or 9.
    check("total probability of the nine states", probabilities.sum(), ">", 0.9)
    scores = flow.score_samples(states)
    gaps = np.log(probabilities) - scores
    check("smallest log P(x) - score", gaps.min(), ">", -0.08)
    check("largest log P(x) - score", gaps.max(), "<", 0.08)
    empirical = np.array([np.mean(np.all(X == s, axis=1)) for s in states])
    # 0.015-0.043 over seeds and thread counts (3000 draws: a frequency's standard error is
    # about 0.007; the flow adds its own error).
    check(
        "largest |P(x) - empirical frequency|", np.abs(probabilities - empirical).max(), "<", 0.055
    )
    draws = flow.sample(3000, random_state=seed(0))
    assert set(np.unique(draws)) <= {0.0, 1.0, 2.0}
    assert flow.bits_per_dim(states) == pytest.approx(-scores.mean() / (2 * np.log(2)))


def test_dequantization_rejects_non_integer_levels():
    with pytest.raises(ValueError, match="integer levels"):
        small_flow(dequantize=True).fit(np.array([[0.5, 1.0], [1.0, 2.0]]))
    flow = small_flow(dequantize=True, n_levels=3, n_epochs=1).fit(np.array([[0.0], [2.0]]))
    with pytest.raises(ValueError, match="n_levels=3"):
        flow.score_samples(np.array([[5.0]]))


@pytest.mark.statistical
def test_image_architecture_on_digits():
    from sklearn.datasets import load_digits

    X = load_digits().data
    flow = FlowDensityEstimator(
        architecture="image",
        image_shape=(8, 8),
        n_layers=2,
        hidden_channels=8,
        n_blocks=1,
        dequantize=True,
        normalization="actnorm",
        n_epochs=3,
        random_state=seed(0),
    ).fit(X[:500])
    # 17 levels: a uniform model scores log2(17) = 4.09 bits per dimension.
    check("held-out bits per dimension", flow.bits_per_dim(X[500:700]), "<", 4.0)
    draws = flow.sample(3, random_state=0)
    assert draws.shape == (3, 64) and draws.min() >= 0 and draws.max() <= 16


def test_image_shape_must_match():
    with pytest.raises(ValueError, match="image_shape"):
        FlowDensityEstimator(architecture="image", image_shape=(3, 3), n_epochs=1).fit(
            np.zeros((5, 64))
        )
    with pytest.raises(ValueError, match="needs image_shape"):
        FlowDensityEstimator(architecture="image", n_epochs=1).fit(np.zeros((5, 64)))


def test_missing_values_point_to_the_imputer():
    X = np.array([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(ValueError, match="VAEImputer"):
        small_flow().fit(X)


@pytest.mark.statistical
def test_outlier_detection_with_score_samples(fitted_moons):
    inliers = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.4]])
    outliers = np.array([[0.5, 3.0], [-3.0, -2.0], [1.0, -2.5]])
    gap = fitted_moons.score_samples(outliers).max() - fitted_moons.score_samples(inliers).min()
    check("best outlier score - worst inlier score", gap, "<", 0.0)


def test_reproducible_and_picklable(moons):
    first = small_flow(n_epochs=3).fit(moons[:300])
    second = small_flow(n_epochs=3).fit(moons[:300])
    assert np.array_equal(first.score_samples(moons[:20]), second.score_samples(moons[:20]))
    assert np.array_equal(first.sample(5, random_state=1), second.sample(5, random_state=1))
    restored = pickle.loads(pickle.dumps(first))
    assert np.array_equal(restored.score_samples(moons[:20]), first.score_samples(moons[:20]))
    assert np.array_equal(restored.transform(moons[:20]), first.transform(moons[:20]))


def test_pandas_input_and_output(moons):
    frame = pd.DataFrame(moons[:300], columns=["x", "y"])
    flow = small_flow(n_epochs=2).set_output(transform="pandas").fit(frame)
    codes = flow.transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == ["flowdensityestimator0", "flowdensityestimator1"]
    assert list(flow.feature_names_in_) == ["x", "y"]


@pytest.mark.statistical
@pytest.mark.parametrize("normalization", ["actnorm", "batchnorm"])
def test_normalization_layers_train(moons, normalization):
    flow = small_flow(normalization=normalization, n_epochs=15).fit(moons[:1000])
    check("held-out mean log-likelihood", flow.score(moons[2000:2500]), ">", -2.0)


# --- the Gaussian-mixture base (the tabular default) ----------------------------------------


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_mixture_base_has_the_density_of_the_sklearn_mixture(covariance_type):
    from sklearn.mixture import GaussianMixture

    from impute_dgm.estimators._base_mixture import mixture_module

    X = np.random.default_rng(0).normal(size=(300, 3)) @ np.array(
        [[1.0, 0.5, 0.0], [0.0, 1.0, -0.3], [0.0, 0.0, 0.4]]
    )
    mixture = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    base = mixture_module(mixture)()
    ours = base.log_prob(torch.as_tensor(X, dtype=torch.float32)).detach().double().numpy()
    np.testing.assert_allclose(ours, mixture.score_samples(X), atol=1e-4)


def test_default_flow_starts_where_the_cross_validated_mixture_ends():
    from sklearn.datasets import load_wine

    X = load_wine().data
    # A step of 1e-12 leaves the couplings at the identity and the base at the fitted mixture.
    flow = FlowDensityEstimator(n_epochs=1, lr=1e-12, random_state=0).fit(X)
    mixture, scaler = flow.base_mixture_, flow.scaler_
    assert mixture.n_components in (1, 2, 4)
    expected = mixture.score_samples(scaler.transform(X)) - np.log(scaler.scale_).sum()
    np.testing.assert_allclose(flow.score_samples(X), expected, rtol=1e-4, atol=1e-3)


def test_mixture_base_draws_follow_the_seed_and_the_mixture():
    X = np.concatenate([np.random.default_rng(0).normal(-4, 1, (400, 1)),
                        np.random.default_rng(1).normal(4, 1, (400, 1))])  # fmt: skip
    flow = FlowDensityEstimator(n_epochs=1, lr=1e-12, random_state=0).fit(X)
    draws = flow.sample(4000, random_state=1)
    np.testing.assert_array_equal(draws, flow.sample(4000, random_state=1))
    # Both modes, in their proportions (a N(0, I) base would put mass between them).
    assert 0.45 < (draws < 0).mean() < 0.55 and (np.abs(draws) < 1.5).mean() < 0.1


def test_image_and_dequantised_flows_keep_a_standard_normal_base():
    X = np.random.default_rng(0).integers(0, 4, size=(40, 4)).astype(float)
    flow = FlowDensityEstimator(dequantize=True, n_epochs=1, random_state=0).fit(X)
    assert flow.base_mixture_ is None
    assert type(flow.model_.base).__name__ == "StandardNormal"


@pytest.mark.statistical
def test_default_flow_beats_a_tuned_gaussian_mixture_on_a_real_table():
    from sklearn.datasets import load_diabetes
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import GridSearchCV, train_test_split

    train, test = train_test_split(load_diabetes().data, test_size=0.3, random_state=seed(0))
    grid = {"n_components": [1, 2, 4, 8, 16], "covariance_type": ["full", "diag"]}
    tuned = GridSearchCV(GaussianMixture(reg_covar=1e-4, random_state=seed(0)), grid, cv=3)
    gain = FlowDensityEstimator(random_state=seed(0)).fit(train).score(test) - (
        tuned.fit(train).best_estimator_.score(test)
    )
    # Over seeds 0-5: 2.0 to 5.5 nats per row (mean 4.0, sd 1.2); a flow that learned nothing
    # beyond its starting mixture scores about 0.
    check("default flow minus tuned GaussianMixture, held-out nats", gain, ">", 0.3)


def test_a_flow_saved_before_the_mixture_base_and_splines_loads_as_it_was_fitted():
    X = np.random.default_rng(0).normal(size=(60, 2))
    old = FlowDensityEstimator(
        coupling="affine", base="normal", n_layers=2, hidden_dims=(8,), n_epochs=2, random_state=0
    ).fit(X)
    state = old.__getstate__()
    for newer in ("coupling", "n_bins", "base", "n_components", "base_mixture_", "eval_dtype"):
        del state[newer]  # what a file from before these parameters holds
    restored = FlowDensityEstimator.__new__(FlowDensityEstimator)
    restored.__setstate__(state)
    assert restored.get_params()["base"] == "normal"
    assert restored.get_params()["coupling"] == "affine"
    assert restored.get_params()["eval_dtype"] == "auto"
    np.testing.assert_array_equal(restored.score_samples(X), old.score_samples(X))


def test_weight_averaging_reaches_the_fitted_flow(moons):
    """A moving average with decay ~0 is the last step's weights (the fit without averaging);
    a long one is a different, smoother flow."""
    settings = dict(n_layers=2, hidden_dims=(16,), n_epochs=3, early_stopping=False,
                    random_state=0)  # fmt: skip
    raw = FlowDensityEstimator(**settings).fit(moons).score_samples(moons[:50])
    last = FlowDensityEstimator(weight_averaging=1e-12, **settings).fit(moons)
    averaged = FlowDensityEstimator(weight_averaging=0.9, **settings).fit(moons)
    np.testing.assert_allclose(last.score_samples(moons[:50]), raw, rtol=1e-5, atol=1e-5)
    assert np.abs(averaged.score_samples(moons[:50]) - raw).max() > 1e-3
