"""Imputing mixed-type tables: numeric, integer, boolean and categorical columns together.

Tables (all offline): Palmer penguins (``palmerpenguins``; 333 complete rows, 3 categorical
columns, 4 measurements, the year as an integer), the extramarital-affairs survey bundled with
statsmodels (``statsmodels.datasets.fair``; religion, occupation, husband's occupation and
marriage rating as categories, education in years as an integer, 4 numeric columns; a random
``--fair-rows`` of its 6,366 rows per seed, 2,000 by default, to keep the run near 30 minutes on
2 cores) and a synthetic table (a 3-d latent behind 4 non-linear numeric columns, a Poisson
count, a boolean and two categorical columns, one of them a ``string`` column). Each complete
table loses 30% of its cells, MCAR or MAR (``impute_dgm.missingness.ampute``), under 5 seeds.

Methods: mean / most frequent level; KNNImputer on standardised numbers and one-hot categories
(a category decoded by the arg-max of its imputed indicators); missForest-style forests
(``_missforest.py``: regression forests for numbers, classification forests for categories);
miceforest (one data set, 5 iterations, categories drawn by their class probabilities;
when installed); VAEImputer with its defaults, and with a short schedule (``SHORT_SCHEDULE``:
60 epochs, cosine learning rate from 5e-3, 100 evaluation samples), each also ranked against
the non-VAE methods alone, with its time over the missForest-style imputer's per cell.
``--update FILE`` reruns ``--methods`` and folds them into an earlier results file.
Per cell: RMSE over the missing numeric cells of the standardised table (integer columns
included), accuracy over the missing categorical and boolean cells, and fit + transform
seconds. The summary ranks the methods per table x mechanism (by the mean over seeds) and
averages the ranks. Prints tables and writes ``benchmarks/results/mixed.json``.

    python benchmarks/mixed.py [--seeds 5] [--fair-rows 2000] [--threads 1] [--quick]
    python benchmarks/mixed.py --tables fair --output a.json &     # tables in parallel,
    python benchmarks/mixed.py --tables penguins synthetic --output b.json; wait
    python benchmarks/mixed.py --merge results/a.json results/b.json  # then one summary
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.impute import KNNImputer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    finish,
    fold_cell,
    limit_threads,
    print_table,
    run_or_merge,
    summarise,
)
from _missforest import MissForestImputer, fill_mean_or_mode  # noqa: E402

from impute_dgm import VAEImputer  # noqa: E402
from impute_dgm.missingness import ampute  # noqa: E402
from impute_dgm.schema import column_kind  # noqa: E402

MECHANISMS = ("mcar", "mar")
RATE = 0.3


# --- tables ---------------------------------------------------------------------------------
def penguins(seed: int, fair_rows: int) -> pd.DataFrame:
    import palmerpenguins

    frame = palmerpenguins.load_penguins().dropna().reset_index(drop=True)
    for name in ("species", "island", "sex"):
        frame[name] = frame[name].astype("category")
    frame["year"] = frame["year"].astype("int64")
    return frame


def fair(seed: int, fair_rows: int) -> pd.DataFrame:
    from statsmodels.datasets import fair as fair_data

    frame = fair_data.load_pandas().data
    rows = np.random.default_rng(seed).permutation(len(frame))[:fair_rows]
    frame = frame.iloc[np.sort(rows)].reset_index(drop=True)
    for name in ("religious", "occupation", "occupation_husb"):
        frame[name] = pd.Categorical(frame[name].astype(int).map(lambda v, n=name: f"{n}_{v}"))
    frame["rate_marriage"] = pd.Categorical(frame["rate_marriage"].astype(int), ordered=True)
    frame["educ"] = frame["educ"].astype("int64")
    return frame


def synthetic(seed: int, fair_rows: int, n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    weights = np.random.default_rng(12345).normal(size=(3, 4)) * 2
    colour = np.argmax(z @ weights + rng.gumbel(size=(n, 4)) * 0.5, axis=1)
    x1 = z[:, 0] + 0.3 * rng.normal(size=n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": np.sin(1.5 * z[:, 0]) + 0.5 * z[:, 1] + 0.3 * rng.normal(size=n),
            "x3": z[:, 1] * z[:, 2] + 0.3 * rng.normal(size=n),
            "x4": np.exp(0.5 * z[:, 2]) + 0.2 * rng.normal(size=n),
            "count": rng.poisson(np.exp(0.5 + 0.5 * z[:, 0])).astype("int64"),
            "flag": z[:, 1] + 0.5 * rng.normal(size=n) > 0,
            "colour": pd.Categorical(np.array(["a", "b", "c", "d"])[colour]),
            "size": pd.array(
                np.array(["small", "medium", "large"])[np.digitize(x1, [-0.5, 0.5])],
                dtype="string",
            ),
        }
    )


TABLES: dict[str, Callable[[int, int], pd.DataFrame]] = {
    "penguins": penguins,
    "fair": fair,
    "synthetic": synthetic,
}


def categorical_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if column_kind(frame[c]) in ("categorical", "binary")]


# --- methods --------------------------------------------------------------------------------
def mean_or_mode(frame: pd.DataFrame, seed: int, quick: bool) -> pd.DataFrame:
    return fill_mean_or_mode(frame, categorical_columns(frame))


def knn_one_hot(frame: pd.DataFrame, seed: int, quick: bool) -> pd.DataFrame:
    categorical = categorical_columns(frame)
    numeric = [c for c in frame.columns if c not in categorical]
    numbers = frame[numeric].astype(float)
    centre, scale = numbers.mean(), numbers.std().replace(0, 1)
    blocks, levels = [(numbers - centre) / scale], {}
    for name in categorical:
        dummies = pd.get_dummies(frame[name].astype(object), dtype=float)
        dummies[frame[name].isna().to_numpy()] = np.nan
        levels[name] = list(dummies.columns)
        blocks.append(dummies)
    design = pd.concat(blocks, axis=1)
    filled = KNNImputer(n_neighbors=5).fit_transform(design.to_numpy(float))
    out = frame.astype(object).copy()
    out[numeric] = filled[:, : len(numeric)] * scale.to_numpy() + centre.to_numpy()
    start = len(numeric)
    for name in categorical:
        width = len(levels[name])
        chosen = np.argmax(filled[:, start : start + width], axis=1)
        out[name] = np.array(levels[name], dtype=object)[chosen]
        start += width
    return out


def missforest(frame: pd.DataFrame, seed: int, quick: bool) -> pd.DataFrame:
    imputer = MissForestImputer(
        categorical_columns(frame),
        max_iter=2 if quick else 10,
        n_estimators=10 if quick else 100,
        random_state=seed,
    )
    return imputer.fit_transform(frame)


def miceforest_single(frame: pd.DataFrame, seed: int, quick: bool) -> pd.DataFrame:
    import miceforest

    data = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        if name in categorical_columns(frame):
            data[name] = frame[name].astype(object).astype("category")
        else:
            data[name] = frame[name].astype(float)
    # "fast" mean matching (a level drawn by the class probabilities) for categories: the
    # default nearest-neighbour matching on log-odds fails on these tables as soon as LightGBM
    # returns a probability of exactly 0 or 1 ("data must be finite").
    strategy = {name: "fast" for name in categorical_columns(frame)}
    kernel = miceforest.ImputationKernel(
        data, num_datasets=1, mean_match_strategy=strategy, random_state=seed
    )
    kernel.mice(1 if quick else 5)
    return kernel.complete_data(0)


#: VAEImputer's settings (its defaults unless --vae-params says otherwise).
VAE_PARAMS: dict = {}


#: A short training schedule for a fit-time budget near the missForest-style imputer's:
#: 60 epochs (a fifth of the default 300) with the learning rate annealed from 5e-3 (cosine)
#: and 100 evaluation samples. Chosen on seeds 5 and 6 of these tables (the benchmark's are
#: 0-4) among 60 epochs at 5e-3, 100 epochs at 3e-3 with K = 10 and (64, 64) hidden units, and
#: 80 epochs at 4e-3 with K = 10: all three cost about the same; this one keeps the default
#: network and importance samples.
SHORT_SCHEDULE: dict = {"n_epochs": 60, "lr": 5e-3, "lr_schedule": "cosine", "n_eval_samples": 100}


def vae_imputer(
    frame: pd.DataFrame, seed: int, quick: bool, schedule: dict | None = None
) -> pd.DataFrame:
    params = {"n_epochs": 5, "hidden_dims": (16,)} if quick else {**(schedule or {}), **VAE_PARAMS}
    return VAEImputer(random_state=seed, verbose=0, **params).fit_transform(frame)


METHODS: dict[str, Callable[[pd.DataFrame, int, bool], pd.DataFrame]] = {
    "mean / most frequent": mean_or_mode,
    "KNN (one-hot)": knn_one_hot,
    "missForest-style": missforest,
    "miceforest": miceforest_single,
    "VAEImputer": vae_imputer,
    "VAEImputer (short schedule)": functools.partial(vae_imputer, schedule=SHORT_SCHEDULE),
}
#: The rows of VAEImputer; each is also ranked against the other methods alone.
VAE_VARIANTS = ("VAEImputer", "VAEImputer (short schedule)")


# --- scoring --------------------------------------------------------------------------------
def score(complete: pd.DataFrame, amputed: pd.DataFrame, imputed: pd.DataFrame) -> dict:
    """RMSE over missing numeric cells (standardised), accuracy over missing categorical cells."""
    categorical = categorical_columns(complete)
    squared, hits, n_numeric, n_categorical = 0.0, 0, 0, 0
    for name in complete.columns:
        rows = amputed[name].isna().to_numpy()
        if not rows.any():
            continue
        if name in categorical:
            truth = complete[name].astype(str).to_numpy()[rows]
            guess = imputed[name].astype(object).astype(str).to_numpy()[rows]
            hits += int((truth == guess).sum())
            n_categorical += int(rows.sum())
        else:
            truth = complete[name].astype(float).to_numpy()
            scale = truth.std() or 1.0
            guess = imputed[name].astype(float).to_numpy()
            squared += float(np.sum(((guess[rows] - truth[rows]) / scale) ** 2))
            n_numeric += int(rows.sum())
    return {
        "rmse": float(np.sqrt(squared / n_numeric)) if n_numeric else float("nan"),
        "accuracy": hits / n_categorical if n_categorical else float("nan"),
    }


def ranks(means: dict[str, float], higher_is_better: bool) -> dict[str, float]:
    series = pd.Series(means).dropna()
    return series.rank(ascending=not higher_is_better, method="average").to_dict()


def summarise_finite(values: list[float]) -> dict:
    """Mean and sd over the seeds with a value (a seed whose MAR draw left every categorical
    column complete has no accuracy); ``n`` says how many."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0, "values": values}
    return {**summarise(finite), "n": len(finite), "values": [float(v) for v in values]}


class NotApplicable(Exception):
    """A method that does not take this kind of table (reported as such, not as a failure)."""


def evaluate_cell(
    load: Callable[[int], pd.DataFrame],
    mechanism: str,
    rate: float,
    methods: dict[str, Callable],
    seeds: int,
    quick: bool,
    label: str,
) -> dict:
    """Every method on ``load(seed)`` amputed by (``mechanism``, ``rate``), for each seed: the
    scores summarised over seeds, and the methods that could not run with the reason."""
    records = {m: {"rmse": [], "accuracy": [], "seconds": []} for m in methods}
    failures: dict[str, str] = {}
    for seed in range(seeds):
        complete = load(seed)
        amputed = ampute(complete, rate, mechanism, random_state=seed)
        for method, impute in methods.items():
            if method in failures:
                continue
            tic = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    imputed = impute(amputed, seed, quick)
            except NotApplicable as error:
                failures[method] = f"not applicable: {error}"
                continue
            except ImportError as error:
                failures[method] = f"not installed: {error}"
                continue
            except Exception as error:  # a benchmark reports a failure as such
                failures[method] = f"failed: {type(error).__name__}: {error}"
                continue
            seconds = time.perf_counter() - tic
            for key, value in score(complete, amputed, imputed).items():
                records[method][key].append(value)
            records[method]["seconds"].append(seconds)
        print(f"{label} seed {seed} done", flush=True)
    return {
        "shape": list(complete.shape),
        "kinds": {str(c): column_kind(complete[c]) for c in complete.columns},
        "results": {
            m: {k: summarise_finite(v) for k, v in r.items()}
            for m, r in records.items()
            if m not in failures
        },
        "failures": failures,
    }


def run_cell(table: str, mechanism: str, args) -> dict:
    methods = {m: METHODS[m] for m in args.methods}
    cell = evaluate_cell(
        lambda seed: TABLES[table](seed, args.fair_rows), mechanism, RATE, methods,
        args.seeds, args.quick, f"{table} {mechanism}",
    )  # fmt: skip
    return {"table": table, "mechanism": mechanism, **cell}


def summarise_cells(cells: dict, methods: list[str]) -> dict:
    """Ranks per cell (mean over seeds; 1 = best) and their mean per method."""
    summary = {m: {"rmse_ranks": [], "accuracy_ranks": [], "seconds": 0.0} for m in methods}
    for cell in cells.values():
        results = cell["results"]
        rmse = ranks({m: r["rmse"]["mean"] for m, r in results.items()}, False)
        accuracy = ranks({m: r["accuracy"]["mean"] for m, r in results.items()}, True)
        cell["rmse_ranks"], cell["accuracy_ranks"] = rmse, accuracy
        for m, r in results.items():
            if m in rmse:
                summary[m]["rmse_ranks"].append(rmse[m])
            if m in accuracy:
                summary[m]["accuracy_ranks"].append(accuracy[m])
            summary[m]["seconds"] += float(np.sum(r["seconds"]["values"]))
    for s in summary.values():
        rmse_ranks, accuracy_ranks = s.pop("rmse_ranks"), s.pop("accuracy_ranks")
        s["mean_rmse_rank"] = float(np.mean(rmse_ranks)) if rmse_ranks else float("nan")
        s["mean_accuracy_rank"] = float(np.mean(accuracy_ranks)) if accuracy_ranks else float("nan")
        s["rmse_wins"] = int(sum(r == 1 for r in rmse_ranks))
        s["accuracy_wins"] = int(sum(r == 1 for r in accuracy_ranks))
    return summary


def variant_summaries(cells: dict, methods: list[str]) -> dict:
    """Each VAEImputer variant ranked against the other (non-VAE) methods alone, with its
    fit + transform time over the missForest-style imputer's per cell (mean over seeds)."""
    baselines = [m for m in methods if m not in VAE_VARIANTS]
    summaries = {}
    for variant in (m for m in methods if m in VAE_VARIANTS):
        subset = [*baselines, variant]
        restricted = {
            name: {**cell, "results": {m: r for m, r in cell["results"].items() if m in subset}}
            for name, cell in cells.items()
        }
        summary = summarise_cells(restricted, subset)
        ratios = {
            name: cell["results"][variant]["seconds"]["mean"]
            / cell["results"]["missForest-style"]["seconds"]["mean"]
            for name, cell in cells.items()
            if variant in cell["results"] and "missForest-style" in cell["results"]
        }
        summaries[variant] = {"ranks": summary, "seconds_over_missforest": ratios}
    return summaries


def print_tables(
    cells: dict, summary: dict, variants: dict, methods: list[str], seeds: int
) -> None:
    rows = []
    for name, cell in cells.items():
        for m in methods:
            if m in cell["failures"]:
                rows.append(
                    {"cell": name, "method": m, "rmse": cell["failures"][m][:40],
                     "accuracy": "", "seconds": ""}
                )  # fmt: skip
                continue
            if m not in cell["results"]:  # not run on this table (an --update of others)
                continue
            r = cell["results"][m]
            rows.append(
                {
                    "cell": name,
                    "method": m,
                    "rmse": f"{r['rmse']['mean']:.3f} +- {r['rmse']['sd']:.3f}",
                    "accuracy": f"{r['accuracy']['mean']:.3f} +- {r['accuracy']['sd']:.3f}"
                    + ("" if r["accuracy"]["n"] == seeds else f" ({r['accuracy']['n']} seeds)"),
                    "seconds": f"{r['seconds']['mean']:.1f}",
                }
            )
    print(f"\n{RATE:.0%} missing, {seeds} seeds (mean +- sd over seeds)")
    print_table(
        rows,
        [("cell", "table/mechanism"), ("method", "method"), ("rmse", "RMSE (std. numeric)"),
         ("accuracy", "accuracy (categorical)"), ("seconds", "fit+transform s")],
    )  # fmt: skip
    print("\nmean rank over tables x mechanisms (1 = best), wins, total seconds")
    print_table(
        [
            {
                "method": m,
                "rmse": f"{s['mean_rmse_rank']:.2f} ({s['rmse_wins']} wins)",
                "accuracy": f"{s['mean_accuracy_rank']:.2f} ({s['accuracy_wins']} wins)",
                "seconds": f"{s['seconds']:.0f}",
            }
            for m, s in summary.items()
        ],
        [("method", "method"), ("rmse", "RMSE rank"), ("accuracy", "accuracy rank"),
         ("seconds", "total seconds")],
    )  # fmt: skip
    for variant, found in variants.items():
        ranks_alone = found["ranks"][variant]
        ratios = found["seconds_over_missforest"]
        print(
            f"\n{variant} against the other methods alone: RMSE rank "
            f"{ranks_alone['mean_rmse_rank']:.2f} ({ranks_alone['rmse_wins']} wins), accuracy "
            f"rank {ranks_alone['mean_accuracy_rank']:.2f} ({ranks_alone['accuracy_wins']} wins); "
            "time / missForest-style's: "
            + ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items())
        )


def updated(base: dict, rerun: dict, methods: list[str]) -> dict:
    """``base`` with the records of ``methods`` replaced (or added) by ``rerun``'s in every
    cell ``rerun`` has; the design notes what was rerun, when and where."""
    cells = dict(base["cells"])
    for name, cell in rerun["cells"].items():
        earlier = cells.get(name, {**cell, "results": {}, "failures": {}})
        cells[name] = fold_cell(earlier, cell, methods)
    earlier_methods = base["design"].get("methods") or [
        m for m in METHODS if any(m in c["results"] for c in base["cells"].values())
    ]
    record = {
        "methods": list(methods),
        "environment": rerun["environment"],
        "seconds": rerun["seconds"],
        "vae_params": rerun["design"].get("vae_params"),
    }
    design = {
        **base["design"],
        "methods": list(dict.fromkeys([*earlier_methods, *methods])),
        "updated": [*base["design"].get("updated", []), record],
    }
    return {**base, "design": design, "cells": cells, "seconds": base["seconds"] + rerun["seconds"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fair-rows", type=int, default=2000)
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for torch, BLAS and OpenMP (default: all)",
    )
    parser.add_argument("--output", default="mixed.json", help="file name under --results-dir")
    parser.add_argument(
        "--merge", nargs="*", default=None, metavar="JSON",
        help="combine the cells of earlier runs (e.g. tables run in parallel) and summarise",
    )  # fmt: skip
    parser.add_argument(
        "--vae-params", default="{}", help="VAEImputer settings as JSON, e.g. '{\"n_epochs\": 100}'"
    )
    parser.add_argument(
        "--update", default=None, metavar="JSON",
        help="fold this run's --methods into the cells of an earlier results file",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    VAE_PARAMS.clear()
    VAE_PARAMS.update(json.loads(args.vae_params))
    limit_threads(args.threads)

    design = {"rate": RATE, "mechanisms": list(MECHANISMS), "seeds": args.seeds,
              "fair_rows": args.fair_rows, "torch_threads": args.threads,
              "vae_params": dict(VAE_PARAMS), "methods": list(args.methods)}  # fmt: skip
    cells_to_run = {
        f"{table}/{mechanism}": functools.partial(run_cell, table, mechanism, args)
        for table in args.tables
        for mechanism in MECHANISMS
    }
    # Read before the run: the run writes its partial results to --output, which may be the
    # file being updated.
    base = json.loads(Path(args.update).read_text()) if args.update else None
    if base is not None and base["design"]["seeds"] != args.seeds:
        raise ValueError(
            f"--update: {args.seeds} seeds against the file's {base['design']['seeds']}"
        )
    payload = run_or_merge(args, "mixed", design, cells_to_run)
    if base is not None:
        payload = updated(base, payload, args.methods)
    cells, design = payload["cells"], payload["design"]
    methods = design.get("methods") or list(METHODS)
    payload["summary"] = summary = summarise_cells(cells, methods)
    payload["variants"] = variants = variant_summaries(cells, methods)
    print_tables(cells, summary, variants, methods, design["seeds"])
    return finish(args, payload)


if __name__ == "__main__":
    main()
