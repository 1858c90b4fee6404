"""Models of the missingness mask, p(m | x), for values missing not at random (not-MIWAE).

Ipsen, Frellsen & Mattei (ICLR 2021) add log p(m | x) to the importance weights of MIWAE, with
the missing values drawn from p(x_miss | z) by reparameterisation inside the bound; the model
then learns which values tend to go missing, and stops imputing them like the observed ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent


class SelfMaskingLogistic(nn.Module):
    """Per-column logistic self-masking: P(m_j = 1 | x) = sigmoid(a_j x_j + c_j).

    Whether entry j is observed depends on its own value only (m = 1: observed), in the
    model's standardised units. Starts at a_j = c_j = 0, a constant p(m | x) = 1/2 per entry,
    under which the not-MIWAE bound is MIWAE's plus a constant.

    Parameters
    ----------
    n_features : int
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.zeros(n_features))
        self.offset = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> Independent:
        """p(m | x) for complete rows ``x`` of shape (..., D), event shape (D,)."""
        return Independent(Bernoulli(logits=self.slope * x + self.offset, validate_args=False), 1)


MISSINGNESS = ("mar", "self_masking")


def make_missingness(name: str, n_features: int) -> SelfMaskingLogistic | None:
    """The mask model for ``missingness`` (None for "mar": the mask carries no information)."""
    if name == "mar":
        return None
    if name == "self_masking":
        return SelfMaskingLogistic(n_features)
    raise ValueError(f"missingness={name!r} is not one of {MISSINGNESS}.")
