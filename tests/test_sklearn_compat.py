"""scikit-learn's own conformance suite, run on small but real fits."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from impute_dgm import FlowDensityEstimator, VAEEmbedder, VAEImputer

# Small networks and few epochs keep each of the ~50 checks to a fraction of a second; the
# checks test the estimator contract, not the quality of the fit.
FAST_IMPUTER = VAEImputer(
    hidden_dims=(16,), latent_dim=2, n_epochs=3, n_eval_samples=20, random_state=0
)
FAST_EMBEDDER = VAEEmbedder(
    hidden_dims=(16,), latent_dim=2, n_epochs=3, n_eval_samples=20, random_state=0
)
# The VampPrior ties the prior to the encoder: worth running the contract on it too.
FAST_VAMP_EMBEDDER = VAEEmbedder(
    hidden_dims=(16,),
    latent_dim=2,
    n_epochs=3,
    n_eval_samples=20,
    prior="vamp",
    n_components=3,
    random_state=0,
)
FAST_FLOW = FlowDensityEstimator(n_layers=2, hidden_dims=(8,), n_epochs=2, random_state=0)


@parametrize_with_checks([FAST_IMPUTER, FAST_EMBEDDER, FAST_VAMP_EMBEDDER, FAST_FLOW])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
