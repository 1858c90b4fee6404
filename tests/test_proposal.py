"""Refining the importance sampling proposal after the fit (``VAEImputer(proposal_epochs=...)``)."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from impute_dgm import VAEImputer
from impute_dgm.bounds import effective_sample_size


def _table(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(300, 2))
    X = np.tanh(latent @ rng.normal(size=(2, 6))) + 0.1 * rng.normal(size=(300, 6))
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < 0.3] = np.nan
    return X, X_missing


def _fit(seed: int, proposal_epochs: int, X_missing: np.ndarray) -> VAEImputer:
    return VAEImputer(
        n_epochs=20, hidden_dims=(32, 32), random_state=seed, proposal_epochs=proposal_epochs
    ).fit(X_missing)


def _mean_ess(imputer: VAEImputer, X_missing: np.ndarray, n_samples: int = 50) -> float:
    """Kish's effective sample size of the importance weights, mean over the rows."""
    x, mask = imputer._to_tensors(imputer._encode(X_missing, reset=False)[1], torch.device("cpu"))
    model = imputer.model_
    noise = torch.randn(
        n_samples, x.shape[0], model.noise_dim, generator=torch.Generator().manual_seed(123)
    )
    with torch.no_grad():
        log_weights = model.importance_samples(x, mask, noise).log_weights
    return float(effective_sample_size(log_weights).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refinement_raises_the_effective_sample_size(seed):
    # The wake-phase update fits q to the posterior, which evens the importance weights out.
    # Seeds 0-4 on this machine: 15.0-16.2 of 50 before, 19.8-24.0 after (ratio >= 1.32).
    _, X_missing = _table(seed)
    before = _mean_ess(_fit(seed, 0, X_missing), X_missing)
    after = _mean_ess(_fit(seed, 20, X_missing), X_missing)
    assert after > 1.1 * before


def test_refinement_moves_the_encoder_only():
    _, X_missing = _table(0)
    plain, refined = _fit(0, 0, X_missing), _fit(0, 5, X_missing)
    plain_state, refined_state = plain.model_.state_dict(), refined.model_.state_dict()
    encoder = [k for k in plain_state if k.startswith("encoder.")]
    others = [k for k in plain_state if not k.startswith("encoder.")]
    assert encoder and others
    # The same seed fits the same model first; the refinement draws its own seed afterwards.
    assert all(torch.equal(plain_state[k], refined_state[k]) for k in others)
    assert any(not torch.equal(plain_state[k], refined_state[k]) for k in encoder)
    assert len(refined.proposal_history_.train_loss) == 5
    assert not hasattr(plain, "proposal_history_")
    # Every parameter trains again on a later fit (the refinement froze the rest for a while).
    assert all(p.requires_grad for p in refined.model_.parameters())


def test_refined_imputer_keeps_observed_cells_and_is_reproducible():
    _, X_missing = _table(1)
    imputer = _fit(1, 3, X_missing)
    imputed = imputer.transform(X_missing)
    observed = ~np.isnan(X_missing)
    assert np.array_equal(imputed[observed], X_missing[observed])
    assert np.isfinite(imputed).all()
    again = clone(imputer).fit(X_missing)
    assert again.get_params()["proposal_epochs"] == 3
    np.testing.assert_array_equal(again.transform(X_missing), imputed)


def test_proposal_loss_reaches_the_encoder_only():
    _, X_missing = _table(2)
    model = _fit(2, 0, X_missing).model_
    x = torch.as_tensor(np.nan_to_num(X_missing[:16]), dtype=torch.float32)
    mask = torch.as_tensor(~np.isnan(X_missing[:16]), dtype=torch.float32)
    noise = torch.randn(8, 16, model.noise_dim, generator=torch.Generator().manual_seed(0))
    model.zero_grad(set_to_none=True)
    model.proposal_loss(x, mask, noise).mean().backward()
    for name, parameter in model.named_parameters():
        if name.startswith("encoder."):
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        else:
            assert parameter.grad is None, name


def test_vamp_prior_refuses_refinement():
    _, X_missing = _table(0)
    with pytest.raises(ValueError, match="prior='vamp'"):
        VAEImputer(n_epochs=1, prior="vamp", proposal_epochs=2).fit(X_missing)


def test_negative_proposal_epochs_is_refused():
    _, X_missing = _table(0)
    with pytest.raises(ValueError, match="proposal_epochs"):
        VAEImputer(proposal_epochs=-1).fit(X_missing)
