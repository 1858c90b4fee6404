"""Rational-quadratic spline couplings (Durkan, Bekasov, Murray & Papamakarios, NeurIPS 2019).

Each transformed feature goes through a monotonic rational-quadratic spline on
[-bound, bound] with ``n_bins`` bins whose widths, heights and interior knot derivatives are
predicted from the conditioning features; outside the interval the map is the identity (the
boundary derivatives are 1, so the map is continuously differentiable there). Both directions
are exact: the inverse solves one quadratic per element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn.functional import softmax, softplus

from impute_dgm.flows.coupling import FlatCoupling


def _knots(raw: torch.Tensor, bound: float, min_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Knot positions (K + 1, from -bound to bound) and bin sizes from unnormalised sizes."""
    n_bins = raw.shape[-1]
    sizes = min_size + (1 - min_size * n_bins) * softmax(raw, dim=-1)
    knots = torch.nn.functional.pad(torch.cumsum(sizes, dim=-1), (1, 0))
    knots = 2 * bound * knots - bound
    # The ends exactly at +-bound (the cumulative sum may miss them by a rounding error).
    knots = torch.cat([knots.new_full(knots[..., :1].shape, -bound), knots[..., 1:-1],
                       knots.new_full(knots[..., :1].shape, bound)], dim=-1)  # fmt: skip
    return knots, knots[..., 1:] - knots[..., :-1]


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return values.gather(-1, index[..., None])[..., 0]


def rational_quadratic_spline(
    inputs: torch.Tensor,
    raw_widths: torch.Tensor,
    raw_heights: torch.Tensor,
    raw_derivatives: torch.Tensor,
    *,
    bound: float,
    inverse: bool = False,
    min_bin_width: float = 1e-3,
    min_bin_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise monotonic spline and its log |derivative|.

    Parameters
    ----------
    inputs : tensor of shape (...,)
    raw_widths, raw_heights : tensors of shape (..., K)
        Unnormalised bin widths and heights (a softmax shares out 2 * bound).
    raw_derivatives : tensor of shape (..., K - 1)
        Unconstrained derivatives at the interior knots (0 gives derivative 1).
    bound : float
        The spline lives on [-bound, bound]; outside it the map is the identity.
    inverse : bool, default=False
        Apply the inverse map (its log-derivative is that of the inverse).

    Returns
    -------
    outputs, log_abs_derivative : tensors of shape (...,)
    """
    inside = (inputs >= -bound) & (inputs <= bound)
    x = inputs.clamp(-bound, bound)
    x_knots, widths = _knots(raw_widths, bound, min_bin_width)
    y_knots, heights = _knots(raw_heights, bound, min_bin_height)
    # softplus shifted so that a raw value of 0 gives derivative exactly 1: the identity map.
    shift = math.log(math.expm1(1 - min_derivative))
    interior = min_derivative + softplus(raw_derivatives + shift)
    ones = interior.new_ones(interior[..., :1].shape)
    derivatives = torch.cat([ones, interior, ones], dim=-1)

    knots = y_knots if inverse else x_knots
    bin_index = (x[..., None] >= knots[..., 1:-1]).sum(-1)
    x_k, w_k = _gather(x_knots, bin_index), _gather(widths, bin_index)
    y_k, h_k = _gather(y_knots, bin_index), _gather(heights, bin_index)
    d_k, d_next = _gather(derivatives, bin_index), _gather(derivatives[..., 1:], bin_index)
    slope = h_k / w_k
    curvature = d_next + d_k - 2 * slope

    if inverse:
        offset = x - y_k
        a = h_k * (slope - d_k) + offset * curvature
        b = h_k * d_k - offset * curvature
        c = -slope * offset
        discriminant = (b.pow(2) - 4 * a * c).clamp(min=0)
        theta = (2 * c) / (-b - discriminant.sqrt())
        outputs = theta * w_k + x_k
    else:
        theta = (x - x_k) / w_k
        outputs = y_k + h_k * (slope * theta.pow(2) + d_k * theta * (1 - theta)) / (
            slope + curvature * theta * (1 - theta)
        )
    between = theta * (1 - theta)
    denominator = slope + curvature * between
    derivative = slope.pow(2) * (
        d_next * theta.pow(2) + 2 * slope * between + d_k * (1 - theta).pow(2)
    )
    log_derivative = torch.log(derivative) - 2 * torch.log(denominator)
    if inverse:
        log_derivative = -log_derivative
    outputs = torch.where(inside, outputs, inputs)
    log_derivative = torch.where(inside, log_derivative, torch.zeros_like(log_derivative))
    return outputs, log_derivative


class SplineCoupling(FlatCoupling):
    """Coupling layer whose transformed features go through rational-quadratic splines.

    Parameters
    ----------
    mask : tensor of shape (n_features,)
        1 for the features passed through unchanged (they condition the splines).
    hidden_dims : sequence of int
        Hidden widths of the MLP conditioner.
    n_bins : int, default=8
        Bins per spline.
    bound : float, default=5.0
        The splines act on [-bound, bound] (standardised data: five standard deviations);
        the identity outside.
    """

    def __init__(
        self, mask: torch.Tensor, hidden_dims: Sequence[int], n_bins: int = 8, bound: float = 5.0
    ) -> None:
        # Zero-initialised conditioner output: equal bins and unit derivatives, the identity.
        super().__init__(mask, hidden_dims, n_params=3 * n_bins - 1)
        self.n_bins, self.bound = n_bins, bound

    def _transform(self, x_a, x_b, inverse):
        params = self._conditioner_output(x_a).unflatten(-1, (x_b.shape[-1], 3 * self.n_bins - 1))
        widths, heights, derivatives = params.split(
            [self.n_bins, self.n_bins, self.n_bins - 1], dim=-1
        )
        return rational_quadratic_spline(
            x_b, widths, heights, derivatives, bound=self.bound, inverse=inverse
        )
