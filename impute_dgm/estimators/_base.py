"""What every torch-backed estimator shares: device, seeds, pickling, batched evaluation."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from impute_dgm._device import draw_seed, make_generator, resolve_device, seeded_torch
from impute_dgm.budget import (
    ROWS_SEEN_EXPONENT,
    SMALL_TABLE_ROWS,
    TrainingBudget,
    resolve_budget,
)
from impute_dgm.training import Trainer


def accepts_nan(estimator: Any) -> bool:
    """Whether ``estimator`` takes NaN in X, by its tags; a Pipeline's first step decides
    (scikit-learn's Pipeline does not pass that tag on)."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils import get_tags

    if isinstance(estimator, Pipeline):
        return accepts_nan(estimator.steps[0][1])
    return get_tags(estimator).input_tags.allow_nan


def _floating_masks(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A batch with its bool tensors (masks, stored a byte a cell) in the data's float dtype."""
    return tuple(t.to(batch[0].dtype) if t.dtype == torch.bool else t for t in batch)


class TorchEstimatorMixin:
    """Shared machinery for estimators whose fitted state is a torch module in ``model_``.

    Subclasses implement ``_build_model()``, which must rebuild the architecture from the
    estimator's parameters and fitted attributes alone: pickling stores the ``state_dict`` on
    the CPU and rebuilds the module on load, so a model trained on a GPU unpickles anywhere.
    """

    _torch_parameter_constraints: dict = {
        "n_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"constant", "cosine", "plateau"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"auto", "cpu", "cuda", "mps"}), str, torch.device],
        "eval_dtype": [StrOptions({"auto", "float64", "float32"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    # Held-out rows are only split off when there are at least this many rows in all.
    _min_rows_for_validation = 10
    # Held-out rows at most: enough for a steady signal, and evaluation stays cheap per epoch.
    _max_validation_rows = 10_000
    # What n_epochs="auto" and batch_size="auto" give a small table (impute_dgm.budget).
    _base_n_epochs = 300
    _base_batch_size = 64
    # Up to this many rows "auto" keeps the base epochs without early stopping; beyond, rows
    # seen grow like n ** _rows_seen_exponent (impute_dgm.budget).
    _full_budget_rows = SMALL_TABLE_ROWS
    _rows_seen_exponent = ROWS_SEEN_EXPONENT

    def _build_model(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- devices and seeds -------------------------------------------------------------
    def _runtime_device(self) -> torch.device:
        """The device to compute on now (falls back to the CPU for a GPU model moved here)."""
        try:
            return resolve_device(self.device)
        except ValueError:
            if getattr(self, "model_", None) is None:
                raise
            warnings.warn(
                f"device={self.device!r} is not available here; computing on the CPU.",
                RuntimeWarning,
                stacklevel=3,
            )
            return torch.device("cpu")

    def _warm(self) -> bool:
        """Whether this fit continues from the fitted weights (``warm_start`` on a fitted
        estimator): the schema, scaling and model are kept, only training runs again."""
        return (
            bool(getattr(self, "warm_start", False)) and getattr(self, "model_", None) is not None
        )

    def _start_fit(self) -> tuple[np.random.RandomState, torch.device]:
        random_state = check_random_state(self.random_state)
        device = resolve_device(self.device)
        return random_state, device

    def _build_seeded(self, seed: int, device: torch.device) -> torch.nn.Module:
        with seeded_torch(seed, device):
            return self._build_model().to(device)

    def _budget(self, n_rows: int) -> TrainingBudget:
        """Epochs, batch size and early stopping for a fit on ``n_rows`` rows."""
        return resolve_budget(
            n_rows,
            self.n_epochs,
            self.batch_size,
            self.early_stopping,
            base_n_epochs=self._base_n_epochs,
            base_batch_size=self._base_batch_size,
            full_budget_rows=self._full_budget_rows,
            rows_seen_exponent=self._rows_seen_exponent,
        )

    def _train(
        self,
        loss: Callable,
        evaluate: Callable,
        data: tuple[torch.Tensor, ...],
        random_state: np.random.RandomState,
        device: torch.device,
        description: str,
        warmup_epochs: int = 0,
        on_epoch_start: Callable[[int], None] | None = None,
    ):
        """Resolve the budget, split off validation rows (when early stopping), then run the
        shared Trainer. Sets ``budget_``."""
        n_rows = data[0].shape[0]
        self.budget_ = self._budget(n_rows)
        validation, train_rows = None, None
        if self.budget_.early_stopping and n_rows >= self._min_rows_for_validation:
            n_validation = min(
                max(1, math.ceil(self.validation_fraction * n_rows)), self._max_validation_rows
            )
            order = torch.as_tensor(random_state.permutation(n_rows), device=device)
            validation = tuple(t[order[:n_validation]] for t in data)
            # The training rows stay in place: the Trainer draws its batches by index.
            train_rows = order[n_validation:]
        trainer = Trainer(
            n_epochs=self.budget_.n_epochs,
            batch_size=self.budget_.batch_size,
            lr=self.lr,
            lr_schedule=self.lr_schedule,
            weight_decay=self.weight_decay,
            patience=self.n_iter_no_change if validation is not None else None,
            verbose=self.verbose,
            callbacks=tuple(getattr(self, "callbacks", None) or ()),
            description=description,
            warmup_epochs=warmup_epochs,
            on_epoch_start=on_epoch_start,
            # Only estimators that offer it have the parameter (FlowDensityEstimator).
            weight_averaging=getattr(self, "weight_averaging", None),
        )
        generator = make_generator(draw_seed(random_state), device)
        if validation is not None:
            validation = _floating_masks(validation)
        return trainer.fit(
            self.model_,
            lambda batch, generator: loss(_floating_masks(batch), generator),
            data,
            generator,
            validation,
            evaluate,
            train_rows,
        )

    def _eval_generator(self, device: torch.device) -> torch.Generator:
        """A generator seeded the same way on every call: evaluation is deterministic."""
        return make_generator(self._eval_seed, device)

    def _evaluation_model(self, device: torch.device) -> tuple[torch.nn.Module, torch.dtype]:
        """The fitted module as used for evaluation, and the dtype to feed it.

        ``eval_dtype="auto"``: on the CPU, evaluation runs on a float64 copy, which keeps a
        row's score or imputation independent of which rows share its batch (float32 matrix
        products round differently with the batch shape); on accelerators, float32 is kept.
        "float64" and "float32" choose either anywhere.
        """
        exact = self.eval_dtype == "float64" or (self.eval_dtype == "auto" and device.type == "cpu")
        if exact:
            return copy.deepcopy(self.model_).double(), torch.float64
        return self.model_, torch.float32

    @staticmethod
    def _row_chunks(n_rows: int, rows_per_chunk: int) -> Iterator[slice]:
        rows_per_chunk = max(1, rows_per_chunk)
        for start in range(0, n_rows, rows_per_chunk):
            yield slice(start, min(start + rows_per_chunk, n_rows))

    # --- pickling ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_state_dict"] = {
                k: v.detach().cpu() for k, v in model.state_dict().items()
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Files saved before ``eval_dtype`` existed evaluate as "auto" does.
        state.setdefault("eval_dtype", "auto")
        model_state = state.pop("_model_state_dict", None)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:  # pragma: no cover
            self.__dict__.update(state)
        if model_state is not None:
            self.model_ = self._build_model()
            self.model_.load_state_dict(model_state)
            self.model_.to(self._runtime_device()).eval()


class BaseTorchEstimator(TorchEstimatorMixin, BaseEstimator):
    """Base class: scikit-learn's BaseEstimator plus the torch machinery."""
