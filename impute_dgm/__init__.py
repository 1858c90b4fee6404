"""impute-dgm: deep generative models as scikit-learn estimators.

Public estimators live at the top level; building blocks in the sub-packages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time they load on first use
    from impute_dgm.estimators import (
        BootstrapImputer,
        EmbedThenClassify,
        FlowDensityEstimator,
        SemiSupervisedEnsemble,
        VAEClassifier,
        VAEEmbedder,
        VAEImputer,
    )

__all__ = [
    "BootstrapImputer",
    "EmbedThenClassify",
    "FlowDensityEstimator",
    "SemiSupervisedEnsemble",
    "VAEClassifier",
    "VAEEmbedder",
    "VAEImputer",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The estimators import torch, which takes seconds: they load when first named (PEP 562),
    # so that `import impute_dgm` and the command line's --help and input checks answer at once.
    if name in __all__:
        value = getattr(importlib.import_module("impute_dgm.estimators"), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        # Sub-packages as attributes (`impute_dgm.persistence.load_estimator` after a bare
        # `import impute_dgm`), as when the estimators were imported eagerly.
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
