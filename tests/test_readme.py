"""The README's examples of mixed tables and multiple imputation run as written."""

import re
from pathlib import Path

import numpy as np
import pandas as pd

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section_code(heading: str) -> str:
    """The first Python block after ``heading`` in the README."""
    after = README[README.index(heading) :]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def test_mixed_table_example_keeps_the_dtypes():
    namespace: dict = {}
    exec(compile(section_code("### Mixed-type tables"), "README mixed", "exec"), namespace)
    table, filled = namespace["table"], namespace["filled"]
    pd.testing.assert_series_equal(filled.dtypes, table.dtypes)
    assert not filled.isna().any().any()
    assert len(namespace["draws"]) == 20


def test_pooling_example_prints_an_interval(capsys):
    namespace: dict = {}
    code = section_code("### Multiple imputation and Rubin's rules")
    exec(compile(code, "README pooling", "exec"), namespace)
    low, high = namespace["low"], namespace["high"]
    assert np.all(low < namespace["pooled"].estimate) and np.all(
        namespace["pooled"].estimate < high
    )
    assert "95% CI" in capsys.readouterr().out


def test_mnar_example_learns_that_large_values_go_missing():
    namespace: dict = {}
    code = section_code("### Values missing not at random")
    exec(compile(code, "README mnar", "exec"), namespace)
    # Over 8 data sets of this kind the largest slope was -0.24 at worst (tests/test_mnar.py).
    assert namespace["slopes"].max() < 0
