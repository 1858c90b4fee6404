"""impute-dgm: deep generative models as scikit-learn estimators.

Public estimators live at the top level; building blocks in the sub-packages.
"""

from impute_dgm.estimators import (
    EmbedThenClassify,
    FlowDensityEstimator,
    VAEClassifier,
    VAEEmbedder,
    VAEImputer,
)

__all__ = [
    "EmbedThenClassify",
    "FlowDensityEstimator",
    "VAEClassifier",
    "VAEEmbedder",
    "VAEImputer",
]
__version__ = "0.1.0"
