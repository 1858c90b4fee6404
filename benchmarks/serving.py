"""Serving latency: a VAEImputer behind ``mlflow models serve``, timed over real HTTP.

Fits a VAEImputer on breast cancer (30% MCAR), saves it as an MLflow pyfunc model, starts
``mlflow models serve --env-manager local`` on a free local port and sends ``--requests``
sequential ``POST /invocations`` requests of 1 row and as many of 1000 rows (dataframe_split
JSON, with nulls), from one client over one keep-alive connection. Prints p50/p95/mean
latency and writes ``benchmarks/results/serving.json``.

The served model uses ``n_eval_samples=100`` importance samples per row (the estimator's
default is 1000; ``--n-eval-samples`` changes it): imputation cost grows linearly with it.

    python benchmarks/serving.py [--requests 1000] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, print_table, write_json  # noqa: E402

from impute_dgm import VAEImputer  # noqa: E402
from impute_dgm.integrations.mlflow import save_model  # noqa: E402
from impute_dgm.integrations.mlflow_serving import local_model_server  # noqa: E402
from impute_dgm.missingness import ampute  # noqa: E402


def request_body(frame) -> bytes:
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in frame.to_numpy()]
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": rows}}).encode()


def time_requests(port: int, bodies: list[bytes]) -> np.ndarray:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Content-Type": "application/json"}
    seconds = []
    for body in bodies:
        start = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        seconds.append(time.perf_counter() - start)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:500]!r}")
    connection.close()
    return np.array(seconds)


def summarise_latency(seconds: np.ndarray) -> dict:
    ms = 1000 * seconds
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "n_requests": int(len(ms)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per batch size")
    parser.add_argument("--n-eval-samples", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--output", default="serving.json")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    n_requests = 10 if args.quick else args.requests
    sizes = (1, 1000)

    data = load_breast_cancer(as_frame=True).data
    X = data.mask(np.isnan(ampute(data.to_numpy(), 0.3, "mcar", random_state=0)))
    imputer = VAEImputer(
        n_epochs=2 if args.quick else 300, n_eval_samples=args.n_eval_samples, random_state=0
    ).fit(X)
    rng = np.random.default_rng(0)
    bodies = {
        size: [
            request_body(X.iloc[rng.integers(0, len(X), size)]) for _ in range(min(n_requests, 50))
        ]
        for size in sizes
    }

    results = {"settings": {"requests_per_size": n_requests, **vars(args)}, "latency": {}}
    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(folder) / "model"
        save_model(imputer, model_path, input_example=X.iloc[:3])
        start = time.perf_counter()
        with local_model_server(str(model_path), log_path=Path(folder) / "serve.log") as url:
            results["startup_seconds"] = time.perf_counter() - start
            port = int(url.rsplit(":", 1)[1])
            for size in sizes:
                pool = bodies[size]
                time_requests(port, pool[:3])  # warm-up, not counted
                chosen = [pool[i % len(pool)] for i in range(n_requests)]
                results["latency"][f"{size}_rows"] = summarise_latency(time_requests(port, chosen))
                print(f"{size} rows: {results['latency'][f'{size}_rows']}", flush=True)

    rows = [
        {
            "size": name.replace("_", " "),
            "p50": f"{r['p50_ms']:.1f}",
            "p95": f"{r['p95_ms']:.1f}",
            "mean": f"{r['mean_ms']:.1f}",
            "n": r["n_requests"],
        }
        for name, r in results["latency"].items()
    ]
    print(
        f"\nmlflow models serve, VAEImputer (breast cancer, K={args.n_eval_samples}), "
        f"server start {results['startup_seconds']:.1f} s"
    )
    print_table(
        rows,
        [
            ("size", "request"),
            ("p50", "p50 ms"),
            ("p95", "p95 ms"),
            ("mean", "mean ms"),
            ("n", "requests"),
        ],
    )
    results["environment"] = environment()
    path = write_json(args.output, results, Path(args.results_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
