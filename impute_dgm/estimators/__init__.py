"""scikit-learn estimators."""

from impute_dgm.estimators.bootstrap import BootstrapImputer
from impute_dgm.estimators.classifier import VAEClassifier
from impute_dgm.estimators.embedder import VAEEmbedder
from impute_dgm.estimators.ensemble import SemiSupervisedEnsemble
from impute_dgm.estimators.flow import FlowDensityEstimator
from impute_dgm.estimators.imputer import VAEImputer
from impute_dgm.estimators.semi_supervised import EmbedThenClassify

__all__ = [
    "BootstrapImputer",
    "EmbedThenClassify",
    "FlowDensityEstimator",
    "SemiSupervisedEnsemble",
    "VAEClassifier",
    "VAEEmbedder",
    "VAEImputer",
]
