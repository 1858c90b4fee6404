"""Doubly reparameterised gradients for the encoder (``VAEImputer(encoder_gradient="dreg")``)."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from impute_dgm import VAEImputer


def _table(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.tanh(rng.normal(size=(120, 2)) @ rng.normal(size=(2, 5))) + 0.1 * rng.normal(
        size=(120, 5)
    )
    X[rng.random(X.shape) < 0.3] = np.nan
    return X


def _model_and_batch(missingness: str = "mar"):
    X = _table()
    imputer = VAEImputer(
        n_epochs=3, hidden_dims=(16,), latent_dim=3, missingness=missingness, random_state=0
    ).fit(X)
    x, mask = imputer._to_tensors(imputer._encode(X[:16], reset=False)[1], torch.device("cpu"))
    return imputer.model_.train(), x, mask.float()


def _gradients(model, objective) -> dict[str, torch.Tensor]:
    model.zero_grad()
    objective().sum().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("missingness", ["mar", "self_masking"])
def test_value_and_all_but_the_encoders_gradient_are_the_bounds(missingness):
    model, x, mask = _model_and_batch(missingness)
    noise = torch.randn(20, x.shape[0], model.noise_dim, generator=torch.Generator().manual_seed(1))
    dreg = model.doubly_reparameterized_bound(x, mask, noise)
    torch.testing.assert_close(dreg, model.bound(x, mask, noise))
    standard = _gradients(model, lambda: model.bound(x, mask, noise))
    doubly = _gradients(model, lambda: model.doubly_reparameterized_bound(x, mask, noise))
    assert standard.keys() == doubly.keys()
    encoder = [name for name in standard if name.startswith("encoder.")]
    others = [name for name in standard if not name.startswith("encoder.")]
    assert encoder and others
    for name in others:
        torch.testing.assert_close(doubly[name], standard[name], rtol=1e-4, atol=1e-6)
    # The encoder's differs draw by draw (no score-function term) ...
    assert any(not torch.allclose(doubly[name], standard[name]) for name in encoder)


def _encoder_gradient_draws(model, x, mask, method: str, n_importance: int, n_draws: int):
    generator = torch.Generator().manual_seed(7)
    objective = getattr(model, method)
    draws = []
    for _ in range(n_draws):
        noise = torch.randn(n_importance, x.shape[0], model.noise_dim, generator=generator)
        gradients = _gradients(model, lambda noise=noise: objective(x, mask, noise))
        draws.append(
            torch.cat([g.flatten() for n, g in gradients.items() if n.startswith("encoder.")])
        )
    return torch.stack(draws).double()


def test_the_encoders_gradient_has_the_bounds_expectation():
    # ... but has the same expectation: over 400 noise draws (the same draws for both), the
    # mean of the paired differences is within its standard error, component by component
    # (mean squared z-score near 1; measured 0.76 at K = 5 and 0.82 at K = 50 with more draws).
    model, x, mask = _model_and_batch()
    standard = _encoder_gradient_draws(model, x, mask, "bound", 20, 400)
    doubly = _encoder_gradient_draws(model, x, mask, "doubly_reparameterized_bound", 20, 400)
    difference = doubly - standard
    z_scores = difference.mean(0) / (difference.var(0) / len(difference)).sqrt()
    assert float((z_scores**2).mean()) < 1.5
    assert float(z_scores.abs().max()) < 5.0


def test_imputer_trains_with_it():
    X = _table(1)
    missing = np.isnan(X)
    imputer = VAEImputer(
        n_epochs=5, hidden_dims=(16,), encoder_gradient="dreg", random_state=0
    ).fit(X)
    imputed = imputer.transform(X)
    assert np.isfinite(imputed).all()
    assert np.array_equal(imputed[~missing], X[~missing])
    assert np.all(np.isfinite(imputer.history_.train_loss))
    assert np.array_equal(clone(imputer).fit(X).transform(X), imputed)
    standard = clone(imputer).set_params(encoder_gradient="standard").fit(X).transform(X)
    assert not np.allclose(standard[missing], imputed[missing])
    with pytest.raises(ValueError, match="encoder_gradient"):
        clone(imputer).set_params(encoder_gradient="reinforce").fit(X)


@pytest.mark.parametrize(
    ("missingness", "resolved", "other"),
    [("self_masking", "dreg", "standard"), ("mar", "standard", "dreg")],
)
def test_auto_trains_the_self_masking_model_with_dreg_and_the_mar_model_without(
    missingness, resolved, other
):
    X = _table(3)
    missing = np.isnan(X)
    auto = VAEImputer(n_epochs=3, hidden_dims=(16,), missingness=missingness, random_state=0)
    assert auto.get_params()["encoder_gradient"] == "auto"
    imputed = auto.fit(X).transform(X)
    same = clone(auto).set_params(encoder_gradient=resolved).fit(X).transform(X)
    assert np.array_equal(same, imputed)
    different = clone(auto).set_params(encoder_gradient=other).fit(X).transform(X)
    assert not np.allclose(different[missing], imputed[missing])


def test_files_saved_before_the_parameter_load_with_the_standard_estimator():
    imputer = VAEImputer(n_epochs=2, hidden_dims=(8,), random_state=0).fit(_table(2))
    state = imputer.__getstate__()
    del state["encoder_gradient"], state["proposal_epochs"]
    old = VAEImputer.__new__(VAEImputer)
    old.__setstate__(state)
    assert old.get_params()["encoder_gradient"] == "standard"
    assert old.get_params()["proposal_epochs"] == 0
    assert np.array_equal(old.transform(_table(2)), imputer.transform(_table(2)))
