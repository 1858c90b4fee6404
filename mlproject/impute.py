"""MLproject entry point ``impute``: apply a registered imputer to a CSV and write the result.

mlflow run mlproject -e impute --env-manager local -P input=data.csv -P output=filled.csv
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
    args = parser.parse_args(argv)

    table = pd.read_csv(args.input)
    model = mlflow.pyfunc.load_model(args.model_uri)
    imputed = model.predict(table)
    output = Path(args.output).resolve()
    imputed.to_csv(output, index=False)
    with mlflow.start_run():
        mlflow.log_params({"model_uri": args.model_uri, "input": args.input})
        mlflow.log_metrics(
            {"rows": len(table), "missing_values_filled": int(table.isna().to_numpy().sum())}
        )
        mlflow.log_artifact(str(output))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
