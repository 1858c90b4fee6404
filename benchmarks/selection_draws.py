"""VAEImputer settings compared on selection draws: seeds the benchmarks do not score.

A setting is screened here before the suite (``imputation_suite.py``, seeds 0-4) is rerun with
it, so that the suite's seeds never choose what they then judge. Each cell is a table of the
suite, a mechanism and rate (``impute_dgm.missingness.ampute``) and a seed from 5 up; every
variant fits once per cell with the same data and seed. Per cell and variant: RMSE over the
removed numeric cells of the standardised table at 64 and 512 importance samples, accuracy over
removed categorical cells (penguins), the in-sample ``score`` (mean log-likelihood of the
observed part, 512 samples) and the fit's seconds.

    python benchmarks/selection_draws.py --variants '{"dreg": {"encoder_gradient": "dreg"}}'
        [--cells breast_cancer:mcar:0.5:5 ...] [--threads 1] [--output NAME.json]

"standard" (the defaults) is always a variant. ``--cells`` and ``--output`` split a run over
processes; ``--merge`` joins their files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, finish, limit_threads, print_table, run_or_merge  # noqa: E402
from imputation_suite import TABLES  # noqa: E402
from mixed import score  # noqa: E402

from impute_dgm import VAEImputer  # noqa: E402
from impute_dgm.missingness import ampute  # noqa: E402

#: The cells the encoder-gradient screen ran (session 35): every table of the suite, each
#: mechanism but self-masking, seeds 5 and 6.
CELLS = [
    "breast_cancer:mcar:0.5:5", "breast_cancer:mcar:0.5:6", "breast_cancer:mcar:0.2:6",
    "breast_cancer:mar:0.3:6", "digits:mcar:0.2:5", "digits:mcar:0.5:6", "digits:mar:0.3:6",
    "diabetes:mcar:0.2:5", "diabetes:mar:0.3:6", "wine:mcar:0.2:5", "wine:mar:0.3:6",
    "low_rank:mcar:0.2:5", "low_rank:mar:0.3:6", "penguins:mcar:0.2:5", "penguins:mcar:0.5:6",
    "penguins:mar:0.3:5", "penguins:mar:0.3:6",
]  # fmt: skip
SAMPLES = (64, 512)


def run_cell(cell: str, variants: dict[str, dict], args) -> dict:
    table, mechanism, rate, seed = cell.split(":")
    rate, seed = float(rate), int(seed)
    if seed < 5:
        raise ValueError(f"{cell}: seeds 0-4 are the suite's; selection draws start at 5")
    frame = TABLES[table](seed, args)
    amputed = ampute(frame, rate, mechanism, random_state=seed)
    results = {}
    for name, params in variants.items():
        quick = {"n_epochs": 3, "hidden_dims": (16,)} if args.quick else {}
        start = time.perf_counter()
        imputer = VAEImputer(random_state=seed, verbose=0, **{**quick, **params})
        imputer.set_output(transform="pandas").fit(amputed)
        record = {"fit_seconds": time.perf_counter() - start}
        for n_samples in SAMPLES:
            imputer.set_params(n_eval_samples=n_samples)
            scores = score(frame, amputed, imputer.transform(amputed))
            record[f"rmse_{n_samples}"] = scores["rmse"]
            if np.isfinite(scores.get("accuracy", np.nan)):
                record[f"accuracy_{n_samples}"] = scores["accuracy"]
        record["score"] = float(imputer.set_params(n_eval_samples=SAMPLES[-1]).score(amputed))
        results[name] = record
    print(f"{cell} done", flush=True)
    return {"table": table, "mechanism": mechanism, "rate": rate, "seed": seed,
            "results": results}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="{}", help="JSON: {name: VAEImputer settings}")
    parser.add_argument("--cells", nargs="*", default=CELLS, help="table:mechanism:rate:seed")
    parser.add_argument("--digits-rows", type=int, default=600)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for torch, BLAS and OpenMP (default: all)",
    )
    parser.add_argument("--output", default="selection_draws.json")
    parser.add_argument("--merge", nargs="*", default=None, metavar="JSON")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    variants = {"standard": {}, **json.loads(args.variants)}
    design = {"variants": variants, "cells": list(args.cells), "samples": list(SAMPLES),
              "digits_rows": args.digits_rows, "torch_threads": args.threads}  # fmt: skip
    cells_to_run = {cell: (lambda cell=cell: run_cell(cell, variants, args)) for cell in args.cells}
    payload = run_or_merge(args, "selection_draws", design, cells_to_run)
    names = list(payload["design"]["variants"])
    rows = []
    for cell, record in payload["cells"].items():
        row = {"cell": cell}
        for name in names:
            result = record["results"][name]
            row[name] = " / ".join(f"{result[f'rmse_{n}']:.4f}" for n in SAMPLES)
            row[f"{name} score"] = f"{result['score']:.3f}"
        rows.append(row)
    print(f"\nRMSE at {' / '.join(map(str, SAMPLES))} samples, in-sample score\n")
    columns = [("cell", "cell")]
    for name in names:
        columns += [(name, name), (f"{name} score", f"{name} score")]
    print_table(rows, columns)
    return finish(args, payload)


if __name__ == "__main__":
    main()
