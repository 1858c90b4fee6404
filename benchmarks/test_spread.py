"""Spread of the statistical tests' figures over seeds and torch thread counts.

Runs ``pytest -m statistical`` once per (seed shift, thread count), with every figure that a
test checks against a threshold recorded by ``tests/statistical.py``, and tabulates, per
figure: the threshold, the worst and best value seen, and two margins: the distance from the
mean to the threshold in standard deviations over the runs, and from the worst value to the
threshold in units of the observed range (max - min). The rule the thresholds are set by:
every run passes, and the threshold lies at least 3 standard deviations beyond the mean.
Prints a Markdown table and writes ``benchmarks/results/test_spread.json``.

    python benchmarks/test_spread.py [--shifts 0 1 2 3 4] [--threads 1 2] [--pytest-args ...]

``make test-seeds`` runs it with the defaults (about 15 minutes on 2 cores). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, print_table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def run_pytest(shift: int, threads: int, log: Path, pytest_args: list[str]) -> int:
    # As many xdist workers as the cores hold at this thread count: oversubscribed OpenMP
    # threads spin and slow a run tenfold.
    workers = (os.cpu_count() or 1) // threads
    distribution = ["-n", str(workers)] if workers > 1 else ["-n", "0"]
    env = dict(
        os.environ,
        IMPUTE_DGM_SEED_SHIFT=str(shift),
        IMPUTE_DGM_TEST_THREADS=str(threads),
        IMPUTE_DGM_STATISTICS_LOG=str(log),
    )
    command = [sys.executable, "-m", "pytest", "-m", "statistical", "-q", "-p", "no:cacheprovider"]
    completed = subprocess.run(
        [*command, *distribution, *pytest_args], cwd=ROOT, env=env, check=False
    )
    return completed.returncode


def margin(values: np.ndarray, op: str, threshold: float) -> tuple[float, float]:
    """The worst value and (threshold - worst) / range, signed so that positive passes."""
    worst = values.max() if op in ("<", "<=") else values.min()
    gap = threshold - worst if op in ("<", "<=") else worst - threshold
    spread = values.max() - values.min()
    return float(worst), float(gap / spread) if spread > 0 else float("inf")


def summarise_records(records: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        groups[(record["test"], record["name"])].append(record)
    rows = []
    for (test, name), group in sorted(groups.items()):
        values = np.array([r["value"] for r in group])
        # The newest record carries the threshold in force (earlier records may predate it).
        op, threshold = group[-1]["op"], group[-1]["threshold"]
        worst, room = margin(values, op, threshold)
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        distance = threshold - values.mean() if op in ("<", "<=") else values.mean() - threshold
        rows.append(
            {
                "test": test.removeprefix("tests/"),
                "figure": name,
                "check": f"{op} {threshold:g}",
                "worst": worst,
                "best": float(values.min() if op in ("<", "<=") else values.max()),
                "margin_in_ranges": room,
                "margin_in_sds": float(distance / sd) if sd > 0 else float("inf"),
                "runs": len(group),
                # Judged against the threshold in force, not the one a record was taken under.
                "failed": int(sum(not _OPERATORS[op](v, threshold) for v in values)),
                "values": [
                    {"seed_shift": r["seed_shift"], "threads": r["threads"], "value": r["value"]}
                    for r in group
                ],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shifts", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--records",
        type=Path,
        nargs="*",
        default=[],
        help="JSONL files of earlier runs' records to include (e.g. from another machine)",
    )
    parser.add_argument(
        "--keep-log", type=Path, default=None, help="also write this run's records here"
    )
    parser.add_argument(
        "--pytest-args", nargs=argparse.REMAINDER, default=[], help="passed to pytest"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "statistics.jsonl"
        log.touch()
        exit_codes = {}
        for threads in args.threads:
            for shift in args.shifts:
                print(f"--- seed shift {shift}, {threads} torch thread(s)", flush=True)
                exit_codes[f"shift {shift}, threads {threads}"] = run_pytest(
                    shift, threads, log, args.pytest_args
                )
        if args.keep_log is not None:
            args.keep_log.write_text(log.read_text())
        lines = log.read_text().splitlines()
    for path in args.records:
        lines += path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]

    rows = summarise_records(records)
    print_table(
        [
            {
                **row,
                "figure": row["figure"].replace("|", "\\|"),  # Markdown cell
                "worst": f"{row['worst']:.4g}",
                "best": f"{row['best']:.4g}",
                "margin_in_ranges": f"{row['margin_in_ranges']:.2f}",
                "margin_in_sds": f"{row['margin_in_sds']:.1f}",
            }
            for row in rows
        ],
        [
            ("test", "test"),
            ("figure", "figure"),
            ("check", "check"),
            ("worst", "worst"),
            ("best", "best"),
            ("margin_in_ranges", "margin (ranges)"),
            ("margin_in_sds", "margin (sd)"),
            ("runs", "runs"),
            ("failed", "failed"),
        ],
    )
    path = write_json(
        "test_spread.json",
        {
            "environment": environment(),
            # Every (seed shift, torch threads) the records come from, this run's or loaded.
            "configurations": sorted({(r["seed_shift"], r["threads"]) for r in records}),
            "pytest_exit_codes": exit_codes,
            "rule": (
                "every run passes, and the threshold lies at least 3 standard deviations (over "
                "the runs) beyond the mean: margin_in_sds = (threshold - mean) / sd, signed to "
                "pass; margin_in_ranges = (threshold - worst) / (max - min)"
            ),
            "figures": rows,
        },
        args.results_dir,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
