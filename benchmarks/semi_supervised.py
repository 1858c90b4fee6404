"""Semi-supervised benchmark on scikit-learn's digits: M1, M2 and the usual baselines.

For each seed: a stratified 30% test split; of the remaining rows, 10, 50 or 100 are labelled
(balanced over the 10 classes where possible), the others get ``-1``. Methods:

- M1: ``EmbedThenClassify(VAEEmbedder(categorical), LogisticRegression)``; the embedder does not
  see labels, so it is fitted once per seed and condition and its time is added to every cell;
- M2: ``VAEClassifier`` with the settings below (categorical likelihood), and with its defaults;
- impute-then-spread (30% missing only): ``VAEImputer`` fitted on the training rows once per
  seed (it does not see labels; its time is added to every cell), then label spreading on the
  completed rows;
- pooled: ``SemiSupervisedEnsemble(random_state=seed)``, i.e. impute-then-spread and M2 with
  their defaults, fitted afresh in every cell, probabilities pooled with weights 0.7 / 0.3
  (on the tables its spread member standardises, as impute-then-spread does there);
- ``LabelSpreading`` (knn kernel), ``SelfTrainingClassifier(SVC)``, logistic regression on the
  labelled rows only, and PCA (fitted on all training rows) + logistic regression.

The same grid with 30% of the pixels missing completely at random (train and test): M1 and M2
take the NaNs as they are, the baselines get a ``SimpleImputer`` in front. Then breast cancer
and wine with 10% of the training rows labelled (complete and 30% missing): M2 with its
defaults, impute-then-spread, pooled, and the baselines with a ``StandardScaler`` in front. Accuracy
mean +- sd over seeds and fit seconds; JSON in ``benchmarks/results/semi_supervised.json``.

    python benchmarks/semi_supervised.py [--seeds 5] [--quick]
    python benchmarks/semi_supervised.py --methods NAME --update results/semi_supervised.json \
        --digits-conditions complete --skip-tables --output a.json     # part of a rerun
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    environment,
    fold_methods,
    print_table,
    summarise,
    write_json,
)

from impute_dgm import (  # noqa: E402
    SemiSupervisedEnsemble,
    VAEClassifier,
    VAEEmbedder,
    VAEImputer,
)

LABEL_COUNTS = (10, 50, 100)
# Methods of this project; the others are baselines.
OURS_PREFIXES = ("M1", "M2", "impute-then-spread", "pooled")
TABLES = {"breast cancer": load_breast_cancer, "wine": load_wine}
TABLE_LABEL_SHARE = 0.1
IMPUTE_THEN_SPREAD = "impute-then-spread (VAEImputer + LabelSpreading)"
M1_NAME = "M1 (VAEEmbedder + LogReg)"
M2_TUNED = "M2 (VAEClassifier)"
M2_DEFAULTS = "M2 (VAEClassifier defaults)"
POOLED = "pooled: impute-then-spread x M2 (SemiSupervisedEnsemble)"
BASELINES = ("LabelSpreading (knn)", "SelfTraining(SVC)", "LogReg (labelled only)", "PCA + LogReg")
METHODS = (M1_NAME, M2_TUNED, M2_DEFAULTS, IMPUTE_THEN_SPREAD, POOLED, *BASELINES)
CONDITIONS = ("complete", "30% missing")
# --quick: a smoke run; evaluation (importance samples per row and class) dominates its time.
QUICK = {"n_epochs": 2, "n_eval_samples": 10, "batch_size": 128}
# Settings picked on seed 0 with 50 labels (one probe each; the test split was not used for
# anything else): latent 16 with one hidden layer of 128 beat (256, 256) at latent 8.
M1_EMBEDDER = dict(
    likelihood="categorical",
    latent_dim=16,
    hidden_dims=(128,),
    n_importance=5,
    n_epochs=100,
    batch_size=128,
)
M2 = dict(
    likelihood="categorical",
    latent_dim=16,
    hidden_dims=(128,),
    n_importance=1,
    alpha=1.0,
    n_epochs=100,
    batch_size=128,
)


def balanced_labels(y: np.ndarray, n_labels: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n_labels`` rows, as equal a share of each class as possible."""
    classes = np.unique(y)
    per_class = np.full(len(classes), n_labels // len(classes))
    per_class[rng.permutation(len(classes))[: n_labels % len(classes)]] += 1
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=k, replace=False)
        for c, k in zip(classes, per_class, strict=True)
        if k
    ]
    return np.concatenate(chosen)


def spreading() -> LabelSpreading:
    return LabelSpreading(kernel="knn", n_neighbors=7, max_iter=100)


def baselines(seed: int, missing: bool, scale: bool = False) -> dict:
    """Label spreading is scaled only with ``scale`` (pixels share one scale); the others
    always standardise."""
    front = [SimpleImputer()] if missing else []
    return {
        "LabelSpreading (knn)": make_pipeline(
            *front, *([StandardScaler()] if scale else []), spreading()
        ),
        "SelfTraining(SVC)": make_pipeline(
            *front,
            StandardScaler(),
            SelfTrainingClassifier(SVC(probability=True, gamma="scale", random_state=seed)),
        ),
        "LogReg (labelled only)": make_pipeline(
            *front,
            StandardScaler(),
            LogisticRegression(max_iter=2000),
        ),
    }


def digits_baselines(seed: int, missing: bool) -> dict:
    front = [SimpleImputer()] if missing else []
    return {
        **baselines(seed, missing),
        "PCA + LogReg": make_pipeline(
            *front, StandardScaler(), PCA(20, random_state=seed), LogisticRegression(max_iter=2000)
        ),
    }


def fit_baseline(name, model, X_train, y_partial, X_test, y_test) -> float:
    """Fit one baseline the way it can use the rows; its test accuracy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "LogReg (labelled only)":
            fit_labelled_only(model, X_train, y_partial)
        elif name == "PCA + LogReg":
            fit_pca_logreg(model, X_train, y_partial)
        else:
            model.fit(X_train, y_partial)
        return model.score(X_test, y_test)


def amputed(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """X with 30% of its cells missing completely at random (a column keeps a value)."""
    X = X.copy()
    X[rng.random(X.shape) < 0.3] = np.nan
    empty = np.isnan(X).all(axis=0)
    X[0, empty] = 0.0
    return X


def impute_then_spread(X_train, X_test, seed, quick):
    """VAEImputer fitted on the training rows (no labels): completed rows and its seconds."""
    start = time.perf_counter()
    imputer = VAEImputer(random_state=seed, **(QUICK if quick else {})).fit(X_train)
    completed = imputer.transform(X_train), imputer.transform(X_test)
    return completed, time.perf_counter() - start


def pooled(seed: int, quick: bool, scale: bool = False) -> SemiSupervisedEnsemble:
    """SemiSupervisedEnsemble with its defaults (digits); on tables (``scale``) the spread
    member standardises the completed rows, as impute-then-spread does there."""
    if not quick and not scale:
        return SemiSupervisedEnsemble(random_state=seed)
    small = QUICK if quick else {}
    spread = make_pipeline(
        VAEImputer(random_state=seed, **small), *([StandardScaler()] if scale else []), spreading()
    )
    return SemiSupervisedEnsemble(
        [("spread", spread), ("m2", VAEClassifier(random_state=seed, **small))],
        weights=[0.7, 0.3],
    )


def fit_labelled_only(model, X, y_partial):
    """Baselines that cannot use unlabelled rows are fitted on the labelled ones."""
    labelled = y_partial != -1
    return model.fit(X[labelled], y_partial[labelled])


def fit_pca_logreg(model, X, y_partial):
    """PCA learns from every row, the classifier from the labelled rows."""
    *front, pca, logreg = [step for _, step in model.steps]
    transformed = X
    for step in front:
        transformed = step.fit_transform(transformed)
    codes = pca.fit_transform(transformed)
    labelled = y_partial != -1
    logreg.fit(codes[labelled], y_partial[labelled])
    return model


def run_tables(seeds: int, quick: bool, methods=METHODS) -> dict:
    """Breast cancer and wine, 10% of the training rows labelled, complete and 30% missing."""
    records: dict[tuple[str, str, str], list[float]] = {}
    for table, loader in TABLES.items():
        X_full, y_full = loader(return_X_y=True)
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            X_train, X_test, y_train, y_test = train_test_split(
                X_full, y_full, test_size=0.3, stratify=y_full, random_state=seed
            )
            n_labels = max(len(np.unique(y_train)), round(TABLE_LABEL_SHARE * len(y_train)))
            y_partial = np.full_like(y_train, -1)
            labelled = balanced_labels(y_train, n_labels, rng)
            y_partial[labelled] = y_train[labelled]
            for condition in ("complete", "30% missing"):
                missing = condition != "complete"
                if missing:
                    X_train, X_test = amputed(X_train, rng), amputed(X_test, rng)
                accuracies = {}
                if M2_DEFAULTS in methods:
                    m2 = VAEClassifier(random_state=seed, **(QUICK if quick else {}))
                    accuracies[M2_DEFAULTS] = m2.fit(X_train, y_partial).score(X_test, y_test)
                if POOLED in methods:
                    accuracies[POOLED] = (
                        pooled(seed, quick, scale=True)
                        .fit(X_train, y_partial)
                        .score(X_test, y_test)
                    )
                if missing and IMPUTE_THEN_SPREAD in methods:
                    (train, test), _ = impute_then_spread(X_train, X_test, seed, quick)
                    scaler = StandardScaler().fit(train)
                    accuracies[IMPUTE_THEN_SPREAD] = (
                        spreading()
                        .fit(scaler.transform(train), y_partial)
                        .score(scaler.transform(test), y_test)
                    )
                for name, model in baselines(seed, missing, scale=True).items():
                    if name in methods:
                        accuracies[name] = fit_baseline(
                            name, model, X_train, y_partial, X_test, y_test
                        )
                for name, accuracy in accuracies.items():
                    records.setdefault((table, condition, name), []).append(float(accuracy))
                print(
                    f"{table} seed {seed} {condition} ({n_labels} labels): "
                    + ", ".join(f"{name.split(' ')[0]} {a:.3f}" for name, a in accuracies.items()),
                    flush=True,
                )
    results: dict = {}
    for (table, condition, name), values in records.items():
        results.setdefault(table, {}).setdefault(condition, {})[name] = summarise(values)
    for table, conditions in results.items():
        print(f"\n{table}, {round(100 * TABLE_LABEL_SHARE)}% of the training rows labelled")
        print_table(
            [
                {
                    "method": name,
                    **{
                        condition: (
                            f"{conditions[condition][name]['mean']:.3f} +- "
                            f"{conditions[condition][name]['sd']:.3f}"
                            if name in conditions[condition]
                            else "-"
                        )
                        for condition in conditions
                    },
                }
                for name in {**conditions.get("complete", {}), **conditions["30% missing"]}
            ],
            [("method", "method"), *((c, c) for c in conditions)],
        )
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")
    parser.add_argument("--output", default="semi_supervised.json")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--update", default=None, metavar="JSON",
                        help="rerun only --methods and replace their results in this file's "
                             "(same splits, labels and masks), writing --output")  # fmt: skip
    parser.add_argument(
        "--digits-conditions",
        nargs="*",
        default=list(CONDITIONS),
        choices=list(CONDITIONS),
        help="digits conditions to fit (the others' splits are drawn all the "
        "same); with --update, the others keep their earlier results",
    )
    parser.add_argument(
        "--skip-tables",
        action="store_true",
        help="leave breast cancer and wine out (with --update: keep theirs)",
    )
    args = parser.parse_args(argv)
    selected = set(args.methods)
    m1_settings = {**M1_EMBEDDER, **(QUICK if args.quick else {})}
    m2_settings = {**M2, **(QUICK if args.quick else {})}
    label_counts = (10, 50) if args.quick else LABEL_COUNTS
    quick_settings = QUICK if args.quick else {}

    data = load_digits()
    X_full, y_full = data.data, data.target
    if args.quick:  # a smoke run: a third of the digits, every class in it
        X_full, y_full = X_full[:600], y_full[:600]
    records: dict[tuple[str, str, int], dict[str, list]] = {}

    def record(condition, method, n_labels, accuracy, seconds):
        entry = records.setdefault((condition, method, n_labels), {"accuracy": [], "seconds": []})
        entry["accuracy"].append(float(accuracy))
        entry["seconds"].append(float(seconds))

    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        X_train, X_test, y_train, y_test = train_test_split(
            X_full, y_full, test_size=0.3, stratify=y_full, random_state=seed
        )
        for condition in ("complete", "30% missing"):
            missing = condition != "complete"
            if missing:
                X_train, X_test = amputed(X_train, rng), amputed(X_test, rng)
                if IMPUTE_THEN_SPREAD in selected and condition in args.digits_conditions:
                    (completed_train, completed_test), impute_seconds = impute_then_spread(
                        X_train, X_test, seed, args.quick
                    )
            if M1_NAME in selected and condition in args.digits_conditions:
                start = time.perf_counter()
                embedder = VAEEmbedder(random_state=seed, **m1_settings).fit(X_train)
                embed_seconds = time.perf_counter() - start
                codes_train, codes_test = embedder.transform(X_train), embedder.transform(X_test)
            for n_labels in label_counts:
                y_partial = np.full_like(y_train, -1)
                labelled = balanced_labels(y_train, n_labels, rng)
                y_partial[labelled] = y_train[labelled]

                if condition not in args.digits_conditions:
                    continue  # the labels are drawn all the same: the splits do not change

                if M1_NAME in selected:
                    start = time.perf_counter()
                    logreg = LogisticRegression(max_iter=2000).fit(
                        codes_train[labelled], y_train[labelled]
                    )
                    seconds = embed_seconds + time.perf_counter() - start
                    record(condition, M1_NAME, n_labels,
                           logreg.score(codes_test, y_test), seconds)  # fmt: skip

                if M2_TUNED in selected:
                    start = time.perf_counter()
                    m2 = VAEClassifier(random_state=seed, **m2_settings).fit(X_train, y_partial)
                    seconds = time.perf_counter() - start
                    record(condition, M2_TUNED, n_labels, m2.score(X_test, y_test), seconds)

                if M2_DEFAULTS in selected:
                    start = time.perf_counter()
                    m2_defaults = VAEClassifier(random_state=seed, **quick_settings).fit(
                        X_train, y_partial
                    )
                    seconds = time.perf_counter() - start
                    accuracy = m2_defaults.score(X_test, y_test)
                    record(condition, M2_DEFAULTS, n_labels, accuracy, seconds)

                if POOLED in selected:
                    start = time.perf_counter()
                    ensemble = pooled(seed, args.quick).fit(X_train, y_partial)
                    seconds = time.perf_counter() - start
                    record(condition, POOLED, n_labels, ensemble.score(X_test, y_test), seconds)

                if missing and IMPUTE_THEN_SPREAD in selected:
                    start = time.perf_counter()
                    accuracy = (
                        spreading().fit(completed_train, y_partial).score(completed_test, y_test)
                    )
                    seconds = impute_seconds + time.perf_counter() - start
                    record(condition, IMPUTE_THEN_SPREAD, n_labels, accuracy, seconds)

                for name, model in digits_baselines(seed, missing).items():
                    if name not in selected:
                        continue
                    start = time.perf_counter()
                    accuracy = fit_baseline(name, model, X_train, y_partial, X_test, y_test)
                    record(condition, name, n_labels, accuracy, time.perf_counter() - start)
                print(
                    f"seed {seed} {condition:12s} {n_labels:3d} labels: "
                    + ", ".join(
                        f"{method.split(' ')[0]} {entry['accuracy'][-1]:.3f}"
                        for (c, method, n), entry in records.items()
                        if c == condition and n == n_labels
                    ),
                    flush=True,
                )

    results = {}
    for (condition, method, n_labels), entry in records.items():
        cell = results.setdefault(condition, {}).setdefault(method, {})
        cell[str(n_labels)] = {k: summarise(v) for k, v in entry.items()}
    earlier = json.loads(Path(args.update).read_text()) if args.update else None
    if earlier is not None:
        results = {
            condition: (
                fold_methods(methods, results.get(condition, {}), selected)
                if condition in args.digits_conditions
                else methods  # not rerun: kept as it was
            )
            for condition, methods in earlier["results"].items()
        }

    for condition, methods in results.items():
        print(f"\ndigits, {condition}, test accuracy (30% held out), {args.seeds} seeds")
        rows = []
        for method, cells in methods.items():
            row = {"method": method}
            for n in label_counts:
                acc = cells[str(n)]["accuracy"]
                row[str(n)] = f"{acc['mean']:.3f} +- {acc['sd']:.3f}"
                row[f"s{n}"] = f"{cells[str(n)]['seconds']['mean']:.1f}"
            rows.append(row)
        columns = [("method", "method")]
        columns += [(str(n), f"{n} labels") for n in label_counts]
        columns += [(f"s{n}", f"fit s ({n})") for n in label_counts]
        print_table(rows, columns)

    margins = {}
    for condition, methods in results.items():
        for n in label_counts:
            accuracy = {m: methods[m][str(n)]["accuracy"]["mean"] for m in methods}
            ours = [a for m, a in accuracy.items() if m.startswith(OURS_PREFIXES)]
            others = [a for m, a in accuracy.items() if not m.startswith(OURS_PREFIXES)]
            if ours and others:  # a run of some methods only may lack one side
                margins.setdefault(condition, {})[str(n)] = max(ours) - max(others)
    print("\nbest of this project's methods minus best baseline (accuracy points):")
    for condition, by_n in margins.items():
        print(f"  {condition}: " + ", ".join(f"{n} labels {100 * v:+.1f}" for n, v in by_n.items()))

    tables = {} if args.skip_tables else run_tables(args.seeds, args.quick, selected)
    settings = {"m1_embedder": m1_settings, "m2": m2_settings, "seeds": args.seeds}
    if earlier is not None:
        tables = {
            table: {
                c: m if args.skip_tables else fold_methods(m, tables[table].get(c, {}), selected)
                for c, m in by.items()
            }
            for table, by in earlier["tables"].items()
        }
        settings = {**earlier["settings"], "updated_methods": sorted(selected),
                    "updated_environment": environment()}  # fmt: skip
    payload = {
        "settings": settings,
        "results": results,
        "margin_over_best_baseline": margins,
        "tables": tables,
        "environment": environment(),
    }
    path = write_json(args.output, payload, Path(args.results_dir))
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
