"""Densities of real tables: FlowDensityEstimator against tuned GaussianMixture, KDE and zuko.

Tables that ship offline, standardised on the training split: breast cancer (569 x 30), wine
(178 x 13), diabetes (442 x 10), digits as a table (1,797 x 64 pixel levels, uniformly
dequantised, constant columns dropped) and the numeric columns of Palmer penguins (complete
rows, 342 x 4; the ``palmerpenguins`` package of the ``[bench]`` extra). 70/30 splits, 3
seeds. Held-out log-likelihood per row (nats, in the standardised units, the same for every
method) of:

- GaussianMixture, n_components in 1..16 and covariance "full" / "diag" chosen by 3-fold CV;
- KernelDensity, Gaussian kernel, bandwidth chosen by 3-fold CV;
- FlowDensityEstimator with its defaults (4 spline couplings of (64, 64) on a Gaussian-mixture
  base chosen by 3-fold CV and trained with the flow), the same on a N(0, I) base, and the
  previous defaults (8 affine couplings of (256, 256) on N(0, I));
- zuko's NSF (5 spline couplings of (64, 64)) trained by this project's Trainer with the same
  early stopping (when zuko is installed).

Prints the table and writes ``benchmarks/results/density_tables.json``.

    python benchmarks/density_tables.py [--seeds 3] [--tables ...] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KernelDensity
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, limit_threads, print_table, summarise, write_json  # noqa: E402

from impute_dgm import FlowDensityEstimator  # noqa: E402
from impute_dgm.datasets import load_table  # noqa: E402
from impute_dgm.training import Trainer  # noqa: E402


def bundled(name: str):
    def load(rng: np.random.Generator) -> np.ndarray:
        X = load_table(name)[0].to_numpy(dtype=float)
        if name == "digits":  # levels 0..16: uniform dequantisation makes a density
            X = X + rng.random(X.shape)
        return X[:, X.std(0) > 0]

    return load


def penguins(rng: np.random.Generator) -> np.ndarray:
    from palmerpenguins import load_penguins

    numeric = load_penguins().select_dtypes("number").drop(columns=["year"], errors="ignore")
    return numeric.dropna().to_numpy(dtype=float)


TABLES = {
    "breast_cancer": bundled("breast_cancer"),
    "wine": bundled("wine"),
    "diabetes": bundled("diabetes"),
    "digits": bundled("digits"),
    "penguins": penguins,
}


def gaussian_mixture(train, test, seed, quick):
    grid = {"n_components": [1, 2, 4] if quick else [1, 2, 4, 8, 16],
            "covariance_type": ["full", "diag"]}  # fmt: skip
    search = GridSearchCV(GaussianMixture(random_state=seed, reg_covar=1e-4), grid, cv=3)
    return search.fit(train).best_estimator_.score(test)


def kernel_density(train, test, seed, quick):
    grid = {"bandwidth": np.logspace(-1.5, 0.5, 5 if quick else 15)}
    return GridSearchCV(KernelDensity(), grid, cv=3).fit(train).best_estimator_.score(test) / len(
        test
    )


def flow(**settings):
    def run(train, test, seed, quick):
        params = {"n_epochs": 3, "hidden_dims": (16,), "n_layers": 2} if quick else {}
        model = FlowDensityEstimator(random_state=seed, **{**settings, **params})
        return model.fit(train).score(test)

    return run


def zuko_nsf(train, test, seed, quick):
    import zuko  # optional: the [bench] extra

    torch.manual_seed(seed)
    hidden = (16,) if quick else (64, 64)
    model = zuko.flows.NSF(train.shape[1], transforms=2 if quick else 5, hidden_features=hidden)

    def loss(batch, generator):
        return -model().log_prob(batch[0]).mean()

    def evaluate(data):
        return float(-model().log_prob(data[0]).mean())

    x = torch.as_tensor(train, dtype=torch.float32)
    n_validation = max(1, len(x) // 10)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    trainer = Trainer(n_epochs=3 if quick else 100, batch_size=128, lr=1e-3, patience=10)
    trainer.fit(model, loss, (x[order[n_validation:]],), torch.Generator().manual_seed(seed),
                (x[order[:n_validation]],), evaluate)  # fmt: skip
    with torch.no_grad():
        return float(model().log_prob(torch.as_tensor(test, dtype=torch.float32)).mean())


METHODS = {
    "GaussianMixture (CV)": gaussian_mixture,
    "KDE (CV)": kernel_density,
    "FlowDensityEstimator (defaults)": flow(),
    "FlowDensityEstimator (spline, N(0, I) base)": flow(base="normal"),
    # The defaults until the plateau schedule: 8 bins, Adam 1e-3, at most 100 epochs.
    "FlowDensityEstimator (8 bins, constant lr)": flow(
        n_bins=8, lr=1e-3, lr_schedule="constant", n_epochs=100
    ),
    "FlowDensityEstimator (previous defaults)": flow(
        coupling="affine",
        n_layers=8,
        hidden_dims=(256, 256),
        base="normal",
        lr=1e-3,
        lr_schedule="constant",
        n_epochs=100,
    ),
    "zuko NSF": zuko_nsf,
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default="density_tables.json")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    results: dict = {}
    rows = []
    for table in args.tables:
        results[table] = {}
        scores: dict[str, list[float]] = {m: [] for m in args.methods}
        seconds: dict[str, list[float]] = {m: [] for m in args.methods}
        failures: dict[str, str] = {}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            X = TABLES[table](rng)
            if args.quick:
                X = X[:200]
            train, test = train_test_split(X, test_size=0.3, random_state=seed)
            scaler = StandardScaler().fit(train)
            train, test = scaler.transform(train), scaler.transform(test)
            for method in args.methods:
                if method in failures:
                    continue
                start = time.perf_counter()
                try:
                    scores[method].append(float(METHODS[method](train, test, seed, args.quick)))
                except ImportError as error:
                    failures[method] = f"not installed: {error}"
                    continue
                seconds[method].append(time.perf_counter() - start)
        for method in args.methods:
            if method in failures:
                results[table][method] = {"failure": failures[method]}
                rows.append({"table": table, "method": method, "ll": failures[method], "s": ""})
                continue
            record = {"log_likelihood": summarise(scores[method]),
                      "seconds": summarise(seconds[method])}  # fmt: skip
            results[table][method] = record
            ll = record["log_likelihood"]
            rows.append({"table": table, "method": method,
                         "ll": f"{ll['mean']:.2f} +- {ll['sd']:.2f}",
                         "s": f"{record['seconds']['mean']:.1f}"})  # fmt: skip
            print(rows[-1], flush=True)
    print("\nHeld-out log-likelihood per row (nats, standardised units; higher is better)\n")
    print_table(rows, [("table", "table"), ("method", "method"), ("ll", "log-likelihood"),
                       ("s", "seconds")])  # fmt: skip
    payload = {"benchmark": "density_tables", "quick": args.quick, "environment": environment(),
               "design": {"seeds": args.seeds, "split": "70/30", "tables": args.tables},
               "results": results}  # fmt: skip
    print(f"\nwrote {write_json(args.output, payload, Path(args.results_dir))}")
    return payload


if __name__ == "__main__":
    main()
