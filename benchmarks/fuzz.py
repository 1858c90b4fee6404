"""Fuzzing every estimator: thousands of generated inputs each, outcomes counted.

Each estimator (tiny settings, one epoch) is fitted on inputs drawn by
:func:`impute_dgm.fuzzing.inputs` -- tables of 1 to 60 columns, NaN rows and columns,
infinities, huge and tiny magnitudes, constant columns, text / boolean / nullable / category
columns, duplicate or non-string column names, sparse matrices, lists -- and asked for its main
outputs. Every case is judged by :func:`impute_dgm.fuzzing.run_case`: a correct result, a clear
``ValueError`` / ``TypeError`` (counted by reason), or a failure (an exception from inside
torch / NumPy / pandas / SciPy or of another type, an observed value changed, NaN / infinity or a
wrong shape, names or dtypes in the output). Prints the table and writes
``benchmarks/results/fuzz.json``, with the failing cases when there are any.

    python benchmarks/fuzz.py [--examples 2000] [--estimators ...] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, print_table, write_json  # noqa: E402

from impute_dgm.fuzzing import ESTIMATORS, inputs, run_case  # noqa: E402

FAILURES = ("unexpected exception", "changed observed value", "bad output")


def fuzz(estimator: str, n_examples: int, seed: int) -> dict:
    """Run ``n_examples`` generated cases through ``estimator``; count what they ended in."""
    outcomes, reasons, containers, failures = Counter(), Counter(), Counter(), []

    @hypothesis_seed(seed)
    @settings(
        max_examples=n_examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # counting, not shrinking: every case runs once
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs())
    def one_case(case):
        outcome = run_case(estimator, case)
        outcomes[outcome.kind] += 1
        containers[case.container] += 1
        if outcome.kind == "refused":
            reasons[outcome.detail] += 1
        elif not outcome.acceptable and len(failures) < 20:
            failures.append({"outcome": outcome.kind, "detail": outcome.detail, "case": repr(case)})

    start = time.perf_counter()
    one_case()
    return {
        "examples": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "refusals_by_reason": dict(reasons.most_common()),
        "containers": dict(containers),
        "failures": failures,
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="generated inputs per estimator")
    parser.add_argument("--estimators", nargs="*", default=list(ESTIMATORS), choices=ESTIMATORS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 examples, for smoke tests")
    parser.add_argument("--output", default="fuzz.json")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    n_examples = 20 if args.quick else args.examples

    results = {}
    for estimator in args.estimators:
        results[estimator] = fuzz(estimator, n_examples, args.seed)
        print(f"{estimator}: {results[estimator]['outcomes']}", flush=True)

    rows = [
        {
            "estimator": name,
            "examples": r["examples"],
            "result": r["outcomes"].get("result", 0),
            "refused": r["outcomes"].get("refused", 0),
            **{kind: r["outcomes"].get(kind, 0) for kind in FAILURES},
            "seconds": f"{r['seconds']:.0f}",
        }
        for name, r in results.items()
    ]
    print()
    print_table(
        rows,
        [
            ("estimator", "estimator"),
            ("examples", "examples"),
            ("result", "correct result"),
            ("refused", "clear error"),
            ("unexpected exception", "unexpected exception"),
            ("changed observed value", "observed value changed"),
            ("bad output", "bad output"),
            ("seconds", "s"),
        ],
    )
    payload = {
        "settings": {"examples_per_estimator": n_examples, **vars(args)},
        "results": results,
        "failures": sum(r["outcomes"].get(kind, 0) for r in results.values() for kind in FAILURES),
        # The inputs drawn from a seed depend on the hypothesis version.
        "environment": {**environment(), "hypothesis": hypothesis.__version__},
    }
    path = write_json(args.output, payload, Path(args.results_dir))
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
