"""The one training loop: mini-batches, Adam, early stopping on held-out rows, progress, callbacks.

Every estimator hands the :class:`Trainer` a model, a loss (a callable on a mini-batch) and
its data tensors; the loop knows nothing about VAEs or flows. Run in a process of an
initialised ``torch.distributed`` group (e.g. under ``TorchDistributor``, see
:mod:`impute_dgm.integrations.spark`), the same loop trains data-parallel: each rank its share
of the rows, the loss behind ``DistributedDataParallel`` so that gradients are all-reduced.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import distributed, nn
from torch.nn.parallel import DistributedDataParallel

from impute_dgm._denormals import flush_denormals
from impute_dgm._progress import progress_bar


class Callback(Protocol):
    """Called at the end of every epoch with the epoch number and the logged values."""

    def __call__(self, epoch: int, logs: dict[str, float]) -> None: ...


Loss = Callable[[Sequence[torch.Tensor], torch.Generator], torch.Tensor]
Evaluate = Callable[[Sequence[torch.Tensor]], float]


def process_group() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside an initialised process group."""
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank(), distributed.get_world_size()
    return 0, 1


class _LossModule(nn.Module):
    """The model with its loss as ``forward``: what ``DistributedDataParallel`` wraps, so that
    every parameter the loss reaches has its gradient all-reduced."""

    def __init__(self, model: nn.Module, loss: Loss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: Sequence[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        return self.loss(batch, generator)


def _shard(rows: torch.Tensor, generator: torch.Generator, rank: int, world: int) -> torch.Tensor:
    """This rank's rows (indices into the data): equal shares of one permutation of ``rows``
    (every rank draws the same one from the same seed), so that every rank takes the same
    number of steps."""
    n_rows = rows.shape[0]
    order = torch.randperm(n_rows, generator=generator, device=generator.device)
    share = n_rows // world
    if share == 0:
        raise ValueError(f"{n_rows} training rows cannot be shared among {world} processes.")
    return rows[order[rank * share : (rank + 1) * share].to(rows.device)]


def _adam(parameters: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, as one fused kernel per step where the parameters' device has it (CPU, CUDA):
    PyTorch's CPU default updates tensor by tensor in Python (366 against 96 microseconds a
    step for VAEImputer's default network: 2-3% of a small table's fit)."""
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _agreed(value: float, world: int, device: torch.device) -> float:
    """Rank 0's value on every rank (early stopping is decided once for all)."""
    if world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    distributed.broadcast(tensor, src=0)
    return float(tensor.item())


@dataclass
class TrainingHistory:
    """Per-epoch record of a fit.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss per epoch.
    validation_loss : list of float
        Held-out loss per epoch (empty without validation).
    best_epoch : int
        Epoch whose weights were kept (last epoch without validation).
    stopped_early : bool
        Whether early stopping ended the fit.
    interrupted : bool
        Whether a KeyboardInterrupt (Ctrl-C) ended the fit.
    seconds : float
        Wall-clock time of the loop.
    """

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0


# "plateau" schedule: the learning rate is multiplied by this at each plateau ...
PLATEAU_FACTOR = 0.3
# ... at most this many times before early stopping may end the fit.
PLATEAU_REDUCTIONS = 3


@dataclass
class Trainer:
    """Adam on mini-batches with early stopping on a validation loss.

    Parameters
    ----------
    n_epochs : int
        Maximum passes over the training rows.
    batch_size : int
        Rows per step (capped at the number of training rows).
    lr : float
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam weight decay.
    patience : int or None, default=None
        Stop after this many epochs without a validation improvement; None trains all epochs.
    lr_schedule : {"constant", "cosine", "plateau"}, default="constant"
        "cosine" anneals the learning rate per step from ``lr`` to ``lr / 100`` over
        ``n_epochs`` (Loshchilov & Hutter, 2017). "plateau" divides it by
        ``1 / PLATEAU_FACTOR`` each time the validation loss (the training loss without
        validation) has not improved for ``patience`` epochs, at most ``PLATEAU_REDUCTIONS``
        times; early stopping then waits for the last reduction to run out of patience too. A
        noisy plateau on a hard density gets a smaller step instead of the end of training,
        and an easy one still stops a few patience windows after its best epoch.
    verbose : int, default=0
        0 silent, >=1 a tqdm bar over epochs.
    callbacks : sequence of Callback
        Called after each epoch with ``{"train_loss": ..., "validation_loss": ...}``.
    description : str, default="training"
        Label of the progress bar.
    warmup_epochs : int, default=0
        Epochs during which early stopping neither keeps weights nor counts patience (the
        loss is still changing by design then, e.g. during KL warm-up).
    on_epoch_start : callable (epoch) -> None, optional
        Called before each epoch (e.g. to set an annealed weight).
    weight_averaging : float or None, default=None
        Decay of an exponential moving average of the weights, updated after every step
        (Polyak averaging, as Glow and Flow++ evaluate); validation, early stopping and the
        returned model then use the averaged weights, which smooth away the last steps' noise.
        None trains and returns the raw weights.
    """

    n_epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    patience: int | None = None
    lr_schedule: str = "constant"
    verbose: int = 0
    callbacks: Sequence[Callback] = ()
    description: str = "training"
    warmup_epochs: int = 0
    on_epoch_start: Callable[[int], None] | None = None
    weight_averaging: float | None = None

    # Subnormal floats (e.g. Adam's moments of near-zero gradients) slow CPU steps a lot; the
    # decorator scopes the flush to each call.
    @flush_denormals()
    def fit(
        self,
        model: nn.Module,
        loss: Loss,
        train_data: Sequence[torch.Tensor],
        generator: torch.Generator,
        validation_data: Sequence[torch.Tensor] | None = None,
        evaluate: Evaluate | None = None,
        train_rows: torch.Tensor | None = None,
    ) -> TrainingHistory:
        """Train ``model`` in place and return its history.

        Parameters
        ----------
        model : nn.Module
            Its parameters are optimised; with validation, the best weights are restored.
        loss : callable (batch, generator) -> scalar tensor
            Mean loss on a mini-batch (a tuple of row-aligned tensors).
        train_data : sequence of tensors
            Row-aligned tensors on the model's device.
        generator : torch.Generator
            Drives shuffling and whatever randomness ``loss`` draws.
        validation_data : sequence of tensors, optional
            Held-out rows for early stopping.
        evaluate : callable (data) -> float, optional
            Validation loss; required with ``validation_data``.
        train_rows : tensor of int64, optional
            The rows of ``train_data`` to train on (default: all). Batches are drawn by
            index, so holding rows out this way copies nothing of the table.
        """
        history = TrainingHistory()
        start = time.perf_counter()
        optimizer = _adam(list(model.parameters()), self.lr, self.weight_decay)
        rank, world = process_group()
        batch_size = self.batch_size
        step_loss = loss
        device = train_data[0].device
        rows = train_rows
        if world > 1:
            if rows is None:
                rows = torch.arange(train_data[0].shape[0], device=device)
            rows = _shard(rows, generator, rank, world)
            # The same rows per step in all as one process would take, split among the ranks.
            batch_size = max(1, self.batch_size // world)
            generator = torch.Generator(generator.device).manual_seed(
                generator.initial_seed() + 7919 * rank
            )
            step_loss = DistributedDataParallel(_LossModule(model, loss))
        n_rows = train_data[0].shape[0] if rows is None else rows.shape[0]
        batch_size = max(1, min(batch_size, n_rows))
        n_batches = math.ceil(n_rows / batch_size)
        scheduler = None
        if self.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=self.n_epochs * n_batches, eta_min=self.lr / 100
            )
        elif self.lr_schedule not in ("constant", "plateau"):
            raise ValueError(
                f"lr_schedule={self.lr_schedule!r} is not 'constant', 'cosine' or 'plateau'."
            )
        averaged = None
        if self.weight_averaging is not None:
            averaged = torch.optim.swa_utils.AveragedModel(
                model,
                multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(self.weight_averaging),
                use_buffers=True,
            )
        plateau_patience = self.patience if self.patience is not None else 10
        plateau_best, plateau_wait, reductions = math.inf, 0, 0
        use_validation = validation_data is not None and evaluate is not None
        best_loss, best_state, epochs_without_improvement = math.inf, None, 0
        finished_state = None
        progress = progress_bar(
            range(self.n_epochs),
            show=self.verbose >= 1 and rank == 0,
            description=self.description,
            unit="epoch",
        )
        try:
            for epoch in progress:
                if self.on_epoch_start is not None:
                    self.on_epoch_start(epoch)
                model.train()
                order = torch.randperm(n_rows, generator=generator, device=generator.device)
                if rows is not None:
                    order = rows[order.to(rows.device)]
                total = torch.zeros((), dtype=torch.float64, device=device)
                for b in range(n_batches):
                    index = order[b * batch_size : (b + 1) * batch_size]
                    batch_loss = step_loss([tensor[index] for tensor in train_data], generator)
                    optimizer.zero_grad(set_to_none=True)
                    batch_loss.backward()
                    optimizer.step()
                    if averaged is not None:
                        averaged.update_parameters(model)
                    if scheduler is not None:
                        scheduler.step()
                    # Summed on the device: no host round trip per step.
                    total += batch_loss.detach().to(total.dtype) * len(index)
                if world > 1:
                    distributed.all_reduce(total)
                logs = {"train_loss": float(total) / (n_rows * world)}
                history.train_loss.append(logs["train_loss"])
                # Validation and kept weights see the averaged weights; training resumes from
                # the raw ones.
                raw_state = _swap_in(model, averaged) if averaged is not None else None
                if not use_validation:
                    # What Ctrl-C in a later epoch falls back to (a step may be half done then).
                    finished_state = copy.deepcopy(model.state_dict())
                if use_validation:
                    model.eval()
                    with torch.no_grad():
                        logs["validation_loss"] = _agreed(
                            float(evaluate(validation_data)), world, device
                        )
                    history.validation_loss.append(logs["validation_loss"])
                    if epoch < self.warmup_epochs:
                        pass  # the loss is still being annealed: neither a best nor patience
                    elif logs["validation_loss"] < best_loss:
                        best_loss, epochs_without_improvement = logs["validation_loss"], 0
                        best_state = copy.deepcopy(model.state_dict())
                        history.best_epoch = epoch
                    else:
                        epochs_without_improvement += 1
                if raw_state is not None:
                    model.load_state_dict(raw_state)
                if self.lr_schedule == "plateau" and epoch >= self.warmup_epochs:
                    signal = logs.get("validation_loss", logs["train_loss"])
                    plateau_best, plateau_wait = (
                        (signal, 0) if signal < plateau_best else (plateau_best, plateau_wait + 1)
                    )
                    if plateau_wait >= plateau_patience and reductions < PLATEAU_REDUCTIONS:
                        reductions, plateau_wait, epochs_without_improvement = reductions + 1, 0, 0
                        for group in optimizer.param_groups:
                            group["lr"] *= PLATEAU_FACTOR
                for callback in self.callbacks if rank == 0 else ():
                    callback(epoch, logs)
                progress.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
                if not all(math.isfinite(v) for v in logs.values()):
                    raise FloatingPointError(
                        f"The training loss became {logs} at epoch {epoch}; lower lr or raise the "
                        "likelihood's min_scale."
                    )
                if (
                    use_validation
                    and self.patience is not None
                    and epochs_without_improvement >= self.patience
                ):
                    history.stopped_early = True
                    break
        except KeyboardInterrupt:
            # Ctrl-C: keep what was learnt when at least one epoch finished, else stop as asked.
            if not history.train_loss:
                progress.close()
                raise
            history.interrupted = True
            if best_state is None and not use_validation:
                best_state = finished_state
                history.best_epoch = len(history.train_loss) - 1
            kept = (
                f"the weights of epoch {history.best_epoch}"
                if best_state is not None
                else "the weights as they were"
            )
            warnings.warn(
                f"Training interrupted after {len(history.train_loss)} epoch(s); the model keeps "
                f"{kept}.",
                RuntimeWarning,
                stacklevel=3,
            )
        progress.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            history.best_epoch = len(history.train_loss) - 1
            if averaged is not None:
                model.load_state_dict(averaged.module.state_dict())
        model.eval()
        history.seconds = time.perf_counter() - start
        return history


def _swap_in(model: nn.Module, averaged: nn.Module) -> dict:
    """Load the averaged weights (and buffers) into ``model``; return the raw state."""
    raw_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(averaged.module.state_dict())
    return raw_state
