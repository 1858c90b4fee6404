"""Dequantisation: continuous noise u in [0, 1)^D that turns integer levels x into x + u.

A density p on the real line defines a discrete law P(x) = integral of p(x + u) over the unit
cell, and for any q(u | x) on that cell

    log P(x) >= E_q[log p(x + u) - log q(u | x)],

with equality when q(u | x) is p(x + u) renormalised on the cell. Uniform dequantisation fixes
q = U(0, 1)^D (RealNVP); variational dequantisation (Ho et al., Flow++, ICML 2019) learns q, so
the flow no longer has to put flat, sharp-edged blocks of density on every cell, and the bound
tightens. Both are modules that map uniform noise ``v`` to ``(u, log q(u | x))``: the caller
owns the random numbers (fixed draws for validation, common draws across rows when scoring).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import AffineTransform, SigmoidTransform, Uniform

from impute_dgm.flows.coupling import conditioner_mlp


class UniformDequantizer(nn.Module):
    """q(u | x) = U(0, 1)^D: u is the noise itself and log q = 0."""

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return noise, torch.zeros(noise.shape[:-1], dtype=noise.dtype, device=noise.device)


class VariationalDequantizer(nn.Module):
    """A learned q(u | x) per feature: a logistic law on the logit scale, squashed to (0, 1).

    ``u = sigmoid(loc(x) + scale(x) * logit(v))`` with v ~ U(0, 1): the uniform noise pushed
    through ``torch.distributions`` transforms (inverse sigmoid, affine, sigmoid), whose
    log-determinants give log q. Location and log-scale come from an MLP of the whole row
    (scaled to [-1, 1]), so the noise in one pixel can depend on its neighbours. The output
    layer starts at zero: loc 0 and scale 1 make q exactly uniform, so training starts from
    uniform dequantisation and can only tighten the bound.

    Parameters
    ----------
    n_features : int
    n_levels : int
        Levels of the data (0 .. n_levels - 1), used to scale the conditioner's input.
    hidden_dims : sequence of int
        Hidden widths of the conditioner.
    """

    def __init__(self, n_features: int, n_levels: int, hidden_dims: Sequence[int]) -> None:
        super().__init__()
        self.n_levels = int(n_levels)
        self.conditioner = conditioner_mlp(n_features, tuple(hidden_dims), 2 * n_features)

    def transforms(self, x: torch.Tensor) -> list:
        """The maps from uniform noise v to u for the rows ``x``."""
        centred = 2 * x / max(self.n_levels - 1, 1) - 1
        loc, log_scale = self.conditioner(centred).chunk(2, dim=-1)
        return [
            SigmoidTransform().inv,
            AffineTransform(loc, torch.exp(log_scale)),
            SigmoidTransform(),
        ]

    def distribution(self, x: torch.Tensor) -> torch.distributions.TransformedDistribution:
        """q(u | x) as a ``torch.distributions`` object (``rsample``, ``log_prob``)."""
        zero, one = x.new_zeros(()), x.new_ones(())
        base = torch.distributions.Independent(Uniform(zero, one).expand(x.shape), 1)
        return torch.distributions.TransformedDistribution(base, self.transforms(x))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map uniform ``noise`` (shape of ``x``, or with leading draws) to (u, log q(u | x))."""
        value = noise
        log_q = torch.zeros(noise.shape, dtype=noise.dtype, device=noise.device)
        for transform in self.transforms(x):
            mapped = transform(value)
            log_q = log_q - transform.log_abs_det_jacobian(value, mapped)
            value = mapped
        return value, log_q.sum(-1)
