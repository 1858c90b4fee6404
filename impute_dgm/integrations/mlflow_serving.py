"""Run ``mlflow models serve`` on this machine for as long as a ``with`` block lasts.

Used by the tests and the serving benchmark, and handy for trying a model before deploying it::

    with local_model_server("models:/bc-imputer@champion") as url:
        requests.post(f"{url}/invocations", json={"dataframe_split": {...}})
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False


@contextmanager
def serving_process(
    command: list[str],
    port: int,
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    log_path: str | Path | None = None,
    timeout: float = 180.0,
) -> Iterator[subprocess.Popen]:
    """Run the HTTP server ``command`` (listening on 127.0.0.1:``port``) while a block lasts.

    It starts in its own session, with this interpreter's ``bin`` directory first on ``PATH``;
    the block begins once ``/ping`` answers, and the server and its workers are stopped when
    it ends. Its output goes to ``log_path`` (default: a temporary file, removed when the
    block ends). Used by :func:`local_model_server`, the serving benchmark and the CLI's tests.

    Yields
    ------
    subprocess.Popen
        The server process (its pid is its session's id).

    Raises
    ------
    RuntimeError
        If the server exits or does not answer in ``timeout`` seconds (with its output).
    """
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # A log of our own making goes when the block ends; its text is in any error raised here.
    own_log = log_path is None
    if own_log:
        descriptor, name = tempfile.mkstemp(prefix="impute-dgm-serve-", suffix=".log")
        os.close(descriptor)
        log_path = name
    log_path = Path(log_path)
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops the workers
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not _answers_ping(port):
            if server.poll() is not None:
                raise RuntimeError(f"{command[:4]} exited:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{command[:4]} did not answer in {timeout:.0f} s:\n{log_path.read_text()}"
                )
            time.sleep(0.5)
        yield server
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
        except ProcessLookupError:  # the whole group has exited already
            pass
        server.wait(timeout=60)
        if own_log:
            log_path.unlink(missing_ok=True)


@contextmanager
def local_model_server(
    model_uri: str,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    log_path: str | Path | None = None,
    timeout: float = 180.0,
) -> Iterator[str]:
    """Serve ``model_uri`` with ``mlflow models serve --env-manager local`` on 127.0.0.1.

    The server runs in this interpreter's environment (its ``bin`` directory goes first on
    ``PATH``, so ``uvicorn`` is the one installed beside MLflow) and is stopped, with its
    workers, when the block ends.

    Parameters
    ----------
    model_uri : str
        ``models:/<name>@<alias>``, ``runs:/...`` or a local model directory.
    port : int, optional
        Default: a free port.
    env : dict, optional
        Environment of the server (default: this process's), e.g. with ``MLFLOW_TRACKING_URI``.
    cwd : path, optional
        Working directory of the server.
    log_path : path, optional
        Where the server's output goes (default: a temporary file, removed when the block
        ends).
    timeout : float, default=180
        Seconds to wait for ``/ping`` to answer.

    Yields
    ------
    str
        The base URL, e.g. ``http://127.0.0.1:5000``.

    Raises
    ------
    RuntimeError
        If the server exits or does not answer in time (with its output).
    """
    port = port or free_local_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
        "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with serving_process(command, port, env=env, cwd=cwd, log_path=log_path, timeout=timeout):
        yield f"http://127.0.0.1:{port}"
