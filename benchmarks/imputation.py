"""Imputation benchmark: breast cancer (569 x 30), standardised, 50% MCAR, several seeds.

Compares mean imputation, KNNImputer, IterativeImputer (BayesianRidge), IterativeImputer with
ExtraTreesRegressor (a missForest stand-in) and VAEImputer (its defaults, and with early
stopping on a held-out 10% of the rows) on the removed entries: RMSE, MAE and fit+transform
seconds, mean +- sd over seeds. Prints a Markdown table and writes
``benchmarks/results/imputation.json``.

    python benchmarks/imputation.py [--seeds 5] [--rate 0.5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, print_table, summarise, write_json  # noqa: E402

from impute_dgm import VAEImputer  # noqa: E402

# The settings VAEImputer is benchmarked with are its defaults: what a user gets.
VAE_PARAMS: dict = {}


def make_methods(seed: int, quick: bool) -> dict:
    vae_params = {"n_epochs": 5} if quick else VAE_PARAMS
    return {
        "mean": lambda: SimpleImputer(strategy="mean"),
        "KNNImputer": lambda: KNNImputer(n_neighbors=5),
        "IterativeImputer (BayesianRidge)": lambda: IterativeImputer(
            max_iter=10, random_state=seed
        ),
        "IterativeImputer (ExtraTrees)": lambda: IterativeImputer(
            estimator=ExtraTreesRegressor(
                n_estimators=10 if quick else 100, n_jobs=-1, random_state=seed
            ),
            max_iter=3 if quick else 10,
            random_state=seed,
        ),
        "VAEImputer": lambda: VAEImputer(random_state=seed, **vae_params),
        # Not the default: this row shows why (README, "Early stopping is available").
        "VAEImputer (early stopping)": lambda: VAEImputer(
            random_state=seed, early_stopping=True, **vae_params
        ),
    }


def remove_completely_at_random(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    missing = rng.random(X.shape) < rate
    # Keep one observed value per column and per row, so that every method can run.
    missing[np.arange(X.shape[0]), rng.integers(0, X.shape[1], X.shape[0])] = False
    return missing


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--output", default="imputation.json")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)

    X = StandardScaler().fit_transform(load_breast_cancer().data)
    records: dict[str, dict[str, list[float]]] = {}
    for seed in range(args.seeds):
        missing = remove_completely_at_random(X, args.rate, seed)
        X_missing = np.where(missing, np.nan, X)
        for name, make in make_methods(seed, args.quick).items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                # IterativeImputer's "10 rounds did not meet tol" is expected; keep the log clean.
                warnings.simplefilter("ignore", ConvergenceWarning)
                X_imputed = make().fit_transform(X_missing)
            seconds = time.perf_counter() - start
            error = X_imputed[missing] - X[missing]
            record = records.setdefault(name, {"rmse": [], "mae": [], "seconds": []})
            record["rmse"].append(float(np.sqrt(np.mean(error**2))))
            record["mae"].append(float(np.mean(np.abs(error))))
            record["seconds"].append(seconds)
            print(
                f"seed {seed} {name:34s} rmse {record['rmse'][-1]:.4f} {seconds:6.1f}s", flush=True
            )

    results = {name: {k: summarise(v) for k, v in rec.items()} for name, rec in records.items()}
    rows = [
        {
            "method": name,
            "rmse": f"{r['rmse']['mean']:.3f} +- {r['rmse']['sd']:.3f}",
            "mae": f"{r['mae']['mean']:.3f} +- {r['mae']['sd']:.3f}",
            "seconds": f"{r['seconds']['mean']:.1f} +- {r['seconds']['sd']:.1f}",
        }
        for name, r in results.items()
    ]
    print()
    print(f"breast cancer 569 x 30, standardised, {args.rate:.0%} MCAR, {args.seeds} seeds")
    print_table(
        rows,
        [("method", "method"), ("rmse", "RMSE"), ("mae", "MAE"), ("seconds", "fit+transform s")],
    )
    payload = {
        "benchmark": "imputation",
        "data": "sklearn breast cancer (569 x 30), standardised",
        "missingness": {"mechanism": "MCAR", "rate": args.rate},
        "seeds": args.seeds,
        "quick": args.quick,
        "vae_params": VAEImputer(**VAE_PARAMS).get_params(),
        "environment": environment(),
        "results": results,
    }
    path = write_json(args.output, payload, Path(args.results_dir))
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
