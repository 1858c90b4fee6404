"""A missForest-style imputer for mixed tables (Stekhoven & Buehlmann, Bioinformatics 2012).

The benchmarks' reference for iterative imputation with random forests: regression forests for
numeric columns, classification forests for categorical and boolean ones. Written here because
the packages on PyPI that carry the name are unmaintained (missingpy, 2018, imports modules that
scikit-learn has since removed) or swap the forests for LightGBM (missforest 4.x), and the
algorithm is short enough to read in full:

1. fill every gap with the column's mean (numeric) or most frequent level (categorical);
2. visit the incomplete columns from the fewest to the most missing cells; fit a forest on the
   rows where the column is observed, with every other column as predictors (categorical ones
   one-hot), and predict its missing cells;
3. repeat until the change of the imputed cells grows for numeric and categorical columns alike
   (then return the previous iteration, as the original does) or ``max_iter`` is reached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor


def fill_mean_or_mode(frame: pd.DataFrame, categorical) -> pd.DataFrame:
    """Every gap filled with its column's mean (as floats) or, for ``categorical`` columns,
    most frequent level (as objects)."""
    out = frame.astype(object).copy()
    for name in frame.columns:
        if name in categorical:
            out[name] = frame[name].astype(object).fillna(frame[name].mode().iloc[0])
        else:
            out[name] = frame[name].astype(float).fillna(frame[name].astype(float).mean())
    return out


class MissForestImputer:
    """Iterative imputation by random forests of a DataFrame with numeric and categorical columns.

    Parameters
    ----------
    categorical : list of column names
        Columns imputed by classification (categorical and boolean columns).
    max_iter : int, default=10
    n_estimators : int, default=100
    random_state : int or None
    n_jobs : int or None
        Passed to the forests.
    """

    def __init__(self, categorical, max_iter=10, n_estimators=100, random_state=None, n_jobs=None):
        self.categorical = list(categorical)
        self.max_iter = max_iter
        self.n_estimators = n_estimators
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _design(self, frame: pd.DataFrame, target) -> np.ndarray:
        others = frame.drop(columns=[target])
        categorical = [c for c in others.columns if c in self.categorical]
        return pd.get_dummies(others, columns=categorical, dtype=float).to_numpy(float)

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The table with every missing cell predicted (categorical columns as object values)."""
        missing = frame.isna()
        current = fill_mean_or_mode(frame, self.categorical)
        numeric = [c for c in frame.columns if c not in self.categorical]
        order = [c for c in missing.sum().sort_values(kind="stable").index if missing[c].any()]
        previous, previous_change = current.copy(), (np.inf, np.inf)
        for iteration in range(self.max_iter):
            before = current.copy()
            for name in order:
                rows = missing[name].to_numpy()
                design = self._design(current, name)
                forest_type = (
                    RandomForestClassifier if name in self.categorical else RandomForestRegressor
                )
                seed = None if self.random_state is None else self.random_state + iteration
                forest = forest_type(
                    n_estimators=self.n_estimators,
                    random_state=seed,
                    n_jobs=self.n_jobs,
                )
                if name in self.categorical:
                    # Classes as codes: the forests refuse object labels of mixed types.
                    codes, levels = pd.factorize(current[name])
                    forest.fit(design[~rows], codes[~rows])
                    current.loc[rows, name] = levels[forest.predict(design[rows])].to_numpy()
                else:
                    forest.fit(design[~rows], current.loc[~rows, name].astype(float))
                    current.loc[rows, name] = forest.predict(design[rows])
            change = self._change(before, current, missing, numeric)
            stop = change[0] >= previous_change[0] and change[1] >= previous_change[1]
            if stop:
                return previous
            previous, previous_change = current.copy(), change
        return current

    def _change(self, before, after, missing, numeric) -> tuple[float, float]:
        """Stekhoven & Buehlmann's stopping statistics: numeric and categorical change."""
        numeric_change = 0.0
        if numeric:
            a = after[numeric].to_numpy(float)
            b = before[numeric].to_numpy(float)
            numeric_change = float(np.sum((a - b) ** 2) / max(np.sum(a**2), 1e-12))
        categorical_change = 0.0
        if self.categorical:
            changed = (after[self.categorical] != before[self.categorical]).to_numpy()
            n_missing = max(int(missing[self.categorical].sum().sum()), 1)
            categorical_change = float(changed.sum() / n_missing)
        return numeric_change, categorical_change
