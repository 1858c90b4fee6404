"""Helpers shared by the benchmark scripts: environment record, table printing, JSON output."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def limit_threads(threads: int | None) -> None:
    """Give torch, BLAS and OpenMP pools ``threads`` threads each (None: leave them be).

    Setting torch's alone left scikit-learn's BLAS and LightGBM's OpenMP one thread a core, so
    single-threaded processes run side by side oversubscribed the cores and slowed one another
    (IterativeImputer 4-7 times, missForest-style by a third; session 38).
    """
    if not threads:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # the pools loaded so far (numpy's, scipy's, torch's)
    # Pools loaded later read these when they start (LightGBM's OpenMP, under miceforest).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def summarise(values: list[float]) -> dict:
    array = np.asarray(values, dtype=float)
    return {
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        "values": [float(v) for v in array],
    }


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Print ``rows`` (dicts) as a Markdown table with ``columns`` = [(key, header), ...]."""
    headers = [header for _, header in columns]
    body = [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


def write_json(name: str, payload: dict, directory: Path = RESULTS) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def run_or_merge(args, benchmark: str, design: dict, cells_to_run: dict) -> dict:
    """The payload of a benchmark with many cells: computed, or merged from earlier runs.

    With ``args.merge`` (JSON files of runs that split the cells, e.g. over processes), their
    cells are combined; otherwise each ``cells_to_run[name]()`` is computed in turn and the
    payload so far is written to ``args.output`` after each one, so that a long run that fails
    late keeps what it finished. Returns the payload (benchmark, design, quick, seconds,
    environment, cells); :func:`finish` writes it once the caller has added its summary.
    """
    import time

    if args.merge:
        parts = [json.loads(Path(path).read_text()) for path in args.merge]
        return {
            "benchmark": benchmark,
            "design": {**parts[0]["design"], "merged_from": [str(p) for p in args.merge]},
            "quick": args.quick,
            "seconds": sum(part["seconds"] for part in parts),
            "environment": parts[0]["environment"],
            "cells": {name: cell for part in parts for name, cell in part["cells"].items()},
        }
    start = time.perf_counter()
    payload = {"benchmark": benchmark, "design": design, "quick": args.quick, "seconds": 0.0,
               "environment": environment(), "cells": {}}  # fmt: skip
    for name, run in cells_to_run.items():
        payload["cells"][name] = run()
        payload["seconds"] = time.perf_counter() - start
        write_json(args.output, {**payload, "partial": True}, Path(args.results_dir))
    return payload


def fold_methods(earlier: dict, rerun: dict, methods) -> dict:
    """Per-method records of one cell after rerunning ``methods``: ``earlier``'s records of
    the other methods and ``rerun``'s, in ``earlier``'s order with new methods last (the
    ``--update`` option of the benchmarks)."""
    merged = {**{m: r for m, r in earlier.items() if m not in methods}, **rerun}
    return {m: merged[m] for m in dict.fromkeys([*earlier, *rerun]) if m in merged}


def fold_cell(earlier: dict, rerun: dict, methods) -> dict:
    """A benchmark cell (``results`` and ``failures`` per method) after rerunning ``methods``:
    :func:`fold_methods` on both, the cell's other entries kept from ``earlier``."""
    return {
        **earlier,
        "results": fold_methods(earlier["results"], rerun["results"], methods),
        "failures": fold_methods(earlier["failures"], rerun["failures"], methods),
    }


def finish(args, payload: dict) -> dict:
    """Write the complete payload to ``args.output`` under ``args.results_dir``; return it."""
    path = write_json(args.output, payload, Path(args.results_dir))
    print(f"\nwrote {path}")
    return payload


def nonlinear_table(n_rows: int, seed: int, n_features: int = 30, latent_dim: int = 5):
    """A synthetic table with non-linear structure: a ``latent_dim``-dimensional Gaussian
    latent through a fixed random network (one tanh layer of 64) to ``n_features`` columns,
    plus noise of standard deviation 0.1. The network is the same for every seed (seed 12345);
    ``seed`` draws the rows. float64, standardised columns."""
    weights = np.random.default_rng(12345)
    first = weights.normal(size=(latent_dim, 64)) / np.sqrt(latent_dim)
    second = weights.normal(size=(64, n_features)) / np.sqrt(64)
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, latent_dim))
    X = np.empty((n_rows, n_features))
    # In blocks of rows (the hidden layer of a million rows alone would take 512 MB); the noise
    # is drawn block after block, the same numbers as one draw of the whole table.
    blocks = [slice(start, min(start + 65536, n_rows)) for start in range(0, n_rows, 65536)]
    for rows in blocks:
        X[rows] = np.tanh(latent[rows] @ first) @ second
    for rows in blocks:
        X[rows] += 0.1 * rng.normal(size=(rows.stop - rows.start, n_features))
    X -= X.mean(0)
    X /= X.std(0)
    return X
