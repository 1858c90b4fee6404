"""MLproject entry point ``train``: fit an estimator, log it with its run, register it.

mlflow run mlproject -e train --env-manager local -P data=breast_cancer -P n_epochs=100
"""

from __future__ import annotations

import argparse

import mlflow
import numpy as np

from impute_dgm import FlowDensityEstimator, VAEEmbedder, VAEImputer
from impute_dgm.datasets import load_table
from impute_dgm.integrations.mlflow import log_model, register_model, track_fit
from impute_dgm.missingness import ampute

ESTIMATORS = {"imputer": VAEImputer, "embedder": VAEEmbedder, "flow": FlowDensityEstimator}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breast_cancer", help="bundled name or CSV path")
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="imputer")
    parser.add_argument("--missing-rate", type=float, default=0.0, help="MCAR rate to apply")
    parser.add_argument("--latent-dim", type=float, default=10)
    parser.add_argument("--n-epochs", type=float, default=300)
    parser.add_argument("--random-state", type=float, default=0)
    parser.add_argument("--model-name", default="impute-dgm-imputer")
    parser.add_argument("--alias", default="champion")
    args = parser.parse_args(argv)

    X, _ = load_table(args.data)
    seed = int(args.random_state)
    if args.missing_rate > 0:
        X = X.mask(np.isnan(ampute(X.to_numpy(), args.missing_rate, "mcar", seed)))
    parameters = dict(n_epochs=int(args.n_epochs), random_state=seed)
    if args.estimator != "flow":
        parameters["latent_dim"] = int(args.latent_dim)
    estimator = ESTIMATORS[args.estimator](**parameters)
    with mlflow.start_run() as run:
        mlflow.log_params({"data": args.data, "missing_rate": args.missing_rate})
        track_fit(estimator, X)  # a nested run with the per-epoch losses and figures
        info = log_model(estimator, args.estimator, input_example=X.iloc[:5])
        version = register_model(info.model_uri, args.model_name, alias=args.alias or None)
        print(
            f"run {run.info.run_id}: registered {args.model_name} version {version.version}"
            f" as @{args.alias}"
        )


if __name__ == "__main__":
    main()
