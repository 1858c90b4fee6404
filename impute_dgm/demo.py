"""The README's first command: impute a real bundled data set and compare with baselines."""

from __future__ import annotations

import time
import warnings

import numpy as np


def run_demo(missing_rate: float = 0.5, seed: int = 0, verbose: int = 1) -> dict[str, dict]:
    """Remove ``missing_rate`` of scikit-learn's breast cancer data at random and impute it.

    Prints RMSE and MAE on the removed entries (standardised units) and seconds for mean
    imputation, IterativeImputer and VAEImputer, and returns them.
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, SimpleImputer
    from sklearn.preprocessing import StandardScaler

    from impute_dgm import VAEImputer

    X = StandardScaler().fit_transform(load_breast_cancer().data)
    rng = np.random.default_rng(seed)
    missing = rng.random(X.shape) < missing_rate
    X_missing = np.where(missing, np.nan, X)
    print(
        f"breast cancer data {X.shape[0]} x {X.shape[1]}, standardised; "
        f"{missing.mean():.0%} of the entries removed at random (seed {seed})\n"
    )
    methods = {
        "mean": SimpleImputer(strategy="mean"),
        "IterativeImputer": IterativeImputer(max_iter=10, random_state=seed),
        "VAEImputer": VAEImputer(random_state=seed, verbose=verbose),
    }
    results: dict[str, dict] = {}
    print(f"{'method':18s} {'RMSE':>7s} {'MAE':>7s} {'seconds':>8s}")
    for name, imputer in methods.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            # IterativeImputer warns that 10 rounds did not meet its tolerance; it is still
            # the baseline a user would run, so the warning only clutters the table.
            warnings.simplefilter("ignore", ConvergenceWarning)
            X_imputed = imputer.fit_transform(X_missing)
        seconds = time.perf_counter() - start
        error = X_imputed[missing] - X[missing]
        results[name] = {
            "rmse": float(np.sqrt(np.mean(error**2))),
            "mae": float(np.mean(np.abs(error))),
            "seconds": seconds,
        }
        r = results[name]
        print(f"{name:18s} {r['rmse']:7.3f} {r['mae']:7.3f} {seconds:8.1f}", flush=True)
    return results
