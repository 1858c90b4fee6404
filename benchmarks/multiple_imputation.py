"""Coverage study: does a pooled interval from multiple imputation cover the true coefficient?

Synthetic data with a known regression coefficient: three correlated covariates (pairwise
correlation 0.5), y = X beta + N(0, 1), beta = (1, -0.5, 0.25); 30% of the covariates' cells
removed at random given the other columns (MAR, ``impute_dgm.missingness.ampute``); y is
complete and joins every imputation model. Per replication, the 95% interval for beta_1 from:
complete-case analysis; single imputation (``VAEImputer.transform``, analysed as if observed);
VAEImputer with m draws of ``sample_imputations`` pooled by Rubin's rules;
``IterativeImputer(sample_posterior=True)`` with m fits pooled; miceforest with m data sets
pooled (when installed). Reports coverage, mean width and the bias of the estimate; prints a
table and writes ``benchmarks/results/multiple_imputation.json``.

    python benchmarks/multiple_imputation.py [--replications 200] [--m 20] [--quick]
    # VAEImputer variants only: longer training, more SIR proposals, bootstrap fits
    python benchmarks/multiple_imputation.py --vae-only --replications 40 \
        --vae-params '{"n_epochs": 1000}' --n-proposals 1000 --bootstrap 4 --output v.json
    # pieces run apart (other replications, other methods) into one file
    python benchmarks/multiple_imputation.py --merge a.json b.json --output combined.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, print_table, write_json  # noqa: E402

from impute_dgm import BootstrapImputer, VAEImputer  # noqa: E402
from impute_dgm.missingness import ampute  # noqa: E402
from impute_dgm.pooling import pool  # noqa: E402

BETA = np.array([1.0, -0.5, 0.25])
COEFFICIENT = 0  # beta_1, the one whose interval is studied
LEVEL = 0.95
#: Replications on other data sets (``--other-data``) are numbered from this id on.
OTHER_DATA_ID = 10_000


def simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    covariance = np.full((3, 3), 0.5) + 0.5 * np.eye(3)
    # Cholesky, not numpy's default SVD: this covariance has a repeated eigenvalue, so its
    # singular vectors (and with them the draws of a seed) depend on the machine's LAPACK.
    X = rng.multivariate_normal(np.zeros(3), covariance, size=n, method="cholesky")
    y = X @ BETA + rng.normal(size=n)
    return X, y


def ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Coefficients (intercept first), their standard errors and residual degrees of freedom."""
    design = np.column_stack([np.ones(len(X)), X])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(X) - design.shape[1]
    residual_variance = np.sum((y - design @ beta) ** 2) / dof
    covariance = residual_variance * np.linalg.inv(design.T @ design)
    return beta, np.sqrt(np.diag(covariance)), dof


def interval_from(beta, errors, dof) -> tuple[float, float, float]:
    j = COEFFICIENT + 1
    half = stats.t.ppf(0.5 + LEVEL / 2, dof) * errors[j]
    return float(beta[j]), float(beta[j] - half), float(beta[j] + half)


def pooled_interval(completed_tables, y, n_covariates) -> tuple[float, float, float]:
    fits = [ols(table[:, :n_covariates], y) for table in completed_tables]
    pooled = pool([f[0] for f in fits], [f[1] for f in fits], complete_data_dof=fits[0][2])
    low, high = pooled.confidence_interval(LEVEL)
    j = COEFFICIENT + 1
    return float(pooled.estimate[j]), float(low[j]), float(high[j])


def vae_draws(
    data, seed, m, vae_params, n_proposals, bootstrap, refit_epochs=None
) -> list[np.ndarray]:
    """m completed tables from VAEImputer: one fit, or ``bootstrap`` fits on resampled rows
    (m / bootstrap draws each), which carries the uncertainty of the fit into the draws;
    ``refit_epochs`` continues one full fit on each resample instead of refitting."""
    if not bootstrap:
        imputer = VAEImputer(random_state=seed, **vae_params).fit(data)
        return imputer.sample_imputations(
            data, n_imputations=m, random_state=seed, n_proposals=n_proposals
        )
    imputer = BootstrapImputer(
        VAEImputer(**vae_params),
        n_bootstrap=bootstrap,
        refit_epochs=refit_epochs,
        random_state=seed,
    ).fit(data)
    return imputer.sample_imputations(
        data, n_imputations=m, random_state=seed, n_proposals=n_proposals
    )


#: The intervals besides complete-case analysis's, by their --methods names.
METHODS = {
    "single": "VAEImputer single (transform)",
    "pooled": "VAEImputer m pooled (one fit, or --bootstrap fits)",
    "iterative": "IterativeImputer(sample_posterior=True), m fits pooled",
    "miceforest": "miceforest, m data sets pooled",
}


def pooled_label(m: int, bootstrap: int = 0, refit_epochs: int | None = None, n_epochs=None) -> str:
    """The results' name of VAEImputer's pooled interval, saying which variant it is."""
    label = f"VAEImputer m={m} pooled"
    if bootstrap and refit_epochs:
        fit = f"{n_epochs}-epoch fit" if isinstance(n_epochs, int) else "one fit"
        return f"{label} ({fit} continued {refit_epochs} epochs on each of {bootstrap} resamples)"
    if bootstrap:
        return f"{label} ({bootstrap} bootstrap fits)"
    return label


def run_methods(data, y, seed, m, vae_params, args) -> dict[str, tuple[float, float, float]]:
    n_covariates = data.shape[1] - 1
    out: dict[str, tuple[float, float, float]] = {}
    complete = ~np.isnan(data).any(axis=1)
    out["complete-case"] = interval_from(*ols(data[complete, :n_covariates], y[complete]))

    if "single" in args.methods:
        imputer = VAEImputer(random_state=seed, **vae_params).fit(data)
        single = imputer.transform(data)
        out["VAEImputer single (transform)"] = interval_from(*ols(single[:, :n_covariates], y))
    if "pooled" in args.methods:
        draws = vae_draws(
            data, seed, m, vae_params, args.n_proposals, args.bootstrap, args.refit_epochs
        )
        label = pooled_label(m, args.bootstrap, args.refit_epochs, vae_params.get("n_epochs"))
        out[label] = pooled_interval(draws, y, n_covariates)
    if "iterative" in args.methods:
        out[f"IterativeImputer(sample_posterior) m={m} pooled"] = iterative_interval(
            data, y, seed, m, n_covariates
        )
    if "miceforest" in args.methods:
        interval = miceforest_interval(data, y, seed, m, n_covariates)
        if interval is not None:
            out[f"miceforest m={m} pooled"] = interval
    return out


def iterative_interval(data, y, seed, m, n_covariates) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tables = [
            IterativeImputer(
                sample_posterior=True, max_iter=10, random_state=seed * 1000 + k
            ).fit_transform(data)
            for k in range(m)
        ]
    return pooled_interval(tables, y, n_covariates)


def miceforest_interval(data, y, seed, m, n_covariates) -> tuple[float, float, float] | None:
    """miceforest's m data sets pooled; None when miceforest is not installed."""
    try:
        import miceforest
    except ImportError:
        return None
    import pandas as pd

    frame = pd.DataFrame(data, columns=[f"c{j}" for j in range(data.shape[1])])
    with warnings.catch_warnings():
        # miceforest 6 fills its record column by column (pandas' PerformanceWarning).
        warnings.simplefilter("ignore")
        kernel = miceforest.ImputationKernel(frame, num_datasets=m, random_state=seed)
        kernel.mice(5)
        tables = [kernel.complete_data(k).to_numpy() for k in range(m)]
    return pooled_interval(tables, y, n_covariates)


def summarise_records(records: dict) -> dict:
    results = {}
    for name, record in records.items():
        covered = np.array(record["covered"])
        results[name] = {
            "replications": len(covered),
            "coverage": float(covered.mean()),
            # Binomial standard error of the coverage over the replications.
            "coverage_se": float(np.sqrt(covered.mean() * (1 - covered.mean()) / len(covered))),
            "mean_width": float(np.mean(record["width"])),
            "bias": float(np.mean(record["estimate"]) - BETA[COEFFICIENT]),
            # Against the mean half-width / 1.96: is the interval as wide as the spread?
            "sd_of_estimate": (
                float(np.std(record["estimate"], ddof=1)) if len(covered) > 1 else None
            ),
        }
    return results


def print_results(results: dict, n: int, rate: float) -> None:
    rows = [
        {
            "method": name,
            "replications": str(r["replications"]),
            "coverage": f"{r['coverage']:.3f} +- {r['coverage_se']:.3f}",
            "width": f"{r['mean_width']:.3f}",
            "sd": "" if r["sd_of_estimate"] is None else f"{r['sd_of_estimate']:.3f}",
            "bias": f"{r['bias']:+.3f}",
        }
        for name, r in results.items()
    ]
    print(
        f"\nbeta_1 = {BETA[COEFFICIENT]}, n = {n}, {rate:.0%} MAR in the covariates, "
        f"nominal {LEVEL:.0%}"
    )
    print_table(
        rows,
        [
            ("method", "method"),
            ("replications", "replications"),
            ("coverage", "coverage"),
            ("width", "mean width"),
            ("sd", "sd of estimate"),
            ("bias", "bias"),
        ],
    )


def merge(
    paths: list[str],
    output: str,
    results_dir: Path,
    taken: list[tuple[str, str]] = (),
    other_data: list[str] = (),
) -> dict:
    """One results file from pieces run apart (replications split over processes, methods
    run alone) or merged before: every method's records by replication seed. A method's
    record for one seed comes from one piece, except complete-case's, which every piece
    repeats and which must agree (the pieces saw the same data). ``taken`` pairs (file,
    method) add one method of a file (with its complete-case records), leaving the file's
    other methods out.

    ``other_data`` files hold replications of the same design on other data sets (drawn by
    another machine's linear algebra, or by the SVD before the draws moved to Cholesky): they
    join as further replications, numbered seed + :data:`OTHER_DATA_ID`, with their own
    complete-case records."""
    by_method: dict[str, dict[int, tuple[float, float, float]]] = {}
    pieces = []
    selections = [(path, None, 0) for path in paths]
    selections += [(path, method, 0) for path, method in taken]
    selections += [(path, None, OTHER_DATA_ID) for path in other_data]
    for path, only, id_offset in selections:
        piece = json.loads(Path(path).read_text())
        if only is not None and only not in piece["replications"]:
            raise ValueError(f"{path} has no method {only!r}")
        design = piece["design"]
        first = design.get("first_replication", 0)
        pieces.append(
            {
                "file": Path(path).name,
                "methods": "all" if only is None else ["complete-case", only],
                "design": design,
                "vae_params": piece.get("vae_params"),
                "seconds": piece.get("seconds"),
                "environment": piece.get("environment"),
                "other_data": bool(id_offset),
            }
        )
        for name, record in piece["replications"].items():
            if only is not None and name not in ("complete-case", only):
                continue
            if name == f"VAEImputer m={design['m']} pooled" and design.get("bootstrap"):
                # Pieces written before the variant was in the name.
                n_epochs = (piece.get("vae_params") or {}).get("n_epochs")
                name = pooled_label(
                    design["m"], design["bootstrap"], design.get("refit_epochs"), n_epochs
                )
            seeds = by_method.setdefault(name, {})
            columns = zip(record["estimate"], record["covered"], record["width"], strict=True)
            # A merged file names its seeds; a run's piece counts them from its first.
            record_seeds = record.get("seed") or range(first, first + len(record["estimate"]))
            for seed, entry in zip(record_seeds, columns, strict=True):
                seed += id_offset if seed < OTHER_DATA_ID else 0
                if seed in seeds and name != "complete-case":
                    raise ValueError(f"{name}: replication {seed} is in two pieces")
                if seed in seeds and not np.allclose(seeds[seed], entry):
                    raise ValueError(f"complete-case differs at replication {seed}: other data")
                seeds[seed] = entry
    records = {
        name: {
            "seed": sorted(seeds),
            "estimate": [seeds[s][0] for s in sorted(seeds)],
            "covered": [seeds[s][1] for s in sorted(seeds)],
            "width": [seeds[s][2] for s in sorted(seeds)],
        }
        for name, seeds in by_method.items()
    }
    results = summarise_records(records)
    design = pieces[0]["design"]
    print_results(results, design["n"], design["rate"])
    payload = {
        "benchmark": "multiple_imputation",
        "design": {k: design[k] for k in ("beta", "coefficient", "n", "mechanism", "rate", "m")},
        "merged_from": pieces,
        "results": results,
        "replications": records,
    }
    path = write_json(output, payload, results_dir)
    print(f"\nwrote {path}")
    return payload


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--m", type=int, default=20)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--vae-params", default="{}", help="VAEImputer settings as JSON")
    parser.add_argument("--n-proposals", type=int, default=100, help="SIR proposals per draw")
    parser.add_argument(
        "--bootstrap", type=int, default=0, help="VAEImputer fits on bootstrap resamples"
    )
    parser.add_argument(
        "--refit-epochs",
        type=int,
        default=None,
        help="with --bootstrap: continue one full fit on each resample for this many epochs",
    )
    parser.add_argument("--first", type=int, default=0, help="first replication (its seed)")
    parser.add_argument(
        "--methods",
        nargs="*",
        default=list(METHODS),
        choices=list(METHODS),
        help="which intervals besides complete-case's (default: all)",
    )
    parser.add_argument("--vae-only", action="store_true", help="same as --methods pooled")
    parser.add_argument("--output", default="multiple_imputation.json")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument(
        "--merge",
        nargs="*",
        metavar="JSON",
        help="combine result files run apart into --output (by replication seed); runs nothing",
    )
    parser.add_argument(
        "--take",
        nargs=2,
        action="append",
        default=[],
        metavar=("JSON", "METHOD"),
        help="with --merge: one method of a file (repeatable)",
    )
    parser.add_argument(
        "--other-data",
        nargs="*",
        default=[],
        metavar="JSON",
        help="with --merge: files whose replications drew other data sets (another machine, "
        f"or the SVD draws of earlier runs); they join numbered seed + {OTHER_DATA_ID}",
    )
    args = parser.parse_args(argv)
    if args.merge or args.take or args.other_data:
        return merge(
            args.merge or [], args.output, Path(args.results_dir), args.take, args.other_data
        )
    if args.vae_only:
        args.methods = ["pooled"]
    vae_params = json.loads(args.vae_params)
    if args.quick:
        vae_params = {"n_epochs": 10, "hidden_dims": (16,), **vae_params}

    records: dict[str, dict[str, list[float]]] = {}
    start = time.perf_counter()

    def payload_so_far(done: int) -> dict:
        return {
            "benchmark": "multiple_imputation",
            "design": {
                "beta": BETA.tolist(),
                "coefficient": "beta_1",
                "n": args.n,
                "mechanism": "MAR",
                "rate": args.rate,
                "replications": done,
                "m": args.m,
                "level": LEVEL,
                "first_replication": args.first,
                "covariates_drawn_by": "cholesky",
                "n_proposals": args.n_proposals,
                "bootstrap": args.bootstrap,
                "refit_epochs": args.refit_epochs,
                "methods": args.methods,
            },
            # False while replications are still to come: the file is written after each one,
            # so a run stopped early keeps what it did (--merge it with a run from --first on).
            "finished": done == args.replications,
            "quick": args.quick,
            "vae_params": VAEImputer(**vae_params).get_params(),
            "seconds": time.perf_counter() - start,
            "environment": environment(),
            "results": summarise_records(records),
            # Per replication (seed = first_replication + index): compare variants on the
            # same data.
            "replications": records,
        }

    for done, replication in enumerate(range(args.first, args.first + args.replications), 1):
        X, y = simulate(args.n, replication)
        X_missing = ampute(X, args.rate, "mar", random_state=replication)
        data = np.column_stack([X_missing, y])
        for name, (estimate, low, high) in run_methods(
            data, y, replication, args.m, vae_params, args
        ).items():
            record = records.setdefault(name, {"estimate": [], "covered": [], "width": []})
            record["estimate"].append(estimate)
            record["covered"].append(float(low <= BETA[COEFFICIENT] <= high))
            record["width"].append(high - low)
        path = write_json(args.output, payload_so_far(done), Path(args.results_dir))
        print(f"replication {replication} done ({done}/{args.replications})", flush=True)

    payload = payload_so_far(args.replications)
    print_results(payload["results"], args.n, args.rate)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
