"""The ``impute-dgm`` command line: fit, impute, score, serve, demo.

    impute-dgm fit data.csv -o model/              # a VAEImputer, saved with save_estimator
    impute-dgm impute data.csv -m model/ -o filled.csv  # --samples 100 --float32: faster
    impute-dgm score data.csv -m model/ -o scores.csv
    impute-dgm serve -m model/ --port 5000         # mlflow models serve (needs [mlflow])
    impute-dgm demo

Tables are CSV or Parquet (by their suffix); blank cells are missing values. Bad input ends
with exit code 2 and one line on stderr that names the problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class CommandError(Exception):
    """A problem to report in one line (exit code 2)."""


def read_table(path: str) -> pd.DataFrame:
    source = Path(path)
    if source.suffix.lower() not in TABLE_SUFFIXES:
        raise CommandError(f"{path}: expected a .csv or .parquet file")
    if not source.exists():
        raise CommandError(f"{path}: no such file")
    try:
        if source.suffix.lower() == ".csv":
            return pd.read_csv(source)  # empty fields read as missing
        return pd.read_parquet(source)
    except (ValueError, OSError, ImportError) as error:
        raise CommandError(f"{path}: cannot be read as a table ({error})") from None


def check_output_path(path: str) -> Path:
    target = Path(path)
    if target.suffix.lower() not in TABLE_SUFFIXES:
        raise CommandError(f"{path}: expected a .csv or .parquet output path")
    return target


def write_table(frame: pd.DataFrame, path: str) -> None:
    target = check_output_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".csv":
        frame.to_csv(target, index=False)
    else:
        frame.to_parquet(target, index=False)


def load_model(path: str):
    if not Path(path).is_dir():
        raise CommandError(f"{path}: no such model directory (made by `impute-dgm fit`)")
    from impute_dgm.persistence import load_estimator  # imports torch: after the checks

    return load_estimator(path)


def evaluation_settings(args) -> dict:
    """The model settings ``--samples`` / ``--float32`` ask for (a batch job may trade a little
    accuracy for speed), checked before anything loads."""
    settings = {}
    if args.samples is not None:
        if args.samples < 1:
            raise CommandError(f"--samples {args.samples}: give a positive number of draws")
        settings["n_eval_samples"] = args.samples
    if args.float32:
        settings["eval_dtype"] = "float32"
    return settings


def with_settings(model, settings: dict):
    """The loaded model with ``settings`` applied, to it or to the steps of a pipeline that
    have them (its files are left as they were)."""
    from impute_dgm.evaluation_settings import evaluation_parameter_keys, set_evaluation_parameters

    keys = evaluation_parameter_keys(model)
    unknown = sorted(set(settings) - set(keys))
    if unknown:
        raise CommandError(f"{type(model).__name__} has no {', '.join(unknown)} to set")
    set_evaluation_parameters(
        model, {key: settings[name] for name in settings for key in keys[name]}
    )
    return model


def _fit(args) -> None:
    table = read_table(args.data)
    from impute_dgm import VAEImputer
    from impute_dgm.persistence import save_estimator

    params = {
        "latent_dim": args.latent_dim,
        "missingness": args.missingness,
        "n_epochs": args.epochs if args.epochs is not None else "auto",
        "proposal_epochs": args.proposal_epochs,
        "encoder_gradient": args.encoder_gradient,
        "random_state": args.seed,
        "verbose": 0 if args.quiet else 1,
    }
    if args.hidden:
        params["hidden_dims"] = tuple(args.hidden)
    imputer = VAEImputer(**params).set_output(transform="pandas").fit(table)
    save_estimator(imputer, args.output)
    print(f"fitted VAEImputer on {len(table)} rows x {table.shape[1]} columns -> {args.output}")


def _impute(args) -> None:
    # Bad paths are reported before a model loads and a table is imputed for nothing.
    check_output_path(args.output)
    settings = evaluation_settings(args)
    table = read_table(args.data)
    model = with_settings(load_model(args.model), settings)
    write_table(model.transform(table), args.output)
    print(f"imputed {int(table.isna().to_numpy().sum())} missing cells -> {args.output}")


def _score(args) -> None:
    if args.output:
        check_output_path(args.output)
    settings = evaluation_settings(args)
    table = read_table(args.data)
    model = with_settings(load_model(args.model), settings)
    scores = pd.DataFrame({"log_likelihood": model.score_samples(table)})
    if args.output:
        write_table(scores, args.output)
        print(f"scored {len(table)} rows -> {args.output}")
    else:
        scores.to_csv(sys.stdout, index=False)


def _serve(args) -> None:
    import signal
    import subprocess

    try:
        from impute_dgm.integrations.mlflow_models import save_model
    except ImportError:  # pragma: no cover - the [mlflow] extra is optional
        raise CommandError("serve needs MLflow: pip install 'impute-dgm[mlflow]'") from None
    if args.max_rows < 1:
        raise CommandError(f"--max-rows {args.max_rows}: give a positive number of rows")
    model = load_model(args.model)
    # The MLflow model lives as long as the server: the model directory is left as it was.
    with tempfile.TemporaryDirectory(prefix="impute-dgm-serve-") as staging:
        served = Path(staging) / "mlflow-model"
        save_model(model, served, max_rows=args.max_rows)
        command = [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", str(served),
            "--env-manager", "local", "--host", args.host, "--port", str(args.port),
        ]  # fmt: skip
        print(f"serving {args.model} at http://{args.host}:{args.port}/invocations", flush=True)
        # A terminated server still removes its staging directory (SIGTERM -> SystemExit).
        signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
        code = subprocess.call(command)
    raise SystemExit(code)


def _demo(args) -> None:
    from impute_dgm.demo import run_demo

    run_demo(args.missing_rate, args.seed, verbose=0 if args.quiet else 1)


def add_evaluation_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--samples",
        type=int,
        help="importance samples a row (default: the model's own, 500 from `fit`)",
    )
    command.add_argument(
        "--float32", action="store_true",
        help="evaluate in float32: about twice as fast, results within float32 rounding",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impute-dgm", description="Deep generative imputation from the shell."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit a VAEImputer to a table and save it")
    fit.add_argument("data", help="CSV or Parquet table; blank cells are missing")
    fit.add_argument("-o", "--output", required=True, help="model directory to write")
    fit.add_argument("--latent-dim", type=int, default=10)
    fit.add_argument("--hidden", type=int, nargs="+", help="hidden widths (default 128 128)")
    fit.add_argument("--epochs", type=int, help="passes over the rows (default: auto)")
    fit.add_argument("--missingness", choices=["mar", "self_masking"], default="mar")
    fit.add_argument(
        "--proposal-epochs", type=int, default=0,
        help="epochs refining the encoder as a sampling proposal after the fit (default 0)",
    )  # fmt: skip
    fit.add_argument(
        "--encoder-gradient", choices=["auto", "standard", "dreg"], default="auto",
        help="the encoder's gradient estimator in training (default auto: dreg for the "
        "self-masking model, standard otherwise)",
    )  # fmt: skip
    fit.add_argument("--seed", type=int, default=None, help="random_state")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(run=_fit)

    impute = commands.add_parser("impute", help="fill the missing cells of a table")
    impute.add_argument("data", help="CSV or Parquet table with blank cells")
    impute.add_argument("-m", "--model", required=True, help="directory from `fit`")
    impute.add_argument("-o", "--output", required=True, help="CSV or Parquet to write")
    add_evaluation_options(impute)
    impute.set_defaults(run=_impute)

    score = commands.add_parser("score", help="log-likelihood of each row's observed part")
    score.add_argument("data")
    score.add_argument("-m", "--model", required=True)
    score.add_argument("-o", "--output", help="CSV or Parquet (default: print CSV)")
    add_evaluation_options(score)
    score.set_defaults(run=_score)

    serve = commands.add_parser("serve", help="serve a model over HTTP with MLflow")
    serve.add_argument("-m", "--model", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument(
        "--max-rows", type=int, default=100_000, help="most rows per request (default 100000)"
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="impute breast cancer data with 50%% removed")
    demo.add_argument("--missing-rate", type=float, default=0.5)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ValueError, TypeError) as error:
        # One line that names the problem, the exit code of a usage error.
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"impute-dgm {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0
