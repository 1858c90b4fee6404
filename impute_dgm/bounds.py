"""Importance-weighted bounds and self-normalised importance sampling.

All functions take log importance weights ``log w[k, i] = log p(x_i, z_k) - log q(z_k | x_i)``
with the sample axis first.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution


def log_importance_weights(
    observation: Distribution,
    x: torch.Tensor,
    mask: torch.Tensor,
    prior: Distribution,
    posterior: Distribution,
    z: torch.Tensor,
    kl_weight: float = 1.0,
    extra_log_prob: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """``log p(x_obs | z) + kl_weight * (log p(z) - log q(z | .)) [+ extra]`` per draw and row.

    The one place where the models weigh their latent draws: MIWAE (``extra`` absent), M2
    (``extra = log p(y)``) and models of the missingness (``extra = log p(m | x)``).

    Parameters
    ----------
    observation : Distribution with batch shape (K, B, D)
        p(x | z) at each draw; its ``log_prob`` is per entry.
    x, mask : tensors of shape (B, D)
        Data (zero-filled where missing) and 1.0 where observed: only observed entries count.
    prior, posterior : Distribution
        p(z) and q(z | x, ...), each with ``log_prob(z)`` of shape (K, B).
    z : tensor of shape (K, B, L)
    kl_weight : float, default=1.0
        Below 1 only during KL warm-up (the result is then not a bound's weight).
    extra_log_prob : tensor of shape (K, B) or (B,), float or None
        Further log-probability terms of the joint.

    Returns
    -------
    log_weights : tensor of shape (K, B)
    """
    log_px = (observation.log_prob(x) * mask).sum(dim=-1)
    log_weights = log_px + kl_weight * (prior.log_prob(z) - posterior.log_prob(z))
    if extra_log_prob is not None:
        log_weights = log_weights + extra_log_prob
    return log_weights


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
