"""Priors, observation models and the networks that parameterise them."""

from impute_dgm.distributions.likelihoods import (
    BernoulliLikelihood,
    GaussianLikelihood,
    Likelihood,
    StudentTLikelihood,
    make_likelihood,
)
from impute_dgm.distributions.networks import MLP, GaussianEncoder
from impute_dgm.distributions.priors import Prior, StandardNormalPrior, make_prior

__all__ = [
    "MLP",
    "BernoulliLikelihood",
    "GaussianEncoder",
    "GaussianLikelihood",
    "Likelihood",
    "Prior",
    "StandardNormalPrior",
    "StudentTLikelihood",
    "make_likelihood",
    "make_prior",
]
