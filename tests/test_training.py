"""The shared Trainer, on a model small enough to reason about."""

import math

import pytest
import torch
from statistical import check, seed
from torch import nn

from impute_dgm.training import Trainer


def regression_data(n=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=generator)
    return x, y


def mse_loss(model):
    def loss(batch, generator):
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def evaluate(data):
        x, y = data
        return float(((model(x) - y) ** 2).mean())

    return loss, evaluate


@pytest.mark.statistical
def test_trainer_fits_a_linear_model():
    torch.manual_seed(seed(0))
    model = nn.Linear(3, 1)
    loss, evaluate = mse_loss(model)
    x, y = regression_data(seed=seed(0))
    history = Trainer(n_epochs=60, batch_size=32, lr=0.05).fit(
        model, loss, (x, y), torch.Generator().manual_seed(seed(0))
    )
    # The noise variance is 0.01: a converged fit ends near it, far below where it started.
    check("final training MSE", history.train_loss[-1], "<", 0.05)
    assert history.train_loss[0] > 0.05
    error = (model.weight.detach() - torch.tensor([[1.0, -2.0, 0.5]])).abs().max()
    check("largest |weight - true weight|", error, "<", 0.1)
    assert history.best_epoch == 59 and not history.stopped_early


def test_early_stopping_restores_the_best_weights():
    """An over-parameterised net on 20 noisy rows overfits; the weights kept are those of the
    epoch with the lowest validation loss, not the last ones."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 256), nn.Tanh(), nn.Linear(256, 1))
    loss, evaluate = mse_loss(model)
    x, y = regression_data(20, seed=1)
    y = y + torch.randn(20, 1, generator=torch.Generator().manual_seed(2))
    x_val, y_val = regression_data(200, seed=3)
    history = Trainer(n_epochs=2000, batch_size=20, lr=0.01, patience=50).fit(
        model, loss, (x, y), torch.Generator().manual_seed(0), (x_val, y_val), evaluate
    )
    assert history.stopped_early
    best = min(history.validation_loss)
    assert history.validation_loss[history.best_epoch] == best
    assert len(history.validation_loss) == history.best_epoch + 1 + 50
    with torch.no_grad():
        assert evaluate((x_val, y_val)) == pytest.approx(best, rel=1e-6)
    assert history.validation_loss[-1] > best


def test_non_finite_loss_is_reported():
    model = nn.Linear(3, 1)

    def loss(batch, generator):
        return model(batch[0]).sum() * math.inf

    with pytest.raises(FloatingPointError, match="training loss"):
        Trainer(n_epochs=2, batch_size=8, lr=0.1).fit(
            model, loss, regression_data(16), torch.Generator()
        )


def test_warmup_epochs_are_not_watched_by_early_stopping():
    """A validation loss that only grows would stop training after ``patience`` epochs; with
    warm-up, the first epochs neither count nor become the kept best."""
    model = nn.Linear(3, 1)
    loss, _ = mse_loss(model)
    started = []
    growing = iter(range(100))
    history = Trainer(
        n_epochs=30,
        batch_size=8,
        lr=0.01,
        patience=2,
        warmup_epochs=5,
        on_epoch_start=started.append,
    ).fit(
        model,
        loss,
        regression_data(16),
        torch.Generator().manual_seed(0),
        regression_data(16, seed=1),
        lambda data: float(next(growing)),
    )
    assert started[:3] == [0, 1, 2]
    assert history.best_epoch == 5  # the first epoch after warm-up
    assert len(history.train_loss) == 5 + 1 + 2 and history.stopped_early


def test_kl_warmup_anneals_the_prior_term_of_the_vae_bound():
    from impute_dgm.distributions.likelihoods import GaussianLikelihood
    from impute_dgm.distributions.priors import StandardNormalPrior
    from impute_dgm.model import DeepLatentVariableModel

    torch.manual_seed(0)
    model = DeepLatentVariableModel(4, 2, (8,), GaussianLikelihood(), StandardNormalPrior(2))
    x = torch.randn(5, 4)
    mask = torch.ones(5, 4)
    noise = torch.randn(3, 5, 2)
    zero = model.importance_samples(x, mask, noise, kl_weight=0.0)
    full = model.importance_samples(x, mask, noise, kl_weight=1.0)
    log_px = zero.observation.log_prob(x).sum(-1)
    assert torch.allclose(zero.log_weights, log_px)
    posterior = model.posterior(x, mask)
    kl_term = model.prior().log_prob(full.z) - posterior.log_prob(full.z)
    assert torch.allclose(full.log_weights, log_px + kl_term, atol=1e-5)
