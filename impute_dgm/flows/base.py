"""Flow layers, flows and their bridge to ``torch.distributions``.

A layer is an ``nn.Module`` (so its parameters train and move with ``.to``) with
``forward(x) -> (y, log|det dy/dx|)`` and ``inverse(y) -> (x, log|det dx/dy|)``; the
log-determinants are per sample. ``forward`` is the normalising direction (data to latent).
A :class:`Flow` is a base distribution plus a list of layers. ``layer.as_transform()`` is a
layer (or a whole flow) as a ``torch.distributions.Transform``, and ``Flow.distribution()`` is
the flow as a ``TransformedDistribution`` (how the VAE's flow prior uses it); layers whose map
torch already has (:class:`~impute_dgm.flows.layers.Affine`, ``Reshape``) are built on torch's
transforms (:class:`TorchTransformLayer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import (
    Distribution,
    Independent,
    Normal,
    Transform,
    TransformedDistribution,
    constraints,
)


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


class TorchTransformLayer(FlowLayer):
    """A layer whose map is a ``torch.distributions.Transform`` built at each call.

    Subclasses hold the transform's tensors as buffers (so they move with ``.to`` and are
    saved in the ``state_dict``) and return the transform from :meth:`transform`; the
    log-determinant is torch's, summed over each sample's axes.
    """

    def transform(self) -> Transform:
        raise NotImplementedError  # pragma: no cover - abstract

    @staticmethod
    def _per_sample(ladj: torch.Tensor) -> torch.Tensor:
        return ladj if ladj.dim() == 1 else _sum_event(ladj)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        transform = self.transform()
        y = transform(x)
        return y, self._per_sample(transform.log_abs_det_jacobian(x, y))

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        transform = self.transform()
        x = transform.inv(y)
        return x, -self._per_sample(transform.log_abs_det_jacobian(x, y))


class LayerTransform(Transform):
    """Adapter from a :class:`FlowLayer` (or a whole :class:`Flow`) to
    ``torch.distributions.Transform``, on vectors: the event is the last axis and any leading
    axes are batch axes (they are flattened for the layer and restored after).

    A layer computes its output and log-determinant together; the last forward or inverse
    call keeps both, so ``log_abs_det_jacobian`` after ``inv`` (what
    ``TransformedDistribution.log_prob`` does) does not rerun the layer.
    """

    bijective = True
    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, layer: FlowLayer) -> None:
        super().__init__(cache_size=0)
        self.layer = layer
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _run(self, value: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        batch_shape = value.shape[:-1]
        flat = value.reshape(-1, value.shape[-1])
        out, ladj = self.layer.inverse(flat) if inverse else self.layer(flat)
        return out.reshape(*batch_shape, out.shape[-1]), ladj.reshape(batch_shape)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        y, ladj = self._run(x, inverse=False)
        self._last = (x, y, ladj)
        return y

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        x, inverse_ladj = self._run(y, inverse=True)
        self._last = (x, y, -inverse_ladj)
        return x

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self._last is not None and self._last[0] is x and self._last[1] is y:
            return self._last[2]
        return self._run(x, inverse=False)[1]


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


class Flow(FlowLayer):
    """A normalising flow: a base distribution on u and layers mapping x to u.

    As a layer (``forward``, ``inverse``, ``as_transform``) it is the whole map x -> u, so a
    flow can be used as one ``torch.distributions.Transform`` or inside another flow.

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


class FlowDistribution(TransformedDistribution):
    """``torch.distributions`` view of a :class:`Flow`: its base distribution pushed through
    the flow's inverse (``log_prob``, ``sample`` and, over a reparameterisable base,
    ``rsample``, for any batch shape).

    Parameters
    ----------
    flow : Flow
    """

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        super().__init__(flow.base(), [flow.as_transform().inv], validate_args=False)
