"""tqdm progress bars for long training and evaluation, shown only when asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    show: bool,
    description: str,
    unit: str = "it",
) -> Any:
    """A tqdm bar over ``iterable`` (or one updated by hand up to ``total``); disabled unless
    ``show``. It leaves no line behind when it ends."""
    if show:
        # Imported only for a bar: in a notebook without ipywidgets, importing tqdm.auto
        # warns, which a silent estimator must not.
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, total=total, desc=description, unit=unit, disable=not show, leave=False)
