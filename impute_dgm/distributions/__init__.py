"""Priors, observation models and the networks that parameterise them."""

from impute_dgm.distributions.likelihoods import (
    BernoulliLikelihood,
    CategoricalLikelihood,
    ColumnLikelihoods,
    DiscretizedGaussianLikelihood,
    GaussianLikelihood,
    Likelihood,
    PoissonLikelihood,
    StudentTLikelihood,
    make_likelihood,
)
from impute_dgm.distributions.networks import MLP, GaussianEncoder
from impute_dgm.distributions.priors import (
    FlowPrior,
    MixtureOfGaussiansPrior,
    Prior,
    StandardNormalPrior,
    VampPrior,
    make_prior,
)

__all__ = [
    "MLP",
    "BernoulliLikelihood",
    "CategoricalLikelihood",
    "ColumnLikelihoods",
    "DiscretizedGaussianLikelihood",
    "FlowPrior",
    "MixtureOfGaussiansPrior",
    "PoissonLikelihood",
    "VampPrior",
    "GaussianEncoder",
    "GaussianLikelihood",
    "Likelihood",
    "Prior",
    "StandardNormalPrior",
    "StudentTLikelihood",
    "make_likelihood",
    "make_prior",
]
