"""The package's layering: flows/ depends on nothing above it (no import circle)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "impute_dgm"


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_flows_import_only_flows_and_libraries():
    for path in sorted((PACKAGE / "flows").glob("*.py")):
        ours = {m for m in imported_modules(path) if m.split(".")[0] == "impute_dgm"}
        outside = {m for m in ours if not m.startswith("impute_dgm.flows")}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_the_model_cores_live_in_models():
    loose = {path.name for path in PACKAGE.glob("*.py")} & {"model.py", "labelled_model.py"}
    assert not loose
    from impute_dgm.models import DeepLatentVariableModel, LabelledLatentVariableModel

    assert DeepLatentVariableModel.__module__ == "impute_dgm.models.latent_variable"
    assert LabelledLatentVariableModel.__module__ == "impute_dgm.models.labelled"


def test_model_files_written_before_the_move_still_resolve():
    from impute_dgm.models import DeepLatentVariableModel, LabelledLatentVariableModel
    from impute_dgm.safe_unpickling import resolve

    assert resolve("impute_dgm.model", "DeepLatentVariableModel") is DeepLatentVariableModel
    assert resolve("impute_dgm.labelled_model", "LabelledLatentVariableModel") is (
        LabelledLatentVariableModel
    )
