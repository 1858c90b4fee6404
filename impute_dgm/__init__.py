"""impute-dgm: deep generative models as scikit-learn estimators.

Public estimators live at the top level; building blocks in the sub-packages.
"""

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
