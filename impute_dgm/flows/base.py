"""Flow layers, flows and their bridge to ``torch.distributions``.

A layer is an ``nn.Module`` (so its parameters train and move with ``.to``) with
``forward(x) -> (y, log|det dy/dx|)`` and ``inverse(y) -> (x, log|det dx/dy|)``; the
log-determinants are per sample. ``forward`` is the normalising direction (data to latent).
A :class:`Flow` is a base distribution plus a list of layers, and ``Flow.distribution()``
returns a ``torch.distributions.Distribution`` with ``log_prob`` and ``rsample``, which is how
the VAE's flow prior uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal, Transform, constraints


class FlowLayer(nn.Module):
    """An invertible map with a tractable log-determinant."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract

    def as_transform(self) -> LayerTransform:
        """This layer as a ``torch.distributions.Transform`` (forward = normalising)."""
        return LayerTransform(self)


def chain(
    layers: Sequence[FlowLayer],
    x: torch.Tensor,
    inverse: bool = False,
    total: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``layers`` in order (or their inverses in reverse order), summing log-determinants.

    The one loop every composite flow uses (:class:`Flow`, the multi-scale blocks).

    Parameters
    ----------
    layers : sequence of FlowLayer
    x : tensor of shape (B, ...)
    inverse : bool, default=False
    total : tensor of shape (B,), optional
        Log-determinant so far (zeros when None).

    Returns
    -------
    y, total : the mapped tensor and the summed log|det| per sample
    """
    if total is None:
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for layer in reversed(layers) if inverse else layers:
        x, ladj = layer.inverse(x) if inverse else layer(x)
        total = total + ladj
    return x, total


def _sum_event(values: torch.Tensor, n_batch_dims: int = 1) -> torch.Tensor:
    """Sum over every axis after the first ``n_batch_dims``."""
    return values.flatten(n_batch_dims).sum(-1)


class LayerTransform(Transform):
    """Adapter from a :class:`FlowLayer` to ``torch.distributions.Transform``.

    The last forward or inverse call caches its log-determinant, so ``log_abs_det_jacobian``
    after ``inv`` (what ``TransformedDistribution.log_prob`` does) does not rerun the layer.
    """

    bijective = True
    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, layer: FlowLayer) -> None:
        super().__init__(cache_size=0)
        self.layer = layer
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        y, ladj = self.layer(x)
        self._last = (x, y, ladj)
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        x, inverse_ladj = self.layer.inverse(y)
        self._last = (x, y, -inverse_ladj)
        return x

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self._last is not None and self._last[0] is x and self._last[1] is y:
            return self._last[2]
        return self.layer(x)[1]


class StandardNormal(nn.Module):
    """N(0, I) over R^n as a module: ``forward()`` returns the distribution.

    Its location and scale are buffers, so it moves with ``.to(device)`` and is saved in the
    ``state_dict``. The flows' default base, and the VAE's standard prior
    (:class:`~impute_dgm.distributions.priors.StandardNormalPrior` builds on it).
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("loc", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def forward(self) -> Distribution:
        return Independent(Normal(self.loc, self.scale, validate_args=False), 1)

    @torch.no_grad()
    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` draws, from ``generator`` (torch's distributions take none)."""
        noise = torch.randn(
            n_samples, self.loc.shape[0], generator=generator, device=self.loc.device
        )
        return noise.to(self.loc.dtype)


class Flow(nn.Module):
    """A normalising flow: a base distribution on u and layers mapping x to u.

    Parameters
    ----------
    layers : sequence of FlowLayer
        Applied in order from data x to latent u; the last layer must output ``(B, n_features)``
        (image flows end with a flattening multi-scale layer).
    n_features : int
        Dimension of u (and of x, flattened).
    base : nn.Module, optional
        Module returning the base distribution over u; :class:`StandardNormal` by default.
    dequantizer : nn.Module, optional
        For discrete data, the q(u | x) of :mod:`impute_dgm.flows.dequantization` whose noise
        makes x + u continuous. ``forward`` and ``log_prob`` do not use it (they see x + u);
        it is held here so that it trains, moves, saves and copies with the flow.
    """

    def __init__(
        self,
        layers: Sequence[FlowLayer],
        n_features: int,
        base: nn.Module | None = None,
        dequantizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.n_features = n_features
        self.base = base if base is not None else StandardNormal(n_features)
        self.dequantizer = dequantizer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (u, log|det du/dx|)."""
        return chain(self.layers, x)

    def inverse(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u -> (x, log|det dx/du|)."""
        return chain(self.layers, u, inverse=True)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log p_base(u) + log|det du/dx|."""
        u, ladj = self(x)
        return self.base().log_prob(u) + ladj

    def sample_from_noise(self, u: torch.Tensor) -> torch.Tensor:
        """Map base draws ``u`` to data space (differentiable)."""
        return self.inverse(u)[0]

    def distribution(self) -> FlowDistribution:
        """This flow as a ``torch.distributions.Distribution``."""
        return FlowDistribution(self)


class FlowDistribution(Distribution):
    """``torch.distributions`` view of a :class:`Flow`: ``log_prob``, ``sample``, ``rsample``."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        super().__init__(event_shape=(flow.n_features,), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        flat = value.reshape(-1, self.flow.n_features)
        return self.flow.log_prob(flat).reshape(value.shape[:-1])

    def sample(self, sample_shape: Sequence[int] = ()) -> torch.Tensor:
        # Bases without reparameterised draws (a mixture) can still be sampled.
        with torch.no_grad():
            sample_shape = torch.Size(sample_shape)
            u = self.flow.base().sample(sample_shape).reshape(-1, self.flow.n_features)
            return self.flow.sample_from_noise(u).reshape(sample_shape + (self.flow.n_features,))

    def rsample(self, sample_shape: Sequence[int] = ()) -> torch.Tensor:
        sample_shape = torch.Size(sample_shape)
        u = self.flow.base().rsample(sample_shape).reshape(-1, self.flow.n_features)
        return self.flow.sample_from_noise(u).reshape(sample_shape + (self.flow.n_features,))
