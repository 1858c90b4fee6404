"""Pipeline factories: impute (or embed) with a deep generative model, then classify.

``make_semi_supervised_m1`` is the semi-supervised recipe M1: the embedder learns from every
row, labelled or not (``y == -1``), the classifier from the labelled rows.

The step names are the lower-cased class names, so nested parameters read as scikit-learn users
expect: ``vaeimputer__latent_dim``, ``logisticregression__C``.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from impute_dgm import EmbedThenClassify, VAEEmbedder, VAEImputer
from impute_dgm.estimators.ensemble import impute_then_spread


def make_impute_classify_pipeline(classifier: Any = None, **imputer_params: Any) -> Pipeline:
    """VAEImputer -> StandardScaler -> classifier (logistic regression by default).

    Parameters
    ----------
    classifier : estimator, optional
        Any scikit-learn classifier; ``LogisticRegression(max_iter=1000)`` when None.
    **imputer_params
        Passed to :class:`~impute_dgm.VAEImputer`.

    Returns
    -------
    Pipeline
    """
    classifier = classifier if classifier is not None else LogisticRegression(max_iter=1000)
    return make_pipeline(VAEImputer(**imputer_params), StandardScaler(), classifier)


def make_embed_classify_pipeline(classifier: Any = None, **embedder_params: Any) -> Pipeline:
    """VAEEmbedder -> classifier on the latent codes (logistic regression by default).

    The embedder accepts missing values, so the pipeline does too.

    Parameters
    ----------
    classifier : estimator, optional
        Any scikit-learn classifier; ``LogisticRegression(max_iter=1000)`` when None.
    **embedder_params
        Passed to :class:`~impute_dgm.VAEEmbedder`.

    Returns
    -------
    Pipeline
    """
    classifier = classifier if classifier is not None else LogisticRegression(max_iter=1000)
    return make_pipeline(VAEEmbedder(**embedder_params), classifier)


def make_semi_supervised_m1(classifier: Any = None, **embedder_params: Any) -> EmbedThenClassify:
    """M1 (Kingma et al., 2014): VAEEmbedder on all rows, classifier on the labelled rows.

    Unlike :func:`make_embed_classify_pipeline`, whose classifier would see ``-1`` as a class,
    ``fit(X, y)`` fits the embedder on every row of X and the classifier only where
    ``y != -1``. Nested parameters: ``embedder__latent_dim``, ``classifier__C``.

    Parameters
    ----------
    classifier : estimator, optional
        Any scikit-learn classifier; ``LogisticRegression(max_iter=1000)`` when None.
    **embedder_params
        Passed to :class:`~impute_dgm.VAEEmbedder`.

    Returns
    -------
    EmbedThenClassify
    """
    classifier = classifier if classifier is not None else LogisticRegression(max_iter=1000)
    return EmbedThenClassify(VAEEmbedder(**embedder_params), classifier)


def make_semi_supervised_impute_spread(classifier: Any = None, **imputer_params: Any) -> Pipeline:
    """Semi-supervised learning on incomplete rows: VAEImputer -> a semi-supervised classifier.

    The imputer learns from every row (it ignores ``y``); the classifier, label spreading over
    a 7-nearest-neighbour graph by default, sees the completed rows with their labels, ``-1``
    marking the unlabelled ones (scikit-learn's ``sklearn.semi_supervised`` convention). On
    digits with 30% of the pixels missing and 50 labels, spreading over VAEImputer-completed
    pixels reached 0.898 accuracy against 0.826 over mean-imputed ones (5 seeds,
    ``benchmarks/semi_supervised.py``).

    Parameters
    ----------
    classifier : estimator, optional
        A semi-supervised classifier (``LabelSpreading``, ``LabelPropagation``,
        ``SelfTrainingClassifier``, ...); ``LabelSpreading(kernel="knn", n_neighbors=7)`` when
        None.
    **imputer_params
        Passed to :class:`~impute_dgm.VAEImputer`.

    Returns
    -------
    Pipeline
        Steps ``vaeimputer``, ``categoriesonehot`` (category columns of a completed mixed
        table one-hot; numbers pass through) and the classifier's lower-cased class name.
    """
    # Completed category columns (mixed tables) become one-hot numbers for the classifier.
    return impute_then_spread(VAEImputer(**imputer_params), classifier)
