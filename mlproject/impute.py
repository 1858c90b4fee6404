"""MLproject entry point ``impute``: apply a registered imputer to a CSV and write the result.

mlflow run mlproject -e impute --env-manager local -P input=data.csv -P output=filled.csv
    [-P n_eval_samples=100 -P eval_dtype=float32]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mlflow
import pandas as pd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="CSV with a header; empty cells missing")
    parser.add_argument("--output", default="imputed.csv")
    parser.add_argument("--model-uri", default="models:/impute-dgm-imputer@champion")
    # A batch job's speed: fewer importance samples, float32 (the model's inference params).
    parser.add_argument("--n-eval-samples", type=float, default=0, help="0: the model's own")
    parser.add_argument(
        "--eval-dtype", default="saved", choices=["saved", "auto", "float64", "float32"]
    )
    args = parser.parse_args(argv)

    params = {}
    if args.n_eval_samples:
        params["n_eval_samples"] = int(args.n_eval_samples)
    if args.eval_dtype != "saved":
        params["eval_dtype"] = args.eval_dtype
    table = pd.read_csv(args.input)
    model = mlflow.pyfunc.load_model(args.model_uri)
    imputed = model.predict(table, params=params or None)
    output = Path(args.output).resolve()
    imputed.to_csv(output, index=False)
    with mlflow.start_run():
        mlflow.log_params({"model_uri": args.model_uri, "input": args.input, **params})
        mlflow.log_metrics(
            {"rows": len(table), "missing_values_filled": int(table.isna().to_numpy().sum())}
        )
        mlflow.log_artifact(str(output))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
