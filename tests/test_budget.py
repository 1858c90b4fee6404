"""The training budget that fits the table, and the imputer's early-stopping signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from impute_dgm import FlowDensityEstimator, VAEClassifier, VAEImputer
from impute_dgm.budget import (
    MAX_BATCH_MULTIPLE,
    ROWS_SEEN_EXPONENT,
    SMALL_TABLE_ROWS,
    TrainingBudget,
    auto_batch_size,
    auto_n_epochs,
    resolve_budget,
    with_minimum_steps,
)
from impute_dgm.estimators._vae import BaseVAE
from impute_dgm.hidden_cells import HIDDEN_FRACTION, ROWS_PER_CHUNK, HiddenCellError


@pytest.mark.parametrize("n_rows", [1, 50, 569, SMALL_TABLE_ROWS])
def test_small_tables_train_as_before(n_rows):
    budget = resolve_budget(n_rows, "auto", "auto", "auto", base_n_epochs=300, base_batch_size=64)
    assert (budget.n_epochs, budget.batch_size, budget.early_stopping) == (300, 64, False)


def test_rows_seen_grow_far_slower_than_the_table():
    rows_seen = {n: n * auto_n_epochs(n, 300) for n in (10_000, 100_000, 1_000_000)}
    for small, large in ((10_000, 100_000), (100_000, 1_000_000)):
        exponent = np.log(rows_seen[large] / rows_seen[small]) / np.log(large / small)
        # Epochs are whole numbers: the exponent is ROWS_SEEN_EXPONENT up to rounding up.
        assert ROWS_SEEN_EXPONENT - 0.01 < exponent < ROWS_SEEN_EXPONENT + 0.05
    # Fewer epochs as the table grows, but more rows seen in all.
    assert auto_n_epochs(10_000, 300) > auto_n_epochs(100_000, 300) > auto_n_epochs(10**6, 300)
    assert rows_seen[10**6] > rows_seen[100_000] > rows_seen[10_000] > 300 * SMALL_TABLE_ROWS


def test_imputer_keeps_the_full_budget_to_16k_rows_then_grows_rows_seen_slowly():
    # At 10,000 rows the common rule's 161 epochs imputed 1.4-1.6% worse than 300 (three
    # seeds); a million rows keep the 7 epochs measured to fit in minutes.
    imputer = VAEImputer()
    assert imputer._budget(10_000) == TrainingBudget(300, 64, False)
    assert imputer._budget(16_384) == TrainingBudget(300, 128, False)
    assert imputer._budget(16_385).early_stopping
    assert imputer._budget(10**6) == TrainingBudget(7, 512, True)
    assert VAEImputer(missingness="self_masking")._budget(10_000).n_epochs == 300
    # Rows seen are continuous at the threshold and grow far slower than the table beyond it.
    rows_seen = {n: n * imputer._budget(n).n_epochs for n in (16_384, 16_385, 10**5, 10**6)}
    assert rows_seen[16_385] - rows_seen[16_384] < 16_385
    exponent = np.log(rows_seen[10**6] / rows_seen[10**5]) / np.log(10)
    assert 0.0 < exponent < 0.15
    # The other estimators keep the common rule.
    assert VAEClassifier()._budget(10_000).early_stopping
    assert FlowDensityEstimator()._budget(10_000).n_epochs < 400


def test_full_budget_rows_and_exponent_shape_the_rule():
    keep = dict(base_n_epochs=300, base_batch_size=64, full_budget_rows=20_000)
    assert resolve_budget(20_000, "auto", "auto", "auto", **keep) == TrainingBudget(300, 128, False)
    beyond = resolve_budget(80_000, "auto", "auto", "auto", rows_seen_exponent=0.5, **keep)
    assert beyond == TrainingBudget(150, 256, True)  # 300 x 20,000 x 2 rows seen


def test_batch_doubles_when_the_table_quadruples_up_to_a_cap():
    assert auto_batch_size(SMALL_TABLE_ROWS * 4 - 1, 64) == 64
    assert auto_batch_size(SMALL_TABLE_ROWS * 4, 64) == 128
    assert auto_batch_size(SMALL_TABLE_ROWS * 16, 64) == 256
    assert auto_batch_size(10**12, 64) == 64 * MAX_BATCH_MULTIPLE


def test_explicit_settings_are_kept():
    budget = resolve_budget(10**6, 12, 32, False, base_n_epochs=300, base_batch_size=64)
    assert (budget.n_epochs, budget.batch_size, budget.early_stopping) == (12, 32, False)
    assert resolve_budget(10**6, "auto", "auto", "auto", base_n_epochs=300,
                          base_batch_size=64).early_stopping  # fmt: skip


def test_estimators_resolve_their_own_base_budget():
    X = np.random.default_rng(0).normal(size=(40, 3))
    imputer = VAEImputer(n_epochs=2, hidden_dims=(8,), random_state=0).fit(X)
    assert (imputer.budget_.batch_size, imputer.budget_.early_stopping) == (64, False)
    flow = FlowDensityEstimator(n_layers=2, hidden_dims=(8,), n_epochs=2, random_state=0).fit(X)
    assert flow.budget_.batch_size == 128 and flow.budget_.early_stopping  # flows: True default
    assert VAEClassifier()._budget(100).n_epochs == 100
    assert VAEImputer()._budget(100).n_epochs == 300


@pytest.mark.parametrize(
    ("n_rows", "n_epochs"),
    # 64-row batches: 333 rows make 6 steps an epoch, 1,000 make 16 (6,000 / 16 = 375),
    # 1,217 and more at least 20 (300 epochs already make 6,000 steps).
    [(100, 300), (255, 300), (256, 600), (333, 600), (640, 600), (641, 546), (1000, 375),
     (1216, 316), (1217, 300), (SMALL_TABLE_ROWS, 300)],
)  # fmt: skip
def test_imputer_gives_small_tables_a_floor_of_gradient_steps(n_rows, n_epochs):
    budget = VAEImputer()._budget(n_rows)
    assert (budget.n_epochs, budget.batch_size, budget.early_stopping) == (n_epochs, 64, False)
    steps = budget.n_epochs * -(-n_rows // budget.batch_size)
    assert steps >= 6000 or n_rows < 256 or budget.n_epochs == 600


def test_step_floor_leaves_other_settings_and_models_alone():
    # Large tables keep the common rule; explicit epochs and the self-masking model (its own
    # 16-row batches already make four times the steps) are left as they are.
    assert VAEImputer()._budget(10**6) == BaseVAE._budget(VAEImputer(), 10**6)
    assert VAEImputer(n_epochs=50)._budget(600).n_epochs == 50
    assert VAEImputer(missingness="self_masking")._budget(600).n_epochs == 300
    # A larger batch makes fewer steps an epoch, so the floor asks for more epochs (capped).
    assert VAEImputer(batch_size=128)._budget(1000).n_epochs == 600  # 8 steps an epoch
    assert VAEImputer(batch_size=512)._budget(2000).n_epochs == 600
    base = resolve_budget(2000, "auto", "auto", "auto", base_n_epochs=300, base_batch_size=64)
    floor = dict(min_steps=6000, max_epochs=600, min_rows=256)
    assert with_minimum_steps(base, 2000, "auto", **floor) == base  # 32 steps an epoch
    assert with_minimum_steps(base, 2000, 300, **floor) == base
    X = np.random.default_rng(0).normal(size=(300, 3))
    fitted = VAEImputer(hidden_dims=(8,), latent_dim=2, batch_size=300, random_state=0)
    fitted.set_params(n_eval_samples=5).fit(X)  # one step an epoch: 600 epochs, 600 steps
    assert fitted.budget_.n_epochs == 600 and fitted.n_epochs_ == 600


@pytest.mark.parametrize(
    "small_batch_model",
    [VAEImputer(missingness="self_masking"), VAEClassifier()],
    ids=["self-masking imputer", "M2"],
)
def test_models_with_small_batches_take_them_on_small_tables_only(small_batch_model):
    assert small_batch_model._budget(600).batch_size == 16
    assert small_batch_model._budget(SMALL_TABLE_ROWS).batch_size == 16
    # Beyond, exactly the common rule (BaseVAE's, without the override), early stopping on.
    beyond = small_batch_model._budget(10**6)
    assert beyond == BaseVAE._budget(small_batch_model, 10**6)
    assert beyond.early_stopping
    assert clone(small_batch_model).set_params(batch_size=64)._budget(600).batch_size == 64
    X = np.random.default_rng(0).normal(size=(40, 3))
    X[::4, 0] = np.nan
    y = np.where(np.arange(40) % 4 == 0, np.arange(40) % 2, -1)  # the imputer ignores y
    fitted = clone(small_batch_model).set_params(n_epochs=1, hidden_dims=(8,), random_state=0)
    assert fitted.fit(X, y).budget_.batch_size == 16


def test_hidden_cell_error_by_hand():
    generator = torch.Generator().manual_seed(0)
    x = torch.tensor(np.random.default_rng(1).normal(size=(400, 3)), dtype=torch.float64)
    x[:, 2] = torch.tensor(np.random.default_rng(2).integers(0, 3, 400), dtype=torch.float64)
    mask = torch.ones_like(x)
    mask[::7, 0] = 0
    categorical = torch.tensor([False, False, True])
    seen = []

    def impute_zeros(inputs, kept):
        seen.append(kept.clone())
        return torch.zeros_like(inputs)

    signal = HiddenCellError(impute_zeros, categorical, generator)
    error = signal((x, mask))
    hidden = signal.hidden
    # Only observed cells are hidden, about HIDDEN_FRACTION of them, and the imputation does
    # not see them.
    assert not (hidden & (mask == 0)).any()
    assert abs(hidden.float().mean().item() - HIDDEN_FRACTION * mask.mean().item()) < 0.05
    assert len(seen) == -(-400 // ROWS_PER_CHUNK)  # in chunks of rows
    assert (torch.cat(seen)[hidden] == 0).all()
    observed = mask > 0
    variance = [x[observed[:, j], j].var(unbiased=False) for j in range(2)]
    per_cell = torch.stack(
        [x[:, 0] ** 2 / variance[0], x[:, 1] ** 2 / variance[1], (x[:, 2] != 0).double()], 1
    )
    assert error == pytest.approx(per_cell[hidden].mean().item())
    # The same cells on every call; a perfect imputation scores 0.
    assert signal((x, mask)) == error
    true_chunks = iter(x.split(ROWS_PER_CHUNK))
    perfect = HiddenCellError(lambda inputs, kept: next(true_chunks), categorical, generator)
    assert perfect((x, mask)) == 0.0


def test_hidden_cell_error_of_a_column_constant_in_the_held_out_rows_is_its_raw_error():
    """Found on digits (pixels 0 in every held-out row): in float32 the mean of 60 copies of
    -1.999 misses it by an ulp, a spread of 6e-14 divided that column's errors into the 1e13s,
    and early stopping kept the first epoch's weights."""
    value = -1.999
    x = torch.full((60, 2), value, dtype=torch.float32)
    x[:, 1] = torch.linspace(-1.0, 1.0, 60)
    mask = torch.ones_like(x)
    signal = HiddenCellError(
        lambda inputs, kept: torch.zeros_like(inputs),
        torch.tensor([False, False]),
        torch.Generator().manual_seed(0),
    )
    signal((x, mask))
    hidden_constant = signal.hidden[:, 0]
    assert hidden_constant.any()
    assert signal.variance[0] == 1.0  # no spread: the raw squared error counts
    per_cell = torch.stack([x[:, 0] ** 2, x[:, 1] ** 2 / x[:, 1].var(unbiased=False)], 1)
    assert signal((x, mask)) == pytest.approx(per_cell[signal.hidden].mean().item(), rel=1e-5)


def test_imputer_early_stopping_watches_hidden_cell_error():
    """On a table with structure, the signal falls as the model learns it, and the fit keeps
    the weights of its best epoch."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(600, 2))
    X = latent @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.2] = np.nan
    imputer = VAEImputer(
        n_epochs=40, hidden_dims=(32,), early_stopping=True, n_iter_no_change=40, random_state=0
    ).fit(X)
    losses = imputer.history_.validation_loss
    assert len(losses) == 40
    # Hidden cells of standardised columns: about 1 for a model that knows nothing, far less
    # once the two-dimensional structure is learnt.
    assert losses[0] > 0.3 and min(losses) < 0.5 * losses[0]
    assert imputer.history_.best_epoch == int(np.argmin(losses))
