"""RealNVP's multi-scale architecture for images (Dinh et al., 2017, section 3.6).

Each scale but the last applies checkerboard couplings, squeezes (space-to-depth), applies
channel-wise couplings, then factors out half of the channels straight to the latent code; the
other half goes on to the next scale. The last scale applies checkerboard couplings only.
"""

from __future__ import annotations

import torch
from torch import nn

from impute_dgm.flows.base import FlowLayer, chain
from impute_dgm.flows.coupling import MaskedAffineCoupling
from impute_dgm.flows.layers import ActNorm, BatchNormFlow, Squeeze
from impute_dgm.flows.masks import channel_mask, checkerboard_mask


def normalization_layer(kind: str | None, n_channels: int) -> list[FlowLayer]:
    """``[]``, ``[ActNorm]`` or ``[BatchNormFlow]`` for ``kind`` None, "actnorm", "batchnorm"."""
    if kind is None:
        return []
    if kind == "actnorm":
        return [ActNorm(n_channels)]
    if kind == "batchnorm":
        return [BatchNormFlow(n_channels)]
    raise ValueError(f"normalization={kind!r} is not None, 'actnorm' or 'batchnorm'.")


class MultiScale(FlowLayer):
    """One scale of the multi-scale flow and, recursively, the scales after it.

    Maps images (B, C, H, W) to flat codes (B, C * H * W).

    Parameters
    ----------
    shape : (C, H, W)
        Shape of the input images; H and W must be even for every scale but the last.
    n_scales : int
        Scales from this one down (1 = only the final checkerboard scale).
    n_couplings : int
        Coupling layers per scale: half checkerboard, half channel-wise on non-final scales;
        all checkerboard on the last.
    hidden_channels, n_blocks : int
        Width and depth of the convolutional conditioners.
    normalization : None, "actnorm" or "batchnorm"
        Layer after each coupling.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        n_scales: int,
        n_couplings: int,
        hidden_channels: int = 64,
        n_blocks: int = 2,
        normalization: str | None = None,
    ) -> None:
        super().__init__()
        channels, height, width = shape
        self.shape = tuple(shape)
        final = n_scales <= 1
        if not final and (height % 2 or width % 2):
            raise ValueError(
                f"Image height and width must be even to squeeze, got {height} x {width}; "
                "use fewer scales."
            )
        n_checkerboard = n_couplings if final else (n_couplings + 1) // 2
        self.before = nn.ModuleList()
        for i in range(n_checkerboard):
            mask = checkerboard_mask(height, width, parity=i % 2)
            self.before.append(MaskedAffineCoupling(mask, channels, hidden_channels, n_blocks))
            self.before.extend(normalization_layer(normalization, channels))
        self.after = nn.ModuleList()
        self.next: MultiScale | None = None
        if not final:
            squeezed = 4 * channels
            self.after.append(Squeeze())
            for i in range(n_couplings // 2):
                mask = channel_mask(squeezed, parity=i % 2)
                self.after.append(MaskedAffineCoupling(mask, squeezed, hidden_channels, n_blocks))
                self.after.extend(normalization_layer(normalization, squeezed))
            self.n_factored = squeezed // 2
            self.next = MultiScale(
                (squeezed - self.n_factored, height // 2, width // 2),
                n_scales - 1,
                n_couplings,
                hidden_channels,
                n_blocks,
                normalization,
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        x, total = chain(self.before, x, total=total)
        x, total = chain(self.after, x, total=total)
        if self.next is None:
            return x.flatten(1), total
        factored, kept = x[:, : self.n_factored], x[:, self.n_factored :]
        code, ladj = self.next(kept)
        return torch.cat([factored.flatten(1), code], dim=1), total + ladj

    def inverse(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
        if self.next is None:
            x = u.reshape(u.shape[0], *self.shape)
        else:
            channels, height, width = self.next.shape
            n_factored = self.n_factored * height * width
            factored = u[:, :n_factored].reshape(u.shape[0], self.n_factored, height, width)
            kept, total = self.next.inverse(u[:, n_factored:])
            x = torch.cat([factored, kept], dim=1)
        x, total = chain(self.after, x, inverse=True, total=total)
        return chain(self.before, x, inverse=True, total=total)
