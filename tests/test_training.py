"""The shared Trainer, on a model small enough to reason about."""

import math

import pytest
import torch
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


def test_trainer_fits_a_linear_model():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    loss, evaluate = mse_loss(model)
    x, y = regression_data()
    history = Trainer(n_epochs=60, batch_size=32, lr=0.05).fit(
        model, loss, (x, y), torch.Generator().manual_seed(0)
    )
    assert history.train_loss[-1] < 0.05 < history.train_loss[0]
    assert torch.allclose(model.weight.detach(), torch.tensor([[1.0, -2.0, 0.5]]), atol=0.1)
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
