"""Save and load fitted estimators with their torch weights kept apart from the pickle.

A directory holds two files:

- ``weights.pt``: every tensor of the estimator (the fitted modules' ``state_dict`` entries and
  any other tensor it holds), written by :func:`torch.save` as a flat ``{name: tensor}`` dict
  and read back with ``torch.load(..., weights_only=True)``, which cannot run code;
- ``estimator.pkl``: the scikit-learn structure (hyper-parameters, fitted statistics, pipeline
  steps) with each tensor replaced by its name in ``weights.pt``.

Any object works, including a ``Pipeline`` or a meta-estimator holding several torch
estimators: the torch estimators turn their modules into ``state_dict``s when pickled
(:class:`~impute_dgm.estimators._base.TorchEstimatorMixin`), and rebuild them on load.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

ESTIMATOR_FILE = "estimator.pkl"
WEIGHTS_FILE = "weights.pt"


class _TensorExtractingPickler(pickle.Pickler):
    """Pickles everything except tensors, which it collects by name."""

    def __init__(self, file, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors = tensors
        self._names: dict[int, str] = {}

    def persistent_id(self, obj: Any) -> str | None:
        if not isinstance(obj, torch.Tensor):
            return None
        name = self._names.get(id(obj))
        if name is None:
            name = f"tensor{len(self.tensors)}"
            tensor = obj.detach().cpu()
            if isinstance(obj, torch.nn.Parameter):
                tensor = torch.nn.Parameter(tensor, requires_grad=obj.requires_grad)
            self.tensors[name] = tensor
            self._names[id(obj)] = name
        return name


class _TensorRestoringUnpickler(pickle.Unpickler):
    def __init__(self, file, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__(file)
        self.tensors = tensors

    def persistent_load(self, name: str) -> torch.Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise pickle.UnpicklingError(f"{WEIGHTS_FILE} has no tensor {name!r}.") from None


def save_estimator(estimator: Any, directory: str | Path) -> Path:
    """Write ``estimator`` to ``directory`` (created if needed) as a pickle plus torch weights.

    Parameters
    ----------
    estimator : object
        A fitted (or unfitted) estimator, pipeline or any picklable object.
    directory : str or Path
        Target directory; existing files of the same names are overwritten.

    Returns
    -------
    Path
        The directory.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from impute_dgm import VAEImputer
    >>> from impute_dgm.persistence import load_estimator, save_estimator
    >>> X = np.random.default_rng(0).normal(size=(40, 3)); X[0, 1] = np.nan
    >>> imputer = VAEImputer(n_epochs=2, n_eval_samples=10, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as path:
    ...     loaded = load_estimator(save_estimator(imputer, path))
    >>> bool(np.array_equal(loaded.transform(X), imputer.transform(X)))
    True
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    with open(directory / ESTIMATOR_FILE, "wb") as file:
        _TensorExtractingPickler(file, tensors).dump(estimator)
    torch.save(tensors, directory / WEIGHTS_FILE)
    return directory


def load_estimator(directory: str | Path) -> Any:
    """Read back what :func:`save_estimator` wrote.

    The weights are loaded with ``torch.load(weights_only=True)`` onto the CPU; torch
    estimators then move their modules to their ``device`` (falling back to the CPU).

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    object
        The estimator.
    """
    directory = Path(directory)
    tensors = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    with open(directory / ESTIMATOR_FILE, "rb") as file:
        return _TensorRestoringUnpickler(file, tensors).load()
