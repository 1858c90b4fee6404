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


def test_train_rows_train_on_those_rows_exactly_as_a_copy_of_them_would():
    # Holding rows out by index (no copy of the table) must not change the fit.
    x, y = regression_data()
    rows = torch.randperm(200, generator=torch.Generator().manual_seed(1))[:150]
    fits = []
    for data, train_rows in (((x, y), rows), ((x[rows], y[rows]), None)):
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        loss, _ = mse_loss(model)
        history = Trainer(n_epochs=3, batch_size=16, lr=0.05).fit(
            model, loss, data, torch.Generator().manual_seed(2), train_rows=train_rows
        )
        fits.append((model.weight.detach().clone(), history.train_loss))
    assert torch.equal(fits[0][0], fits[1][0]) and fits[0][1] == fits[1][1]
    # ... and the held-out rows played no part: different values there, the same fit.
    x_changed = x.clone()
    x_changed[~torch.isin(torch.arange(200), rows)] = 99.0
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    Trainer(n_epochs=3, batch_size=16, lr=0.05).fit(
        model, mse_loss(model)[0], (x_changed, y), torch.Generator().manual_seed(2),
        train_rows=rows,
    )  # fmt: skip
    assert torch.equal(model.weight.detach(), fits[0][0])


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


def test_plateau_schedule_cuts_the_rate_before_stopping():
    """With a validation loss that never improves, "plateau" cuts the rate after each
    ``patience`` epochs, PLATEAU_REDUCTIONS times, then stops: the step a constant gradient
    takes (Adam's is the learning rate) shrinks by PLATEAU_FACTOR at each cut."""
    from impute_dgm.training import PLATEAU_FACTOR, PLATEAU_REDUCTIONS

    weight = nn.Parameter(torch.zeros(()))
    model = nn.Module()
    model.weight = weight
    trajectory = []
    history = Trainer(
        n_epochs=100,
        batch_size=4,
        lr=0.1,
        patience=2,
        lr_schedule="plateau",
        callbacks=[lambda epoch, logs: trajectory.append(float(weight.detach()))],
    ).fit(
        model,
        lambda batch, generator: weight * 1.0,
        (torch.zeros(4, 1),),
        torch.Generator().manual_seed(0),
        (torch.zeros(4, 1),),
        lambda data: 1.0,
    )
    assert history.stopped_early and len(history.train_loss) == 1 + 2 * (PLATEAU_REDUCTIONS + 1)
    steps = -torch.diff(torch.tensor([0.0, *trajectory]))
    expected = [0.1 * PLATEAU_FACTOR ** min(max(epoch - 1, 0) // 2, PLATEAU_REDUCTIONS)
                for epoch in range(len(steps))]  # fmt: skip
    torch.testing.assert_close(steps, torch.tensor(expected), rtol=1e-4, atol=1e-7)
    assert float(weight.detach()) == trajectory[0]  # the best (first) epoch's weights are kept


@pytest.mark.parametrize("validate", [True, False])
def test_weight_averaging_validates_and_keeps_the_moving_average(validate):
    """On a constant gradient Adam's step is the learning rate, so the raw weight after t steps
    is -lr t and its exponential moving average is known step by step. Validation sees the
    average, training continues from the raw weight, and the fit returns the average."""
    decay, lr, rows = 0.9, 0.1, 3
    weight = nn.Parameter(torch.zeros(()))
    model = nn.Module()
    model.weight = weight
    raw, validated = [], []

    def evaluate(data):
        validated.append(float(weight.detach()))
        return -float(len(validated))  # always improving: the last epoch is the best

    Trainer(
        n_epochs=5,
        batch_size=1,
        lr=lr,
        patience=10,
        weight_averaging=decay,
        callbacks=[lambda epoch, logs: raw.append(float(weight.detach()))],
    ).fit(
        model,
        lambda batch, generator: weight * 1.0,
        (torch.zeros(rows, 1),),
        torch.Generator().manual_seed(0),
        (torch.zeros(1, 1),) if validate else None,
        evaluate if validate else None,
    )
    average, averages = None, []
    for step in range(1, 5 * rows + 1):
        average = -lr * step if average is None else decay * average + (1 - decay) * -lr * step
        averages.append(average)
    per_epoch = torch.tensor(averages[rows - 1 :: rows])
    torch.testing.assert_close(torch.tensor(raw), -lr * rows * torch.arange(1.0, 6.0))
    if validate:
        torch.testing.assert_close(torch.tensor(validated), per_epoch)
    assert float(weight.detach()) == pytest.approx(averages[-1], rel=1e-5)


def test_kl_warmup_anneals_the_prior_term_of_the_vae_bound():
    from impute_dgm.distributions.likelihoods import GaussianLikelihood
    from impute_dgm.distributions.priors import StandardNormalPrior
    from impute_dgm.models import DeepLatentVariableModel

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


def interrupting_loss(model, at_step: int):
    """The MSE loss, raising KeyboardInterrupt (Ctrl-C) on its ``at_step``-th call."""
    loss, evaluate = mse_loss(model)
    calls = {"n": 0}

    def interrupted(batch, generator):
        calls["n"] += 1
        if calls["n"] == at_step:
            raise KeyboardInterrupt
        return loss(batch, generator)

    return interrupted, evaluate


def test_ctrl_c_after_an_epoch_keeps_the_last_finished_epoch():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = regression_data()
    snapshots = []
    # 200 rows in batches of 50: four steps an epoch; Ctrl-C in the second step of epoch 3.
    loss, _ = interrupting_loss(model, at_step=4 * 3 + 2)
    trainer = Trainer(
        n_epochs=10, batch_size=50, lr=0.05,
        callbacks=[lambda epoch, logs: snapshots.append(model.weight.detach().clone())],
    )  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"interrupted after 3 epoch\(s\).*epoch 2"):
        history = trainer.fit(model, loss, (x, y), torch.Generator().manual_seed(0))
    assert history.interrupted and len(history.train_loss) == 3 and history.best_epoch == 2
    # The half-done epoch's step is undone: the weights are those at the end of epoch 2.
    assert torch.equal(model.weight, snapshots[2])


def test_ctrl_c_with_early_stopping_keeps_the_best_epoch():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = regression_data()
    loss, evaluate = interrupting_loss(model, at_step=4 * 5 + 1)
    with pytest.warns(RuntimeWarning, match="interrupted after 5 epoch"):
        history = Trainer(n_epochs=10, batch_size=50, lr=0.05, patience=10).fit(
            model, loss, (x, y), torch.Generator().manual_seed(0), (x, y), evaluate
        )
    assert history.best_epoch == min(range(5), key=history.validation_loss.__getitem__)
    assert evaluate((x, y)) == pytest.approx(min(history.validation_loss))


def test_ctrl_c_before_any_epoch_finished_stops_the_fit():
    model = nn.Linear(3, 1)
    loss, _ = interrupting_loss(model, at_step=2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(n_epochs=3, batch_size=50, lr=0.05).fit(
            model, loss, regression_data(), torch.Generator().manual_seed(0)
        )


def test_an_interrupted_estimator_is_fitted_and_says_so():
    import numpy as np

    from impute_dgm import VAEImputer

    X = np.random.default_rng(0).normal(size=(64, 3))
    X[::5, 1] = np.nan

    def ctrl_c(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    imputer = VAEImputer(n_epochs=50, hidden_dims=(8,), callbacks=[ctrl_c], random_state=0)
    with pytest.warns(RuntimeWarning, match="interrupted after 2 epoch"):
        imputer.fit(X)
    assert imputer.n_epochs_ == 2 and imputer.history_.interrupted
    assert np.isfinite(imputer.transform(X)).all()
