"""Normalising-flow building blocks: RealNVP and spline couplings, masks, multi-scale,
invertible linear layers, dequantisation."""

from impute_dgm.flows.base import (
    Flow,
    FlowDistribution,
    FlowLayer,
    LayerTransform,
    StandardNormal,
    TorchTransformLayer,
)
from impute_dgm.flows.builders import make_image_flow, make_tabular_flow
from impute_dgm.flows.coupling import AffineCoupling, MaskedAffineCoupling
from impute_dgm.flows.dequantization import UniformDequantizer, VariationalDequantizer
from impute_dgm.flows.layers import (
    ActNorm,
    Affine,
    BatchNormFlow,
    Logit,
    LULinear,
    Permutation,
    Reshape,
    Reverse,
    Squeeze,
)
from impute_dgm.flows.masks import alternating_mask, channel_mask, checkerboard_mask
from impute_dgm.flows.mixture import GaussianMixtureBase
from impute_dgm.flows.multiscale import MultiScale
from impute_dgm.flows.spline import SplineCoupling, rational_quadratic_spline

__all__ = [
    "SplineCoupling",
    "rational_quadratic_spline",
    "StandardNormal",
    "TorchTransformLayer",
    "ActNorm",
    "Affine",
    "AffineCoupling",
    "BatchNormFlow",
    "Flow",
    "FlowDistribution",
    "FlowLayer",
    "GaussianMixtureBase",
    "LayerTransform",
    "Logit",
    "LULinear",
    "MaskedAffineCoupling",
    "MultiScale",
    "Permutation",
    "Reshape",
    "Reverse",
    "Squeeze",
    "UniformDequantizer",
    "VariationalDequantizer",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "make_image_flow",
    "make_tabular_flow",
]
