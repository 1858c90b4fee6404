"""A Gaussian mixture as a flow's base distribution.

A flow on a standard normal base has to learn every correlation and every mode with its
couplings; on a mixture of full-covariance Gaussians fitted to the data it starts where a tuned
``GaussianMixture`` ends (the couplings start at the identity) and learns only what the mixture
misses. The mixture's parameters are trained with the couplings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, MixtureSameFamily, MultivariateNormal


class GaussianMixtureBase(nn.Module):
    """Mixture of full-covariance Gaussians over R^n as a module: ``forward()`` returns it.

    Parameters
    ----------
    weights : array of shape (n_components,)
        Mixing proportions (positive; normalised here).
    means : array of shape (n_components, n_features)
    scale_trils : array of shape (n_components, n_features, n_features)
        Lower-triangular Cholesky factors of the covariances (positive diagonals).

    Notes
    -----
    Trained through unconstrained parameters: mixing logits, means, the strictly lower
    triangles and the logarithms of the diagonals of the Cholesky factors.
    """

    def __init__(self, weights: np.ndarray, means: np.ndarray, scale_trils: np.ndarray) -> None:
        super().__init__()
        scale_trils = np.asarray(scale_trils, dtype=np.float64)
        diagonals = np.diagonal(scale_trils, axis1=-2, axis2=-1)
        if (diagonals <= 0).any():
            raise ValueError("scale_trils need positive diagonals (Cholesky factors).")

        def parameter(values: np.ndarray) -> nn.Parameter:
            return nn.Parameter(torch.as_tensor(np.asarray(values), dtype=torch.float32))

        self.logits = parameter(np.log(np.asarray(weights, dtype=np.float64)))
        self.loc = parameter(means)
        self.lower = parameter(np.tril(scale_trils, -1))
        self.log_diagonal = parameter(np.log(diagonals))

    def scale_tril(self) -> torch.Tensor:
        return torch.tril(self.lower, -1) + torch.diag_embed(self.log_diagonal.exp())

    def forward(self) -> Distribution:
        components = MultivariateNormal(self.loc, scale_tril=self.scale_tril(), validate_args=False)
        return MixtureSameFamily(
            Categorical(logits=self.logits, validate_args=False), components, validate_args=False
        )

    @torch.no_grad()
    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` draws, from ``generator`` (torch's distributions take none)."""
        probabilities = torch.softmax(self.logits, dim=0)
        chosen = torch.multinomial(probabilities, n_samples, replacement=True, generator=generator)
        noise = torch.randn(
            n_samples, self.loc.shape[1], generator=generator, device=self.loc.device
        ).to(self.loc.dtype)
        return self.loc[chosen] + (self.scale_tril()[chosen] @ noise.unsqueeze(-1)).squeeze(-1)
