"""scikit-learn's own conformance suite, run on small but real fits."""

import torch
from sklearn.pipeline import make_pipeline
from sklearn.semi_supervised import LabelSpreading
from sklearn.utils.estimator_checks import parametrize_with_checks

from impute_dgm import (
    BootstrapImputer,
    EmbedThenClassify,
    FlowDensityEstimator,
    SemiSupervisedEnsemble,
    VAEClassifier,
    VAEEmbedder,
    VAEImputer,
)

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
FAST_BOOTSTRAP = BootstrapImputer(FAST_IMPUTER, n_bootstrap=2, random_state=0)
FAST_FLOW = FlowDensityEstimator(n_layers=2, hidden_dims=(8,), n_epochs=2, random_state=0)
# Classifiers must also learn the checks' easy blobs (accuracy > 0.83): a few more epochs.
FAST_CLASSIFIER = VAEClassifier(
    hidden_dims=(16,), latent_dim=2, n_epochs=30, n_eval_samples=10, random_state=0
)
# Label spreading over VAEImputer-completed rows pooled with M2 (the default members, small).
FAST_ENSEMBLE = SemiSupervisedEnsemble(
    [
        (
            "spread",
            make_pipeline(
                VAEImputer(hidden_dims=(8,), n_epochs=2, random_state=0),
                LabelSpreading(kernel="knn", n_neighbors=7),
            ),
        ),
        # Few epochs: the checks' accuracy floor is met by the pool with label spreading.
        (
            "m2",
            VAEClassifier(
                hidden_dims=(16,), latent_dim=2, n_epochs=3, n_eval_samples=10, random_state=0
            ),
        ),
    ],
    weights=[0.7, 0.3],
)
FAST_M1 = EmbedThenClassify(
    VAEEmbedder(hidden_dims=(16,), latent_dim=2, n_epochs=20, n_eval_samples=10, random_state=0)
)


def expected_failures(estimator) -> dict[str, str]:
    """The checks that fail by design, and why."""
    expected = {}
    if isinstance(estimator, (VAEClassifier, EmbedThenClassify, SemiSupervisedEnsemble)):
        expected["check_classifiers_classes"] = (
            "-1 marks an unlabelled row (the sklearn.semi_supervised convention), so a "
            "class named -1 cannot be learned; scikit-learn exempts its own "
            "semi-supervised classifiers from this part of the check by name."
        )
    if torch.cuda.is_available():  # device="auto" runs the estimators on the GPU
        expected["check_methods_subset_invariance"] = (
            "On a GPU the float32 kernels (chosen by batch shape) sum in another order for "
            "a subset: results agree to about 1e-6, not the check's 1e-7 (seen on an H100)."
        )
    return expected


@parametrize_with_checks(
    [
        FAST_IMPUTER,
        FAST_BOOTSTRAP,
        FAST_EMBEDDER,
        FAST_VAMP_EMBEDDER,
        FAST_FLOW,
        FAST_CLASSIFIER,
        FAST_M1,
        FAST_ENSEMBLE,
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
