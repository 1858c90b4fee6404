"""The impute-dgm command line, run through its entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

ENTRY_POINT = Path(sys.executable).parent / "impute-dgm"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [str(ENTRY_POINT)] if ENTRY_POINT.exists() else [sys.executable, "-m", "impute_dgm"]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data = load_breast_cancer(as_frame=True).frame.iloc[:150, :6]
    holey = data.mask(np.random.default_rng(0).random(data.shape) < 0.2)
    holey.to_csv(folder / "data.csv", index=False)  # missing cells become blank fields
    assert ",," in (folder / "data.csv").read_text()
    cli("fit", str(folder / "data.csv"), "-o", str(folder / "model"), "--epochs", "5",
        "--hidden", "16", "--seed", "0", "--proposal-epochs", "2",
        "--encoder-gradient", "dreg", "--quiet")  # fmt: skip
    return folder, holey


def test_fit_passes_its_settings_to_the_saved_imputer(workspace):
    from impute_dgm.persistence import load_estimator

    folder, _ = workspace
    imputer = load_estimator(folder / "model")
    assert imputer.get_params()["proposal_epochs"] == 2
    assert imputer.get_params()["encoder_gradient"] == "dreg"
    assert imputer.get_params()["hidden_dims"] == (16,)
    assert imputer.n_epochs_ == 5
    assert len(imputer.proposal_history_.train_loss) == 2


def test_fit_then_impute_a_csv_with_blanks(workspace):
    folder, holey = workspace
    assert (folder / "model" / "manifest.json").exists()
    done = cli("impute", str(folder / "data.csv"), "-m", str(folder / "model"),
               "-o", str(folder / "filled.csv"))  # fmt: skip
    assert "imputed" in done.stdout
    filled = pd.read_csv(folder / "filled.csv")
    assert list(filled.columns) == list(holey.columns) and len(filled) == len(holey)
    assert not filled.isna().any().any()
    observed = holey.notna().to_numpy()
    np.testing.assert_allclose(filled.to_numpy()[observed], holey.to_numpy()[observed])


def test_score_prints_one_log_likelihood_per_row(workspace):
    folder, holey = workspace
    done = cli("score", str(folder / "data.csv"), "-m", str(folder / "model"))
    scores = pd.read_csv(pd.io.common.StringIO(done.stdout))
    assert list(scores.columns) == ["log_likelihood"] and len(scores) == len(holey)
    assert np.isfinite(scores["log_likelihood"]).all()


def test_evaluation_options_reach_the_model(workspace):
    folder, holey = workspace
    model = str(folder / "model")

    def scores(*options: str) -> np.ndarray:
        done = cli("score", str(folder / "data.csv"), "-m", model, *options)
        return pd.read_csv(pd.io.common.StringIO(done.stdout))["log_likelihood"].to_numpy()

    exact, single, one_draw = scores(), scores("--float32"), scores("--samples", "1")
    assert not np.array_equal(single, exact)  # float32 did run, and agrees to its rounding
    np.testing.assert_allclose(single, exact, rtol=1e-4, atol=1e-3)
    # One draw is the ELBO, below the 500-sample bound the saved model uses by default.
    assert one_draw.mean() < exact.mean()
    cli("impute", str(folder / "data.csv"), "-m", model, "-o", str(folder / "fast.csv"),
        "--samples", "20", "--float32")  # fmt: skip
    filled = pd.read_csv(folder / "fast.csv")
    observed = holey.notna().to_numpy()
    assert np.isfinite(filled.to_numpy()).all()
    np.testing.assert_allclose(filled.to_numpy()[observed], holey.to_numpy()[observed])


def test_parquet_in_and_out(workspace):
    pytest.importorskip("pyarrow")
    folder, holey = workspace
    holey.to_parquet(folder / "data.parquet")
    cli("impute", str(folder / "data.parquet"), "-m", str(folder / "model"),
        "-o", str(folder / "filled.parquet"))  # fmt: skip
    assert not pd.read_parquet(folder / "filled.parquet").isna().any().any()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_file", "no such file"),
        ("text", "mean radius"),
        ("columns", "feature names"),
        ("no_model", "no such model directory"),
        ("suffix", "expected a .csv or .parquet"),
        ("samples", "--samples 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(workspace, case, expected):
    folder, holey = workspace
    model = str(folder / "model")
    if case == "text":
        holey.assign(**{"mean radius": "big"}).to_csv(folder / "text.csv", index=False)
        args = ["impute", str(folder / "text.csv"), "-m", model, "-o", str(folder / "o.csv")]
    elif case == "columns":
        holey.rename(columns={"mean radius": "radius"}).to_csv(folder / "renamed.csv", index=False)
        args = ["impute", str(folder / "renamed.csv"), "-m", model, "-o", str(folder / "o.csv")]
    elif case == "no_model":
        args = ["impute", str(folder / "data.csv"), "-m", str(folder / "nope"), "-o", "o.csv"]
    elif case == "samples":
        args = ["score", str(folder / "data.csv"), "-m", model, "--samples", "0"]
    elif case == "suffix":
        args = ["impute", str(folder / "data.csv"), "-m", model, "-o", str(folder / "o.txt")]
    else:
        args = ["fit", str(folder / "missing.csv"), "-o", str(folder / "m2")]
    done = cli(*args, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


@pytest.mark.parametrize("command", ["fit", "impute", "score", "serve", "demo"])
def test_help_everywhere(command):
    done = cli(command, "--help")
    assert "usage: impute-dgm" in done.stdout


def test_serve_answers_a_request(workspace):
    pytest.importorskip("mlflow")
    from impute_dgm.integrations.mlflow_serving import free_local_port, serving_process

    folder, holey = workspace
    port = free_local_port()
    command = [str(ENTRY_POINT)] if ENTRY_POINT.exists() else [sys.executable, "-m", "impute_dgm"]
    serve = [*command, "serve", "-m", str(folder / "model"), "--port", str(port)]
    with serving_process(serve, port, log_path=folder / "serve.log"):
        rows = holey.iloc[:5]
        body = {
            "dataframe_split": {
                "columns": list(rows.columns),
                "data": [
                    [None if pd.isna(v) else float(v) for v in row] for row in rows.to_numpy()
                ],
            }
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        served = pd.DataFrame(answer["predictions"])
        assert served.shape == rows.shape and not served.isna().any().any()


def test_help_and_path_checks_answer_without_importing_torch(tmp_path):
    """The package loads its estimators (and torch, seconds) on first use, not on import."""
    probe = (
        "import sys\n"
        "import impute_dgm\n"
        "from impute_dgm.cli import main\n"
        "assert 'torch' not in sys.modules, 'import impute_dgm imported torch'\n"
        "code = main(['impute', 'data.csv', '-m', 'model', '-o', 'filled.txt'])\n"
        "assert code == 2 and 'torch' not in sys.modules\n"
        "assert 'VAEImputer' in dir(impute_dgm)\n"
        "impute_dgm.VAEImputer\n"
        "assert 'torch' in sys.modules\n"
        "assert callable(impute_dgm.persistence.load_estimator)  # sub-packages as attributes\n"
        "assert not hasattr(impute_dgm, 'no_such_thing')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "expected a .csv or .parquet output path" in done.stderr


def test_evaluation_options_refuse_a_model_without_them():
    from sklearn.preprocessing import StandardScaler

    from impute_dgm.cli import CommandError, with_settings

    with pytest.raises(CommandError, match="StandardScaler has no eval_dtype, n_eval_samples"):
        with_settings(StandardScaler(), {"n_eval_samples": 5, "eval_dtype": "float32"})


def test_fit_options_offer_the_estimators_choices():
    """The parser names the choices itself (importing the estimator would import torch before
    ``--help``); they must stay the estimator's own."""
    import argparse

    from impute_dgm.cli import build_parser
    from impute_dgm.estimators.imputer import VAEImputer

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    fit_actions = {a.dest: a for a in commands.choices["fit"]._actions}
    for parameter in ("missingness", "encoder_gradient"):
        (options,) = VAEImputer._parameter_constraints[parameter]
        assert set(fit_actions[parameter].choices) == options.options, parameter
        assert fit_actions[parameter].default == VAEImputer().get_params()[parameter]
