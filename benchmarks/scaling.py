"""Scaling: fit time, transform throughput, peak memory and RMSE from 10 thousand to a million rows.

Part 1, growth in n: the synthetic non-linear table of ``_common.nonlinear_table`` (a
5-dimensional latent through a fixed random network to 30 columns, plus noise), 30% of its
cells missing completely at random, n = ``--sizes``. Per method and n, in a fresh process (so
that its peak resident memory is its own): fit seconds; transform rows per second and RMSE on
the missing cells, both on the first ``--eval-rows`` rows; peak RSS and its ratio to the
float64 size of the table, also counting only what comes above the process's footprint after
its imports (torch alone takes a few hundred MiB). Methods: VAEImputer with its defaults (the
automatic budget), IterativeImputer (BayesianRidge) and the missForest-style IterativeImputer
(ExtraTrees); a run past ``--timeout`` seconds is reported as such, and not run at larger n.
The growth exponent of fit time, log(t2 / t1) / log(n2 / n1), between successive sizes.

Part 2, imputation cost: one VAEImputer fit on breast cancer (50% MCAR), then ``transform``
with n_eval_samples from 50 to 1000: rows per second and RMSE; with ``--eval-samples-rows N``
also one fit on the synthetic table with N rows, then ``transform`` of its first
``--eval-rows`` rows with 5 to 500 samples a row.

Prints both tables and writes ``benchmarks/results/scaling.json``.

    python benchmarks/scaling.py [--sizes 10000 100000 1000000] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    environment,
    limit_threads,
    nonlinear_table,
    print_table,
    write_json,
)

METHODS = ("VAEImputer", "IterativeImputer (BayesianRidge)", "missForest-style")
EVAL_SAMPLES = (50, 100, 200, 500, 1000)
SYNTHETIC_EVAL_SAMPLES = (5, 10, 20, 50, 100, 200, 500)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def _current_rss() -> int:
    try:
        return _status_kib("VmRSS") * 1024
    except OSError:
        return 0


def _peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def _reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux ``clear_refs``); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def make_imputer(method: str, seed: int, quick: bool, vae_params: dict | None = None):
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    from impute_dgm import VAEImputer

    if method == "VAEImputer":
        params = {"n_epochs": 3, "hidden_dims": (16,)} if quick else {}
        return VAEImputer(random_state=seed, **{**params, **(vae_params or {})})
    if method == "IterativeImputer (BayesianRidge)":
        return IterativeImputer(max_iter=3 if quick else 10, random_state=seed)
    return IterativeImputer(
        estimator=ExtraTreesRegressor(n_estimators=10 if quick else 100, random_state=seed),
        max_iter=2 if quick else 10,
        random_state=seed,
    )


def worker(
    method: str, n_rows: int, seed: int, quick: bool, eval_rows: int, vae_params: dict
) -> dict:
    """One fit and transform, run in its own process; returns its measurements."""
    import resource

    from impute_dgm.missingness import ampute

    make_imputer(method, seed, quick, vae_params)  # imports every library the fit needs
    import torch

    # torch imports its compiler stack (torch._dynamo, ~70 MiB) on an optimiser's first use.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    # What the interpreter, torch and scikit-learn take before there is any data.
    baseline_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    X = nonlinear_table(n_rows, seed)
    table_bytes = X.nbytes
    X_missing = ampute(X, 0.3, "mcar", random_state=seed)
    # Transform (and score) the first ``eval_rows`` rows: at a million rows and 500 importance
    # samples a row, a full transform would take longer than the fit. Only their true values
    # are kept: a user's process holds the incomplete table, not a complete copy beside it.
    rows = slice(0, min(n_rows, eval_rows))
    X = X[rows].copy()
    imputer = make_imputer(method, seed, quick, vae_params)
    # The peak from here on is the imputer's: making the data has its own peak (Linux lets a
    # process reset its high-water mark; elsewhere the peak includes the data's making).
    data_bytes = _current_rss()
    reset = _reset_peak_rss()
    start = time.perf_counter()
    imputer.fit(X_missing)
    fit_seconds = time.perf_counter() - start
    X_missing = X_missing[rows]
    missing = np.isnan(X_missing)
    start = time.perf_counter()
    imputed = imputer.transform(X_missing)
    transform_seconds = time.perf_counter() - start
    peak_bytes = _peak_rss() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record = {
        "fit_seconds": fit_seconds,
        "transform_rows_per_second": len(X) / transform_seconds,
        "transform_rows": len(X),
        "peak_rss_mib": peak_bytes / 2**20,
        "peak_rss_over_table": peak_bytes / table_bytes,
        "baseline_rss_mib": baseline_bytes / 2**20,
        "peak_above_baseline_over_table": (peak_bytes - baseline_bytes) / table_bytes,
        "rss_with_data_mib": data_bytes / 2**20,
        "peak_above_data_over_table": (peak_bytes - data_bytes) / table_bytes,
        "peak_excludes_data_making": reset,
        "rmse": float(np.sqrt(np.mean((imputed[missing] - X[missing]) ** 2))),
    }
    budget = getattr(imputer, "budget_", None)
    if budget is not None:
        record["budget"] = {"n_epochs": budget.n_epochs, "batch_size": budget.batch_size,
                            "early_stopping": budget.early_stopping,
                            "epochs_run": imputer.n_epochs_}  # fmt: skip
    return record


def run_in_process(method: str, n_rows: int, args) -> dict:
    command = [sys.executable, __file__, "--worker", method, str(n_rows), "--seed",
               str(args.seed), "--threads", str(args.threads), "--eval-rows",
               str(args.eval_rows), "--vae-params", args.vae_params]  # fmt: skip
    if args.quick:
        command.append("--quick")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"> {args.timeout / 60:g} min"}
    if done.returncode != 0:
        return {"status": "failed", "error": done.stderr.strip().splitlines()[-1:]}
    return {"status": "ok", **json.loads(done.stdout.strip().splitlines()[-1])}


def growth_exponents(results: dict, sizes: list[int]) -> dict:
    exponents = {}
    for method, per_n in results.items():
        for small, large in zip(sizes, sizes[1:], strict=False):
            a, b = per_n.get(str(small), {}), per_n.get(str(large), {})
            if a.get("status") == "ok" and b.get("status") == "ok":
                ratio = np.log(b["fit_seconds"] / a["fit_seconds"]) / np.log(large / small)
                exponents.setdefault(method, {})[f"{small}->{large}"] = float(ratio)
    return exponents


def _transform_against_samples(imputer, X, X_missing, samples, repeats: int) -> list[dict]:
    """Rows per second and RMSE of ``imputer.transform`` for each n_eval_samples."""
    missing = np.isnan(X_missing)
    rows = []
    for n_samples in samples:
        imputer.set_params(n_eval_samples=n_samples)
        start = time.perf_counter()
        for _ in range(repeats):
            imputed = imputer.transform(X_missing)
        seconds = (time.perf_counter() - start) / repeats
        rmse = float(np.sqrt(np.mean((imputed[missing] - X[missing]) ** 2)))
        rows.append({"n_eval_samples": n_samples, "rows_per_second": len(X) / seconds,
                     "rmse": rmse})  # fmt: skip
    return rows


def eval_samples_study(args) -> list[dict]:
    """Rows per second and RMSE of transform against n_eval_samples, one fit on breast cancer."""
    from impute_dgm.datasets import load_table
    from impute_dgm.missingness import ampute

    limit_threads(args.threads)
    X = load_table("breast_cancer")[0].to_numpy(dtype=float)
    X = (X - X.mean(0)) / X.std(0)
    X_missing = ampute(X, 0.5, "mcar", random_state=args.seed)
    imputer = make_imputer("VAEImputer", args.seed, args.quick, json.loads(args.vae_params))
    imputer.fit(X_missing)
    return _transform_against_samples(imputer, X, X_missing, EVAL_SAMPLES, 1 if args.quick else 3)


def synthetic_eval_samples_study(args) -> list[dict]:
    """The same on the synthetic table of part 1 with ``--eval-samples-rows`` rows.

    One fit with the defaults on every row, then ``transform`` of the first ``--eval-rows``
    rows: the table the throughput target is set on, down to the few samples a row that
    20,000 rows/s would allow on 2 cores.
    """
    from impute_dgm.missingness import ampute

    limit_threads(args.threads)
    X = nonlinear_table(args.eval_samples_rows, args.seed)
    X_missing = ampute(X, 0.3, "mcar", random_state=args.seed)
    vae_params = json.loads(args.vae_params)
    imputer = make_imputer("VAEImputer", args.seed, args.quick, vae_params).fit(X_missing)
    rows = slice(0, min(len(X), args.eval_rows))
    return _transform_against_samples(imputer, X[rows], X_missing[rows], SYNTHETIC_EVAL_SAMPLES, 1)


def _print_eval_samples(title: str, eval_rows: list[dict]) -> None:
    print(f"\n{title}\n")
    print_table(
        [{k: f"{v:,.4f}" if k == "rmse" else f"{v:,.0f}" for k, v in r.items()}
         for r in eval_rows],
        [("n_eval_samples", "n_eval_samples"), ("rows_per_second", "rows/s"),
         ("rmse", "RMSE")],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=2, help="threads per process (torch, BLAS, OpenMP)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per fit")
    parser.add_argument("--eval-rows", type=int, default=20_000,
                        help="rows transformed for rows/s and RMSE")  # fmt: skip
    parser.add_argument("--vae-params", default="{}", help="VAEImputer settings as JSON, in "
                        "every part (e.g. one epoch, to measure memory alone)")  # fmt: skip
    parser.add_argument("--skip-eval-samples", action="store_true")
    parser.add_argument("--eval-samples-rows", type=int, default=0,
                        help="also measure transform against n_eval_samples on the synthetic "
                        "table with this many rows (0: not)")  # fmt: skip
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--output", default="scaling.json")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.worker:
        limit_threads(args.threads)
        record = worker(args.worker[0], int(args.worker[1]), args.seed, args.quick,
                        args.eval_rows, json.loads(args.vae_params))  # fmt: skip
        print(json.dumps(record))
        return None
    if args.quick:
        args.sizes = [200, 400]
    results: dict = {method: {} for method in args.methods}
    rows = []
    timed_out: dict[str, int] = {}
    for n_rows in args.sizes:
        for method in args.methods:
            if method in timed_out:
                # A method past the limit at a smaller n would be past it here too.
                record = {
                    "status": f"skipped (> {args.timeout / 60:g} min at {timed_out[method]:,})"
                }
            else:
                record = run_in_process(method, n_rows, args)
                if record["status"].startswith(">"):
                    timed_out[method] = n_rows
            results[method][str(n_rows)] = record
            ok = record["status"] == "ok"
            rows.append({
                "method": method, "n": f"{n_rows:,}",
                "fit": f"{record['fit_seconds']:.1f}" if ok else record["status"],
                "rate": f"{record['transform_rows_per_second']:,.0f}" if ok else "",
                "rss": (f"{record['peak_rss_mib']:,.0f} ({record['peak_rss_over_table']:.1f}x; "
                        f"{record['peak_above_baseline_over_table']:.1f}x above imports)"
                        if ok else ""),
                "rmse": f"{record['rmse']:.4f}" if ok else "",
            })  # fmt: skip
            print(rows[-1], flush=True)
    exponents = growth_exponents(results, args.sizes)
    if rows:
        print("\nSynthetic non-linear table, 30 columns, 30% MCAR\n")
        print_table(rows, [("method", "method"), ("n", "rows"), ("fit", "fit s"),
                           ("rate", "transform rows/s"),
                           ("rss", "peak RSS MiB (x float64 table)"),
                           ("rmse", "RMSE")])  # fmt: skip
        print("\nGrowth exponent of fit time in n:", json.dumps(exponents, indent=1))
    eval_rows = [] if args.skip_eval_samples else eval_samples_study(args)
    if eval_rows:
        _print_eval_samples(
            "VAEImputer.transform on breast cancer (50% MCAR) against n_eval_samples", eval_rows
        )
    synthetic_rows = synthetic_eval_samples_study(args) if args.eval_samples_rows else []
    if synthetic_rows:
        _print_eval_samples(
            f"VAEImputer.transform on the synthetic table ({args.eval_samples_rows:,} rows, "
            "30% MCAR) against n_eval_samples",
            synthetic_rows,
        )
    payload = {"benchmark": "scaling", "quick": args.quick, "environment": environment(),
               "design": {"sizes": args.sizes, "seed": args.seed, "threads": args.threads,
                          "timeout": args.timeout, "missing": "30% MCAR", "columns": 30,
                          "vae_params": json.loads(args.vae_params)},
               "results": results, "growth_exponents": exponents,
               "eval_samples": eval_rows,
               "eval_samples_synthetic": {"rows": args.eval_samples_rows,
                                          "transformed_rows": min(args.eval_samples_rows,
                                                                  args.eval_rows),
                                          "results": synthetic_rows}}  # fmt: skip
    print(f"\nwrote {write_json(args.output, payload, Path(args.results_dir))}")
    return payload


if __name__ == "__main__":
    main()
