"""Learned priors: normalised densities, samples that match them, Monte Carlo KL."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from impute_dgm.distributions import (
    FlowPrior,
    GaussianLikelihood,
    MixtureOfGaussiansPrior,
    StandardNormalPrior,
    VampPrior,
    make_prior,
)
from impute_dgm.flows import AffineCoupling, Flow
from impute_dgm.models import DeepLatentVariableModel


def randomize(module, scale=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return module


def vamp_prior(latent_dim, n_components=5):
    torch.manual_seed(0)
    prior = VampPrior(latent_dim, n_components)
    DeepLatentVariableModel(3, latent_dim, (16,), GaussianLikelihood(), prior)
    with torch.no_grad():
        prior.pseudo_inputs.normal_()
    return prior


def one_dimensional_priors():
    torch.manual_seed(0)
    return {
        "standard": StandardNormalPrior(1),
        "mog": randomize(MixtureOfGaussiansPrior(1, 4)),
        "vamp": vamp_prior(1),
        "flow": randomize(FlowPrior(1, n_layers=3, hidden_dims=(8,)), 0.5),
    }


@pytest.mark.parametrize("name", ["standard", "mog", "vamp", "flow"])
def test_prior_normalises_and_samples_match_its_density(name):
    prior = one_dimensional_priors()[name]
    grid = torch.linspace(-15, 15, 30001)[:, None]
    with torch.no_grad():
        density = prior().log_prob(grid).exp()
        mass = torch.trapezoid(density, grid[:, 0]).item()
        mean = torch.trapezoid(density * grid[:, 0], grid[:, 0]).item()
        variance = torch.trapezoid(density * (grid[:, 0] - mean) ** 2, grid[:, 0]).item()
        torch.manual_seed(1)
        draws = prior().sample((40000,))[:, 0]
    assert mass == pytest.approx(1.0, abs=1e-3)
    standard_error = math.sqrt(variance / 40000)
    assert draws.mean().item() == pytest.approx(mean, abs=5 * standard_error)
    assert draws.var().item() == pytest.approx(variance, rel=0.05)


@pytest.mark.parametrize("name", ["mog", "vamp", "flow"])
def test_two_dimensional_priors_normalise(name):
    """Grid mass over a box is 1 and equals the share of draws landing in that box.

    Only the prior under test is built after seeding, so it does not depend on how many
    random numbers the other constructors draw. The flow's perturbation (0.2) keeps its
    density smooth enough for an 801 x 801 grid while far from the Gaussian base.
    """
    build = {
        "mog": lambda: randomize(MixtureOfGaussiansPrior(2, 3)),
        "vamp": lambda: vamp_prior(2),
        "flow": lambda: randomize(FlowPrior(2, n_layers=4, hidden_dims=(8,)), 0.2),
    }[name]
    torch.manual_seed(0)
    prior = build()
    axis = torch.linspace(-10, 10, 801)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = prior().log_prob(grid).exp().reshape(801, 801)
        torch.manual_seed(1)
        draws = prior().sample((100000,))
    mass = torch.trapezoid(torch.trapezoid(density, axis, dim=1), axis).item()
    share_inside = (draws.abs() <= 10).all(-1).double().mean().item()
    assert mass == pytest.approx(1.0, abs=0.01)
    assert mass == pytest.approx(share_inside, abs=0.005)


def test_monte_carlo_kl_agrees_with_the_closed_form():
    """The bounds estimate KL(q || p) as E_q[log q - log p]; with the standard prior that
    must agree with torch's closed-form Gaussian KL within sampling error."""
    q = Independent(Normal(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.3, 1.5, 0.8])), 1)
    p = StandardNormalPrior(3)()
    torch.manual_seed(0)
    z = q.sample((200000,))
    terms = q.log_prob(z) - p.log_prob(z)
    standard_error = terms.std().item() / math.sqrt(len(terms))
    assert terms.mean().item() == pytest.approx(kl_divergence(q, p).item(), abs=4 * standard_error)


def test_vamp_prior_is_the_encoder_mixture_at_pseudo_inputs():
    prior = vamp_prior(2, n_components=3)
    z = torch.randn(10, 2)
    pseudo = prior.pseudo_inputs
    # A numeric table's encoder view is the data itself: the pseudo-inputs are rows.
    posteriors = prior._model.posterior(pseudo, torch.ones_like(pseudo))
    expected = torch.logsumexp(posteriors.log_prob(z[:, None, :]), dim=1) - math.log(3)
    assert torch.allclose(prior().log_prob(z), expected, atol=1e-6)
    # pseudo-inputs are parameters, the encoder is not registered twice
    names = [name for name, _ in prior.named_parameters()]
    assert names == ["pseudo_inputs"]


def test_vamp_prior_initializes_from_rows():
    prior = vamp_prior(2, n_components=4)
    x = torch.arange(30.0).reshape(10, 3)
    prior.initialize(x, torch.ones_like(x), torch.Generator().manual_seed(0))
    for row in prior.pseudo_inputs.detach():
        assert any(torch.equal(row, candidate) for candidate in x)
    with pytest.raises(RuntimeError, match="attached"):
        VampPrior(2)()


def test_vamp_prior_attached_to_a_moved_model_keeps_its_pseudo_inputs_there():
    # A prior attached after the model was moved (a GPU, or float64 here: the same path) must
    # put its pseudo-inputs where the encoder reads them, not on the CPU in float32.
    model = DeepLatentVariableModel(3, 2, (8,), GaussianLikelihood(), StandardNormalPrior(2))
    model = model.double()
    prior = VampPrior(2, 4)
    prior.attach(model)
    assert prior.pseudo_inputs.dtype == torch.float64
    assert prior.pseudo_inputs.device == next(model.parameters()).device
    with torch.no_grad():
        assert prior().sample((3,)).dtype == torch.float64


def test_flow_prior_reuses_the_flow_building_blocks():
    prior = FlowPrior(3)
    assert isinstance(prior.flow, Flow)
    assert all(isinstance(layer, AffineCoupling) for layer in prior.flow.layers)
    z = prior().rsample((5,))
    assert z.shape == (5, 3) and z.requires_grad


def test_make_prior_by_name():
    assert isinstance(make_prior("mog", 2, n_components=7), MixtureOfGaussiansPrior)
    assert make_prior("mog", 2, n_components=7).n_components == 7
    assert isinstance(make_prior("vamp", 2), VampPrior)
    assert isinstance(make_prior("flow", 2), FlowPrior)


def test_vamp_prior_on_a_mixed_table_learns_one_hot_pseudo_inputs():
    """With a category column the pseudo-inputs live in the encoder's one-hot view, start as
    training rows' views, and every coordinate (the category's too) gets a gradient."""
    import numpy as np
    import pandas as pd

    from impute_dgm import VAEImputer

    rng = np.random.default_rng(0)
    n = 150
    z = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x": z + 0.1 * rng.normal(size=n),
            "count": pd.array(rng.poisson(np.exp(0.5 * z)), dtype="Int64"),
            "colour": pd.Categorical(np.where(z > 0.5, "red", np.where(z > -0.5, "green", "blue"))),
        }
    ).mask(rng.random((n, 3)) < 0.2)
    # On the CPU: the test feeds the prior tensors it makes itself.
    imputer = VAEImputer(
        prior="vamp", n_components=5, n_epochs=1, hidden_dims=(8,), latent_dim=2, random_state=0,
        device="cpu",
    ).fit(frame)  # fmt: skip
    prior = imputer.model_.prior
    model = imputer.model_
    # 1 float + 1 count + 3 one-hot levels
    assert prior.pseudo_inputs.shape == (5, 5) == (5, model.likelihood.encoder_width(3))
    # Initialised pseudo-inputs are views of training rows (one-hot blocks of 0/1).
    x, mask = imputer._to_tensors(imputer._encode(frame, reset=False)[1], torch.device("cpu"))
    prior.initialize(x, mask, torch.Generator().manual_seed(0))
    views = model.encoder_view(x, mask)
    for row in prior.pseudo_inputs.detach():
        assert any(torch.equal(row, view) for view in views)
    prior().log_prob(torch.randn(7, 2)).sum().backward()
    assert (prior.pseudo_inputs.grad.abs() > 0).all()
    trained = VAEImputer(
        prior="vamp", n_components=5, n_epochs=5, hidden_dims=(8,), latent_dim=2, random_state=0
    ).fit(frame)
    completed = trained.transform(frame)
    assert completed.notna().all().all() and np.isfinite(trained.score_samples(frame)).all()
