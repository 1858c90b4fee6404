"""Which held-out signal tracks imputation error? The early-stopping signal of VAEImputer.

A tenth of the rows is held out; the imputer trains on the rest (the epochs of the common
automatic budget, ``impute_dgm.budget.auto_n_epochs``: 173 on 9,000 rows, the figures in the
README; VAEImputer's own default has trained 300 epochs up to 16,384 rows since session 39; no
early stopping) and every ``--every`` epochs three numbers are recorded:

- ``rmse``: RMSE of ``transform`` on the training rows' missing cells (what we care about,
  unknown in practice);
- ``bound``: minus the mean ``score_samples`` of the held-out rows (the held-out bound);
- ``hidden``: the error on a fixed fifth of the held-out rows' observed cells, hidden and
  imputed from the rest of their row (``impute_dgm.hidden_cells``, the signal
  ``VAEImputer`` stops on).

Per table and seed: the Spearman correlation of each signal with ``rmse`` across checkpoints,
and the ``rmse`` at the checkpoint each signal would keep (its minimum) against the best and the
last. Tables: breast cancer (569 x 30) and the synthetic non-linear table of the scaling
benchmark (``--rows``, 30 columns); 30% MCAR. Prints a table; writes
``benchmarks/results/early_stopping.json``.

    python benchmarks/early_stopping.py [--seeds 3] [--rows 10000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, limit_threads, nonlinear_table, print_table, write_json  # noqa: E402

from impute_dgm import VAEImputer  # noqa: E402
from impute_dgm.budget import auto_n_epochs  # noqa: E402
from impute_dgm.datasets import load_table  # noqa: E402
from impute_dgm.hidden_cells import HIDDEN_FRACTION  # noqa: E402
from impute_dgm.missingness import ampute  # noqa: E402


def breast_cancer(seed: int, args) -> np.ndarray:
    X = load_table("breast_cancer")[0].to_numpy(dtype=float)
    return (X - X.mean(0)) / X.std(0)


TABLES = {
    "breast_cancer": breast_cancer,
    "nonlinear": lambda seed, args: nonlinear_table(args.rows, seed),
}


def trace(X: np.ndarray, seed: int, args) -> dict:
    rng = np.random.default_rng(seed)
    X_missing = ampute(X, 0.3, "mcar", random_state=seed)
    held_out = rng.random(len(X)) < 0.1
    train, validation = X_missing[~held_out], X_missing[held_out]
    truth, missing = X[~held_out], np.isnan(train)
    observed = ~np.isnan(validation)
    hidden = observed & (rng.random(validation.shape) < HIDDEN_FRACTION)
    validation_hidden = np.where(hidden, np.nan, validation)
    records: list[dict] = []
    # The common rule's epochs for the training rows (300 up to 4,096 rows, then fewer), as the
    # recorded results used; --epochs 300 follows VAEImputer's own default up to 16,384 rows.
    epochs = args.epochs or auto_n_epochs(len(train), 300)
    params = {"n_epochs": 4, "hidden_dims": (16,)} if args.quick else {"n_epochs": epochs}
    imputer = VAEImputer(random_state=seed, early_stopping=False, n_eval_samples=100, **params)
    start = time.perf_counter()

    def record(epoch: int, logs: dict) -> None:
        if (epoch + 1) % args.every:
            return
        imputed = imputer.transform(train)
        refilled = imputer.transform(validation_hidden)
        records.append({
            "epoch": epoch + 1,
            "rmse": float(np.sqrt(np.mean((imputed[missing] - truth[missing]) ** 2))),
            "bound": float(-imputer.score(validation)),
            "hidden": float(np.mean((refilled[hidden] - validation[hidden]) ** 2)),
            "seconds": time.perf_counter() - start,
        })  # fmt: skip

    imputer.set_params(callbacks=[record]).fit(train)
    rmse = np.array([r["rmse"] for r in records])
    summary = {"best_rmse": float(rmse.min()), "last_rmse": float(rmse[-1]),
               "best_epoch": records[int(rmse.argmin())]["epoch"]}  # fmt: skip
    for signal in ("bound", "hidden"):
        values = np.array([r[signal] for r in records])
        chosen = int(values.argmin())
        summary[f"{signal}_spearman"] = float(stats.spearmanr(values, rmse).statistic)
        summary[f"{signal}_rmse"] = float(rmse[chosen])
        summary[f"{signal}_epoch"] = records[chosen]["epoch"]
    return {"summary": summary, "records": records}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the synthetic table")
    parser.add_argument("--epochs", type=int, default=None, help="default: the auto budget's")
    parser.add_argument("--every", type=int, default=5, help="epochs between checkpoints")
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for torch, BLAS and OpenMP"
    )
    parser.add_argument("--output", default="early_stopping.json")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.rows, args.every = 1, 300, 2
    limit_threads(args.threads)
    runs, rows = {}, []
    for table in args.tables:
        for seed in range(args.seeds):
            run = trace(TABLES[table](seed, args), seed, args)
            runs[f"{table}/{seed}"] = run
            s = run["summary"]

            def kept(signal: str, s=s) -> str:
                return (f"{s[signal + '_rmse']:.4f} (ep {s[signal + '_epoch']}, "
                        f"rho {s[signal + '_spearman']:.2f})")  # fmt: skip

            rows.append({
                "run": f"{table} seed {seed}",
                "best": f"{s['best_rmse']:.4f} (ep {s['best_epoch']})",
                "last": f"{s['last_rmse']:.4f}",
                "bound": kept("bound"),
                "hidden": kept("hidden"),
            })  # fmt: skip
            print(rows[-1], flush=True)
    print("\nRMSE at the checkpoint each signal keeps (epoch, Spearman rho with RMSE)\n")
    print_table(rows, [("run", "table / seed"), ("best", "best RMSE"), ("last", "last"),
                       ("bound", "held-out bound"), ("hidden", "hidden cells")])  # fmt: skip
    payload = {"benchmark": "early_stopping", "design": {k: v for k, v in vars(args).items()
               if k != "results_dir"}, "environment": environment(), "runs": runs}  # fmt: skip
    print(f"\nwrote {write_json(args.output, payload, Path(args.results_dir))}")
    return payload


if __name__ == "__main__":
    main()
