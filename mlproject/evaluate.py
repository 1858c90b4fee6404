"""MLproject entry point ``evaluate``: mask a complete table, compare imputers, log RMSE/MAE.

Each imputer (VAEImputer and scikit-learn's mean, KNN and iterative imputers) is a nested run
with ``rmse`` and ``mae`` over the removed entries, in standardised units (every column scaled
by the standard deviation of its complete values, so all columns count alike).

    mlflow run mlproject -e evaluate --env-manager local -P mechanism=mnar -P missing_rate=0.3
"""

from __future__ import annotations

import argparse
import time

import mlflow
import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from impute_dgm import VAEImputer
from impute_dgm.datasets import load_table
from impute_dgm.missingness import MECHANISMS, ampute


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breast_cancer", help="bundled name or CSV path")
    parser.add_argument("--missing-rate", type=float, default=0.3)
    parser.add_argument("--mechanism", choices=MECHANISMS, default="mcar")
    parser.add_argument("--n-epochs", type=float, default=300)
    parser.add_argument("--random-state", type=float, default=0)
    args = parser.parse_args(argv)

    X, _ = load_table(args.data)
    X = X.dropna().to_numpy(dtype=float)
    seed = int(args.random_state)
    X_missing = ampute(X, args.missing_rate, args.mechanism, random_state=seed)
    removed = np.isnan(X_missing)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    imputers = {
        "VAEImputer": VAEImputer(n_epochs=int(args.n_epochs), random_state=seed),
        "SimpleImputer(mean)": SimpleImputer(),
        "KNNImputer": KNNImputer(),
        "IterativeImputer": IterativeImputer(max_iter=10, random_state=seed),
    }
    results = {}
    with mlflow.start_run():
        mlflow.log_params(
            {"data": args.data, "missing_rate": args.missing_rate, "mechanism": args.mechanism}
        )
        mlflow.log_metric("removed_share", float(removed.mean()))
        for name, imputer in imputers.items():
            with mlflow.start_run(run_name=name, nested=True):
                start = time.perf_counter()
                imputed = imputer.fit_transform(X_missing)
                errors = ((imputed - X) / scale)[removed]
                metrics = {
                    "rmse": float(np.sqrt(np.mean(errors**2))),
                    "mae": float(np.mean(np.abs(errors))),
                    "seconds": time.perf_counter() - start,
                }
                mlflow.log_metrics(metrics)
            results[name] = metrics
            print(f"{name:22s} RMSE {metrics['rmse']:.3f}  MAE {metrics['mae']:.3f}", flush=True)
    return results


if __name__ == "__main__":
    main()
