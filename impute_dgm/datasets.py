"""Tables by name (data sets that ship with scikit-learn) or from a CSV path; nothing is
downloaded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

BUNDLED = ("breast_cancer", "diabetes", "digits", "iris", "wine")


def load_table(source: str | Path) -> tuple[pd.DataFrame, pd.Series | None]:
    """Load a numeric table and its target, if there is one.

    Parameters
    ----------
    source : str or Path
        One of ``"breast_cancer", "diabetes", "digits", "iris", "wine"`` (scikit-learn's
        bundled data sets), or the path of a CSV file with a header row (every column is
        data; empty cells are missing values).

    Returns
    -------
    X : DataFrame
    y : Series or None
        The bundled target; None for a CSV.
    """
    name = str(source)
    if name in BUNDLED:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
        return bunch.data.astype(float), bunch.target
    path = Path(name)
    if not path.is_file():
        raise ValueError(
            f"{name!r} is neither a bundled data set ({', '.join(BUNDLED)}) nor a CSV file."
        )
    return pd.read_csv(path), None
