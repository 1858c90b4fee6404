"""Priors p(z) over the latent space, as modules that return ``torch.distributions`` objects."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal


class Prior(nn.Module):
    """A learnable or fixed prior p(z); ``forward()`` returns the distribution over R^latent_dim.

    Subclasses return any ``torch.distributions`` object with event shape ``(latent_dim,)`` that
    has ``log_prob`` and ``sample``; the bounds only ever call ``log_prob`` (Monte Carlo KL), so
    priors without a closed-form KL work the same way.
    """

    latent_dim: int

    def forward(self) -> Distribution:  # pragma: no cover - abstract
        raise NotImplementedError


class StandardNormalPrior(Prior):
    """The standard Gaussian prior N(0, I)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        # Buffers, so the prior moves with .to(device) and is saved in the state_dict.
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self) -> Distribution:
        return Independent(Normal(self.loc, self.scale, validate_args=False), 1)


_PRIORS = {"standard": StandardNormalPrior}


def make_prior(prior: str | Prior, latent_dim: int) -> Prior:
    """Build a prior from its name (``"standard"``) or pass a :class:`Prior` through."""
    if isinstance(prior, Prior):
        return prior
    try:
        return _PRIORS[prior](latent_dim)
    except KeyError:
        raise ValueError(f"prior={prior!r} is not one of {sorted(_PRIORS)}.") from None
