"""Multilayer perceptrons and the Gaussian encoder q(z | x, m)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal
from torch.nn.functional import softplus

# Activations with a recommended initialisation gain (torch.nn.init.calculate_gain); the others
# (SiLU, ELU, GELU) start with gain 1, the setting their defaults were measured with.
_GAIN_NAMES = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.SELU: "selu"}

# The hidden activations an estimator can name (its ``activation`` parameter).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
}


def activation_class(activation: str | type[nn.Module]) -> type[nn.Module]:
    """The module class of an activation given by name (a key of :data:`ACTIVATIONS`) or as
    a class."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not one of {sorted(ACTIVATIONS)}.")
        return ACTIVATIONS[activation]
    return activation


class MLP(nn.Sequential):
    """Fully connected network: ``Linear -> activation`` for each hidden width, then ``Linear``.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    hidden_dims : sequence of int
        Widths of the hidden layers (may be empty: a single linear map).
    activation : str or type of nn.Module, default=nn.Tanh
        Activation between layers: a class, or a name of :data:`ACTIVATIONS`.

    Notes
    -----
    Weights start from Glorot-uniform draws scaled by the activation's gain, biases at zero.
    PyTorch's default ``nn.Linear`` initialisation shrinks the signal about threefold per tanh
    layer, so a fresh encoder gave nearly the same code to every row; a VampPrior (whose scale
    is set by the encoder itself) then shrank the whole latent space and the decoder never
    learned to use z (test NLL equal to the flat per-pixel model on digits).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_dims: Sequence[int],
        activation: str | type[nn.Module] = nn.Tanh,
    ) -> None:
        activation = activation_class(activation)
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), activation()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        hidden_gain = nn.init.calculate_gain(_GAIN_NAMES.get(activation, "linear"))
        linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
        for index, linear in enumerate(linears):
            gain = 1.0 if index == len(linears) - 1 else hidden_gain
            nn.init.xavier_uniform_(linear.weight, gain=gain)
            nn.init.zeros_(linear.bias)


class GaussianEncoder(nn.Module):
    """Amortised diagonal Gaussian posterior q(z | x, m).

    The network sees the zero-filled data (as the likelihood presents them, e.g. categories
    one-hot) and, with ``mask_input``, the observation mask too, so that a zero that was
    observed and a zero that fills a hole are told apart.

    Parameters
    ----------
    n_features : int
        Width of x and of the mask.
    latent_dim : int
        Width of z.
    hidden_dims : sequence of int
        Hidden widths of the MLP.
    mask_input : bool, default=True
        Concatenate the mask to the input.
    min_scale : float, default=1e-4
        Lower bound on the posterior standard deviation (keeps log q finite).
    n_inputs : int or None, default=None
        Width of the data as the encoder sees them (one-hot categories are wider than x);
        ``n_features`` when None.
    activation : str or type of nn.Module, default="tanh"
        Hidden activation of the MLP.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dims: Sequence[int],
        mask_input: bool = True,
        min_scale: float = 1e-4,
        n_inputs: int | None = None,
        activation: str | type[nn.Module] = "tanh",
    ) -> None:
        super().__init__()
        self.mask_input = mask_input
        self.min_scale = min_scale
        in_features = (n_features if n_inputs is None else n_inputs) + (
            n_features if mask_input else 0
        )
        self.net = MLP(in_features, 2 * latent_dim, hidden_dims, activation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Independent:
        """q(z | x, m) for ``x`` already zero-filled where ``mask`` is 0."""
        inputs = torch.cat([x, mask], dim=-1) if self.mask_input else x
        loc, raw_scale = self.net(inputs).chunk(2, dim=-1)
        # softplus of a strided half runs far off torch's vectorised path (Likelihood._split).
        scale = softplus(raw_scale.contiguous()) + self.min_scale
        return Independent(Normal(loc, scale, validate_args=False), 1, validate_args=False)


def reparameterize(posterior: Independent, noise: torch.Tensor) -> torch.Tensor:
    """Draw z = loc + scale * noise from a diagonal Gaussian with noise supplied by the caller.

    ``Distribution.rsample`` draws from torch's global generator; taking the standard normal
    noise as an argument lets training use a seeded generator, and lets evaluation share one set
    of draws across rows (common random numbers), which makes scores and imputations of a row
    independent of the other rows in the batch.

    Parameters
    ----------
    posterior : Independent(Normal) with batch shape (B,) and event shape (L,)
    noise : tensor broadcastable to (K, B, L)

    Returns
    -------
    z : tensor of shape (K, B, L)
    """
    normal = posterior.base_dist
    return normal.loc + normal.scale * noise


def detached_gaussian(posterior: Independent) -> Independent:
    """The same diagonal Gaussian with its location and scale detached from the graph: its
    ``log_prob(z)`` then depends on the parameters only through ``z`` (doubly reparameterised
    gradients)."""
    normal = posterior.base_dist
    return Independent(
        Normal(normal.loc.detach(), normal.scale.detach(), validate_args=False),
        1,
        validate_args=False,
    )
