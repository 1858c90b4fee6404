"""Semi-supervised M1 (EmbedThenClassify) and M2 (VAEClassifier) on scikit-learn's digits."""

import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from statistical import check, seed

from impute_dgm import EmbedThenClassify, VAEClassifier, VAEEmbedder
from impute_dgm.estimators._labels import split_labelled
from impute_dgm.persistence import load_estimator, save_estimator


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return train_test_split(
        data.data, data.target, test_size=0.3, stratify=data.target, random_state=seed(0)
    )


def hide_labels(y, n_labels):
    """Keep ``n_labels`` labels, balanced over the classes; the rest become -1."""
    rng = np.random.default_rng(seed(0))
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), n_labels // 10, replace=False) for c in range(10)]
    )
    y_partial = np.full_like(y, -1)
    y_partial[keep] = y[keep]
    return y_partial


def m2(**params):
    defaults = dict(
        likelihood="categorical",
        latent_dim=8,
        hidden_dims=(128,),
        n_epochs=40,
        batch_size=128,
        random_state=seed(0),
    )
    return VAEClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def m2_fits(digits, fit_once):
    X_train, X_test, y_train, y_test = digits
    full = fit_once("m2-all-labels", lambda: m2().fit(X_train, y_train))
    partial = fit_once("m2-50-labels", lambda: m2().fit(X_train, hide_labels(y_train, 50)))
    return full, partial


@pytest.fixture(scope="module")
def m2_test_accuracies(digits, m2_fits, fit_once):
    """Test accuracy of the all-label and the 50-label fit, computed once for both tests (each
    is a generative posterior over 10 classes x 100 importance samples a row: seconds)."""
    _, X_test, _, y_test = digits
    full, partial = m2_fits
    return fit_once(
        "m2-test-accuracies", lambda: (full.score(X_test, y_test), partial.score(X_test, y_test))
    )


def test_split_labelled_marks_minus_one_and_refuses_no_labels():
    y, labelled = split_labelled(np.array([0, -1, 2, -1]))
    assert labelled.tolist() == [True, False, True, False]
    _, labelled = split_labelled(np.array(["cat", "-1", "dog"], dtype=object))
    assert labelled.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="Every label is -1"):
        split_labelled(np.array([-1, -1, -1]))
    with pytest.raises(ValueError, match="Unknown label type"):
        split_labelled(np.array([0.5, 1.5, -1.0]))


@pytest.mark.statistical
def test_m2_with_all_labels_is_close_to_a_supervised_mlp(digits, m2_test_accuracies):
    X_train, X_test, y_train, y_test = digits
    mlp = MLPClassifier((128,), max_iter=500, random_state=seed(0)).fit(X_train, y_train)
    accuracy, _ = m2_test_accuracies
    # -0.03 to -0.01 and 0.94-0.97 over seeds; an M2 whose classifier never learned from the
    # labels would be near chance (0.1).
    check("M2 accuracy - MLP accuracy", accuracy - mlp.score(X_test, y_test), ">", -0.06)
    check("M2 accuracy, all labels", accuracy, ">", 0.9)


@pytest.mark.statistical
def test_m2_with_50_labels_degrades_gracefully(digits, m2_test_accuracies):
    X_train, X_test, y_train, y_test = digits
    full_accuracy, accuracy = m2_test_accuracies
    check("M2 accuracy, 50 labels", accuracy, ">", 0.7)  # chance is 0.1
    check("50-label - all-label accuracy", accuracy - full_accuracy, "<=", 0.02)
    # Unlabelled rows help: the same model on the 50 labelled rows alone does worse.
    y_partial = hide_labels(y_train, 50)
    labelled = y_partial != -1
    alone = m2().fit(X_train[labelled], y_train[labelled])
    # 0.12-0.27 over seeds: the unlabelled rows must help at all.
    check(
        "accuracy gain from the unlabelled rows", accuracy - alone.score(X_test, y_test), ">", 0.0
    )


def test_m2_never_predicts_the_unlabelled_marker(digits, m2_fits):
    X_train, X_test, _, _ = digits
    X_test = X_test[:100]
    _, partial = m2_fits
    assert partial.classes_.tolist() == list(range(10))
    assert -1 not in set(partial.predict(X_test))
    probabilities = partial.predict_proba(X_test)
    assert probabilities.shape == (len(X_test), 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="Every label is -1"):
        m2().fit(X_train, np.full(len(X_train), -1))


@pytest.mark.statistical
def test_m2_string_labels_missing_pixels_and_any_prior(digits):
    X_train, X_test, y_train, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"], dtype=object)  # fmt: skip
    y_text = names[y_train].copy()
    y_text[hide_labels(y_train, 100) == -1] = "-1"
    X_holes = X_train.copy()
    X_holes[np.random.default_rng(seed(0)).random(X_holes.shape) < 0.3] = np.nan
    X_holes[0, np.isnan(X_holes).all(axis=0)] = 0.0
    model = m2(prior="vamp", n_components=10, n_epochs=25).fit(X_holes, y_text)
    assert set(model.classes_) == set(names)
    predicted = model.predict(X_test)
    check(
        "M2 accuracy, 100 string labels, 30% missing", (predicted == names[y_test]).mean(), ">", 0.6
    )
    scores = model.score_samples(X_test[:20])  # the bound on log p(x) still works
    assert np.isfinite(scores).all()


def test_m2_pickles_clones_and_reproduces(digits):
    X_train, X_test, y_train, _ = digits
    X_test = X_test[:60]  # the product posterior costs a bound per class and row
    y_partial = hide_labels(y_train, 50)
    first = m2(n_epochs=3).fit(X_train, y_partial)
    second = clone(first).fit(X_train, y_partial)
    assert np.array_equal(first.predict_proba(X_test), second.predict_proba(X_test))
    again = pickle.loads(pickle.dumps(first))
    assert np.array_equal(again.predict_proba(X_test), first.predict_proba(X_test))


@pytest.mark.statistical
def test_m1_fits_the_embedder_on_every_row_and_the_classifier_on_labelled_rows(digits):
    X_train, X_test, y_train, y_test = digits
    y_partial = hide_labels(y_train, 50)
    embedder = VAEEmbedder(
        likelihood="categorical", latent_dim=8, n_epochs=40, n_importance=5, random_state=seed(0)
    )
    m1 = EmbedThenClassify(embedder, LogisticRegression(max_iter=2000)).fit(X_train, y_partial)
    # The embedder is the one an unsupervised fit on all rows gives.
    alone = clone(embedder).fit(X_train)
    assert np.array_equal(m1.embedder_.transform(X_test), alone.transform(X_test))
    # The classifier saw only labelled rows: -1 is not a class.
    assert m1.classes_.tolist() == list(range(10))
    # 0.69-0.81 over seeds; chance is 0.1.
    check("M1 accuracy, 50 labels", m1.score(X_test, y_test), ">", 0.5)
    assert m1.predict_proba(X_test).shape == (len(X_test), 10)
    with pytest.raises(ValueError, match="Every label is -1"):
        clone(m1).fit(X_train, np.full(len(X_train), -1))


def test_m2_defaults_round_the_normal_on_whole_number_pixels(digits):
    # likelihood="auto" by default, as in VAEImputer: pixel levels are whole numbers, so every
    # pixel that varies gets the rounded normal; constant pixels stay Gaussian.
    from impute_dgm.distributions import ColumnLikelihoods, DiscretizedGaussianLikelihood

    X_train, _, y_train, _ = digits
    X, y = X_train[:200], y_train[:200]
    model = VAEClassifier(n_epochs=1, random_state=seed(0)).fit(X, y)
    likelihood = model.schema_.likelihood_
    assert isinstance(likelihood, ColumnLikelihoods)
    rounded = [
        column
        for part, columns in zip(likelihood.parts, likelihood.columns, strict=True)
        if isinstance(part, DiscretizedGaussianLikelihood)
        for column in columns
    ]
    assert sorted(rounded) == np.flatnonzero(X.std(axis=0) > 0).tolist()
    assert model.predict(X_train[200:210]).shape == (10,)


def test_m2_label_posteriors_follow_bayes_rule(digits):
    # "generative" is softmax over classes of log p(x_obs, y), each the labelled bound with the
    # estimator's evaluation draws; "product" adds product_weight x log q(y | x); "inference"
    # is q(y | x).
    import torch

    X_train, X_test, y_train, _ = digits
    X_holes = X_test[:12].copy()
    X_holes[np.random.default_rng(seed(1)).random(X_holes.shape) < 0.3] = np.nan
    model = m2(n_epochs=3, n_eval_samples=7).fit(X_train, hide_labels(y_train, 50))
    q = model.set_params(label_posterior="inference").predict_proba(X_holes)
    generative = model.set_params(label_posterior="generative").predict_proba(X_holes)
    product = model.set_params(label_posterior="product").predict_proba(X_holes)

    _, X_model = model._encode(X_holes, reset=False)
    x, mask = model._to_tensors(X_model, torch.device("cpu"), torch.float32)
    noise = torch.randn(7, 1, model.latent_dim, generator=model._eval_generator("cpu"))
    eye = torch.eye(10)
    with torch.no_grad():
        log_joint = torch.stack(
            [
                model.model_.labelled_bound(x, mask, eye[c].expand(len(x), 10), noise)
                for c in range(10)
            ],
            dim=-1,
        ).double()
    by_hand = torch.softmax(log_joint, dim=-1).numpy()
    assert np.allclose(generative, by_hand, atol=1e-5)
    log_q = torch.log(torch.as_tensor(q))
    by_hand_product = torch.softmax(log_joint + 0.5 * log_q, dim=-1).numpy()  # q^0.5 p(x_obs|y)
    assert np.allclose(product, by_hand_product, atol=1e-5)
    plain = model.set_params(product_weight=1.0).predict_proba(X_holes)
    assert np.allclose(plain, torch.softmax(log_joint + log_q, dim=-1).numpy(), atol=1e-5)
    assert np.allclose(model.set_params(product_weight=0.0).predict_proba(X_holes), generative)
    for probabilities in (q, generative, product, plain):
        assert probabilities.shape == (12, 10)
        assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert not np.allclose(q, generative, atol=1e-3)
    assert not np.allclose(product, plain, atol=1e-3)
    defaults = VAEClassifier()
    assert (defaults.label_posterior, defaults.product_weight) == ("product", 0.5)

    # A classifier saved before product_weight existed keeps the plain product it had.
    state = model.set_params(product_weight=0.5).__getstate__()
    del state["product_weight"]
    loaded = VAEClassifier.__new__(VAEClassifier)
    loaded.__setstate__(state)
    assert loaded.get_params()["product_weight"] == 1.0
    assert np.allclose(loaded.predict_proba(X_holes), plain)


@pytest.mark.statistical
def test_m2_generative_posterior_integrates_out_missing_pixels(digits):
    # With 30% of the pixels missing, Bayes' rule through the model (which leaves the missing
    # pixels out of p(x_obs | y)) classifies far better than the classifier network, which
    # reads them as zeros: over seed shifts 0-3 with these settings 0.730-0.806 against
    # 0.502-0.574 (margin 0.19-0.25; the product of the two 0.678-0.748); chance is 0.1.
    X_train, X_test, y_train, y_test = digits
    rng = np.random.default_rng(seed(2))
    X_holes, X_test_holes = X_train.copy(), X_test.copy()
    X_holes[rng.random(X_holes.shape) < 0.3] = np.nan
    X_test_holes[rng.random(X_test_holes.shape) < 0.3] = np.nan
    X_holes[0, np.isnan(X_holes).all(axis=0)] = 0.0
    model = m2(n_eval_samples=20, label_posterior="generative").fit(
        X_holes, hide_labels(y_train, 100)
    )
    generative = model.score(X_test_holes, y_test)
    inference = model.set_params(label_posterior="inference").score(X_test_holes, y_test)
    check("M2 Bayes-rule accuracy, 30% missing", generative, ">", 0.62)
    check("Bayes-rule minus classifier-network accuracy", generative - inference, ">", 0.08)


def test_m2_classifier_mask_dropout_hides_observed_entries_from_the_network(digits):
    # The classification term's labelled rows reach the network with about that share of
    # their (all observed) pixels masked; the generative bound and 0.0 (the default) see all.
    X_train, _, y_train, _ = digits
    X, y = X_train[:300], hide_labels(y_train, 50)[:300]
    seen = []

    def recorded(fitted_model):
        label_posterior = fitted_model.label_posterior

        def spy(x, mask, *args):
            seen.append(float(mask.mean()))
            return label_posterior(x, mask, *args)

        return spy

    for dropout in (0.0, 0.3):
        seen.clear()
        model = m2(n_epochs=2, classifier_mask_dropout=dropout)
        original = model._build_model

        def build(original=original):
            built = original()
            built.label_posterior = recorded(built)
            return built

        model._build_model = build
        model.fit(X, y)
        # Every step calls the network twice: on the batch's unlabelled rows inside the bound
        # (all pixels observed) and on the classification term's labelled rows.
        full = [fraction for fraction in seen if fraction == 1.0]
        masked = [fraction for fraction in seen if fraction != 1.0]
        assert len(full) == len(masked) if dropout else len(masked) == 0
        assert all(abs(fraction - (1 - dropout)) < 0.05 for fraction in masked)
    with pytest.raises(ValueError, match="classifier_mask_dropout"):
        m2(classifier_mask_dropout=1.0).fit(X, y)


def _small_adgm(auxiliary_dim: int, fixed_auxiliary: bool = True):
    import torch

    from impute_dgm.distributions.likelihoods import GaussianLikelihood
    from impute_dgm.distributions.priors import StandardNormalPrior
    from impute_dgm.models import LabelledLatentVariableModel

    torch.manual_seed(seed(3))
    model = LabelledLatentVariableModel(
        n_features=3, n_classes=3, latent_dim=2, hidden_dims=(16,),
        likelihood=GaussianLikelihood(), prior=StandardNormalPrior(2),
        auxiliary_dim=auxiliary_dim,
    )  # fmt: skip
    if auxiliary_dim and fixed_auxiliary:
        # q(a | x) = N(0.2, 1) and p(a | x, y, z) = N(0, 0.69^2) whatever their inputs: a
        # proposal wider than its target, so that a's importance weights have a finite
        # variance and 100,000 draws pin the estimate down (random networks give heavy tails).
        for network, loc, raw_scale in (
            (model.auxiliary_encoder, 0.2, math.log(math.e - 1)),
            (model.auxiliary_decoder, 0.0, 0.0),
        ):
            last = network.net[-1]
            with torch.no_grad():
                last.weight.zero_()
                last.bias[:auxiliary_dim] = loc
                last.bias[auxiliary_dim:] = raw_scale
    x = torch.randn(4, 3)
    mask = torch.ones(4, 3)
    mask[1, 0] = mask[2, 2] = 0.0
    return model, x * mask, mask


@pytest.mark.parametrize("auxiliary_dim", [0, 2])
def test_adgm_bound_estimates_the_same_marginal_as_m2(auxiliary_dim):
    # The auxiliary variable changes the proposal, not the model: p(a | x, y, z) integrates
    # to 1, so with many draws the bound on log p(x_obs, y) must reach the value computed
    # without a, log E_p(z)[p(x_obs | y, z)] + log p(y) (prior sampling, 2-d z), from below.
    # Wrong weights for a converge elsewhere: without log q(a | x) about 2.3 nats lower, with
    # the ratio p / q inverted about 4 nats higher (measured on these rows).
    import torch

    model, x, mask = _small_adgm(auxiliary_dim)
    generator = torch.Generator().manual_seed(seed(4))
    with torch.no_grad():
        z = torch.randn(200_000, 1, 2, generator=generator).expand(-1, 4, -1)
        truth = torch.stack(
            [
                torch.logsumexp(
                    (
                        model.observation_model(z, torch.eye(3)[c].expand(4, 3)).log_prob(x) * mask
                    ).sum(-1),
                    dim=0,
                )
                - np.log(len(z))
                + model.log_label_prior
                for c in range(3)
            ],
            dim=-1,
        )
        many = model.bounds_per_class(
            x, mask, torch.randn(100_000, 1, model.noise_dim, generator=generator)
        )
        few = torch.stack(
            [
                model.bounds_per_class(
                    x, mask, torch.randn(2, 1, model.noise_dim, generator=generator)
                )
                for _ in range(400)
            ]
        ).mean(0)
    assert model.noise_dim == 2 + auxiliary_dim
    assert torch.allclose(many, truth, atol=0.05), (many, truth)
    # The bound tightens with the number of draws: 2 draws fall short of 100,000.
    assert (few < many - 0.01).all(), (few, many)


def test_adgm_gradients_reach_the_auxiliary_networks():
    import torch

    model, x, mask = _small_adgm(2, fixed_auxiliary=False)
    noise = torch.randn(3, 4, model.noise_dim)
    unlabelled = model.unlabelled_bound(x, mask, noise).sum()
    unlabelled.backward()
    for network in (model.auxiliary_encoder, model.auxiliary_decoder, model.classifier):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters())
    # q(y | x) with a: the mean of q(y | a_k, x) over the draws of a.
    with torch.no_grad():
        mixture = model.label_posterior(x, mask, noise).probs
        view = model.encoder_view(x, mask)
        draws, _ = model._auxiliary_draws(view, mask, noise)
        by_hand = torch.stack(
            [model._label_posterior_from_view(view, mask, draws[k]).probs for k in range(3)]
        ).mean(0)
    assert torch.allclose(mixture, by_hand, atol=1e-6)


def test_adgm_classifier_fits_predicts_and_round_trips(digits, tmp_path):
    X_train, X_test, y_train, _ = digits
    X_holes = X_test[:20].copy()
    X_holes[np.random.default_rng(seed(5)).random(X_holes.shape) < 0.3] = np.nan
    model = m2(n_epochs=2, auxiliary_dim=4, n_eval_samples=5).fit(X_train, hide_labels(y_train, 50))
    assert model.model_.auxiliary_dim == 4
    for mode in ("inference", "generative", "product"):
        model.set_params(label_posterior=mode)
        probabilities = model.predict_proba(X_holes)
        assert probabilities.shape == (20, 10)
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        assert np.array_equal(probabilities, model.predict_proba(X_holes))  # common draws
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.predict_proba(X_holes), model.predict_proba(X_holes))
    save_estimator(model, tmp_path / "adgm")
    loaded = load_estimator(tmp_path / "adgm")
    assert loaded.auxiliary_dim == 4
    assert np.array_equal(loaded.predict_proba(X_holes), model.predict_proba(X_holes))
    again = clone(model).fit(X_train, hide_labels(y_train, 50))
    assert np.array_equal(again.predict_proba(X_holes), model.predict_proba(X_holes))
    with pytest.raises(ValueError, match="auxiliary_dim"):
        m2(auxiliary_dim=-1).fit(X_train, hide_labels(y_train, 50))


@pytest.mark.parametrize("auxiliary_dim", [0, 2])
def test_a_partly_labelled_batch_gets_each_rows_own_bound_without_a_host_round_trip(
    auxiliary_dim,
):
    """Labelled rows get the labelled bound of their class, the others the unlabelled bound,
    with the same draws, and the batch is never split by label: splitting needs its row counts
    on the host (``aten::nonzero``, ``aten::_local_scalar_dense``), a wait for the GPU at every
    training step on CUDA."""
    import torch
    from torch.profiler import profile

    model, x, mask = _small_adgm(auxiliary_dim, fixed_auxiliary=False)
    labels = torch.tensor([2, -1, 0, -1])
    noise = torch.randn(5, 4, model.noise_dim, generator=torch.Generator().manual_seed(0))
    with profile() as profiler:
        bounds = model.partially_labelled_bound(x, mask, labels, noise)
        bounds.sum().backward()
    names = {event.name for event in profiler.events()}
    assert not names & {"aten::nonzero", "aten::_local_scalar_dense", "aten::item"}
    with torch.no_grad():
        for row, label in enumerate(labels.tolist()):
            rows = slice(row, row + 1)
            if label >= 0:
                one_hot = torch.nn.functional.one_hot(torch.tensor([label]), 3).float()
                expected = model.labelled_bound(x[rows], mask[rows], one_hot, noise[:, rows])
            else:
                expected = model.unlabelled_bound(x[rows], mask[rows], noise[:, rows])
            assert torch.allclose(bounds[row], expected[0], atol=1e-5), (row, bounds, expected)
    # Gradients reach the classifier through the unlabelled rows.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())
