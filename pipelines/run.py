"""Cross-validate imputation pipelines on breast cancer with values missing at random.

Each candidate (VAEImputer, VAEEmbedder, SimpleImputer and IterativeImputer pipelines with a
logistic regression) is cross-validated and logged to MLflow as a nested run under one parent
run, with its parameters and the mean and standard deviation of its fold accuracies.

    python pipelines/run.py [--missing-rate 0.3] [--folds 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.factories import (  # noqa: E402
    make_embed_classify_pipeline,
    make_impute_classify_pipeline,
)


def candidates(quick: bool, seed: int) -> dict:
    epochs = {"n_epochs": 2, "n_eval_samples": 20} if quick else {"n_epochs": 100}
    return {
        "SimpleImputer + logistic": make_pipeline(
            SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)
        ),
        "IterativeImputer + logistic": make_pipeline(
            IterativeImputer(random_state=seed),
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        ),
        "VAEImputer + logistic": make_impute_classify_pipeline(random_state=seed, **epochs),
        "VAEEmbedder + logistic": make_embed_classify_pipeline(
            latent_dim=8, random_state=seed, **epochs
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing-rate", type=float, default=0.3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--experiment", default="impute-dgm pipelines")
    args = parser.parse_args(argv)

    import mlflow

    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(args.seed)
    missing = rng.random(X.shape) < args.missing_rate
    missing[np.arange(len(X)), rng.integers(0, X.shape[1], len(X))] = False
    X = np.where(missing, np.nan, X)
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)

    mlflow.set_experiment(args.experiment)
    results = {}
    with mlflow.start_run(run_name=f"breast cancer, {args.missing_rate:.0%} MCAR") as parent:
        mlflow.log_params(
            {"missing_rate": args.missing_rate, "folds": args.folds, "seed": args.seed}
        )
        for name, pipeline in candidates(args.quick, args.seed).items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                scores = cross_validate(pipeline, X, y, cv=folds)["test_score"]
            with mlflow.start_run(run_name=name, nested=True):
                mlflow.log_params(
                    {
                        k: repr(v)[:500]
                        for k, v in pipeline.get_params().items()
                        if "__" in k and not k.endswith("callbacks")
                    }
                )
                mlflow.log_metrics(
                    {
                        "accuracy_mean": float(scores.mean()),
                        "accuracy_sd": float(scores.std(ddof=1)),
                    }
                )
            results[name] = (float(scores.mean()), float(scores.std(ddof=1)))
            print(
                f"{name:30s} accuracy {scores.mean():.3f} +- {scores.std(ddof=1):.3f}", flush=True
            )
    print(f"\nlogged to MLflow run {parent.info.run_id} ({mlflow.get_tracking_uri()})")
    return {"parent_run_id": parent.info.run_id, "results": results}


if __name__ == "__main__":
    main()
