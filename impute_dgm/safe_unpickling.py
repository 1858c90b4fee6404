"""Which names a model file may refer to: the allow-list behind safe loading.

A pickle is a program: every ``GLOBAL`` it names can be called with arguments of its choosing
(``os.system``, ``builtins.eval``, ``numpy.memmap`` with mode "w+", ``pandas.HDFStore``, ...).
:func:`resolve` lets a model file name only what fitted estimators are built from: the
classes of impute-dgm itself, scikit-learn estimators, torch modules, and a fixed list of
numpy, pandas and pyarrow constructors for arrays, dtypes and indexes. Anything else stops the
load with :class:`UnsafeModelFileError` before it is imported, let alone called.
"""

from __future__ import annotations

import importlib

import torch
from sklearn.base import BaseEstimator


class UnsafeModelFileError(ValueError):
    """A model file names something outside the allow-list: it was not made by
    ``save_estimator`` from known types, or it was tampered with."""


# Constructors that rebuild arrays, scalars, random states, indexes and string arrays.
_ALLOWED_FUNCTIONS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pyarrow.lib", "_restore_array"),
    ("pyarrow.lib", "py_buffer"),
    ("pyarrow.lib", "type_for_alias"),
    ("collections", "OrderedDict"),
    # The trees and distance metrics of a fitted nearest-neighbour search (label spreading's
    # knn kernel, KNNImputer): ``newObj(cls)`` is ``cls.__new__(cls)``, and ``cls`` itself must
    # pass this list (the classes below).
    ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    ("sklearn.metrics._dist_metrics", "newObj"),
    ("pandas", "NA"),
    ("pandas._libs.missing", "NA"),
}
_ALLOWED_BUILTINS = {"set", "frozenset", "slice", "complex", "bytearray", "object", "range"}
# numpy classes: arrays, dtypes and random number generators, nothing that opens files.
_NUMPY_CLASSES = {
    "ndarray", "dtype", "RandomState", "Generator", "MT19937", "PCG64", "PCG64DXSM", "Philox",
    "SFC64",
    # Scalar types, as estimators' ``dtype`` parameters hold them (OneHotEncoder's float64).
    "float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64", "uint32",
    "uint16", "uint8", "bool", "bool_", "complex128", "complex64",
}  # fmt: skip
_NEIGHBOUR_CLASSES = {
    ("sklearn.neighbors._kd_tree", "KDTree"),
    ("sklearn.neighbors._kd_tree", "KDTree64"),
    ("sklearn.neighbors._ball_tree", "BallTree"),
    ("sklearn.neighbors._ball_tree", "BallTree64"),
}
# pandas modules whose classes are arrays, dtypes and indexes (no readers, no stores).
_PANDAS_MODULES = (
    "pandas.core.arrays",
    "pandas.core.dtypes",
    "pandas.core.indexes",
    "pandas.arrays",
)


def _within(module: str, root: str) -> bool:
    return module == root or module.startswith(root + ".")


def _load(module: str, name: str):
    return getattr(importlib.import_module(module), name)


# Modules that moved: files written before the move name the old path.
_MOVED_MODULES = {
    "impute_dgm.model": "impute_dgm.models.latent_variable",
    "impute_dgm.labelled_model": "impute_dgm.models.labelled",
}


def resolve(module: str, name: str):
    """The object ``module.name`` refers to, if a model file may use it; else raise.

    Raises
    ------
    UnsafeModelFileError
        For any name outside the allow-list (the module is not even imported).
    """
    module = _MOVED_MODULES.get(module, module)
    if (module, name) in _ALLOWED_FUNCTIONS:
        return _load(module, name)
    if module == "builtins" and name in _ALLOWED_BUILTINS:
        return _load(module, name)
    candidate = None
    if _within(module, "impute_dgm"):
        candidate = _load(module, name)
        allowed = isinstance(candidate, type) and candidate.__module__.startswith("impute_dgm")
    elif _within(module, "sklearn"):
        candidate = _load(module, name)
        allowed = isinstance(candidate, type) and (
            issubclass(candidate, BaseEstimator) or (module, name) in _NEIGHBOUR_CLASSES
            or (module == "sklearn.metrics._dist_metrics" and name.endswith("Distance64"))
        )  # fmt: skip
    elif _within(module, "torch.nn.modules"):
        candidate = _load(module, name)
        allowed = isinstance(candidate, type) and issubclass(candidate, torch.nn.Module)
    elif _within(module, "numpy"):
        allowed = name in _NUMPY_CLASSES or _within(module, "numpy.dtypes")
    elif module == "pandas":
        allowed = name.endswith(("Dtype", "Index")) or name == "Categorical"
    elif any(_within(module, root) for root in _PANDAS_MODULES):
        allowed = True
    elif module == "pyarrow.lib":
        allowed = name.endswith(("Array", "Type", "DataType"))
    else:
        allowed = False
    if allowed:
        candidate = _load(module, name) if candidate is None else candidate
        # Functions of those modules stay out: only classes are constructed.
        allowed = isinstance(candidate, type) or (module, name) in _ALLOWED_FUNCTIONS
    if not allowed:
        raise UnsafeModelFileError(
            f"The model file refers to {module}.{name}, which impute-dgm does not load: only "
            "the types fitted estimators are made of are allowed (the file may have been "
            "tampered with, or was not written by impute_dgm.persistence.save_estimator)."
        )
    return candidate
