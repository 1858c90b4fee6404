"""The imputation suite: many tables x missingness mechanisms x the imputers people use.

Tables (all offline): breast cancer (569 x 30), wine (178 x 13), diabetes (442 x 10), digits as
a table (a random ``--digits-rows`` of its 1,797 rows per seed, 64 pixel columns), a synthetic
low-rank table (1,000 x 8) and, mixed-type, Palmer penguins (``benchmarks/mixed.py``).
Mechanisms (``impute_dgm.missingness.ampute``): MCAR 20% and 50%, MAR 30% (logistic on the
complete columns), MNAR 30% (self-masking: large values go missing more often). 5 seeds.

Methods: mean / most frequent; KNNImputer (one-hot categories); IterativeImputer with
BayesianRidge (numeric tables); a missForest-style imputer (IterativeImputer with ExtraTrees on
numeric tables, random forests with classification for categories on the mixed one);
miceforest; hyperimpute's plugins when that package imports (else reported as not installed);
VAEImputer (MAR, its defaults) and VAEImputer(missingness="self_masking") (MNAR; on the mixed
table its mask model covers the numeric columns, the categories go missing at random in it);
``--vae-params`` gives both other settings (e.g. a wider latent space for digits' 64 columns).

Per cell: RMSE over the removed numeric cells of the standardised table, accuracy over removed
categorical cells, fit + transform seconds; ranks per table x mechanism, mean rank and wins per
method, and per mechanism the better VAEImputer variant. Prints tables and writes
``benchmarks/results/imputation_suite.json``; ``--tables``, ``--output`` and ``--merge`` split a
run over processes as in ``mixed.py``.

    python benchmarks/imputation_suite.py [--seeds 5] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, finish, fold_cell, limit_threads, print_table, run_or_merge  # noqa: E402
from mixed import (  # noqa: E402
    NotApplicable,
    categorical_columns,
    evaluate_cell,
    knn_one_hot,
    mean_or_mode,
    miceforest_single,
    missforest,
    penguins,
    ranks,
)

from impute_dgm import VAEImputer  # noqa: E402
from impute_dgm.datasets import load_table  # noqa: E402

MECHANISMS = {"MCAR 20%": ("mcar", 0.2), "MCAR 50%": ("mcar", 0.5), "MAR 30%": ("mar", 0.3),
              "MNAR 30%": ("mnar", 0.3)}  # fmt: skip


# --- tables ---------------------------------------------------------------------------------
def bundled(name: str) -> Callable[[int, argparse.Namespace], pd.DataFrame]:
    def load(seed: int, args) -> pd.DataFrame:
        frame = load_table(name)[0].reset_index(drop=True)
        if name == "digits":
            rows = np.random.default_rng(seed).permutation(len(frame))[: args.digits_rows]
            frame = frame.iloc[np.sort(rows)].reset_index(drop=True)
        return frame

    return load


def low_rank(seed: int, args) -> pd.DataFrame:
    """8 columns from a 2-d latent through fixed loadings, plus noise."""
    loadings = np.random.default_rng(12345).normal(size=(2, 8))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1000, 2)) @ loadings + 0.3 * rng.normal(size=(1000, 8))
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(8)])


TABLES: dict[str, Callable] = {
    "breast_cancer": bundled("breast_cancer"),
    "wine": bundled("wine"),
    "diabetes": bundled("diabetes"),
    "digits": bundled("digits"),
    "low_rank": low_rank,
    "penguins": lambda seed, args: penguins(seed, 0),
}


# --- methods (DataFrame in, DataFrame out) ---------------------------------------------------
def numeric_only(frame: pd.DataFrame) -> np.ndarray:
    if categorical_columns(frame):
        raise NotApplicable("numeric tables only")
    return frame.to_numpy(dtype=float)


def iterative_bayesian_ridge(frame, seed, quick):
    X = numeric_only(frame)
    imputer = IterativeImputer(max_iter=3 if quick else 10, random_state=seed)
    return pd.DataFrame(imputer.fit_transform(X), columns=frame.columns, index=frame.index)


def missforest_style(frame, seed, quick):
    if categorical_columns(frame):
        return missforest(frame, seed, quick)
    imputer = IterativeImputer(
        estimator=ExtraTreesRegressor(n_estimators=10 if quick else 100, random_state=seed),
        max_iter=2 if quick else 10,
        random_state=seed,
    )
    X = frame.to_numpy(dtype=float)
    return pd.DataFrame(imputer.fit_transform(X), columns=frame.columns, index=frame.index)


def hyperimpute_plugin(name: str):
    def run(frame, seed, quick):
        from hyperimpute.plugins.imputers import Imputers  # optional; often absent

        X = pd.DataFrame(numeric_only(frame), columns=frame.columns)
        return Imputers().get(name, random_state=seed).fit_transform(X)

    return run


#: VAEImputer's settings beyond its defaults (--vae-params), for both variants.
VAE_PARAMS: dict = {}


def vae(missingness: str):
    def run(frame, seed, quick):
        params = {**({"n_epochs": 5, "hidden_dims": (16,)} if quick else {}), **VAE_PARAMS}
        imputer = VAEImputer(missingness=missingness, random_state=seed, verbose=0, **params)
        # An all-float DataFrame takes the array path: ask for a DataFrame back.
        return imputer.set_output(transform="pandas").fit_transform(frame)

    return run


METHODS: dict[str, Callable] = {
    "mean / most frequent": mean_or_mode,
    "KNNImputer": knn_one_hot,
    "IterativeImputer (BayesianRidge)": iterative_bayesian_ridge,
    "missForest-style": missforest_style,
    "miceforest": miceforest_single,
    "hyperimpute (gain)": hyperimpute_plugin("gain"),
    "hyperimpute (hyperimpute)": hyperimpute_plugin("hyperimpute"),
    "VAEImputer (MAR)": vae("mar"),
    "VAEImputer (MNAR)": vae("self_masking"),
}
VAE_VARIANTS = ("VAEImputer (MAR)", "VAEImputer (MNAR)")


def run_cell(table: str, mechanism: str, args) -> dict:
    kind, rate = MECHANISMS[mechanism]
    methods = {m: METHODS[m] for m in args.methods}
    cell = evaluate_cell(
        lambda seed: TABLES[table](seed, args), kind, rate, methods, args.seeds, args.quick,
        f"{table} {mechanism}",
    )  # fmt: skip
    return {"table": table, "mechanism": mechanism, **cell}


def summarise_cells(cells: dict, methods: list[str]) -> dict:
    """Ranks by RMSE per cell, mean rank and wins per method; per mechanism, the better VAE
    variant (lower mean rank) and whether it has the best mean rank of the suite."""
    summary: dict = {"methods": {}, "by_mechanism": {}}
    per_method = {m: {"ranks": [], "wins": 0, "cells": 0, "seconds": 0.0} for m in methods}
    for cell in cells.values():
        results = cell["results"]
        cell["rmse_ranks"] = ranks({m: r["rmse"]["mean"] for m, r in results.items()}, False)
        for m, rank in cell["rmse_ranks"].items():
            per_method[m]["ranks"].append(rank)
            per_method[m]["wins"] += int(rank == 1)
            per_method[m]["cells"] += 1
        for m, r in results.items():
            per_method[m]["seconds"] += float(np.nansum(r["seconds"]["values"]))
    for m, record in per_method.items():
        summary["methods"][m] = {
            "mean_rmse_rank": float(np.mean(record["ranks"])) if record["ranks"] else None,
            "wins": record["wins"],
            "cells": record["cells"],
            "seconds": record["seconds"],
        }
    for mechanism in MECHANISMS:
        here = [c for c in cells.values() if c["mechanism"] == mechanism]
        if not here:
            continue
        mean_ranks = {}
        for m in methods:
            values = [c["rmse_ranks"][m] for c in here if m in c["rmse_ranks"]]
            if values:
                mean_ranks[m] = float(np.mean(values))
        variants = {v: mean_ranks[v] for v in VAE_VARIANTS if v in mean_ranks}
        best = min(variants, key=variants.get) if variants else None
        others = [r for m, r in mean_ranks.items() if m not in VAE_VARIANTS]
        wins = sum(c["rmse_ranks"].get(best) == 1 for c in here) if best else 0
        summary["by_mechanism"][mechanism] = {
            "mean_rmse_rank": mean_ranks,
            "best_vae_variant": best,
            "best_vae_has_best_mean_rank": bool(best and variants[best] <= min(others or [99])),
            "best_vae_wins": int(wins),
            "cells": len(here),
        }
    return summary


def print_tables(cells: dict, summary: dict, methods: list[str]) -> None:
    rows = []
    for name, cell in cells.items():
        for m in methods:
            if m in cell["failures"]:
                rows.append({"cell": name, "method": m, "rmse": cell["failures"][m][:48],
                             "seconds": "", "rank": ""})  # fmt: skip
                continue
            r = cell["results"][m]
            accuracy = (
                f", acc {r['accuracy']['mean']:.3f}" if np.isfinite(r["accuracy"]["mean"]) else ""
            )
            rows.append(
                {
                    "cell": name,
                    "method": m,
                    "rmse": f"{r['rmse']['mean']:.3f} +- {r['rmse']['sd']:.3f}{accuracy}",
                    "seconds": f"{r['seconds']['mean']:.1f}",
                    "rank": f"{cell['rmse_ranks'].get(m, float('nan')):.0f}",
                }
            )
    print_table(
        rows,
        [("cell", "table / mechanism"), ("method", "method"), ("rmse", "RMSE (std.)"),
         ("seconds", "fit+transform s"), ("rank", "rank")],
    )  # fmt: skip
    print("\nmean RMSE rank over every cell a method ran (1 = best), wins")
    print_table(
        [
            {
                "method": m,
                "rank": "" if s["mean_rmse_rank"] is None else f"{s['mean_rmse_rank']:.2f}",
                "wins": f"{s['wins']} / {s['cells']}",
                "seconds": f"{s['seconds']:.0f}",
            }
            for m, s in summary["methods"].items()
        ],
        [("method", "method"), ("rank", "mean rank"), ("wins", "wins / cells"),
         ("seconds", "total seconds")],
    )  # fmt: skip
    print("\nper mechanism: the better VAEImputer variant")
    print_table(
        [
            {
                "mechanism": mechanism,
                "variant": str(record["best_vae_variant"]),
                "best": str(record["best_vae_has_best_mean_rank"]),
                "wins": f"{record['best_vae_wins']} / {record['cells']}",
            }
            for mechanism, record in summary["by_mechanism"].items()
        ],
        [("mechanism", "mechanism"), ("variant", "better VAE variant"),
         ("best", "best mean rank of the suite"), ("wins", "its wins / cells")],
    )  # fmt: skip


def updated(base: dict, rerun: dict, methods: list[str]) -> dict:
    """``base`` with ``methods``' results (and failures) in every rerun cell taken from
    ``rerun``; the other methods' figures are kept (same tables, seeds and amputations)."""
    cells = {}
    for name, cell in base["cells"].items():
        new = rerun["cells"].get(name)
        cells[name] = cell if new is None else fold_cell(cell, new, methods)
    design = {**base["design"], "updated_methods": list(methods),
              "updated_environment": rerun["environment"]}  # fmt: skip
    return {**base, "design": design, "cells": cells,
            "seconds_update": rerun["seconds"]}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--digits-rows", type=int, default=600)
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--mechanisms", nargs="*", default=list(MECHANISMS),
                        choices=list(MECHANISMS))  # fmt: skip
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for torch, BLAS and OpenMP (default: all)",
    )
    parser.add_argument("--output", default="imputation_suite.json")
    parser.add_argument("--merge", nargs="*", default=None, metavar="JSON")
    parser.add_argument("--update", default=None, metavar="JSON",
                        help="rerun only --methods and replace their results in this file's "
                             "cells (e.g. after a change to VAEImputer)")  # fmt: skip
    parser.add_argument(
        "--vae-params", default="{}",
        help="VAEImputer settings as JSON for both variants, e.g. '{\"latent_dim\": 32}'",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    VAE_PARAMS.clear()
    VAE_PARAMS.update(json.loads(args.vae_params))
    limit_threads(args.threads)

    design = {"mechanisms": {k: list(v) for k, v in MECHANISMS.items()},
              "seeds": args.seeds, "digits_rows": args.digits_rows,
              "methods": list(args.methods), "torch_threads": args.threads,
              "vae_params": dict(VAE_PARAMS)}  # fmt: skip
    cells_to_run = {
        f"{table} / {mechanism}": functools.partial(run_cell, table, mechanism, args)
        for table in args.tables
        for mechanism in args.mechanisms
    }
    payload = run_or_merge(args, "imputation_suite", design, cells_to_run)
    if args.update:
        payload = updated(json.loads(Path(args.update).read_text()), payload, args.methods)
    cells, design = payload["cells"], payload["design"]
    methods = design.get("methods") or list(METHODS)
    payload["summary"] = summary = summarise_cells(cells, methods)
    print_tables(cells, summary, methods)
    return finish(args, payload)


if __name__ == "__main__":
    main()
