"""Affine coupling layers (Dinh et al., 2017): y_b = x_b * exp(s(x_a)) + t(x_a), y_a = x_a."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from impute_dgm.flows.base import FlowLayer, _sum_event


def bounded_log_scale(raw: torch.Tensor, bound: float) -> torch.Tensor:
    """``bound * tanh(raw / bound)``: near-identity for small values, never beyond +-bound.

    An unbounded log-scale lets one step of Adam blow a coupling up to exp(100); the soft
    clamp keeps every layer's Jacobian within exp(+-bound) per dimension, so training is stable.
    """
    return bound * torch.tanh(raw / bound)


def conditioner_mlp(n_in: int, hidden_dims: Sequence[int], n_out: int) -> nn.Sequential:
    """The MLP every flat coupling conditions with: ReLU hidden layers and a zero-initialised
    output layer, so a fresh coupling is the identity map and the flow starts at its base."""
    layers: list[nn.Module] = []
    width = n_in
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    last = nn.Linear(width, n_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class FlatCoupling(FlowLayer):
    """A coupling layer for flat vectors: features with ``mask == 1`` pass through and
    condition an elementwise invertible map of the others.

    The conditioner only sees the conditioning features and only predicts the transformed
    ones' parameters (index splitting rather than multiplying by the mask), which halves its
    first and last matrix products. Subclasses give the number of parameters per transformed
    feature and the elementwise map (:meth:`_transform`).

    Parameters
    ----------
    mask : tensor of shape (n_features,)
        1 for the features passed through unchanged.
    hidden_dims : sequence of int
        Hidden widths of the MLP conditioner.
    n_params : int
        Conditioner outputs per transformed feature.
    """

    def __init__(self, mask: torch.Tensor, hidden_dims: Sequence[int], n_params: int) -> None:
        super().__init__()
        mask = mask.bool()
        self.register_buffer("conditioning", torch.nonzero(mask).flatten())
        self.register_buffer("transformed", torch.nonzero(~mask).flatten())
        n_in, n_out = len(self.conditioning), len(self.transformed)
        self.conditioner = conditioner_mlp(max(n_in, 1), hidden_dims, n_params * n_out)

    def _conditioner_output(self, x_a: torch.Tensor) -> torch.Tensor:
        if x_a.shape[-1] == 0:  # one-dimensional data: condition on a constant
            x_a = torch.zeros(*x_a.shape[:-1], 1, dtype=x_a.dtype, device=x_a.device)
        return self.conditioner(x_a)

    def _transform(
        self, x_a: torch.Tensor, x_b: torch.Tensor, inverse: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the map of x_b given x_a, its log |derivative| per element)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _assemble(self, x_a: torch.Tensor, y_b: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(like)
        out[..., self.conditioning] = x_a
        out[..., self.transformed] = y_b
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[..., self.conditioning], x[..., self.transformed]
        y_b, log_derivative = self._transform(x_a, x_b, inverse=False)
        return self._assemble(x_a, y_b, x), log_derivative.sum(-1)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y_a, y_b = y[..., self.conditioning], y[..., self.transformed]
        x_b, log_derivative = self._transform(y_a, y_b, inverse=True)
        return self._assemble(y_a, x_b, y), log_derivative.sum(-1)


class AffineCoupling(FlatCoupling):
    """Affine coupling (Dinh et al., 2017): y_b = x_b * exp(s(x_a)) + t(x_a), y_a = x_a.

    Parameters
    ----------
    mask : tensor of shape (n_features,)
        1 for the features passed through unchanged.
    hidden_dims : sequence of int
        Hidden widths of the MLP conditioner.
    scale_bound : float, default=3.0
        Bound on the absolute log-scale per dimension.
    """

    def __init__(
        self, mask: torch.Tensor, hidden_dims: Sequence[int], scale_bound: float = 3.0
    ) -> None:
        super().__init__(mask, hidden_dims, n_params=2)
        self.scale_bound = scale_bound

    def _transform(self, x_a, x_b, inverse):
        shift, raw = self._conditioner_output(x_a).chunk(2, dim=-1)
        log_scale = bounded_log_scale(raw, self.scale_bound)
        if inverse:
            return (x_b - shift) * torch.exp(-log_scale), -log_scale
        return x_b * torch.exp(log_scale) + shift, log_scale


class ResidualConvNet(nn.Module):
    """Conditioner for images: 3x3 convolutions with residual blocks, zero-initialised output.

    Parameters
    ----------
    in_channels, out_channels : int
    hidden_channels : int
    n_blocks : int
        Residual blocks between the input and output convolutions.
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden_channels: int, n_blocks: int
    ) -> None:
        super().__init__()
        self.first = nn.Conv2d(in_channels, hidden_channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            )
            for _ in range(n_blocks)
        )
        self.last = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        for block in self.blocks:
            h = h + block(h)
        return self.last(torch.relu(h))


class MaskedAffineCoupling(FlowLayer):
    """Affine coupling on images (B, C, H, W) with a checkerboard or channel mask.

    The conditioner sees ``x * mask`` (and the mask itself as an extra channel, so that it
    knows which pixels are given) and predicts shift and log-scale for every pixel; only the
    entries with ``mask == 0`` are changed.

    Parameters
    ----------
    mask : tensor broadcastable to (C, H, W)
        Checkerboard (1, H, W) or channel (C, 1, 1) mask.
    channels : int
        Channels of the input.
    hidden_channels : int, default=64
    n_blocks : int, default=2
    scale_bound : float, default=3.0
    """

    def __init__(
        self,
        mask: torch.Tensor,
        channels: int,
        hidden_channels: int = 64,
        n_blocks: int = 2,
        scale_bound: float = 3.0,
    ) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = ResidualConvNet(channels + 1, 2 * channels, hidden_channels, n_blocks)
        self.scale_bound = scale_bound

    def _shift_and_log_scale(self, x_masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = x_masked.shape
        mask_channel = self.mask.expand(-1, height, width)[:1].expand(batch, 1, height, width)
        shift, raw = self.net(torch.cat([x_masked, mask_channel], dim=1)).chunk(2, dim=1)
        free = 1.0 - self.mask
        log_scale = bounded_log_scale(raw, self.scale_bound) * free
        return shift * free, log_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, log_scale = self._shift_and_log_scale(x * self.mask)
        return x * torch.exp(log_scale) + shift, _sum_event(log_scale)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, log_scale = self._shift_and_log_scale(y * self.mask)
        return (y - shift) * torch.exp(-log_scale), -_sum_event(log_scale)
