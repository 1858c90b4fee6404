"""Imputation error on observed cells hidden for the purpose: an imputer's validation signal.

Held-out rows have observed cells whose values are known. Hiding a fixed share of them,
imputing them from the rest of their row and scoring the result measures what an imputer is
for, on data the model was not trained on; the held-out bound, the other candidate, measures
the fit of the observed part, which on small tables peaks long before imputations stop
improving.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Share of a held-out row's observed cells hidden for scoring.
HIDDEN_FRACTION = 0.2
# Held-out rows imputed at once: memory stays that of a chunk (K x rows x width activations;
# about 20 MiB at K = 20, 256 rows and 128 units, under a tenth of a 1M x 30 table).
ROWS_PER_CHUNK = 256


class HiddenCellError:
    """Mean imputation error on a fixed random share of held-out observed cells.

    The error of a numeric cell is its squared error over the column's variance among the
    held-out values (so every column counts alike whatever its units); a categorical cell's
    is 0 when the imputed level is right, else 1. The hidden cells are drawn on the first call
    and reused, so that the values of successive epochs compare.

    Parameters
    ----------
    impute : callable (x, mask) -> tensor
        The model's single imputation in model units (observed entries may be anything).
    categorical : bool tensor of shape (n_features,)
        Which columns hold category codes.
    generator : torch.Generator
        Draws the hidden cells.
    """

    def __init__(
        self,
        impute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        categorical: torch.Tensor,
        generator: torch.Generator,
    ) -> None:
        self.impute = impute
        self.categorical = categorical
        self.generator = generator
        self.hidden: torch.Tensor | None = None
        self.variance: torch.Tensor | None = None

    def _draw_hidden(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        observed = mask > 0
        draw = torch.rand(x.shape, generator=self.generator, device=self.generator.device)
        self.hidden = (draw.to(x.device) < HIDDEN_FRACTION) & observed
        # In float64: a column constant among the held-out rows then has a spread of exactly
        # 0. In float32 its mean can miss the value by an ulp, leaving a spread near 1e-15 that
        # divided the column's errors into the 1e11s (digits: pixels that are 0 in every
        # held-out row), so that no epoch ever beat the first and early stopping kept it.
        observed64 = observed.to(torch.float64)
        x64 = x.to(torch.float64)
        count = observed64.sum(0).clamp(min=1)
        mean = (x64 * observed64).sum(0) / count
        variance = (((x64 - mean) * observed64) ** 2).sum(0) / count
        # A constant column has no spread to compare with: count its raw squared error.
        self.variance = torch.where(variance > 0, variance, torch.ones_like(variance)).to(x.dtype)

    def __call__(self, data) -> float:
        """The error on held-out ``(x, mask)`` (the same rows on every call)."""
        x, mask = data
        if self.hidden is None:
            self._draw_hidden(x, mask)
        if not self.hidden.any():
            return 0.0
        kept = mask * ~self.hidden
        chunks = []
        for start in range(0, x.shape[0], ROWS_PER_CHUNK):
            rows = slice(start, start + ROWS_PER_CHUNK)
            chunks.append(self.impute(x[rows] * kept[rows], kept[rows]))
        imputed = torch.cat(chunks)
        error = torch.where(
            self.categorical, (imputed != x).to(x.dtype), (imputed - x) ** 2 / self.variance
        )
        return float(error[self.hidden].mean())
