"""Binary masks for coupling layers (1 = passed through unchanged, conditions the rest)."""

from __future__ import annotations

import torch


def alternating_mask(n_features: int, parity: int) -> torch.Tensor:
    """1 on every other feature, starting at index ``parity`` (0 or 1); for tabular data."""
    return ((torch.arange(n_features) + parity) % 2 == 0).float()


def checkerboard_mask(height: int, width: int, parity: int) -> torch.Tensor:
    """A (1, H, W) checkerboard, 1 where (row + column + parity) is even; for images."""
    rows = torch.arange(height)[:, None]
    columns = torch.arange(width)[None, :]
    return ((rows + columns + parity) % 2 == 0).float()[None]


def channel_mask(channels: int, parity: int) -> torch.Tensor:
    """A (C, 1, 1) mask that keeps the first half of the channels (parity 0) or the second."""
    half = channels // 2
    mask = torch.zeros(channels, 1, 1)
    if parity == 0:
        mask[:half] = 1.0
    else:
        mask[half:] = 1.0
    return mask
