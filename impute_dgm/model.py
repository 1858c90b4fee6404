"""The deep latent variable model shared by every VAE estimator.

p(x, z) = p(z) p(x | z) with an amortised posterior q(z | x, m); each piece is a module that
returns a ``torch.distributions`` object, and the model only combines their ``log_prob``s.
Missing entries (m = 0) are zero-filled before the encoder and left out of log p(x | z), which
is the MIWAE construction (Mattei & Frellsen, 2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Distribution

from impute_dgm.bounds import (
    importance_weighted_bound,
    log_importance_weights,
    self_normalized_expectation,
)
from impute_dgm.distributions.likelihoods import Likelihood
from impute_dgm.distributions.networks import MLP, GaussianEncoder, reparameterize
from impute_dgm.distributions.priors import Prior


@dataclass
class ImportanceSamples:
    """What one pass of importance sampling produces for a batch.

    Attributes
    ----------
    z : tensor of shape (K, B, L)
        Latent draws from q(z | x, m).
    log_weights : tensor of shape (K, B)
        log p(x_obs | z) + log p(z) - log q(z | x, m).
    observation : Distribution with batch shape (K, B, D)
        p(x | z) for each draw.
    """

    z: torch.Tensor
    log_weights: torch.Tensor
    observation: Distribution


class DeepLatentVariableModel(nn.Module):
    """Prior, encoder, decoder and likelihood, trained with the importance-weighted bound.

    Parameters
    ----------
    n_features : int
        Width of x.
    latent_dim : int
        Width of z.
    hidden_dims : sequence of int
        Hidden widths of both encoder and decoder MLPs.
    likelihood : Likelihood
        Observation model (one, or :class:`ColumnLikelihoods` for mixed columns); the decoder
        outputs ``likelihood.decoder_width(n_features)`` numbers.
    prior : Prior
        p(z).
    mask_input : bool, default=True
        Whether the encoder sees the mask.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dims: Sequence[int],
        likelihood: Likelihood,
        prior: Prior,
        mask_input: bool = True,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.latent_dim = latent_dim
        self.prior = prior
        self.likelihood = likelihood
        self.encoder = GaussianEncoder(
            n_features,
            latent_dim,
            hidden_dims,
            mask_input,
            n_inputs=likelihood.encoder_width(n_features),
        )
        self.decoder = MLP(latent_dim, likelihood.decoder_width(n_features), hidden_dims)
        prior.attach(self)

    def encoder_view(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the encoder reads of a row: the likelihood's zero-filled view of the data
        (standardised numbers, one-hot categories, ...), width ``likelihood.encoder_width``."""
        return self.likelihood.encoder_view(x * mask, mask)

    def posterior_from_view(self, view: torch.Tensor, mask: torch.Tensor) -> Distribution:
        """q(z | view, m) for an encoder view (a row's, or a VampPrior pseudo-input)."""
        return self.encoder(view, mask)

    def posterior(self, x: torch.Tensor, mask: torch.Tensor) -> Distribution:
        """q(z | x, m), through the likelihood's zero-filled view of the data."""
        return self.posterior_from_view(self.encoder_view(x, mask), mask)

    def observation_model(self, z: torch.Tensor) -> Distribution:
        """p(x | z), element-wise over features."""
        return self.likelihood(self.decoder(z))

    def importance_samples(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, kl_weight: float = 1.0
    ) -> ImportanceSamples:
        """Draw z from q(z | x, m) with the given standard normal ``noise`` and weight it.

        Parameters
        ----------
        x : tensor of shape (B, D)
            Data, any value in missing entries (they are zero-filled here).
        mask : tensor of shape (B, D)
            1.0 where observed.
        noise : tensor of shape (K, B, L) or (K, 1, L)
            Standard normal draws; (K, 1, L) shares them across rows.
        kl_weight : float, default=1.0
            Weight of log p(z) - log q(z | x, m) in the log weights. Below 1 only during KL
            warm-up (the bound is then not a bound on log p(x_obs)).
        """
        x = x * mask
        posterior = self.posterior(x, mask)
        z = reparameterize(posterior, noise)
        observation = self.observation_model(z)
        log_weights = log_importance_weights(
            observation, x, mask, self.prior(), posterior, z, kl_weight
        )
        return ImportanceSamples(z=z, log_weights=log_weights, observation=observation)

    def bound(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, kl_weight: float = 1.0
    ) -> torch.Tensor:
        """The MIWAE bound on log p(x_obs) per row (K = noise.shape[0]; K = 1 is the ELBO)."""
        samples = self.importance_samples(x, mask, noise, kl_weight)
        return importance_weighted_bound(samples.log_weights)

    def impute(self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Single imputation, shape (B, D): the self-normalised importance sampling estimate of
        E[x | x_obs] (of the category probabilities, then their mode, for categories)."""
        samples = self.importance_samples(x, mask, noise)
        statistics = self.likelihood.imputation_statistics(samples.observation)
        average = self_normalized_expectation(samples.log_weights, statistics)
        return self.likelihood.point_estimate(average)

    def sample_missing(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """One draw from p(x | x_obs) per row by sampling-importance-resampling, shape (B, D).

        K = noise.shape[0] latents are drawn from q(z | x, m) and weighted; one is resampled per
        row with probability proportional to its weight, and x is drawn from p(x | z) at it.
        Observed entries of the result are draws too: callers keep the observed values. The
        resampling and the draws of x use torch's global stream (seed it around the call).
        """
        samples = self.importance_samples(x, mask, noise)
        weights = torch.softmax(samples.log_weights, dim=0).T  # (B, K)
        chosen = torch.multinomial(weights, 1)[:, 0]  # (B,)
        draws = samples.observation.sample()  # (K, B, D)
        return draws[chosen, torch.arange(x.shape[0], device=x.device)]
