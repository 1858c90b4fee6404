"""Serving: a VAEImputer behind ``mlflow models serve``, timed over real HTTP; and a load test.

Latency mode (default): fits a VAEImputer on breast cancer (30% MCAR), saves it as an MLflow
pyfunc model, starts ``mlflow models serve --env-manager local`` on a free local port and sends
``--requests`` sequential ``POST /invocations`` requests of 1 row and as many of 1000 rows
(dataframe_split JSON, with nulls), from one client over one keep-alive connection. Prints
p50/p95/mean latency and writes ``benchmarks/results/serving.json``.

Load mode (``--load``): the same model served by ``mlflow models serve`` and by the CLI's
``impute-dgm serve`` (``--servers``), each under ``--clients`` concurrent clients sending
``--load-requests`` requests in all (loopback only, at most ``--max-seconds`` per server). Valid
requests hold 1 to 20 rows; one in ``--malformed-every`` is malformed, in turn: broken JSON, a
missing column, text in a number, a batch larger than the model's ``max_rows``. Every valid
answer is checked against the imputer's own ``transform`` of the same rows, every malformed one
must be a 4xx with a reason; the server's memory (all its processes) is sampled through the
run. Writes ``benchmarks/results/serving_load.json``.

The served model uses ``n_eval_samples=100`` importance samples per row (the estimator's
default is 500; ``--n-eval-samples`` changes it): imputation cost grows linearly with it.

    python benchmarks/serving.py [--requests 1000] [--quick]
    python benchmarks/serving.py --load [--clients 8] [--load-requests 10000] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, print_table, write_json  # noqa: E402

from impute_dgm import VAEImputer  # noqa: E402
from impute_dgm.integrations.mlflow import save_model  # noqa: E402
from impute_dgm.integrations.mlflow_serving import (  # noqa: E402
    free_local_port,
    local_model_server,
    serving_process,
)
from impute_dgm.missingness import ampute  # noqa: E402
from impute_dgm.persistence import save_estimator  # noqa: E402


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
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "n_requests": int(len(ms)),
    }


# --- load mode ---------------------------------------------------------------------------

# Each malformed kind, and words its 4xx must contain (one of them): the reason, not just a
# status. MLflow's schema check or the model's own check may answer a missing column first.
MALFORMED_REASONS = {
    "broken JSON": ("valid JSON",),
    "missing column": ("missing inputs", "lacks the columns"),
    "text in a number": ("could not convert string to float",),
    "too many rows": ("serves at most",),
}
MALFORMED_KINDS = tuple(MALFORMED_REASONS)


def malformed_body(kind: str, frame, too_many_rows) -> bytes:
    """A request that must be refused with a 4xx naming why."""
    if kind == "broken JSON":
        return request_body(frame)[:-7]
    if kind == "missing column":
        return request_body(frame.drop(columns=frame.columns[0]))
    if kind == "text in a number":
        payload = json.loads(request_body(frame))
        payload["dataframe_split"]["data"][0][1] = "abc"
        return json.dumps(payload).encode()
    return too_many_rows


def server_rss_mib(session: int) -> float:
    """Resident memory of every process in the server's session (its workers included)."""
    total_kib = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[3]) != session:  # field 6: session id
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError, IndexError):  # the process ended meanwhile
            continue
    return total_kib / 1024


def answer_matches(payload: bytes, expected: np.ndarray, columns: list[str]) -> bool:
    try:
        served = pd.DataFrame(json.loads(payload)["predictions"])[columns].to_numpy(dtype=float)
    except (ValueError, KeyError, TypeError):
        return False
    return served.shape == expected.shape and np.allclose(served, expected, rtol=1e-4, atol=1e-6)


def load_run(port: int, pid: int, plan: list, args) -> dict:
    """Send ``plan`` (kind, body, expected) from ``args.clients`` threads; check every answer."""
    work: queue.Queue = queue.Queue()
    for item in plan:
        work.put(item)
    records, lock = [], threading.Lock()
    deadline = time.monotonic() + args.max_seconds
    headers = {"Content-Type": "application/json"}

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < deadline:
            try:
                kind, body, expected, columns = work.get_nowait()
            except queue.Empty:
                break
            start = time.perf_counter()
            try:
                connection.request("POST", "/invocations", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status, payload = None, repr(error).encode()
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            seconds = time.perf_counter() - start
            if kind == "valid":
                correct = status == 200 and answer_matches(payload, expected, columns)
            else:
                named = any(words.encode() in payload for words in MALFORMED_REASONS[kind])
                correct = status is not None and 400 <= status < 500 and named
            with lock:
                records.append((kind, status, seconds, correct, payload[-400:]))
        connection.close()

    memory, stop = [], threading.Event()

    def sample_memory():
        start = time.perf_counter()
        while not stop.is_set():
            memory.append((time.perf_counter() - start, server_rss_mib(pid)))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()

    valid = [r for r in records if r[0] == "valid"]
    statuses: dict[str, int] = {}
    for _, status, *_ in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    malformed = {}
    for kind in MALFORMED_KINDS:
        mine = [r for r in records if r[0] == kind]
        malformed[kind] = {
            "sent": len(mine),
            "refused_4xx_with_reason": sum(r[3] for r in mine),
            "reason_looked_for": MALFORMED_REASONS[kind],
            "statuses": sorted({str(r[1]) for r in mine}),
            "example_reason": mine[0][4].decode(errors="replace") if mine else None,
        }
    rss = np.array([m for _, m in memory])
    quarter = max(1, len(rss) // 4)
    return {
        "requests_planned": len(plan),
        "requests_sent": len(records),
        "wall_seconds": wall,
        "requests_per_second": len(records) / wall,
        "valid": {
            "sent": len(valid),
            "answered_correctly": sum(r[3] for r in valid),
            "latency": summarise_latency(np.array([r[2] for r in valid])),
        },
        "malformed": malformed,
        "statuses": statuses,
        "server_errors_5xx": sum(1 for r in records if r[1] is not None and r[1] >= 500),
        "connection_errors": sum(1 for r in records if r[1] is None),
        "memory_mib": {
            "first_quarter_mean": float(rss[:quarter].mean()),
            "last_quarter_mean": float(rss[-quarter:].mean()),
            "peak": float(rss.max()),
            "samples": len(rss),
        },
    }


def load_main(args) -> dict:
    n_requests = 200 if args.quick else args.load_requests
    data = load_breast_cancer(as_frame=True).data
    X = data.mask(np.isnan(ampute(data.to_numpy(), 0.3, "mcar", random_state=0)))
    imputer = VAEImputer(
        n_epochs=2 if args.quick else 300, n_eval_samples=args.n_eval_samples, random_state=0
    ).fit(X)
    columns = list(X.columns)
    rng = np.random.default_rng(0)
    pool = []
    for _ in range(200):
        frame = X.iloc[rng.integers(0, len(X), rng.integers(1, 21))]
        pool.append((request_body(frame), imputer.transform(frame), frame))
    too_many_rows = request_body(X.iloc[rng.integers(0, len(X), args.max_rows + 1)])
    plan = []
    for i in range(n_requests):
        body, expected, frame = pool[i % len(pool)]
        if (i + 1) % args.malformed_every == 0:
            kind = MALFORMED_KINDS[(i // args.malformed_every) % len(MALFORMED_KINDS)]
            plan.append((kind, malformed_body(kind, frame, too_many_rows), None, columns))
        else:
            plan.append(("valid", body, expected, columns))

    results = {"settings": {**vars(args), "requests": n_requests}, "servers": {}}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        save_model(imputer, folder / "mlflow-model", max_rows=args.max_rows)
        save_estimator(imputer, folder / "model")
        for server in args.servers:
            port = free_local_port()
            if server == "mlflow models serve":
                command = [
                    sys.executable, "-m", "mlflow", "models", "serve", "-m",
                    str(folder / "mlflow-model"), "--env-manager", "local",
                    "--host", "127.0.0.1", "--port", str(port),
                ]  # fmt: skip
            else:
                command = [
                    sys.executable, "-m", "impute_dgm", "serve", "-m", str(folder / "model"),
                    "--port", str(port), "--max-rows", str(args.max_rows),
                ]  # fmt: skip
            log = folder / f"{server.split()[0]}.log"
            with serving_process(command, port, log_path=log) as server_process:
                pid = server_process.pid
                warm_up = [item for item in plan if item[0] == "valid"][:20]
                load_run(port, pid, warm_up, argparse.Namespace(**{**vars(args), "clients": 1}))
                outcome = load_run(port, pid, plan, args)
            results["servers"][server] = outcome
            print(f"{server}: {json.dumps(outcome['valid'])}", flush=True)

    rows = []
    for server, r in results["servers"].items():
        refused = sum(m["refused_4xx_with_reason"] for m in r["malformed"].values())
        sent_bad = sum(m["sent"] for m in r["malformed"].values())
        latency = r["valid"]["latency"]
        rows.append(
            {
                "server": server,
                "sent": r["requests_sent"],
                "valid": f"{r['valid']['answered_correctly']} / {r['valid']['sent']}",
                "malformed": f"{refused} / {sent_bad}",
                "5xx": r["server_errors_5xx"],
                "p50": f"{latency['p50_ms']:.1f}",
                "p95": f"{latency['p95_ms']:.1f}",
                "p99": f"{latency['p99_ms']:.1f}",
                "rps": f"{r['requests_per_second']:.0f}",
                "memory": (
                    f"{r['memory_mib']['first_quarter_mean']:.0f} -> "
                    f"{r['memory_mib']['last_quarter_mean']:.0f}"
                ),
            }
        )
    print(f"\n{args.clients} clients, one in {args.malformed_every} requests malformed")
    print_table(
        rows,
        [
            ("server", "server"),
            ("sent", "requests"),
            ("valid", "valid answered correctly"),
            ("malformed", "malformed refused 4xx"),
            ("5xx", "5xx"),
            ("p50", "p50 ms"),
            ("p95", "p95 ms"),
            ("p99", "p99 ms"),
            ("rps", "req/s"),
            ("memory", "server MiB (first -> last quarter)"),
        ],
    )
    results["environment"] = environment()
    path = write_json(args.load_output, results, Path(args.results_dir))
    print(f"wrote {path}")
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per batch size")
    parser.add_argument("--n-eval-samples", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--output", default="serving.json")
    parser.add_argument("--results-dir", default=str(RESULTS))
    load = parser.add_argument_group("load mode")
    load.add_argument("--load", action="store_true", help="concurrent clients, malformed input")
    load.add_argument("--clients", type=int, default=8)
    load.add_argument("--load-requests", type=int, default=10_000, help="requests per server")
    load.add_argument("--malformed-every", type=int, default=10)
    load.add_argument("--max-rows", type=int, default=1000, help="the served model's max_rows")
    load.add_argument("--max-seconds", type=float, default=600, help="per server")
    load.add_argument(
        "--servers", nargs="*", default=["mlflow models serve", "impute-dgm serve"],
        choices=["mlflow models serve", "impute-dgm serve"],
    )  # fmt: skip
    load.add_argument("--load-output", default="serving_load.json")
    args = parser.parse_args(argv)
    if args.load:
        return load_main(args)
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
