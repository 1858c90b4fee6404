"""Priors p(z) over the latent space, as modules that return ``torch.distributions`` objects.

Every prior is used only through ``log_prob`` (the bounds estimate the KL term by Monte Carlo)
and ``sample``, so priors without a closed-form KL (mixtures, VampPrior, flows) work exactly
like the standard Gaussian.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    Normal,
)
from torch.nn.functional import softplus

from impute_dgm.flows import StandardNormal, make_tabular_flow


class Prior(nn.Module):
    """A learnable or fixed prior p(z); ``forward()`` returns the distribution over R^latent_dim.

    Subclasses return any ``torch.distributions`` object with event shape ``(latent_dim,)`` that
    has ``log_prob`` and ``sample``. Priors that depend on the rest of the model (VampPrior)
    override :meth:`attach`; priors initialised from data override :meth:`initialize`.
    """

    latent_dim: int

    def forward(self) -> Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def attach(self, model: nn.Module) -> None:
        """Called once by the model that owns the prior, after its encoder exists."""

    def initialize(self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> None:
        """Called once before training with the (scaled, zero-filled) training rows."""


class StandardNormalPrior(StandardNormal, Prior):
    """The standard Gaussian prior N(0, I)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.latent_dim = latent_dim


_SOFTPLUS_INVERSE_OF_ONE = math.log(math.e - 1)


class MixtureOfGaussiansPrior(Prior):
    """A mixture of diagonal Gaussians with learnable weights, means and scales.

    Parameters
    ----------
    latent_dim : int
    n_components : int, default=10
    min_scale : float, default=1e-3
        Floor on the component standard deviations.
    """

    def __init__(self, latent_dim: int, n_components: int = 10, min_scale: float = 1e-3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.n_components = n_components
        self.min_scale = min_scale
        self.logits = nn.Parameter(torch.zeros(n_components))
        # Means spread like draws from N(0, I), so components start apart; unit scales.
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        self.raw_scales = nn.Parameter(
            torch.full((n_components, latent_dim), _SOFTPLUS_INVERSE_OF_ONE)
        )

    def forward(self) -> Distribution:
        components = Independent(
            Normal(self.means, softplus(self.raw_scales) + self.min_scale, validate_args=False),
            1,
        )
        return MixtureSameFamily(
            Categorical(logits=self.logits, validate_args=False), components, validate_args=False
        )


class VampPrior(Prior):
    """VampPrior: the mixture of the encoder's posteriors at learnable pseudo-inputs.

    p(z) = (1/C) sum_c q(z | u_c), with pseudo-inputs u_c trained with the rest of the model and
    initialised from training rows (Tomczak & Welling, AISTATS 2018), in the encoder's view of
    a row (see :meth:`attach`). The pseudo-inputs are treated as fully observed.

    Parameters
    ----------
    latent_dim : int
    n_components : int, default=50
        Number of pseudo-inputs.
    """

    def __init__(self, latent_dim: int, n_components: int = 50) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.n_components = n_components
        self.pseudo_inputs: nn.Parameter | None = None

    def attach(self, model: nn.Module) -> None:
        # A plain attribute, not a submodule: the model (and its encoder) owns the prior, and
        # must not be registered (and saved) twice. Pseudo-inputs live where the encoder reads
        # rows (the likelihood's encoder view: one-hot categories, log1p counts, ...), so every
        # coordinate is continuous and learnable; for numeric tables that is data space.
        object.__setattr__(self, "_model", model)
        if self.pseudo_inputs is None:
            width = model.likelihood.encoder_width(model.n_features)
            # On the model's device and dtype: a prior attached to a model already moved to a
            # GPU must not leave its pseudo-inputs on the CPU.
            reference = next(model.parameters(), torch.zeros(()))
            self.pseudo_inputs = nn.Parameter(
                torch.zeros(
                    self.n_components, width, device=reference.device, dtype=reference.dtype
                )
            )

    def initialize(self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> None:
        rows = torch.randint(
            0, x.shape[0], (self.n_components,), generator=generator, device=generator.device
        )
        rows = rows.to(x.device)
        with torch.no_grad():
            self.pseudo_inputs.copy_(self._model.encoder_view(x[rows], mask[rows].to(x.dtype)))

    def forward(self) -> Distribution:
        if self.pseudo_inputs is None:
            raise RuntimeError("VampPrior must be attached to a model before use.")
        observed = self.pseudo_inputs.new_ones(self.n_components, self._model.n_features)
        posteriors = self._model.posterior_from_view(self.pseudo_inputs, observed)
        weights = Categorical(
            logits=torch.zeros(self.n_components, device=self.pseudo_inputs.device),
            validate_args=False,
        )
        return MixtureSameFamily(weights, posteriors, validate_args=False)


class FlowPrior(Prior):
    """A coupling flow over z on a standard Gaussian base (the flows of FlowDensityEstimator).

    Parameters
    ----------
    latent_dim : int
    n_layers : int, default=4
        Coupling layers.
    hidden_dims : sequence of int, default=(64, 64)
        Hidden widths of each coupling's conditioner.
    coupling : {"affine", "spline"}, default="affine"
        RealNVP affine couplings or rational-quadratic spline couplings.
    """

    def __init__(
        self,
        latent_dim: int,
        n_layers: int = 4,
        hidden_dims: Sequence[int] = (64, 64),
        coupling: str = "affine",
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.flow = make_tabular_flow(latent_dim, n_layers, tuple(hidden_dims), coupling=coupling)

    def forward(self) -> Distribution:
        return self.flow.distribution()


PRIORS = ("standard", "mog", "vamp", "flow")


def make_prior(prior: str | Prior, latent_dim: int, n_components: int = 10) -> Prior:
    """Build a prior from its name or return the given :class:`Prior` instance.

    Parameters
    ----------
    prior : {"standard", "mog", "vamp", "flow"} or Prior
    latent_dim : int
    n_components : int, default=10
        Components of "mog" and pseudo-inputs of "vamp".
    """
    if isinstance(prior, Prior):
        return prior
    if prior == "standard":
        return StandardNormalPrior(latent_dim)
    if prior == "mog":
        return MixtureOfGaussiansPrior(latent_dim, n_components)
    if prior == "vamp":
        return VampPrior(latent_dim, n_components)
    if prior == "flow":
        return FlowPrior(latent_dim)
    raise ValueError(f"prior={prior!r} is not one of {list(PRIORS)}.")
