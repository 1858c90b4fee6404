"""Importance-weighted bounds and self-normalised importance sampling.

All functions take log importance weights ``log w[k, i] = log p(x_i, z_k) - log q(z_k | x_i)``
with the sample axis first.
"""

from __future__ import annotations

import math

import torch


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """The IWAE / MIWAE bound ``log (1/K) sum_k w_k`` per row, computed with logsumexp.

    With K = 1 it is the (single-sample) ELBO; its expectation increases with K towards
    log p(x) (Burda et al., 2016).

    Parameters
    ----------
    log_weights : tensor of shape (K, ...)

    Returns
    -------
    bound : tensor of shape (...)
    """
    n_samples = log_weights.shape[0]
    return torch.logsumexp(log_weights, dim=0) - math.log(n_samples)


def self_normalized_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """Normalised importance weights ``w_k / sum_j w_j`` along the sample axis."""
    return torch.softmax(log_weights, dim=0)


def self_normalized_expectation(log_weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """SNIS estimate of E[values] under the posterior: ``sum_k w_k values_k / sum_k w_k``.

    Parameters
    ----------
    log_weights : tensor of shape (K, B)
    values : tensor of shape (K, B, ...)

    Returns
    -------
    expectation : tensor of shape (B, ...)
    """
    weights = self_normalized_weights(log_weights)
    weights = weights.reshape(weights.shape + (1,) * (values.dim() - weights.dim()))
    return (weights * values).sum(dim=0)


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """Kish's effective sample size of the normalised weights, per row."""
    weights = self_normalized_weights(log_weights)
    return 1.0 / (weights**2).sum(dim=0)
