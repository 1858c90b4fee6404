"""log Phi(x), the standard normal's log-CDF, fast enough to sit in the training loop.

``torch.special.log_ndtr`` is exact but, on the CPU, evaluates ``erfcx`` element by element:
about 15 times the cost of ``erfc`` on the same tensor. The whole-number likelihood calls it
twice per cell per importance sample, which made it 27% of a digits fit's time (600 x 64
integer pixels, torch 2.13, one thread). Here it costs one ``erfc``, with the asymptotic series
of the lower tail where ``erfc`` would underflow, and the analytic gradient
phi(x) / Phi(x) = exp(-x^2 / 2 - log Phi(x)) / sqrt(2 pi) from the saved result.
"""

from __future__ import annotations

import math

import torch

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)


def _tail_start(dtype: torch.dtype) -> float:
    """Below this x the series takes over: erfc(-x / sqrt 2) / 2 is still far above the
    dtype's smallest normal number there (float32 underflows near x = -13, float64 near -38),
    and the series' first omitted term, 945 / x^10, is below the dtype's resolution."""
    return -20.0 if dtype == torch.float64 else -10.0


class _LogNdtr(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        tail = _tail_start(x.dtype)
        # Phi of -|x|, computed in the tail where it keeps its relative precision; for x > 0
        # log Phi(x) = log1p(-Phi(-x)) does not round a value near 0 to 0. Where erfc
        # underflows, log gives -inf in the branch that ``where`` discards (no graph here).
        lower_tail = 0.5 * torch.erfc(x.abs() * _SQRT_HALF)
        near = torch.where(x < 0, torch.log(lower_tail), torch.log1p(-lower_tail))
        # Phi(x) = phi(x) / -x * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 - ...) as x -> -inf.
        far_x = x.clamp(max=tail)
        inverse_square = far_x.pow(-2)
        series = 1 + inverse_square * (
            -1 + inverse_square * (3 + inverse_square * (-15 + inverse_square * 105))
        )
        far = torch.log(series / -far_x) - 0.5 * far_x.square() - _HALF_LOG_2PI
        result = torch.where(x > tail, near, far)
        ctx.save_for_backward(x, result)
        return result

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, result = ctx.saved_tensors
        return grad * torch.exp(-0.5 * x.square() - result - _HALF_LOG_2PI)


def log_ndtr(x: torch.Tensor) -> torch.Tensor:
    """log Phi(x), elementwise, with its gradient; what ``torch.special.log_ndtr`` computes.

    Relative error below 3e-7 in float32 and 1e-12 in float64 over x in [-600, 0], absolute
    error below 1e-7 above 0 (checked against ``torch.special.log_ndtr`` in the tests).
    """
    return _LogNdtr.apply(x)
