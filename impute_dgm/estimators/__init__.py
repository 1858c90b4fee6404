"""scikit-learn estimators."""

from impute_dgm.estimators.imputer import VAEImputer

__all__ = ["VAEImputer"]
