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
    self_normalized_weights,
)
from impute_dgm.distributions.likelihoods import Likelihood
from impute_dgm.distributions.networks import (
    MLP,
    GaussianEncoder,
    detached_gaussian,
    reparameterize,
)
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
    filled : tensor of shape (K, B, D) or None
        With a model of the mask: the rows completed by the draws of x_miss from p(x | z)
        that the weights were computed with.
    """

    z: torch.Tensor
    log_weights: torch.Tensor
    observation: Distribution
    filled: torch.Tensor | None = None


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
    missingness : nn.Module or None, default=None
        A model of the mask, ``missingness(x)`` = p(m | x) (e.g.
        :class:`~impute_dgm.distributions.missingness.SelfMaskingLogistic`): the not-MIWAE
        bound (Ipsen et al., 2021). The missing values are then drawn from p(x | z) by
        reparameterisation with the last ``n_features`` columns of the noise (``noise_dim``
        in all), and log p(m | x) joins the weights. None: MIWAE (missing at random).
    activation : str or type of nn.Module, default="tanh"
        Hidden activation of the encoder and decoder MLPs.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dims: Sequence[int],
        likelihood: Likelihood,
        prior: Prior,
        mask_input: bool = True,
        missingness: nn.Module | None = None,
        activation: str | type[nn.Module] = "tanh",
    ) -> None:
        super().__init__()
        if missingness is not None and not likelihood.has_reparameterized_sample:
            raise ValueError(
                "A model of the mask needs missing values drawn by reparameterisation, which "
                f"{type(likelihood).__name__} does not offer; use likelihood='gaussian'."
            )
        if missingness is not None and hasattr(missingness, "model_only"):
            # Mixed tables: the mask depends on the values of the drawn (Gaussian) columns.
            missingness.model_only(likelihood.reparameterized_columns(n_features))
        self.n_features = n_features
        self.latent_dim = latent_dim
        self.missingness = missingness
        # Standard normal draws per importance sample: z's, then x_miss's under a mask model.
        self.noise_dim = latent_dim + (n_features if missingness is not None else 0)
        self.prior = prior
        self.likelihood = likelihood
        self.encoder = GaussianEncoder(
            n_features,
            latent_dim,
            hidden_dims,
            mask_input,
            n_inputs=likelihood.encoder_width(n_features),
            activation=activation,
        )
        self.decoder = MLP(
            latent_dim, likelihood.decoder_width(n_features), hidden_dims, activation
        )
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
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        noise: torch.Tensor,
        kl_weight: float = 1.0,
        posterior_parameters_in_weights: bool = True,
    ) -> ImportanceSamples:
        """Draw z from q(z | x, m) with the given standard normal ``noise`` and weight it.

        Parameters
        ----------
        x : tensor of shape (B, D)
            Data, any value in missing entries (they are zero-filled here).
        mask : tensor of shape (B, D)
            1.0 where observed.
        noise : tensor of shape (K, B, noise_dim) or (K, 1, noise_dim)
            Standard normal draws (the first ``latent_dim`` for z, the rest for x_miss under a
            model of the mask); (K, 1, noise_dim) shares them across rows.
        kl_weight : float, default=1.0
            Weight of log p(z) - log q(z | x, m) in the log weights. Below 1 only during KL
            warm-up (the bound is then not a bound on log p(x_obs)).
        posterior_parameters_in_weights : bool, default=True
            False: log q(z | x, m) in the weights is taken at detached copies of q's location
            and scale, so the encoder's parameters reach the weights only through the draws z
            (the doubly reparameterised gradient needs exactly that path). Values unchanged.
        """
        x = x * mask
        posterior = self.posterior(x, mask)
        z = reparameterize(posterior, noise[..., : self.latent_dim])
        weighing = posterior if posterior_parameters_in_weights else detached_gaussian(posterior)
        observation = self.observation_model(z)
        filled, log_mask = None, None
        if self.missingness is not None:
            # not-MIWAE: x_miss ~ p(x_miss | z) (reparameterised, so gradients reach the
            # decoder through the mask's term), and log p(m | x_obs, x_miss) joins the weight.
            draws = self.likelihood.reparameterized_sample(
                observation, noise[..., self.latent_dim :]
            )
            filled = x + self.missingness.within_range(draws) * (1 - mask)
            log_mask = self.missingness(filled).log_prob(mask.expand_as(filled))
        log_weights = log_importance_weights(
            observation, x, mask, self.prior(), weighing, z, kl_weight, log_mask
        )
        return ImportanceSamples(z, log_weights, observation, filled)

    def bound(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, kl_weight: float = 1.0
    ) -> torch.Tensor:
        """The MIWAE bound on log p(x_obs) per row (K = noise.shape[0]; K = 1 is the ELBO)."""
        samples = self.importance_samples(x, mask, noise, kl_weight)
        return importance_weighted_bound(samples.log_weights)

    def doubly_reparameterized_bound(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, kl_weight: float = 1.0
    ) -> torch.Tensor:
        """The MIWAE bound per row, with the doubly reparameterised gradient (DReG) for the
        encoder (Tucker, Lawson, Gu & Maddison, ICLR 2019).

        The value is :meth:`bound`'s, and so is the gradient in every parameter but the
        encoder's: ``sum_k w_k grad log w_k`` with self-normalised weights ``w_k``. The
        encoder's gradient is ``sum_k w_k ** 2 (d log w_k / d z_k) (d z_k / d phi)``, in which
        q's parameters enter only through the draws: the same expectation as the bound's own
        encoder gradient (tested), whose signal-to-noise ratio falls as K grows (Rainforth et
        al., 2018), while Tucker et al. show that DReG's does not. q is then trained as a
        proposal for the bound at K draws.

        Parameters
        ----------
        x, mask : tensors of shape (B, D)
        noise : tensor of shape (K, B, noise_dim) or (K, 1, noise_dim)
        kl_weight : float, default=1.0
        """
        samples = self.importance_samples(
            x, mask, noise, kl_weight, posterior_parameters_in_weights=False
        )
        log_weights = samples.log_weights
        weights = self_normalized_weights(log_weights.detach())
        if samples.z.requires_grad:
            # The gradient reaching z_k is w_k d log w_k / d z_k; one more factor w_k.
            samples.z.register_hook(lambda grad: grad * weights.unsqueeze(-1))
        surrogate = (weights * log_weights).sum(dim=0)
        bound = importance_weighted_bound(log_weights.detach())
        return bound + (surrogate - surrogate.detach())

    def proposal_loss(
        self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """The wake-phase objective of reweighted wake-sleep for the encoder, per row.

        ``-sum_k w_k log q(z_k | x, m)`` with the draws ``z_k`` and their self-normalised
        weights ``w_k`` held fixed: its gradient in the encoder's parameters estimates that of
        KL(p(z | x_obs) || q(z | x, m)), the divergence that makes q a good importance
        sampling proposal (Bornschein & Bengio, 2015; Le et al., 2019). Nothing but the
        encoder receives a gradient from it.

        Parameters
        ----------
        x, mask : tensors of shape (B, D)
        noise : tensor of shape (K, B, noise_dim) or (K, 1, noise_dim)
        """
        with torch.no_grad():
            samples = self.importance_samples(x, mask, noise)
            weights = self_normalized_weights(samples.log_weights)
        return -(weights * self.posterior(x, mask).log_prob(samples.z)).sum(dim=0)

    def impute(self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Single imputation, shape (B, D): the self-normalised importance sampling estimate of
        E[x | x_obs] (of the category probabilities, then their mode, for categories)."""
        samples = self.importance_samples(x, mask, noise)
        filled = None
        if samples.filled is not None:
            # The weights depend on the drawn x_miss: average the draws themselves, as values
            # of the support (whole-number columns: rounded to their grid).
            draws = self.likelihood.support_values(samples.observation, samples.filled)
            filled = self_normalized_expectation(samples.log_weights, draws)
            drawn = self._drawn_columns()
            if drawn.all():
                return filled
        statistics = self.likelihood.imputation_statistics(samples.observation)
        average = self_normalized_expectation(samples.log_weights, statistics)
        estimate = self.likelihood.point_estimate(average)
        if filled is None:
            return estimate
        # Mixed tables: drawn columns average their draws, the others (categories, flags)
        # take the usual estimate, under the same weights.
        return torch.where(drawn, filled, estimate.to(filled.dtype))

    def _drawn_columns(self) -> torch.Tensor:
        """Which columns' missing values the bound draws under a model of the mask (all but
        categories and flags)."""
        modelled = getattr(self.missingness, "modelled", None)
        if modelled is None:
            return torch.ones(self.n_features, dtype=torch.bool)
        return modelled > 0

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
        # Under a mask model the weighed pair (z, x_miss) is resampled as a whole (with x drawn
        # from p(x | z) in the columns the bound does not draw: categories, flags).
        if samples.filled is None:
            draws = samples.observation.sample()
        else:
            draws = self.likelihood.support_values(samples.observation, samples.filled)
            drawn = self._drawn_columns().to(draws.device)
            if not drawn.all():
                others = samples.observation.sample().to(draws.dtype)
                draws = torch.where(drawn, draws, others)
        return draws[chosen, torch.arange(x.shape[0], device=x.device)]
