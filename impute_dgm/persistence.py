"""Save and load fitted estimators with their torch weights kept apart from the pickle.

A directory holds three files:

- ``weights.pt``: every tensor of the estimator (the fitted modules' ``state_dict`` entries and
  any other tensor it holds), written by :func:`torch.save` as a flat ``{name: tensor}`` dict
  and read back with ``torch.load(..., weights_only=True)``, which cannot run code;
- ``estimator.pkl``: the scikit-learn structure (hyper-parameters, fitted statistics, pipeline
  steps) with each tensor replaced by its name in ``weights.pt``. It is read by an unpickler
  that resolves only an allow-list of names (:mod:`impute_dgm.safe_unpickling`): a file that
  names anything else (``os.system``, ``eval``, ...) is refused before that is even imported,
  so loading a model file from someone else cannot run their code;
- ``manifest.json``: the file format's version and the versions of impute-dgm, torch,
  scikit-learn, numpy, pandas and Python that wrote it.

Any object works, including a ``Pipeline`` or a meta-estimator holding several torch
estimators: the torch estimators turn their modules into ``state_dict``s when pickled
(:class:`~impute_dgm.estimators._base.TorchEstimatorMixin`), and rebuild them on load.
"""

from __future__ import annotations

import json
import pickle
import platform
from pathlib import Path
from typing import Any

import torch

from impute_dgm.safe_unpickling import UnsafeModelFileError, resolve

ESTIMATOR_FILE = "estimator.pkl"
WEIGHTS_FILE = "weights.pt"
MANIFEST_FILE = "manifest.json"
# Version of the directory layout; a reader refuses files from a newer one.
FORMAT_VERSION = 2


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
        except (KeyError, TypeError):
            raise pickle.UnpicklingError(f"{WEIGHTS_FILE} has no tensor {name!r}.") from None

    def find_class(self, module: str, name: str) -> Any:
        return resolve(module, name)


def _versions() -> dict[str, str]:
    import numpy
    import pandas
    import sklearn

    from impute_dgm import __version__

    return {
        "impute_dgm": __version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "python": platform.python_version(),
    }


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a saved estimator: format version and the versions that wrote it.

    Raises
    ------
    ValueError
        When the directory holds no manifest, an unreadable one, or one of a newer format.
    """
    path = Path(directory) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
        format_version = int(manifest["format"])
    except FileNotFoundError:
        raise ValueError(
            f"{directory} is not a saved impute-dgm estimator (no {MANIFEST_FILE}; files written "
            "before format 2 must be saved again)."
        ) from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a valid impute-dgm manifest (corrupted?).") from None
    if format_version > FORMAT_VERSION:
        raise ValueError(
            f"{directory} was written in format {format_version} by impute-dgm "
            f"{manifest.get('versions', {}).get('impute_dgm', '?')}; this impute-dgm reads up to "
            f"format {FORMAT_VERSION}: upgrade it."
        )
    return manifest


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
    manifest = {"format": FORMAT_VERSION, "versions": _versions()}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return directory


def load_estimator(directory: str | Path) -> Any:
    """Read back what :func:`save_estimator` wrote.

    The weights are loaded with ``torch.load(weights_only=True)`` onto the CPU and the
    structure by an allow-list unpickler (nothing in the files can run code); torch
    estimators then move their modules to their ``device`` (falling back to the CPU).

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    object
        The estimator.

    Raises
    ------
    UnsafeModelFileError
        (a ValueError) when ``estimator.pkl`` names anything outside the allow-list.
    ValueError
        When the manifest is missing, of a newer format, or a file is corrupted.
    """
    directory = Path(directory)
    read_manifest(directory)
    try:
        tensors = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch reports a damaged archive in several ways
        raise ValueError(
            f"{directory / WEIGHTS_FILE} could not be read (corrupted?): {error}"
        ) from None
    try:
        with open(directory / ESTIMATOR_FILE, "rb") as file:
            return _TensorRestoringUnpickler(file, tensors).load()
    except (UnsafeModelFileError, FileNotFoundError):
        raise
    except Exception as error:  # a truncated or altered pickle fails in many ways
        raise ValueError(
            f"{directory / ESTIMATOR_FILE} could not be read (corrupted?): {error!r}"
        ) from None
