"""EmbedThenClassify: the semi-supervised recipe M1 (Kingma et al., 2014) as a meta-estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from impute_dgm.estimators._base import accepts_nan
from impute_dgm.estimators._labels import split_labelled
from impute_dgm.estimators.embedder import VAEEmbedder


def _classifier_has(method: str):
    def check(self) -> bool:
        fitted = getattr(self, "classifier_", None)
        return hasattr(fitted if fitted is not None else self._classifier(), method)

    return check


class EmbedThenClassify(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """M1: learn an embedding on every row, then a classifier on the labelled rows' codes.

    ``fit(X, y)`` fits a clone of ``embedder`` on all rows of X (labels are not used, so rows
    labelled ``-1`` count fully), then a clone of ``classifier`` on ``embedder.transform(X)``
    of the rows whose label is not ``-1``.

    Parameters
    ----------
    embedder : transformer, default=None
        Unsupervised representation; None means ``VAEEmbedder()``.
    classifier : classifier, default=None
        Trained on the codes of the labelled rows; None means ``LogisticRegression()``.

    Attributes
    ----------
    embedder_ : transformer
        The fitted clone of ``embedder``.
    classifier_ : classifier
        The fitted clone of ``classifier``.
    classes_ : ndarray
        Labels seen on labelled rows.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from impute_dgm import VAEEmbedder
    >>> from impute_dgm import EmbedThenClassify
    >>> X, y = load_iris(return_X_y=True)
    >>> y_partial = np.where(np.arange(150) % 5 == 0, y, -1)   # 30 labels of 150
    >>> m1 = EmbedThenClassify(VAEEmbedder(latent_dim=2, n_epochs=40, random_state=0))
    >>> bool(m1.fit(X, y_partial).score(X, y) > 0.8)
    True
    """

    _parameter_constraints: dict = {
        "embedder": [HasMethods(["fit", "transform"]), None],
        "classifier": [HasMethods(["fit", "predict"]), None],
    }

    def __init__(self, embedder: Any = None, classifier: Any = None) -> None:
        self.embedder = embedder
        self.classifier = classifier

    def _embedder(self):
        return VAEEmbedder() if self.embedder is None else self.embedder

    def _classifier(self):
        return LogisticRegression(max_iter=1000) if self.classifier is None else self.classifier

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = accepts_nan(self._embedder())
        return tags

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the embedder on all rows, the classifier on the labelled rows' codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            ``-1`` marks an unlabelled row; at least one row must be labelled.

        Returns
        -------
        self
        """
        y, labelled = split_labelled(y)
        check_consistent_length(X, y)
        self.embedder_ = clone(self._embedder()).fit(X)
        codes = self.embedder_.transform(X)
        self.classifier_ = clone(self._classifier()).fit(np.asarray(codes)[labelled], y[labelled])
        self.classes_ = self.classifier_.classes_
        self.n_features_in_ = self.embedder_.n_features_in_
        if hasattr(self.embedder_, "feature_names_in_"):
            self.feature_names_in_ = self.embedder_.feature_names_in_
        return self

    def _codes(self, X) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.embedder_.transform(X))

    def predict(self, X) -> np.ndarray:
        """Classes predicted from the codes of X."""
        codes = self._codes(X)
        return self.classifier_.predict(codes)

    @available_if(_classifier_has("predict_proba"))
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities from the codes of X."""
        codes = self._codes(X)
        return self.classifier_.predict_proba(codes)

    @available_if(_classifier_has("decision_function"))
    def decision_function(self, X) -> np.ndarray:
        """Decision function of the classifier on the codes of X."""
        codes = self._codes(X)
        return self.classifier_.decision_function(codes)
