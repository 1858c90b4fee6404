"""How much training a table gets: epochs, batch size and early stopping from its row count.

A fixed number of epochs is right for a few thousand rows and wasteful for a million: a model of
fixed size needs more data seen as the table grows, but far fewer passes over it. With
``n_epochs="auto"`` and ``batch_size="auto"`` an estimator keeps its fixed settings up to
:data:`SMALL_TABLE_ROWS` rows (small tables train exactly as they always did) and beyond that

- the batch grows like the square root of the rows (doubling each time the table quadruples,
  up to ``16 x`` the base batch), so each step averages more rows and costs the same per row;
- the rows seen in all, ``n_epochs x n``, grow like ``n ** ROWS_SEEN_EXPONENT`` from the base
  budget at :data:`SMALL_TABLE_ROWS`, so training time grows far slower than the table;
- ``early_stopping="auto"`` holds out rows and keeps the best weights.

An estimator may keep its fixed epochs (and early stopping off) further than
:data:`SMALL_TABLE_ROWS`, and let the rows seen grow by its own exponent beyond that: the
``full_budget_rows`` and ``rows_seen_exponent`` of :func:`auto_n_epochs` and
:func:`resolve_budget` (VAEImputer does, from measurements at 10,000 rows and a million).

An estimator may also give small tables a floor in gradient steps (:func:`with_minimum_steps`):
a table of a few hundred rows makes only a few steps an epoch, too few in 300 epochs for a
model that has measured as under-trained there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# Tables up to this many rows train with the estimator's base epochs and batch size.
SMALL_TABLE_ROWS = 4096
# Rows seen in training (epochs x rows) grow like n ** ROWS_SEEN_EXPONENT beyond small tables.
ROWS_SEEN_EXPONENT = 0.3
# The automatic batch size stops growing at this multiple of the base batch size.
MAX_BATCH_MULTIPLE = 16


@dataclass(frozen=True)
class TrainingBudget:
    """Resolved training settings for one fit.

    Attributes
    ----------
    n_epochs : int
        Maximum passes over the training rows.
    batch_size : int
        Rows per step.
    early_stopping : bool
        Whether rows are held out for early stopping.
    """

    n_epochs: int
    batch_size: int
    early_stopping: bool


def auto_batch_size(n_rows: int, base_batch_size: int) -> int:
    """``base_batch_size`` up to :data:`SMALL_TABLE_ROWS` rows, then doubled each time the
    table quadruples (square-root growth), at most ``MAX_BATCH_MULTIPLE x`` the base."""
    if n_rows <= SMALL_TABLE_ROWS:
        return base_batch_size
    doublings = math.floor(math.log(n_rows / SMALL_TABLE_ROWS, 4))
    return base_batch_size * min(2**doublings, MAX_BATCH_MULTIPLE)


def auto_n_epochs(
    n_rows: int,
    base_n_epochs: int,
    *,
    full_budget_rows: int = SMALL_TABLE_ROWS,
    rows_seen_exponent: float = ROWS_SEEN_EXPONENT,
) -> int:
    """``base_n_epochs`` up to ``full_budget_rows`` rows; beyond, as many epochs as make
    ``base_n_epochs x full_budget_rows x (n / full_budget_rows) ** rows_seen_exponent`` rows
    seen (at least 2), so the rows seen are continuous in ``n``."""
    if n_rows <= full_budget_rows:
        return base_n_epochs
    growth = (n_rows / full_budget_rows) ** rows_seen_exponent
    rows_seen = base_n_epochs * full_budget_rows * growth
    return max(2, math.ceil(rows_seen / n_rows))


def resolve_budget(
    n_rows: int,
    n_epochs: int | str,
    batch_size: int | str,
    early_stopping: bool | str,
    *,
    base_n_epochs: int,
    base_batch_size: int,
    full_budget_rows: int = SMALL_TABLE_ROWS,
    rows_seen_exponent: float = ROWS_SEEN_EXPONENT,
) -> TrainingBudget:
    """The settings a fit on ``n_rows`` rows uses; ``"auto"`` values follow the rules above.

    Parameters
    ----------
    n_rows : int
        Rows of the table being fitted (before any are held out).
    n_epochs, batch_size : int or "auto"
        As given to the estimator.
    early_stopping : bool or "auto"
        "auto" is on for tables larger than ``full_budget_rows`` rows.
    base_n_epochs, base_batch_size : int
        The estimator's settings for small tables.
    full_budget_rows : int, default=SMALL_TABLE_ROWS
        Tables up to this many rows train ``base_n_epochs`` epochs without early stopping
        (the batch still grows beyond :data:`SMALL_TABLE_ROWS`).
    rows_seen_exponent : float, default=ROWS_SEEN_EXPONENT
        Beyond ``full_budget_rows``, rows seen grow like ``n ** rows_seen_exponent``.

    Returns
    -------
    TrainingBudget
    """
    return TrainingBudget(
        n_epochs=(
            auto_n_epochs(
                n_rows,
                base_n_epochs,
                full_budget_rows=full_budget_rows,
                rows_seen_exponent=rows_seen_exponent,
            )
            if n_epochs == "auto"
            else int(n_epochs)
        ),
        batch_size=(
            auto_batch_size(n_rows, base_batch_size) if batch_size == "auto" else int(batch_size)
        ),
        early_stopping=(
            n_rows > full_budget_rows if early_stopping == "auto" else bool(early_stopping)
        ),
    )


def with_small_table_batch(
    budget: TrainingBudget, n_rows: int, batch_size: int | str, small_table_batch_size: int
) -> TrainingBudget:
    """``budget`` with ``small_table_batch_size`` rows per step when the batch size is "auto"
    and the table has at most :data:`SMALL_TABLE_ROWS` rows; otherwise ``budget`` unchanged.

    For models whose noisier gradients gain from more, smaller steps on small tables (measured
    per estimator); large tables keep the common rule, whose batches grow with the table.
    """
    if batch_size == "auto" and n_rows <= SMALL_TABLE_ROWS:
        return replace(budget, batch_size=small_table_batch_size)
    return budget


def with_minimum_steps(
    budget: TrainingBudget,
    n_rows: int,
    n_epochs: int | str,
    *,
    min_steps: int,
    max_epochs: int,
    min_rows: int,
) -> TrainingBudget:
    """``budget`` with enough epochs for ``min_steps`` gradient steps, at most ``max_epochs``,
    when ``n_epochs`` is "auto" and the table has ``min_rows`` to :data:`SMALL_TABLE_ROWS` rows;
    otherwise ``budget`` unchanged (never fewer epochs than it had).

    Steps per epoch are ``ceil(n_rows / batch_size)``, as the Trainer draws them. Tables under
    ``min_rows`` keep their epochs: with so few rows, training longer overfits sooner than it
    learns. Large tables keep the common rule (early stopping and their own budget).
    """
    if n_epochs != "auto" or not min_rows <= n_rows <= SMALL_TABLE_ROWS:
        return budget
    steps_per_epoch = math.ceil(n_rows / max(1, min(budget.batch_size, n_rows)))
    wanted = min(max_epochs, math.ceil(min_steps / steps_per_epoch))
    return replace(budget, n_epochs=max(budget.n_epochs, wanted))
