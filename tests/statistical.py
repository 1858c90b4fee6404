"""Seeds that can be shifted, and checks on trained models' figures that record themselves.

A test whose assertion rests on a trained model's figure (an RMSE, an accuracy, a likelihood)
passes on another machine only if its threshold sits outside the figure's spread over seeds,
thread counts and dependency versions, with room. Two things make that spread measurable:

- :func:`seed` turns a test's literal seed into ``seed + IMPUTE_DGM_SEED_SHIFT`` (0 by default),
  so the whole statistical suite can be rerun under other seeds (``make test-seeds``);
- :func:`check` asserts ``value <op> threshold`` and, when ``IMPUTE_DGM_STATISTICS_LOG`` names
  a file, appends the test, the figure, the threshold, the seed shift and the torch thread
  count to it as one JSON line. ``benchmarks/test_spread.py`` runs the statistical tests under
  several shifts and thread counts and tabulates the worst value of each figure against its
  threshold.

Tests that use them carry ``@pytest.mark.statistical``.
"""

from __future__ import annotations

import json
import operator
import os

SEED_SHIFT = int(os.environ.get("IMPUTE_DGM_SEED_SHIFT", "0"))

_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def seed(base: int) -> int:
    """The seed a statistical test uses in place of the literal ``base``."""
    return base + SEED_SHIFT


def _current_test() -> str:
    # pytest sets this to "path::name (phase)" while a test (or fixture) runs.
    return os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]


def check(name: str, value: float, op: str, threshold: float) -> None:
    """Assert ``value <op> threshold`` for the figure ``name``, recording it when asked.

    Parameters
    ----------
    name : str
        What the figure is, e.g. "RMSE / mean-imputation RMSE"; unique within the test.
    value : float
        The measured figure.
    op : {"<", "<=", ">", ">="}
        How it must compare with the threshold.
    threshold : float
        The bound, set from the figure's spread over seeds (see ``make test-seeds``).
    """
    value = float(value)
    passed = bool(_OPERATORS[op](value, threshold))
    log = os.environ.get("IMPUTE_DGM_STATISTICS_LOG")
    if log:
        import torch

        record = {
            "test": _current_test(),
            "name": name,
            "value": value,
            "op": op,
            "threshold": float(threshold),
            "passed": passed,
            "seed_shift": SEED_SHIFT,
            "threads": torch.get_num_threads(),
        }
        # One short line per write: appends from parallel workers do not interleave.
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
    assert passed, f"{name}: {value:.6g} is not {op} {threshold:.6g}"
