"""Labels with unlabelled rows marked ``-1``, as in ``sklearn.semi_supervised``."""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

UNLABELLED = -1


def split_labelled(y) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y, labelled)``: y as a 1-D array and the mask of rows with a label.

    A row is unlabelled when its label is ``-1`` (or the string ``"-1"`` for text labels).

    Raises
    ------
    ValueError
        If no row has a label, or the labels are not classes (e.g. continuous values).
    """
    y = column_or_1d(y, warn=True)
    if y.dtype.kind in "iuf":
        unlabelled = y == UNLABELLED
    else:
        unlabelled = np.array([str(value) == "-1" for value in y], dtype=bool)
    if unlabelled.all():
        raise ValueError(
            "Every label is -1 (unlabelled): at least one labelled row is needed to learn "
            "the classes."
        )
    check_classification_targets(y[~unlabelled])
    return y, ~unlabelled
