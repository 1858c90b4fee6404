"""scikit-learn estimators."""

from impute_dgm.estimators.embedder import VAEEmbedder
from impute_dgm.estimators.flow import FlowDensityEstimator
from impute_dgm.estimators.imputer import VAEImputer

__all__ = ["FlowDensityEstimator", "VAEEmbedder", "VAEImputer"]
