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
    }


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


def run_or_merge(
    args, benchmark: str, design: dict, cells_to_run: dict
) -> tuple[dict, dict, float, dict]:
    """The cells of a benchmark with many cells: computed, or merged from earlier runs.

    With ``args.merge`` (JSON files of runs that split the cells, e.g. over processes), their
    cells are combined; otherwise each ``cells_to_run[name]()`` is computed in turn and the
    results so far are written to ``args.output`` after each one, so that a long run that fails
    late keeps what it finished. Returns (cells, design, seconds, environment).
    """
    import time

    if args.merge:
        parts = [json.loads(Path(path).read_text()) for path in args.merge]
        cells = {name: cell for part in parts for name, cell in part["cells"].items()}
        design = {**parts[0]["design"], "merged_from": [str(p) for p in args.merge]}
        seconds = sum(part["seconds"] for part in parts)
        return cells, design, seconds, parts[0]["environment"]
    start = time.perf_counter()
    record = environment()
    cells: dict = {}
    for name, run in cells_to_run.items():
        cells[name] = run()
        partial = {"benchmark": benchmark, "design": design, "cells": cells, "partial": True,
                   "seconds": time.perf_counter() - start, "environment": record}  # fmt: skip
        write_json(args.output, partial, Path(args.results_dir))
    return cells, design, time.perf_counter() - start, record
