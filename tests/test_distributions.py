"""Observation models, the prior and the encoder's reparameterisation."""

import math

import numpy as np
import pytest
import torch

from impute_dgm.distributions import (
    BernoulliLikelihood,
    CategoricalLikelihood,
    GaussianEncoder,
    GaussianLikelihood,
    StandardNormalPrior,
    StudentTLikelihood,
    make_likelihood,
    make_prior,
)
from impute_dgm.distributions.networks import reparameterize


def test_gaussian_variance_floor_bounds_the_likelihood():
    likelihood = GaussianLikelihood(min_scale=0.05)
    # The decoder pushes the scale towards zero and puts the mean on the data point.
    params = torch.cat([torch.zeros(1, 3), torch.full((1, 3), -1e4)], dim=-1)
    distribution = likelihood(params)
    assert torch.all(distribution.scale >= 0.05)
    ceiling = -math.log(0.05 * math.sqrt(2 * math.pi))
    assert torch.all(distribution.log_prob(torch.zeros(1, 3)) <= ceiling + 1e-6)


def test_student_t_mean_exists_and_is_the_location():
    likelihood = StudentTLikelihood(min_df=3.0)
    params = torch.randn(5, 3 * 4)
    distribution = likelihood(params)
    assert torch.all(distribution.df > 3.0)
    assert torch.equal(likelihood.mean(distribution), distribution.loc)
    with pytest.raises(ValueError, match="min_df"):
        StudentTLikelihood(min_df=1.0)


def test_bernoulli_log_prob_and_support_check():
    likelihood = BernoulliLikelihood()
    logits = torch.tensor([[0.0, 2.0]])
    distribution = likelihood(logits)
    expected = math.log(0.5) + math.log(1 / (1 + math.exp(-2.0)))
    assert distribution.log_prob(torch.tensor([[1.0, 1.0]])).sum().item() == pytest.approx(expected)
    likelihood.check_data(np.array([[0.0, 1.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="binary"):
        likelihood.check_data(np.array([[0.5, 1.0]]))


def test_make_likelihood_and_prior_by_name():
    assert isinstance(make_likelihood("student_t"), StudentTLikelihood)
    custom = GaussianLikelihood(min_scale=0.2)
    assert make_likelihood(custom) is custom
    with pytest.raises(ValueError, match="weibull"):
        make_likelihood("weibull")
    with pytest.raises(ValueError, match="prior"):
        make_prior("nope", 2)


def test_standard_prior_normalises_and_samples_match():
    prior = StandardNormalPrior(latent_dim=1)()
    grid = torch.linspace(-10, 10, 20001)[:, None]
    mass = torch.trapezoid(prior.log_prob(grid).exp(), grid[:, 0]).item()
    assert mass == pytest.approx(1.0, abs=1e-6)
    torch.manual_seed(0)
    draws = StandardNormalPrior(latent_dim=3)().sample((20000,))
    assert draws.mean(0).abs().max() < 0.05
    assert (draws.std(0) - 1).abs().max() < 0.05


def test_reparameterize_draws_from_the_posterior():
    encoder = GaussianEncoder(n_features=4, latent_dim=2, hidden_dims=(8,))
    x = torch.randn(3, 4)
    mask = torch.ones(3, 4)
    posterior = encoder(x, mask)
    noise = torch.randn(50000, 1, 2, generator=torch.Generator().manual_seed(0))
    z = reparameterize(posterior, noise)
    assert z.shape == (50000, 3, 2)
    loc, scale = posterior.base_dist.loc.detach(), posterior.base_dist.scale.detach()
    assert torch.allclose(z.mean(0).detach(), loc, atol=5 * scale.max().item() / 200)
    assert torch.allclose(z.std(0).detach(), scale, rtol=0.03)


def test_encoder_tells_observed_zero_from_missing():
    torch.manual_seed(0)
    encoder = GaussianEncoder(n_features=3, latent_dim=2, hidden_dims=(8,), mask_input=True)
    x = torch.zeros(1, 3)
    observed = encoder(x, torch.ones(1, 3)).base_dist.loc
    missing = encoder(x, torch.tensor([[1.0, 0.0, 1.0]])).base_dist.loc
    assert not torch.allclose(observed, missing)
    blind = GaussianEncoder(n_features=3, latent_dim=2, hidden_dims=(8,), mask_input=False)
    assert torch.allclose(
        blind(x, torch.ones(1, 3)).base_dist.loc,
        blind(x, torch.tensor([[1.0, 0.0, 1.0]])).base_dist.loc,
    )


def test_mlp_activation_by_name_and_unknown_name():
    from torch import nn

    from impute_dgm.distributions.networks import MLP

    assert any(isinstance(m, nn.SiLU) for m in MLP(3, 2, (4,), "silu").modules())
    with pytest.raises(ValueError, match="activation='swish'"):
        MLP(3, 2, (4,), "swish")


def test_discretized_normal_mean_is_the_mean_of_its_grid_points():
    """With a scale below the grid width the mass sits on the point nearest loc, wherever loc
    lies in its cell: the mean is that point's, not loc."""
    from impute_dgm.distributions.likelihoods import DiscretizedNormal

    loc = torch.tensor([0.4, 0.4, 0.5, 2.3, -1.7, 10.2, 0.51])
    scale = torch.tensor([0.05, 0.3, 0.3, 2.0, 0.6, 0.01, 0.5])
    offset, width = torch.full((7,), 0.25), torch.full((7,), 0.5)  # grid 0.25 + 0.5 k
    distribution = DiscretizedNormal(loc, scale, offset, width)
    torch.manual_seed(0)
    draws = distribution.sample((400_000,))
    standard_error = draws.std(0) / 400_000**0.5
    assert (distribution.mean - draws.mean(0)).abs().le(5 * standard_error + 1e-4).all()
    assert distribution.mean[5] == 10.25  # all the mass on the nearest grid point
    assert distribution.mean[3] == loc[3]  # a wide normal: rounding leaves the mean


def censored_normal(loc, scale):
    """A normal rounded to the integers 0..4, its tails on 0 and 4."""
    from impute_dgm.distributions.likelihoods import DiscretizedNormal

    zero, one, four = torch.tensor(0.0), torch.tensor(1.0), torch.tensor(4.0)
    return DiscretizedNormal(loc, scale, zero, one, zero, four)


def test_censored_discretized_normal_puts_the_tails_on_its_end_points():
    loc = torch.cat([torch.linspace(-3.0, 7.0, 41), torch.tensor([0.2, 3.9, -40.0, 40.0])])
    scale = torch.cat([torch.linspace(0.05, 4.0, 41), torch.tensor([0.01, 0.02, 1.0, 1.0])])
    distribution = censored_normal(loc, scale)
    masses = distribution.log_prob(torch.arange(5.0).unsqueeze(1)).exp()
    assert torch.allclose(masses.sum(0), torch.ones(len(loc)), atol=1e-6)
    normal = torch.distributions.Normal(loc.double(), scale.double())
    edges = torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64).unsqueeze(1)
    cdf = normal.cdf(edges)
    expected = torch.cat([cdf[:1], cdf[1:] - cdf[:-1], 1 - cdf[-1:]])
    assert torch.allclose(masses.double(), expected, atol=1e-6)
    # Values beyond the bounds are scored as the bounds; a one-level column has mass 1.
    assert torch.equal(
        distribution.log_prob(torch.tensor(-3.0)), distribution.log_prob(torch.zeros(1))
    )
    assert torch.equal(
        distribution.log_prob(torch.tensor(9.0)), distribution.log_prob(torch.tensor(4.0))
    )
    from impute_dgm.distributions.likelihoods import DiscretizedNormal

    zero, one = torch.tensor(0.0), torch.tensor(1.0)
    single = DiscretizedNormal(torch.tensor([-2.0, 5.0]), torch.ones(2), zero, one, zero, zero)
    assert torch.equal(single.log_prob(torch.zeros(2)), torch.zeros(2))
    # Gradients in loc and scale against finite differences, at both bounds and inside.
    values = torch.tensor([0.0, 0.0, 2.0, 4.0, 4.0], dtype=torch.float64)

    def log_prob(loc, scale):
        return censored_normal(loc, scale).log_prob(values)

    loc = torch.tensor([0.7, -0.4, 2.3, 4.6, 3.1], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.3, 0.8, 0.6, 0.4, 1.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(log_prob, (loc, scale))


def test_censored_discretized_normal_mean_and_draws_stay_in_range():
    """The mean is that of clip(round(X), 0, 4), narrow or wide, and draws stay in range."""
    loc = torch.tensor([-1.0, 0.3, 2.0, 5.0, 0.2, 3.0, 4.4, -0.3])
    scale = torch.tensor([0.3, 0.2, 3.0, 1.5, 0.05, 10.0, 0.9, 1.1])
    distribution = censored_normal(loc, scale)
    torch.manual_seed(0)
    draws = distribution.sample((400_000,))
    assert draws.min() == 0 and draws.max() == 4
    assert torch.equal(draws, draws.round())
    standard_error = draws.std(0) / 400_000**0.5
    # Where the scale exceeds the grid width the mean is the censored normal's: within 0.02.
    assert (distribution.mean - draws.mean(0)).abs().le(5 * standard_error + 0.02).all()
    narrow = scale <= 1
    assert (
        (distribution.mean - draws.mean(0))[narrow]
        .abs()
        .le(5 * standard_error[narrow] + 1e-4)
        .all()
    )
    # The uncensored distribution's mean goes below 0 where loc does.
    from impute_dgm.distributions.likelihoods import DiscretizedNormal

    free = DiscretizedNormal(loc, scale, torch.tensor(0.0), torch.tensor(1.0))
    assert free.mean[0] < -0.5 and distribution.mean[0] > 0


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 5e-7), (torch.float64, 1e-12)])
def test_fast_log_ndtr_agrees_with_torch_from_the_far_tail_to_the_upper_half(dtype, tolerance):
    from impute_dgm.distributions._special import log_ndtr

    # Across both branches (the series below -10 in float32, -20 in float64; erfc above).
    x = torch.cat([torch.linspace(-600.0, -1.0, 20_001), torch.linspace(-1.0, 8.0, 2_001)])
    reference = torch.special.log_ndtr(x.double())
    values = log_ndtr(x.to(dtype)).double()
    assert torch.isfinite(values).all()
    relative = (values - reference).abs() / reference.abs()
    below_zero = x < 0
    assert relative[below_zero].max() < tolerance
    # Above 0 log Phi tends to 0 from below: an absolute error there, still resolving 1e-9.
    assert (values - reference)[~below_zero].abs().max() < 1e-7
    assert values[(x > 5.0) & (x < 6.0)].max() < 0


def test_fast_log_ndtr_gradient_is_phi_over_Phi():
    from impute_dgm.distributions._special import log_ndtr

    x = torch.linspace(-400.0, 8.0, 4_001, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(log_ndtr(x).sum(), x)
    (expected,) = torch.autograd.grad(torch.special.log_ndtr(x).sum(), x)
    assert torch.allclose(gradient, expected, rtol=1e-9, atol=0)
    # Either side of the branch point, against finite differences.
    points = torch.tensor([-35.0, -20.5, -19.5, -3.0, 0.0, 2.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(log_ndtr, (points.requires_grad_(),))
    # float32 in the far tail: the gradient approaches -x, finite, not 0 / 0.
    far = torch.tensor([-300.0, -50.0, -11.0], requires_grad=True)
    (gradient,) = torch.autograd.grad(log_ndtr(far).sum(), far)
    assert torch.allclose(gradient, -far.detach(), rtol=0.01)


def test_support_values_round_whole_number_columns_to_their_grid_and_keep_the_others():
    from impute_dgm.distributions import ColumnLikelihoods, DiscretizedGaussianLikelihood

    # Column 1: integers of a column with location 3 and scale 2 (grid -1.5 + k / 2).
    whole = DiscretizedGaussianLikelihood().set_grid(np.array([3.0]), np.array([2.0]))
    joint = ColumnLikelihoods([(GaussianLikelihood(), [0, 2]), (whole, [1])])
    distribution = joint(torch.zeros(4, 6))
    draws = torch.tensor([[0.123, 0.26, -7.1]]).expand(4, 3)
    values = joint.support_values(distribution, draws)
    assert torch.equal(values[:, [0, 2]], draws[:, [0, 2]])  # Gaussian columns as drawn
    # 0.26 standardised is 3.52 in the column's units: the nearest integer is 4 (0.5 in units).
    assert torch.allclose(values[:, 1], torch.tensor(0.5))


def test_likelihood_parameters_reach_the_distributions_contiguous():
    """Each parameter piece is copied out of the decoder output: on a strided view torch's CPU
    kernels of softplus and the like run 5-20 times slower (see Likelihood._split)."""
    from impute_dgm.distributions.likelihoods import ColumnLikelihoods

    params = torch.randn(3, 5, 2 * 4)
    normal = GaussianLikelihood()(params)
    assert normal.loc.is_contiguous() and normal.scale.is_contiguous()
    assert torch.equal(normal.loc, params[..., :4])
    student = StudentTLikelihood()(torch.randn(3, 5, 3 * 4))
    assert student.loc.is_contiguous() and student.df.is_contiguous()
    joint = ColumnLikelihoods([(GaussianLikelihood(), [0, 2]), (BernoulliLikelihood(), [1])])
    distribution = joint(torch.randn(3, 5, 2 * 2 + 1))
    gaussian, bernoulli = distribution.parts
    assert gaussian.loc.is_contiguous() and bernoulli.logits.is_contiguous()


def test_categorical_levels_given_as_a_numpy_integer_are_one_count_for_every_column():
    likelihood = CategoricalLikelihood(np.int64(4), ordered=False)
    assert likelihood.n_levels == 4 and not likelihood.per_column
    view = likelihood.encoder_view(torch.tensor([[3.0, 1.0]]), torch.ones(1, 2))
    assert torch.equal(view, torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]]))
    per_column = CategoricalLikelihood(np.array([2, 3]), ordered=False)
    assert per_column.n_levels == (2, 3) and per_column.decoder_width(2) == 5


def test_likelihoods_pickled_before_their_index_buffers_existed_rebuild_them():
    import pickle

    from impute_dgm.distributions.likelihoods import ColumnLikelihoods

    def mixed():
        categories = CategoricalLikelihood((2, 3), ordered=False)
        return ColumnLikelihoods([(GaussianLikelihood(), [1]), (categories, [0, 2])])

    old = mixed()
    for module in old.modules():  # what a file from before the buffers holds
        for name in list(module._non_persistent_buffers_set):
            del module._buffers[name]
            module._non_persistent_buffers_set.discard(name)
    assert not any(True for _ in old.buffers())
    restored = pickle.loads(pickle.dumps(old))
    params = torch.randn(4, 7)
    values = torch.tensor([[1.0, 0.3, 2.0]]).expand(4, 3)
    assert torch.equal(restored(params).log_prob(values), mixed()(params).log_prob(values))
    assert torch.equal(
        restored.encoder_view(values, torch.ones(4, 3)),
        mixed().encoder_view(values, torch.ones(4, 3)),
    )
