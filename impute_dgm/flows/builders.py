"""Ready-made RealNVP flows for tables and for images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from impute_dgm.flows.base import Flow, FlowLayer
from impute_dgm.flows.coupling import AffineCoupling
from impute_dgm.flows.layers import LULinear, Reshape
from impute_dgm.flows.masks import alternating_mask
from impute_dgm.flows.multiscale import MultiScale, normalization_layer
from impute_dgm.flows.spline import SplineCoupling


def make_tabular_flow(
    n_features: int,
    n_layers: int,
    hidden_dims: Sequence[int],
    normalization: str | None = None,
    preprocessing: Sequence[FlowLayer] = (),
    coupling: str = "affine",
    n_bins: int = 8,
    base: nn.Module | None = None,
    linear: bool = False,
    dequantizer: nn.Module | None = None,
) -> Flow:
    """A coupling flow for flat vectors: affine (RealNVP) or rational-quadratic spline
    couplings (neural spline flow) with alternating masks.

    Consecutive layers swap the mask's parity, so every feature is transformed by every
    other layer and conditions the layers in between.

    Parameters
    ----------
    n_features : int
    n_layers : int
        Number of coupling layers.
    hidden_dims : sequence of int
        Hidden widths of each coupling's MLP conditioner.
    normalization : None, "actnorm" or "batchnorm"
        Layer after each coupling.
    preprocessing : sequence of FlowLayer
        Fixed maps applied first (standardisation, logit), part of the density.
    coupling : {"affine", "spline"}, default="affine"
        :class:`AffineCoupling` or :class:`~impute_dgm.flows.spline.SplineCoupling`.
    n_bins : int, default=8
        Bins of each spline (``coupling="spline"``).
    base : nn.Module, optional
        Base distribution module (e.g. :class:`~impute_dgm.flows.mixture.GaussianMixtureBase`);
        standard normal by default.
    linear : bool, default=False
        Put an invertible linear layer (:class:`~impute_dgm.flows.layers.LULinear`, starting
        as a random permutation) after each coupling, so every feature can condition every
        other instead of the fixed halves of alternating masks.
    dequantizer : nn.Module, optional
        q(u | x) for discrete data, carried by the flow (see :class:`Flow`).
    """
    if coupling not in ("affine", "spline"):
        raise ValueError(f"coupling={coupling!r} is not 'affine' or 'spline'.")
    layers: list[FlowLayer] = list(preprocessing)
    for i in range(n_layers):
        # With a single feature there is nothing to condition on: every layer transforms it
        # (an affine map with learned constants) rather than every other layer being a no-op.
        mask = alternating_mask(n_features, parity=i % 2) if n_features > 1 else torch.zeros(1)
        if coupling == "spline":
            layers.append(SplineCoupling(mask, hidden_dims, n_bins=n_bins))
        else:
            layers.append(AffineCoupling(mask, hidden_dims))
        layers.extend(normalization_layer(normalization, n_features))
        if linear and n_features > 1:
            layers.append(LULinear(n_features))
    return Flow(layers, n_features, base, dequantizer)


def make_image_flow(
    image_shape: tuple[int, int, int],
    n_scales: int,
    n_couplings: int,
    hidden_channels: int = 64,
    n_blocks: int = 2,
    normalization: str | None = None,
    preprocessing: Sequence[FlowLayer] = (),
    dequantizer: nn.Module | None = None,
) -> Flow:
    """Multi-scale RealNVP for images given as flat rows of C * H * W values.

    Parameters
    ----------
    image_shape : (C, H, W)
    n_scales : int
    n_couplings : int
        Coupling layers per scale.
    hidden_channels, n_blocks : int
        Conditioner width and residual blocks.
    normalization : None, "actnorm" or "batchnorm"
    preprocessing : sequence of FlowLayer
        Fixed maps on the flat rows before reshaping to images.
    dequantizer : nn.Module, optional
        q(u | x) for the pixel levels, carried by the flow (see :class:`Flow`).
    """
    channels, height, width = image_shape
    layers: list[FlowLayer] = list(preprocessing)
    layers.append(Reshape(image_shape))
    layers.append(
        MultiScale(image_shape, n_scales, n_couplings, hidden_channels, n_blocks, normalization)
    )
    return Flow(layers, channels * height * width, None, dequantizer)
