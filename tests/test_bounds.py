"""The MIWAE / IWAE bound and the self-normalised importance sampling helpers."""

import copy
import math

import numpy as np
import pytest
import torch
from statistical import check, seed
from torch.distributions import kl_divergence

from impute_dgm.bounds import (
    effective_sample_size,
    importance_weighted_bound,
    self_normalized_expectation,
)


def test_bound_is_log_mean_exp_and_stable():
    log_weights = torch.log(torch.tensor([[1.0], [2.0], [3.0]]))
    assert importance_weighted_bound(log_weights).item() == pytest.approx(math.log(2.0))
    # Shifting every log weight by -1000 shifts the bound by -1000 (no underflow to -inf).
    shifted = importance_weighted_bound(log_weights - 1000.0).item()
    assert shifted == pytest.approx(math.log(2.0) - 1000.0)


def test_self_normalized_expectation_and_ess():
    values = torch.tensor([[1.0], [5.0]])[:, :, None]  # (K=2, B=1, D=1)
    equal = torch.zeros(2, 1)
    assert self_normalized_expectation(equal, values).item() == pytest.approx(3.0)
    assert effective_sample_size(equal).item() == pytest.approx(2.0)
    dominated = torch.tensor([[0.0], [-50.0]])
    assert self_normalized_expectation(dominated, values).item() == pytest.approx(1.0)
    assert effective_sample_size(dominated).item() == pytest.approx(1.0)


def _tensors(imputer, X):
    """A float64 copy of the fitted model, and X as scaled tensors with its mask."""
    x, mask = imputer._to_tensors(X, torch.device("cpu"), torch.float64)
    return copy.deepcopy(imputer.model_).cpu().double(), x, mask


@pytest.mark.statistical
def test_k1_bound_is_the_elbo(fitted_imputer, breast_cancer):
    """With K = 1 the bound is E_q[log p(x_obs|z)] - KL(q || p); compare the Monte Carlo mean
    of single-sample bounds with that formula, using the closed-form Gaussian KL."""
    _, X_missing = breast_cancer
    model, x, mask = _tensors(fitted_imputer, X_missing[:50])
    generator = torch.Generator().manual_seed(seed(0))
    n_draws = 4000
    noise = torch.randn(n_draws, 50, model.latent_dim, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        # n_draws independent K=1 bounds per row.
        single = torch.stack([model.bound(x, mask, noise[i : i + 1]) for i in range(n_draws)])
        posterior = model.encoder(x * mask, mask)
        z = posterior.base_dist.loc + posterior.base_dist.scale * noise
        expected_log_px = (model.observation_model(z).log_prob(x * mask) * mask).sum(-1).mean(0)
        elbo = expected_log_px - kl_divergence(posterior, model.prior())
    mean_single = single.mean(0)
    standard_error = single.std(0) / math.sqrt(n_draws)
    z_scores = (mean_single - elbo).abs() / (standard_error + 1e-12)
    check("largest |Monte Carlo mean - ELBO| / standard error", z_scores.max(), "<", 4.0)


@pytest.mark.statistical
def test_bound_tightens_with_more_importance_samples(fitted_imputer, breast_cancer):
    _, X_missing = breast_cancer
    model, x, mask = _tensors(fitted_imputer, X_missing[:100])
    generator = torch.Generator().manual_seed(seed(1))
    means = []
    with torch.no_grad():
        for k in (1, 5, 50, 500):
            replicates = [
                model.bound(
                    x,
                    mask,
                    torch.randn(k, 100, model.latent_dim, generator=generator, dtype=torch.float64),
                ).mean()
                for _ in range(8)
            ]
            means.append(float(torch.stack(replicates).mean()))
    steps = np.diff(means)
    check("smallest gain of the mean bound from one K to the next", steps.min(), ">", 0.0)
    # and it does not run away: the last step adds far less than the first
    check("gain from K=50 to 500 / gain from K=1 to 5", steps[-1] / steps[0], "<", 1.0)


@pytest.mark.statistical
def test_score_samples_tightens_with_n_eval_samples(fitted_imputer, breast_cancer):
    _, X_missing = breast_cancer
    imputer = fitted_imputer
    scores = {}
    for k in (1, 1000):
        imputer.set_params(n_eval_samples=k)
        scores[k] = imputer.score_samples(X_missing).mean()
    imputer.set_params(n_eval_samples=1000)
    check("mean score at K=1000 - at K=1", scores[1000] - scores[1], ">", 0.0)


def test_log_importance_weights_adds_the_joint_terms_of_observed_entries():
    """log p(x_obs | z) + log p(z) - log q(z) + extra, with missing entries left out."""
    from torch.distributions import Independent, Normal

    from impute_dgm.bounds import log_importance_weights

    torch.manual_seed(0)
    z = torch.randn(6, 4, 2)
    prior = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    posterior = Independent(Normal(torch.full((4, 2), 0.3), torch.full((4, 2), 0.7)), 1)
    observation = Normal(z.sum(-1, keepdim=True).expand(6, 4, 3), 1.5)
    x = torch.randn(4, 3)
    mask = torch.tensor([[1.0, 1, 1], [1, 0, 1], [0, 0, 0], [0, 1, 0]])
    extra = torch.randn(4)
    got = log_importance_weights(observation, x * mask, mask, prior, posterior, z, 0.5, extra)
    for k in range(6):
        for i in range(4):
            observed = mask[i].bool()
            expected = (
                Normal(z[k, i].sum(), 1.5).log_prob(x[i][observed]).sum()
                + 0.5 * (prior.log_prob(z[k, i]) - posterior.log_prob(z[k, i])[i])
                + extra[i]
            )
            assert torch.allclose(got[k, i], expected, atol=1e-5)
