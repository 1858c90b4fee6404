"""The benchmark scripts run end to end (tiny settings) and write what they promise."""

import json
import math
import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *argv])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    runpy.run_path(str(BENCHMARKS / name), run_name="__main__")


def test_imputation_benchmark_writes_its_table(tmp_path, monkeypatch, capsys):
    run_script(
        "imputation.py", ["--quick", "--seeds", "1", "--results-dir", str(tmp_path)], monkeypatch
    )
    payload = json.loads((tmp_path / "imputation.json").read_text())
    assert set(payload["results"]) == {
        "mean",
        "KNNImputer",
        "IterativeImputer (BayesianRidge)",
        "IterativeImputer (ExtraTrees)",
        "VAEImputer",
        "VAEImputer (early stopping)",
    }
    for record in payload["results"].values():
        assert {"rmse", "mae", "seconds"} <= set(record)
    assert "| VAEImputer" in capsys.readouterr().out


def test_flow_benchmark_writes_its_table_and_figure(tmp_path, monkeypatch):
    pytest.importorskip("zuko", reason="the flows benchmark compares against zuko ([bench])")
    pytest.importorskip("nflows", reason="the flows benchmark compares against nflows ([bench])")
    pytest.importorskip("matplotlib", reason="the flows benchmark draws a PNG")
    run_script("flows.py", ["--quick", "--seeds", "1", "--results-dir", str(tmp_path)], monkeypatch)
    payload = json.loads((tmp_path / "flows.json").read_text())
    assert set(payload["toy"]) == {"two gaussians", "chequerboard", "two moons"}
    for per_method in payload["toy"].values():
        assert {"FlowDensityEstimator (defaults)", "KDE (bandwidth by CV)"} <= set(per_method)
        for record in per_method.values():
            assert math.isfinite(record["held_out_log_likelihood"])
    assert (tmp_path / "flows_toy_quick.png").stat().st_size > 1000
    assert "spline_train_rows_per_s_over_zuko_nsf" in payload["digits"]["ratios"]

    # --update reruns the named toy methods only and keeps everything else of the earlier file.
    rerun = "KDE (bandwidth by CV)"
    run_script(
        "flows.py",
        ["--quick", "--results-dir", str(tmp_path), "--update", str(tmp_path / "flows.json"),
         "--toy-methods", rerun, "--output", "updated.json"],
        monkeypatch,
    )  # fmt: skip
    updated = json.loads((tmp_path / "updated.json").read_text())
    assert updated["digits"] == payload["digits"] and updated["updated_toy_methods"] == [rerun]
    for toy, per_method in payload["toy"].items():
        assert list(updated["toy"][toy]) == list(per_method)  # same methods, same order
        for method, record in per_method.items():
            if method != rerun:
                assert updated["toy"][toy][method] == record


def test_density_benchmark_writes_its_table_and_figures(tmp_path, monkeypatch):
    run_script(
        "density.py", ["--quick", "--seeds", "1", "--results-dir", str(tmp_path)], monkeypatch
    )
    payload = json.loads((tmp_path / "density.json").read_text())
    assert set(payload["results"]) == {
        "flat (independent categorical)",
        "standard",
        "mog",
        "vamp",
        "flow",
        "standard + ex-post mog",
    }
    ex_post = payload["results"]["standard + ex-post mog"]["nll"]["mean"]
    assert math.isfinite(ex_post) and ex_post > 0
    assert set(payload["figures"]) == {"samples", "latent"}
    assert (tmp_path / "density_samples.png").stat().st_size > 1000


def test_serving_benchmark_times_real_requests(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the serving benchmark serves with MLflow ([mlflow])")
    # Ten importance samples a row: the timings measure the served model all the same.
    run_script(
        "serving.py",
        ["--quick", "--n-eval-samples", "10", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "serving.json").read_text())
    latency = payload["latency"]
    assert set(latency) == {"1_rows", "1000_rows"}
    for record in latency.values():
        assert record["n_requests"] == 10
        assert 0 < record["p50_ms"] <= record["p95_ms"]
    # A thousand rows cost more than one: the timing measures the model, not only HTTP.
    assert latency["1000_rows"]["p50_ms"] > latency["1_rows"]["p50_ms"]


def test_serving_load_answers_valid_requests_and_refuses_malformed_ones(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the serving benchmark serves with MLflow ([mlflow])")
    run_script(
        "serving.py",
        ["--load", "--quick", "--n-eval-samples", "10", "--clients", "4"]
        + ["--servers", "impute-dgm serve"]
        + ["--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "serving_load.json").read_text())
    run = payload["servers"]["impute-dgm serve"]
    assert run["requests_sent"] == 200 and run["server_errors_5xx"] == 0
    assert run["valid"]["answered_correctly"] == run["valid"]["sent"] == 180
    for kind, record in run["malformed"].items():
        assert record["sent"] == 5, kind
        # Refused with a 4xx that names the reason (e.g. "serves at most" for too many rows).
        assert record["refused_4xx_with_reason"] == 5, (kind, record["example_reason"])
    assert run["memory_mib"]["peak"] > 0


def test_fuzz_benchmark_counts_outcomes_for_every_estimator(tmp_path, monkeypatch):
    pytest.importorskip("hypothesis", reason="the fuzz benchmark generates inputs with hypothesis")
    run_script("fuzz.py", ["--quick", "--results-dir", str(tmp_path)], monkeypatch)
    payload = json.loads((tmp_path / "fuzz.json").read_text())
    assert set(payload["results"]) == {
        "VAEImputer", "VAEImputer (self-masking)", "VAEImputer (early stopping)", "VAEEmbedder",
        "FlowDensityEstimator", "VAEClassifier", "EmbedThenClassify", "SemiSupervisedEnsemble",
    }  # fmt: skip
    for record in payload["results"].values():
        assert record["examples"] == 20 == sum(record["outcomes"].values())
        assert record["outcomes"].get("refused", 0) == sum(record["refusals_by_reason"].values())
    assert payload["failures"] == 0


def test_semi_supervised_benchmark_writes_every_cell(tmp_path, monkeypatch):
    run_script(
        "semi_supervised.py",
        ["--quick", "--seeds", "1", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "semi_supervised.json").read_text())
    results = payload["results"]
    assert set(results) == {"complete", "30% missing"}
    for condition, methods in results.items():
        recipe = {"impute-then-spread (VAEImputer + LabelSpreading)"}
        assert set(methods) == {
            "M1 (VAEEmbedder + LogReg)",
            "M2 (VAEClassifier)",
            "M2 (VAEClassifier defaults)",
            "LabelSpreading (knn)",
            "SelfTraining(SVC)",
            "LogReg (labelled only)",
            "PCA + LogReg",
            "pooled: impute-then-spread x M2 (SemiSupervisedEnsemble)",
        } | (recipe if condition == "30% missing" else set())
        for cells in methods.values():
            assert set(cells) == {"10", "50"}
            for cell in cells.values():
                assert 0.0 <= cell["accuracy"]["mean"] <= 1.0
    assert set(payload["margin_over_best_baseline"]["complete"]) == {"10", "50"}
    # Breast cancer and wine with 10% of the rows labelled.
    assert set(payload["tables"]) == {"breast cancer", "wine"}
    for conditions in payload["tables"].values():
        assert "M2 (VAEClassifier defaults)" in conditions["complete"]
        assert "pooled: impute-then-spread x M2 (SemiSupervisedEnsemble)" in conditions["complete"]
        missing = conditions["30% missing"]
        assert "impute-then-spread (VAEImputer + LabelSpreading)" in missing
        assert all(0.0 <= cell["mean"] <= 1.0 for cell in missing.values())


def test_multiple_imputation_benchmark_writes_coverage(tmp_path, monkeypatch):
    run_script(
        "multiple_imputation.py",
        ["--quick", "--replications", "2", "--m", "3", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "multiple_imputation.json").read_text())
    assert {
        "complete-case",
        "VAEImputer single (transform)",
        "VAEImputer m=3 pooled",
        "IterativeImputer(sample_posterior) m=3 pooled",
    } <= set(payload["results"])
    for record in payload["results"].values():
        assert 0.0 <= record["coverage"] <= 1.0 and record["mean_width"] > 0


def test_mixed_benchmark_scores_every_method_on_every_cell(tmp_path, monkeypatch):
    pytest.importorskip("palmerpenguins")
    pytest.importorskip("statsmodels")
    run_script(
        "mixed.py",
        ["--quick", "--seeds", "1", "--fair-rows", "200", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "mixed.json").read_text())
    assert set(payload["cells"]) == {
        f"{table}/{mechanism}"
        for table in ("penguins", "fair", "synthetic")
        for mechanism in ("mcar", "mar")
    }
    for cell in payload["cells"].values():
        # Every table has numeric and categorical cells; a method fails only out loud.
        assert set(cell["results"]) | set(cell["failures"]) == set(payload["summary"])
        assert {"mean / most frequent", "KNN (one-hot)", "missForest-style", "VAEImputer"} <= set(
            cell["results"]
        )
        for result in cell["results"].values():
            assert 0 < result["rmse"]["mean"] < 5 and 0 <= result["accuracy"]["mean"] <= 1
    for summary in payload["summary"].values():
        assert 1 <= summary["mean_rmse_rank"] <= 6 and 1 <= summary["mean_accuracy_rank"] <= 6
    # Each VAEImputer variant is ranked against the non-VAE methods alone, with its time over
    # the missForest-style imputer's per cell.
    for variant in ("VAEImputer", "VAEImputer (short schedule)"):
        alone = payload["variants"][variant]
        assert set(alone["ranks"]) == {*payload["summary"]} - {
            "VAEImputer",
            "VAEImputer (short schedule)",
        } | {variant}
        assert set(alone["seconds_over_missforest"]) == set(payload["cells"])
    # --update reruns some methods on some tables and keeps every other record; the file
    # updated may be the output itself (it is read before the run writes).
    run_script(
        "mixed.py",
        ["--quick", "--seeds", "1", "--fair-rows", "200", "--tables", "penguins", "--methods",
         "mean / most frequent", "--update", str(tmp_path / "mixed.json"),
         "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    again = json.loads((tmp_path / "mixed.json").read_text())
    assert set(again["cells"]) == set(payload["cells"])
    for name, cell in again["cells"].items():
        for method, result in cell["results"].items():
            rerun = name.startswith("penguins/") and method == "mean / most frequent"
            same = result["seconds"] == payload["cells"][name]["results"][method]["seconds"]
            assert same != rerun, (name, method)
    assert again["design"]["updated"][-1]["methods"] == ["mean / most frequent"]
    with pytest.raises(ValueError, match="seeds"):
        run_script(
            "mixed.py",
            ["--quick", "--seeds", "2", "--tables", "penguins", "--methods",
             "mean / most frequent", "--update", str(tmp_path / "mixed.json"),
             "--results-dir", str(tmp_path), "--output", "other.json"],
            monkeypatch,
        )  # fmt: skip


def test_imputation_suite_ranks_every_method_and_names_what_cannot_run(tmp_path, monkeypatch):
    pytest.importorskip("palmerpenguins")
    run_script(
        "imputation_suite.py",
        [
            "--quick", "--seeds", "1", "--tables", "wine", "penguins",
            "--mechanisms", "MCAR 20%", "MNAR 30%", "--results-dir", str(tmp_path),
        ],
        monkeypatch,
    )  # fmt: skip
    payload = json.loads((tmp_path / "imputation_suite.json").read_text())
    assert set(payload["cells"]) == {
        f"{t} / {m}" for t in ("wine", "penguins") for m in ("MCAR 20%", "MNAR 30%")
    }
    for name, cell in payload["cells"].items():
        assert set(cell["results"]) | set(cell["failures"]) == set(payload["design"]["methods"])
        assert {"mean / most frequent", "KNNImputer", "VAEImputer (MAR)"} <= set(cell["results"])
        if name.startswith("penguins"):
            # Numeric-only methods say so on the mixed table, rather than failing silently.
            assert cell["failures"]["IterativeImputer (BayesianRidge)"].startswith("not applicable")
        # The MNAR model runs on the mixed table too (its mask model covers the numeric columns).
        assert "VAEImputer (MNAR)" in cell["results"]
        for result in cell["results"].values():
            assert 0 < result["rmse"]["mean"] < 5
    assert set(payload["summary"]["by_mechanism"]) == {"MCAR 20%", "MNAR 30%"}


def test_imputation_suite_passes_vae_params_to_both_variants(tmp_path, monkeypatch):
    run_script(
        "imputation_suite.py",
        ["--quick", "--seeds", "1", "--tables", "wine", "--mechanisms", "MCAR 20%",
         "--methods", "KNNImputer", "VAEImputer (MAR)", "VAEImputer (MNAR)",
         "--vae-params", '{"latent_dim": 0}', "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    payload = json.loads((tmp_path / "imputation_suite.json").read_text())
    assert payload["design"]["vae_params"] == {"latent_dim": 0}
    failures = payload["cells"]["wine / MCAR 20%"]["failures"]
    # An invalid setting reaches both estimators, which refuse it by name; the others run.
    for variant in ("VAEImputer (MAR)", "VAEImputer (MNAR)"):
        assert "latent_dim" in failures[variant]
    assert "KNNImputer" in payload["cells"]["wine / MCAR 20%"]["results"]


def test_imputation_suite_update_replaces_only_the_rerun_methods(tmp_path, monkeypatch):
    common = ["--quick", "--seeds", "1", "--tables", "wine", "--mechanisms", "MCAR 20%",
              "--results-dir", str(tmp_path)]  # fmt: skip
    methods = ["--methods", "mean / most frequent", "KNNImputer"]
    run_script("imputation_suite.py", [*common, *methods, "--output", "base.json"], monkeypatch)
    base = json.loads((tmp_path / "base.json").read_text())
    base_cell = base["cells"]["wine / MCAR 20%"]
    base_cell["results"]["KNNImputer"]["rmse"]["mean"] = 99.0  # marks the figure to replace
    (tmp_path / "base.json").write_text(json.dumps(base))
    run_script(
        "imputation_suite.py",
        [*common, "--methods", "KNNImputer", "--update", str(tmp_path / "base.json"),
         "--output", "updated.json"],
        monkeypatch,
    )  # fmt: skip
    updated = json.loads((tmp_path / "updated.json").read_text())
    cell = updated["cells"]["wine / MCAR 20%"]
    assert cell["results"]["mean / most frequent"] == base_cell["results"]["mean / most frequent"]
    assert cell["results"]["KNNImputer"]["rmse"]["mean"] < 5
    assert updated["design"]["updated_methods"] == ["KNNImputer"]
    assert set(updated["summary"]["methods"]) >= {"mean / most frequent", "KNNImputer"}


def test_images_benchmark_writes_figures_and_says_mnist_was_skipped(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    run_script(
        "images.py",
        ["--quick", "--seeds", "1", "--rows", "150", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "images.json").read_text())
    assert "MNIST skipped" in payload["skipped"]
    masks = payload["results"]["digits"]
    assert set(masks) == {"50% MCAR", "4x4 square"}
    for per_method in masks.values():
        assert set(per_method) == {
            "KNNImputer",
            "IterativeImputer (BayesianRidge)",
            "VAEImputer (defaults)",
            "VAEImputer (categorical)",
            "VAEImputer (latent_dim=20)",
        }
        for record in per_method.values():
            assert 0 < record["rmse"]["mean"] < 1
    assert (tmp_path / "images_digits_4x4_square.png").stat().st_size > 1000
    assert (tmp_path / "images_digits_50_MCAR.png").stat().st_size > 1000
    # --update reruns one method and keeps the others' figures.
    earlier = json.loads((tmp_path / "images.json").read_text())
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    run_script(
        "images.py",
        ["--quick", "--seeds", "1", "--rows", "150", "--results-dir", str(tmp_path / "again"),
         "--methods", "KNNImputer", "--update", str(tmp_path / "earlier.json")],
        monkeypatch,
    )  # fmt: skip
    again = json.loads((tmp_path / "again" / "images.json").read_text())["results"]["digits"]
    for mask, per_method in again.items():
        before = earlier["results"]["digits"][mask]
        assert per_method["VAEImputer (categorical)"] == before["VAEImputer (categorical)"]
        assert set(per_method) == set(before)


def test_early_stopping_benchmark_compares_both_signals(tmp_path, monkeypatch):
    run_script("early_stopping.py", ["--quick", "--results-dir", str(tmp_path)], monkeypatch)
    payload = json.loads((tmp_path / "early_stopping.json").read_text())
    assert set(payload["runs"]) == {"breast_cancer/0", "nonlinear/0"}
    for run in payload["runs"].values():
        summary = run["summary"]
        assert summary["best_rmse"] <= min(summary["bound_rmse"], summary["hidden_rmse"])
        assert [r["epoch"] for r in run["records"]] == [2, 4]
        assert all(r["hidden"] > 0 and math.isfinite(r["bound"]) for r in run["records"])


def test_scaling_benchmark_measures_each_method_in_its_own_process(tmp_path, monkeypatch):
    # Two of the three methods: each process costs seconds of imports, and the third
    # (IterativeImputer with BayesianRidge) runs through the same worker.
    methods = ["VAEImputer", "missForest-style"]
    run_script(
        "scaling.py",
        ["--quick", "--threads", "1", "--methods", *methods, "--eval-samples-rows", "300",
         "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    payload = json.loads((tmp_path / "scaling.json").read_text())
    assert list(payload["results"]) == methods
    for method, per_n in payload["results"].items():
        assert set(per_n) == {"200", "400"}
        for record in per_n.values():
            assert record["status"] == "ok", (method, record)
            assert record["peak_rss_mib"] > 0 and record["rss_with_data_mib"] > 0
            assert record["peak_rss_mib"] >= record["rss_with_data_mib"] * 0.9
            assert 0 < record["rmse"] < 5 and record["transform_rows_per_second"] > 0
        assert "200->400" in payload["growth_exponents"][method]
    assert payload["results"]["VAEImputer"]["400"]["budget"]["batch_size"] == 64
    assert [r["n_eval_samples"] for r in payload["eval_samples"]] == [50, 100, 200, 500, 1000]
    synthetic = payload["eval_samples_synthetic"]
    assert synthetic["rows"] == synthetic["transformed_rows"] == 300
    assert [r["n_eval_samples"] for r in synthetic["results"]] == [5, 10, 20, 50, 100, 200, 500]
    assert all(0 < r["rmse"] < 5 and r["rows_per_second"] > 0 for r in synthetic["results"])


def test_density_tables_benchmark_compares_flows_with_tuned_baselines(tmp_path, monkeypatch):
    pytest.importorskip("palmerpenguins")
    run_script(
        "density_tables.py",
        ["--quick", "--seeds", "1", "--tables", "wine", "penguins", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    payload = json.loads((tmp_path / "density_tables.json").read_text())
    assert set(payload["results"]) == {"wine", "penguins"}
    for per_method in payload["results"].values():
        assert {"GaussianMixture (CV)", "KDE (CV)", "FlowDensityEstimator (defaults)"} <= set(
            per_method
        )
        for record in per_method.values():
            if "failure" not in record:
                assert math.isfinite(record["log_likelihood"]["mean"])


def test_semi_supervised_update_replaces_only_the_rerun_methods(tmp_path, monkeypatch):
    common = ["--quick", "--seeds", "1", "--results-dir", str(tmp_path)]
    spreading, logreg = "LabelSpreading (knn)", "LogReg (labelled only)"
    run_script(
        "semi_supervised.py",
        [*common, "--methods", spreading, logreg, "--output", "base.json"],
        monkeypatch,
    )
    base = json.loads((tmp_path / "base.json").read_text())
    base["results"]["complete"][spreading]["10"]["accuracy"]["mean"] = 99.0  # to be replaced
    base["tables"]["wine"]["complete"][spreading]["mean"] = 99.0
    (tmp_path / "base.json").write_text(json.dumps(base))

    def update(method):
        """Rerun ``method`` into base.json's results; the payload written."""
        run_script(
            "semi_supervised.py",
            [*common, "--methods", method, "--update", str(tmp_path / "base.json"),
             "--output", "updated.json"],
            monkeypatch,
        )  # fmt: skip
        return json.loads((tmp_path / "updated.json").read_text())

    updated = update(spreading)
    complete = updated["results"]["complete"]
    assert list(complete) == [spreading, logreg]  # the earlier order
    assert complete[logreg] == base["results"]["complete"][logreg]
    assert complete[spreading]["10"]["accuracy"]["mean"] <= 1.0
    assert updated["tables"]["wine"]["complete"][spreading]["mean"] <= 1.0
    wine = updated["tables"]["wine"]["complete"]
    assert wine[logreg] == base["tables"]["wine"]["complete"][logreg]
    assert updated["settings"]["updated_methods"] == [spreading]
    # A method of the incomplete condition only: the complete one is kept as it was.
    recipe = "impute-then-spread (VAEImputer + LabelSpreading)"
    with_recipe = update(recipe)
    assert with_recipe["results"]["complete"] == base["results"]["complete"]
    assert recipe in with_recipe["results"]["30% missing"]
    assert recipe in with_recipe["tables"]["wine"]["30% missing"]
    # One digits condition, no tables: the same splits (label spreading's figures agree with
    # the run of both), everything else kept from the file it updates.
    run_script(
        "semi_supervised.py",
        [*common, "--methods", spreading, "--update", str(tmp_path / "updated.json"),
         "--digits-conditions", "30% missing", "--skip-tables", "--output", "part.json"],
        monkeypatch,
    )  # fmt: skip
    part = json.loads((tmp_path / "part.json").read_text())
    assert part["results"]["complete"] == with_recipe["results"]["complete"]
    for n_labels, cell in part["results"]["30% missing"][spreading].items():
        earlier = with_recipe["results"]["30% missing"][spreading][n_labels]
        assert cell["accuracy"] == earlier["accuracy"]
    assert part["tables"] == with_recipe["tables"]


def test_coverage_data_do_not_depend_on_the_machines_linear_algebra(monkeypatch):
    # The covariance has a repeated eigenvalue: numpy's default (SVD) draws depend on which
    # singular vectors LAPACK returns. The Cholesky factor is unique.
    import numpy as np

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    simulate = runpy.run_path(str(BENCHMARKS / "multiple_imputation.py"))["simulate"]
    X, y = simulate(50, 3)
    covariance = np.full((3, 3), 0.5) + 0.5 * np.eye(3)
    rng = np.random.default_rng(3)
    expected = rng.standard_normal((50, 3)) @ np.linalg.cholesky(covariance).T
    np.testing.assert_allclose(X, expected, rtol=1e-12)
    np.testing.assert_allclose(y - X @ [1.0, -0.5, 0.25], rng.normal(size=50), rtol=1e-12)


def test_multiple_imputation_pieces_merge_by_replication(tmp_path, monkeypatch):
    common = ["--quick", "--replications", "1", "--m", "2", "--results-dir", str(tmp_path)]
    run_script(
        "multiple_imputation.py",
        [*common, "--methods", "iterative", "--output", "a.json"],
        monkeypatch,
    )
    run_script(
        "multiple_imputation.py",
        [*common, "--first", "1", "--methods", "iterative", "--output", "b.json"],
        monkeypatch,
    )
    run_script(
        "multiple_imputation.py",
        [*common, "--methods", "pooled", "--bootstrap", "2", "--refit-epochs", "2",
         "--output", "c.json"],
        monkeypatch,
    )  # fmt: skip
    pieces = [str(tmp_path / name) for name in ("a.json", "b.json", "c.json")]
    run_script(
        "multiple_imputation.py",
        ["--merge", *pieces, "--output", "merged.json", "--results-dir", str(tmp_path)],
        monkeypatch,
    )
    merged = json.loads((tmp_path / "merged.json").read_text())
    records = merged["replications"]
    assert records["complete-case"]["seed"] == [0, 1]
    assert records["IterativeImputer(sample_posterior) m=2 pooled"]["seed"] == [0, 1]
    (bootstrap,) = [name for name in records if "resamples" in name]
    assert records[bootstrap]["seed"] == [0]
    assert merged["results"][bootstrap]["replications"] == 1
    # --take adds one method of a file (and its complete-case records), not the others.
    run_script(
        "multiple_imputation.py",
        ["--take", pieces[2], bootstrap, "--merge", pieces[1], "--output", "taken.json",
         "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    taken = json.loads((tmp_path / "taken.json").read_text())["replications"]
    # A merged file merges again: its records carry their seeds.
    run_script(
        "multiple_imputation.py",
        ["--merge", str(tmp_path / "taken.json"), pieces[0], "--output", "again.json",
         "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    again = json.loads((tmp_path / "again.json").read_text())["replications"]
    iterative = "IterativeImputer(sample_posterior) m=2 pooled"
    assert again[iterative]["seed"] == [0, 1]
    assert again[iterative]["estimate"] == records[iterative]["estimate"]
    assert again[bootstrap] == records[bootstrap]
    # Replications on other data sets join numbered apart, with their own complete-case.
    run_script(
        "multiple_imputation.py",
        ["--merge", pieces[0], "--other-data", pieces[0], "--output", "other.json",
         "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    other = json.loads((tmp_path / "other.json").read_text())
    assert other["replications"]["complete-case"]["seed"] == [0, 10_000]
    assert other["results"][iterative]["replications"] == 2
    assert [p["other_data"] for p in other["merged_from"]] == [False, True]
    assert set(taken) == {
        "complete-case",
        bootstrap,
        "IterativeImputer(sample_posterior) m=2 pooled",
    }
    assert taken["complete-case"]["seed"] == [0, 1]
    # A replication run twice for one method is an error, not a silent overwrite.
    with pytest.raises(ValueError, match="two pieces"):
        run_script(
            "multiple_imputation.py",
            ["--merge", pieces[0], pieces[0], "--output", "x.json",
             "--results-dir", str(tmp_path)],
            monkeypatch,
        )  # fmt: skip


def test_selection_draws_compare_variants_on_seeds_the_suite_does_not_score(tmp_path, monkeypatch):
    run_script(
        "selection_draws.py",
        ["--quick", "--cells", "wine:mcar:0.2:5", "penguins:mar:0.3:6",
         "--variants", '{"dreg": {"encoder_gradient": "dreg"}}', "--results-dir", str(tmp_path)],
        monkeypatch,
    )  # fmt: skip
    payload = json.loads((tmp_path / "selection_draws.json").read_text())
    assert list(payload["design"]["variants"]) == ["standard", "dreg"]
    for cell in ("wine:mcar:0.2:5", "penguins:mar:0.3:6"):
        for record in payload["cells"][cell]["results"].values():
            assert 0 < record["rmse_64"] < 3 and 0 < record["rmse_512"] < 3
            assert math.isfinite(record["score"])
    assert 0 <= payload["cells"]["penguins:mar:0.3:6"]["results"]["dreg"]["accuracy_512"] <= 1
    with pytest.raises(ValueError, match="suite's"):
        run_script("selection_draws.py", ["--quick", "--cells", "wine:mcar:0.2:0",
                                          "--results-dir", str(tmp_path)], monkeypatch)  # fmt: skip


def test_threads_option_limits_every_pool_not_only_torchs():
    # A fresh process: the limit is process-wide and would leak into the other tests.
    pytest.importorskip("lightgbm")
    script = """
import json, sys
sys.path.insert(0, sys.argv[1])
from _common import limit_threads
import numpy, torch
limit_threads(1)
import lightgbm  # an OpenMP pool that starts after the call (miceforest's)
from threadpoolctl import threadpool_info
pools = [(p["user_api"], p["filepath"], p["num_threads"]) for p in threadpool_info()]
print(json.dumps({"torch": torch.get_num_threads(), "pools": pools}))
"""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", script, str(BENCHMARKS)], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout)
    assert report["torch"] == 1
    assert {api for api, _, _ in report["pools"]} == {"blas", "openmp"}
    assert any("lightgbm" in path or "libgomp.so" in path for _, path, _ in report["pools"])
    assert {threads for _, _, threads in report["pools"]} == {1}, report["pools"]
