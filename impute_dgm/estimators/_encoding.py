"""Completed mixed tables as numbers, for estimators that need them (label spreading's graph)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted


class CategoriesOneHot(TransformerMixin, BaseEstimator):
    """Numeric columns as they are, category, string and object columns one-hot.

    Meant after :class:`~impute_dgm.VAEImputer`, whose completed DataFrame keeps a table's
    categories as categories: a k-NN graph needs numbers. Booleans become 0 / 1; NumPy input
    (already numeric) passes through as float. Levels not seen in ``fit`` encode as all zeros.
    """

    def fit(self, X, y=None):
        self.categorical_ = []
        self.encoder_ = None
        if isinstance(X, pd.DataFrame):
            self.categorical_ = [
                column
                for column in X.columns
                if not (
                    pd.api.types.is_numeric_dtype(X[column])
                    or pd.api.types.is_bool_dtype(X[column])
                )
            ]
            if self.categorical_:
                self.encoder_ = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                self.encoder_.fit(X[self.categorical_].astype(str))
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "categorical_")
        if not isinstance(X, pd.DataFrame):
            return np.asarray(X, dtype=float)
        numbers = X.drop(columns=self.categorical_).astype(float).to_numpy()
        if self.encoder_ is None:
            return numbers
        one_hot = self.encoder_.transform(X[self.categorical_].astype(str))
        return np.hstack([numbers, one_hot])
