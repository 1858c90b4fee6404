"""Rational-quadratic spline couplings: exact inverse and log-determinants, in every role."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from statistical import check, seed
from torch.distributions import TransformedDistribution

from impute_dgm import FlowDensityEstimator, VAEEmbedder
from impute_dgm.distributions.priors import FlowPrior
from impute_dgm.flows import SplineCoupling, make_tabular_flow, rational_quadratic_spline

torch.set_default_dtype(torch.float32)


def random_spline_params(shape, n_bins, generator):
    return (
        torch.randn(*shape, n_bins, generator=generator, dtype=torch.float64) * 2,
        torch.randn(*shape, n_bins, generator=generator, dtype=torch.float64) * 2,
        torch.randn(*shape, n_bins - 1, generator=generator, dtype=torch.float64) * 2,
    )


def test_spline_inverts_and_its_log_derivative_is_the_derivative():
    generator = torch.Generator().manual_seed(0)
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)  # inside and outside [-5, 5]
    widths, heights, derivatives = random_spline_params(x.shape, 6, generator)
    x.requires_grad_(True)
    y, log_derivative = rational_quadratic_spline(x, widths, heights, derivatives, bound=5.0)
    (gradient,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_derivative, gradient.abs().log(), atol=1e-9, rtol=1e-9)
    assert (gradient > 0).all()  # monotonic
    back, inverse_log = rational_quadratic_spline(
        y.detach(), widths, heights, derivatives, bound=5.0, inverse=True
    )
    torch.testing.assert_close(back, x.detach(), atol=1e-9, rtol=0)
    torch.testing.assert_close(inverse_log, -log_derivative.detach(), atol=1e-9, rtol=0)
    outside = x.detach().abs() > 5
    assert torch.equal(y[outside], x.detach()[outside]) and (log_derivative[outside] == 0).all()


def test_zero_parameters_give_the_identity():
    x = torch.linspace(-4, 4, 33, dtype=torch.float64)
    zeros = torch.zeros(33, 8, dtype=torch.float64)
    y, log_derivative = rational_quadratic_spline(x, zeros, zeros, zeros[:, :7], bound=5.0)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(log_derivative, torch.zeros_like(x), atol=1e-12, rtol=0)


def randomised_coupling(n_features: int, seed: int) -> SplineCoupling:
    torch.manual_seed(seed)
    mask = torch.tensor([1.0, 0.0] * (n_features // 2) + [1.0] * (n_features % 2))
    layer = SplineCoupling(mask, hidden_dims=(16,), n_bins=5).double()
    with torch.no_grad():  # away from the identity it starts as
        for parameter in layer.parameters():
            parameter.normal_(0, 0.5)
    return layer


def test_coupling_log_det_matches_the_autograd_jacobian():
    layer = randomised_coupling(5, 1)
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2
    y, log_det = layer(x)
    for row in range(x.shape[0]):
        jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[row])
        torch.testing.assert_close(log_det[row], torch.linalg.slogdet(jacobian)[1])
    back, inverse_log_det = layer.inverse(y)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(inverse_log_det, -log_det, atol=1e-9, rtol=0)


def test_spline_flow_as_a_torch_distribution():
    torch.manual_seed(3)
    flow = make_tabular_flow(4, 3, (16,), coupling="spline").double()
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.normal_(0, 0.3)
    x = torch.randn(10, 4, dtype=torch.float64)
    transforms = [layer.as_transform().inv for layer in reversed(flow.layers)]
    distribution = TransformedDistribution(flow.base(), transforms)
    torch.testing.assert_close(distribution.log_prob(x), flow.log_prob(x))
    draws = flow.distribution().rsample((5,))
    assert draws.shape == (5, 4) and torch.isfinite(flow.log_prob(draws)).all()


def test_spline_flow_prior_in_a_vae():
    X = np.random.default_rng(0).normal(size=(80, 4))
    prior = FlowPrior(2, n_layers=2, hidden_dims=(8,), coupling="spline")
    embedder = VAEEmbedder(latent_dim=2, hidden_dims=(8,), prior=prior, n_epochs=3, random_state=0)
    assert np.isfinite(embedder.fit(X).score_samples(X)).all()


@pytest.mark.statistical
def test_spline_couplings_fit_a_curved_density_better_than_affine():
    X, _ = make_moons(1500, noise=0.08, random_state=seed(0))
    scores = {}
    for coupling in ("affine", "spline"):
        # Both on N(0, I): the couplings alone are compared (a mixture base narrows the gap).
        flow = FlowDensityEstimator(
            coupling=coupling, base="normal", n_layers=4, hidden_dims=(32, 32), n_epochs=40,
            random_state=seed(0),
            # The training the threshold was set with (the defaults until the plateau schedule).
            n_bins=8, lr=1e-3, lr_schedule="constant",
        ).fit(X[:1000])  # fmt: skip
        scores[coupling] = flow.score(X[1000:])
    # Over seed shifts 0-3 the gain was 0.49 to 0.59 nats per point.
    check("spline minus affine held-out nats", scores["spline"] - scores["affine"], ">", 0.2)
