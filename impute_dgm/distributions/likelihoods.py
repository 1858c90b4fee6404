"""Observation models p(x | z): decoder outputs in, element-wise ``torch.distributions`` out.

Each likelihood turns the decoder's raw output, ``n_params`` numbers per feature, into a
distribution whose batch shape ends in the feature axis, so that the bound can sum
``log_prob`` over the observed entries only. :class:`ColumnLikelihoods` joins several of them,
each over its own block of columns, for tables whose columns are of different kinds.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    Normal,
    Poisson,
    StudentT,
    constraints,
)
from torch.nn.functional import softplus

from impute_dgm._validation import check_integer_levels
from impute_dgm.distributions._special import log_ndtr

_NO_SHAPE = torch.Size()
_EMPTY = torch.zeros(0)


class Likelihood(nn.Module):
    """Base class for observation models.

    Attributes
    ----------
    n_params : int
        Decoder outputs per feature.
    standardize : bool
        Whether the data should be standardised before the model sees it (continuous supports).
    """

    n_params: int = 1
    standardize: bool = True

    def forward(self, params: torch.Tensor) -> Distribution:
        """Map decoder output of shape (..., n_features * n_params) to a distribution."""
        raise NotImplementedError  # pragma: no cover - abstract

    def mean(self, distribution: Distribution) -> torch.Tensor:
        """E[x | z], used for single imputation."""
        return distribution.mean

    def check_data(self, X: np.ndarray) -> None:
        """Raise ValueError if observed values lie outside the support."""

    #: Whether :meth:`reparameterized_sample` exists (models of the mask need it).
    has_reparameterized_sample = False

    def reparameterized_sample(self, distribution: Distribution, noise: torch.Tensor):
        """A draw of x from ``distribution`` as a differentiable function of standard normal
        ``noise`` (broadcastable to its batch shape)."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised draws.")

    def reparameterized_columns(self, n_features: int) -> torch.Tensor:
        """Which of the columns :meth:`reparameterized_sample` draws (bool, shape (D,))."""
        return torch.full((n_features,), self.has_reparameterized_sample)

    def support_values(self, distribution: Distribution, draws: torch.Tensor) -> torch.Tensor:
        """The values of the model's support that :meth:`reparameterized_sample` ``draws``
        stand for: the draws themselves for continuous supports."""
        return draws

    #: Whether the model generates whole numbers in the data's original units.
    generates_whole_numbers = False

    def whole_number_columns(self, n_features: int) -> torch.Tensor:
        """Which columns the model generates as whole numbers (bool, shape (D,)): their draws
        are rounded once back in original units, where float32 model units leave them off by
        a few millionths."""
        return torch.full((n_features,), self.generates_whole_numbers)

    def encoder_view(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the encoder sees of x: the zero-filled data themselves, unless their scale is
        awkward or they are categories (one-hot); a missing entry is all zeros."""
        return x * mask

    def encoder_width(self, n_features: int) -> int:
        """Width of :meth:`encoder_view` for ``n_features`` columns."""
        return n_features

    def decoder_width(self, n_features: int) -> int:
        """Decoder outputs needed for ``n_features`` columns."""
        return n_features * self.n_params

    def imputation_statistics(self, distribution: Distribution) -> torch.Tensor:
        """What self-normalised importance sampling averages over z for single imputation,
        shape (..., n_statistics); :meth:`point_estimate` turns the average into values."""
        return self.mean(distribution)

    def point_estimate(self, statistics: torch.Tensor) -> torch.Tensor:
        """Values (..., n_features) from averaged :meth:`imputation_statistics`."""
        return statistics

    def point_estimate_width(self, n_features: int) -> int:
        """Width of :meth:`imputation_statistics` for ``n_features`` columns."""
        return n_features

    def fitted(self, X: np.ndarray) -> Likelihood:
        """A copy configured for ``X`` (checked against the support); the original is untouched."""
        self.check_data(X)
        return copy.deepcopy(self)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The ``n_params`` pieces of the decoder output, (..., n_features) each, contiguous."""
        n_features = params.shape[-1] // self.n_params
        # One copy into (n_params, ..., n_features): every piece is then contiguous. On a
        # strided view, torch's CPU kernels of softplus, exp, erfc and the like leave their
        # vectorised path and run 5-20 times slower (softplus of the raw scales of a 30-column
        # table: 1.8 ms against 0.1 ms per call at 20 x 64 rows).
        return tuple(params.unflatten(-1, (self.n_params, n_features)).movedim(-2, 0).contiguous())


class GaussianLikelihood(Likelihood):
    """Gaussian observation model with a floor on the standard deviation.

    Without the floor the likelihood is unbounded: the decoder can put a spike of vanishing
    variance on a single observed value and drive the bound to infinity.

    Parameters
    ----------
    min_scale : float, default=0.01
        Smallest standard deviation, in standardised units.
    """

    n_params = 2

    def __init__(self, min_scale: float = 0.01) -> None:
        super().__init__()
        if not min_scale > 0:
            raise ValueError(f"min_scale must be positive, got {min_scale!r}.")
        self.min_scale = min_scale

    def forward(self, params: torch.Tensor) -> Distribution:
        loc, raw_scale = self._split(params)
        return Normal(loc, softplus(raw_scale) + self.min_scale, validate_args=False)

    has_reparameterized_sample = True

    def reparameterized_sample(self, distribution: Distribution, noise: torch.Tensor):
        return distribution.loc + distribution.scale * noise


class StudentTLikelihood(Likelihood):
    """Student-t observation model (MIWAE's choice for UCI data): heavy tails, robust fits.

    The degrees of freedom are learned per entry and kept above ``min_df`` (> 1), so that the
    mean, used for imputation, exists.

    Parameters
    ----------
    min_scale : float, default=0.01
        Smallest scale, in standardised units.
    min_df : float, default=3.0
        Smallest number of degrees of freedom.
    """

    n_params = 3

    def __init__(self, min_scale: float = 0.01, min_df: float = 3.0) -> None:
        super().__init__()
        if not min_scale > 0:
            raise ValueError(f"min_scale must be positive, got {min_scale!r}.")
        if not min_df > 1:
            raise ValueError(f"min_df must exceed 1 so that the mean exists, got {min_df!r}.")
        self.min_scale = min_scale
        self.min_df = min_df

    def forward(self, params: torch.Tensor) -> Distribution:
        loc, raw_scale, raw_df = self._split(params)
        return StudentT(
            softplus(raw_df) + self.min_df,
            loc,
            softplus(raw_scale) + self.min_scale,
            validate_args=False,
        )

    def mean(self, distribution: Distribution) -> torch.Tensor:
        # df > 1 always, so the mean is the location; skip StudentT.mean's NaN masking.
        return distribution.loc


class BernoulliLikelihood(Likelihood):
    """Bernoulli observation model for binary data (values 0 and 1)."""

    n_params = 1
    standardize = False

    def forward(self, params: torch.Tensor) -> Distribution:
        return Bernoulli(logits=params, validate_args=False)

    def check_data(self, X: np.ndarray) -> None:
        observed = X[~np.isnan(X)]
        if observed.size and not np.isin(observed, (0.0, 1.0)).all():
            raise ValueError(
                "likelihood='bernoulli' needs binary data: observed values must be 0 or 1."
            )


class CategoricalLikelihood(Likelihood):
    """Categorical observation model over integer levels 0..n_levels-1.

    The decoder outputs one logit per level and feature. With ``ordered=True`` (levels such as
    pixel intensities) the encoder sees the level scaled to [0, 1] and single imputation is the
    expected level; with ``ordered=False`` (the categories of a table) the encoder sees the
    level one-hot and single imputation is the most probable level under the importance-
    weighted average of p(x | z): an expected level means nothing for unordered categories.

    Parameters
    ----------
    n_levels : int, sequence of int or None, default=None
        Number of levels, of every column (int) or of each column (a sequence: the columns of
        a table's categories, modelled as one block however many levels each has); inferred at
        fit time as max(X) + 1 when None.
    ordered : bool, default=True
        Whether the levels are ordered (see above).

    Notes
    -----
    Columns with fewer levels than the widest are padded with logits of -inf, so that one
    ``Categorical`` serves them all: per-column distributions would cost a handful of tensor
    operations each at every training step, which dominate a step on small tables.
    """

    standardize = False

    def __init__(self, n_levels: int | Sequence[int] | None = None, ordered: bool = True) -> None:
        super().__init__()
        if n_levels is None or isinstance(n_levels, numbers.Integral):
            self.n_levels = None if n_levels is None else int(n_levels)
        else:
            self.n_levels = tuple(int(count) for count in n_levels)
        self.ordered = ordered
        self._register_level_indices()

    def _register_level_indices(self) -> None:
        """The per-column index tensors, made once as buffers (they follow ``.to(device)`` and
        stay out of the ``state_dict``): made at every call, each would be a copy from the
        host at every training step, one that waits for the GPU on CUDA."""
        if not self.per_column:
            return
        counts = np.asarray(self.n_levels)
        widest, total = counts.max(), counts.sum()
        offsets = np.cumsum(counts) - counts
        # For every (column, level) slot of the padded (C, widest) logits, the decoder output
        # that fills it, or the index just past them (a -inf logit) for levels a column lacks.
        positions = np.full((len(counts), widest), total)
        for column, (offset, count) in enumerate(zip(offsets, counts, strict=True)):
            positions[column, :count] = offset + np.arange(count)
        self.register_buffer("_level_counts", torch.as_tensor(counts), persistent=False)
        self.register_buffer("_level_offsets", torch.as_tensor(offsets), persistent=False)
        self.register_buffer(
            "_padded_positions", torch.as_tensor(positions.ravel()), persistent=False
        )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "_padded_positions" not in self._buffers:  # pickled before the buffers existed
            self._register_level_indices()

    @property
    def n_params(self) -> int:  # type: ignore[override]
        return self.widest

    @property
    def per_column(self) -> bool:
        """Whether columns have their own numbers of levels (``n_levels`` a sequence)."""
        return isinstance(self.n_levels, tuple)

    @property
    def widest(self) -> int:
        """The most levels of any column: the padded width of the logits."""
        if self.n_levels is None:
            raise RuntimeError("CategoricalLikelihood needs n_levels; fit it to data first.")
        return max(self.n_levels) if self.per_column else int(self.n_levels)

    def level_counts(self, n_features: int) -> tuple[int, ...]:
        """The number of levels of each of ``n_features`` columns."""
        if self.per_column:
            if len(self.n_levels) != n_features:
                raise ValueError(
                    f"n_levels gives {len(self.n_levels)} columns' levels for {n_features} columns."
                )
            return self.n_levels
        return (self.widest,) * n_features

    def decoder_width(self, n_features: int) -> int:
        return sum(self.level_counts(n_features))

    def forward(self, params: torch.Tensor) -> Distribution:
        if not self.per_column:
            logits = params.unflatten(-1, (-1, self.n_levels))
            return Categorical(logits=logits, validate_args=False)
        with_impossible = torch.nn.functional.pad(params, (0, 1), value=-torch.inf)
        padded = with_impossible.index_select(-1, self._padded_positions.to(params.device))
        return Categorical(logits=padded.unflatten(-1, (-1, self.widest)), validate_args=False)

    def encoder_view(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n_features = x.shape[-1]
        if not self.ordered:
            # One-hot, all zeros where the category is missing (encoder_width checks the
            # number of columns against n_levels).
            view = x.new_zeros((*x.shape[:-1], self.encoder_width(n_features)))
            codes = (x * mask).long().clamp(min=0)
            if self.per_column:
                counts = self._level_counts.to(x.device)
                codes, offsets = torch.minimum(codes, counts - 1), self._level_offsets.to(x.device)
            else:
                codes = codes.clamp(max=self.widest - 1)
                offsets = torch.arange(n_features, device=x.device) * self.widest
            return view.scatter_(-1, codes + offsets, mask.to(x.dtype))
        # Levels 0..L-1 are not standardised (the likelihood needs them as they are); the
        # encoder gets them in [0, 1] so that its tanh units are not saturated from the start.
        if self.per_column:
            highest = self._level_counts.to(device=x.device, dtype=x.dtype) - 1
            return x * mask / highest
        return x * mask / (self.n_levels - 1)

    def encoder_width(self, n_features: int) -> int:
        return n_features if self.ordered else sum(self.level_counts(n_features))

    def mean(self, distribution: Distribution) -> torch.Tensor:
        levels = torch.arange(
            self.widest, dtype=distribution.probs.dtype, device=distribution.probs.device
        )
        return distribution.probs @ levels

    def imputation_statistics(self, distribution: Distribution) -> torch.Tensor:
        if self.ordered:
            return self.mean(distribution)
        return distribution.probs.flatten(-2)

    def point_estimate_width(self, n_features: int) -> int:
        return n_features * (1 if self.ordered else self.widest)

    def point_estimate(self, statistics: torch.Tensor) -> torch.Tensor:
        if self.ordered:
            return statistics
        return statistics.unflatten(-1, (-1, self.widest)).argmax(-1).to(statistics.dtype)

    def check_data(self, X: np.ndarray) -> None:
        if not self.per_column:
            check_integer_levels(X, self.n_levels, "likelihood='categorical'")
            return
        for column, count in enumerate(self.level_counts(X.shape[1])):
            check_integer_levels(X[:, column], count, "likelihood='categorical'")

    def fitted(self, X: np.ndarray) -> Likelihood:
        self.check_data(X)
        configured = copy.deepcopy(self)
        if configured.n_levels is None:
            observed = X[~np.isnan(X)]
            configured.n_levels = max(int(observed.max()) + 1 if observed.size else 2, 2)
        return configured


class PoissonLikelihood(Likelihood):
    """Poisson observation model for counts 0, 1, 2, ... (rate = softplus of the decoder).

    Counts are not standardised (the likelihood needs them as they are); the encoder sees
    log(1 + x), which keeps large counts from saturating its units.
    """

    n_params = 1
    standardize = False

    def forward(self, params: torch.Tensor) -> Distribution:
        return Poisson(softplus(params) + 1e-6, validate_args=False)

    def encoder_view(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x * mask)

    def check_data(self, X: np.ndarray) -> None:
        check_integer_levels(X, None, "likelihood='poisson'")


class DiscretizedNormal(Distribution):
    """A normal distribution rounded to the nearest point of the grid ``offset + k * width``.

    P(x) = Phi((x + width/2 - loc) / scale) - Phi((x - width/2 - loc) / scale) for grid points
    x: a probability mass, computed in the tail where it does not cancel. It models integer
    columns in standardised units: there the integers sit on a grid of width 1 / (column scale).
    With bounds ``low`` and ``high`` (grid points) the distribution is that of
    clip(round(X), low, high): the two end points take the normal's tails,
    P(low) = Phi((low + width/2 - loc) / scale), and a value beyond a bound is scored as the
    bound.

    Parameters
    ----------
    loc, scale : tensor
        Of the underlying normal.
    offset, width : tensor broadcastable to loc
        The grid.
    low, high : tensor broadcastable to loc, optional
        Grid points that bound the support (both or neither); unbounded without them.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, scale, offset, width, low=None, high=None, validate_args=None) -> None:
        self.normal = Normal(loc, scale, validate_args=False)
        self.loc, self.scale = self.normal.loc, self.normal.scale
        self.offset, self.width = offset, width
        self.low, self.high = low, high
        super().__init__(self.normal.batch_shape, validate_args=False)

    @property
    def censored(self) -> bool:
        """Whether the support is bounded by ``low`` and ``high``."""
        return self.low is not None

    #: Grid points either side of the one nearest ``loc`` that :attr:`mean` sums over: with
    #: a scale at most the grid width, the mass beyond them is below 1e-4.
    MEAN_HALF_WINDOW = 4

    @property
    def mean(self) -> torch.Tensor:
        """E[x]: the masses of the grid points near ``loc`` times the points.

        Not ``loc``: with a scale below the grid width nearly all the mass sits on one point,
        wherever ``loc`` lies in its cell (the likelihood does not pin ``loc`` down there);
        ``loc`` as the mean cost the digits' integer pixels a third of their RMSE. Where the
        scale exceeds the width, rounding moves the mean by less than 1e-8 widths: ``loc``.
        With bounds, the mean of the clipped variable (see :meth:`_censored_mean`).
        """
        if self.censored:
            return self._censored_mean()
        # With c_j the normal's CDF at the cell edges nearest + (j - 1/2) width, j = -R..R+1,
        # sum_k (c_{k+1} - c_k)(nearest + k width) = nearest (c_{R+1} - c_{-R})
        #   + width (R c_{R+1} + R c_{-R} - sum_{j=-R+1}^{R} c_j): 2R + 2 CDFs, one at a time
        # (memory stays that of loc: importance samples x rows x columns).
        radius = self.MEAN_HALF_WINDOW
        nearest = self.nearest_grid_point(self.loc)
        start = (nearest - self.loc) / self.scale
        step = self.width / self.scale
        lowest = torch.special.ndtr(start + (-radius - 0.5) * step)
        highest = torch.special.ndtr(start + (radius + 0.5) * step)
        inner = torch.zeros_like(self.loc)
        for j in range(-radius + 1, radius + 1):
            inner = inner + torch.special.ndtr(start + (j - 0.5) * step)
        in_window = (highest - lowest).clamp(min=torch.finfo(self.loc.dtype).tiny)
        windowed = nearest + self.width * (radius * (highest + lowest) - inner) / in_window
        return torch.where(self.scale > self.width, self.loc, windowed)

    def _censored_mean(self) -> torch.Tensor:
        """E[clip(round(X), low, high)]: exact over the window of grid points near ``loc``
        where the scale is at most the grid width; beyond, the censored normal's mean
        a Phi(alpha) + b (1 - Phi(beta)) + loc (Phi(beta) - Phi(alpha))
        + scale (phi(alpha) - phi(beta)), which rounding moves by a few hundredths of a grid
        width at most."""
        radius = self.MEAN_HALF_WINDOW
        low, high, width = self.low, self.high, self.width
        nearest = self.nearest_grid_point(self.loc).clamp(min=low, max=high)
        start = torch.maximum(low, nearest - radius * width)
        stop = torch.minimum(high, nearest + radius * width)
        # E[clip(round(X), a, b)] = a + w sum_j P(X > a + (j - 1/2) w) over the edges in (a, b)
        windowed = start.expand_as(self.loc).clone()
        for j in range(1, 2 * radius + 1):
            edge = start + (j - 0.5) * width
            survival = torch.special.ndtr((self.loc - edge) / self.scale)
            windowed = windowed + width * survival * (edge < stop)
        # Wide scale: the censored normal's mean (rounding moves it by a small part of w).
        alpha, beta = (low - self.loc) / self.scale, (high - self.loc) / self.scale
        cdf_a, cdf_b = torch.special.ndtr(alpha), torch.special.ndtr(beta)
        pdf_a, pdf_b = torch.exp(self.normal.log_prob(low)), torch.exp(self.normal.log_prob(high))
        wide = (
            low * cdf_a
            + high * (1 - cdf_b)
            + self.loc * (cdf_b - cdf_a)
            + self.scale**2 * (pdf_a - pdf_b)
        )
        return torch.where(self.scale > self.width, wide, windowed)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self.censored:  # a value beyond a bound is scored as the bound
            value = torch.clamp(value, min=self.low, max=self.high)
        signed = (value - self.loc) / self.scale
        distance = signed.abs()
        half = 0.5 * self.width / self.scale
        # By symmetry the cell's mass is Phi(h - |c|) - Phi(-h - |c|): both in the lower tail,
        # where log Phi is accurate and the difference does not cancel to zero.
        upper, lower = half - distance, -half - distance
        if self.censored:
            # The lowest level seen in fit carries the normal's lower tail, Phi(h + c), and the
            # highest its upper tail, Phi(h - c): that is Phi(h - |c|) where c points into the
            # range, else Phi(h + |c|), which takes the place of the interior's second CDF
            # (two CDFs per entry, as without bounds).
            half_width = 0.5 * self.width
            at_low = value <= self.low + half_width
            at_high = value >= self.high - half_width
            outward = (at_low & (signed > 0)) | (at_high & (signed < 0))
            lower = torch.where(outward, half + distance, lower)
        # One call on both: log_ndtr is some twenty small operations, and on small batches
        # their count, not their size, sets the time of a step.
        log_upper, log_lower = log_ndtr(torch.stack((upper, lower)))
        difference = (log_lower - log_upper).clamp(max=-1e-12)
        interior = log_upper + torch.log(-torch.expm1(difference))
        if not self.censored:
            return interior
        boundary = torch.where(outward, log_lower, log_upper)
        log_prob = torch.where(at_low | at_high, boundary, interior)
        # A column with one level: its mass is 1.
        return torch.where(at_low & at_high, torch.zeros_like(log_prob), log_prob)

    def nearest_grid_point(self, values: torch.Tensor) -> torch.Tensor:
        """The grid point nearest each value."""
        return self.offset + torch.round((values - self.offset) / self.width) * self.width

    def sample(self, sample_shape: torch.Size = _NO_SHAPE) -> torch.Tensor:
        return self.nearest_level(self.normal.sample(sample_shape))

    def nearest_level(self, values: torch.Tensor) -> torch.Tensor:
        """The grid point nearest each value, within the censoring range when there is one."""
        points = self.nearest_grid_point(values)
        return points.clamp(min=self.low, max=self.high) if self.censored else points


class DiscretizedGaussianLikelihood(GaussianLikelihood):
    """Gaussian observation model rounded to a grid: integer columns in standardised units.

    An integer column scaled by its location and scale has its integers on the grid
    ``-location / scale + k / scale``; p(x | z) is the mass the normal puts on x's grid cell,
    so the likelihood is a probability (no Jacobian term when reported in original units) and
    samples are integers once scaled back. Used for integer columns by default: unlike a
    Poisson it suits any range and spread (years, counts far from zero, under-dispersed data).

    Parameters
    ----------
    min_scale : float, default=0.01
        Smallest standard deviation, in standardised units.
    integers_only : bool, default=True
        Whether data with fractions are refused. False for float columns that
        ``likelihood="auto"`` found integral in ``fit``: a fraction at ``transform`` is then
        scored by the mass of the grid cell it falls in rather than refused.
    censored : bool, default=True
        Whether the lowest and highest values seen in ``fit`` take the normal's tails beyond
        them (a censored, or Tobit, rounded normal) instead of the normal's mass going to
        values never seen. Pixel levels, counts and rating scales pile up at their bounds: a
        pixel column that is 0 in 90% of rows is then a normal whose centre lies below 0 for
        dark rows, and imputations and draws stay within the range seen. Measured on the
        imputation suite's digits table (600 rows, selection draws 5 and 6, not the benchmark's):
        RMSE 0.623 against 0.680 at MCAR 20%, 0.741 against 0.770 at MCAR 50%, 0.768 against
        0.800 under MAR.
    """

    def __init__(
        self, min_scale: float = 0.01, integers_only: bool = True, censored: bool = True
    ) -> None:
        super().__init__(min_scale)
        self.integers_only = integers_only
        self.censored = censored
        self.register_buffer("grid_offset", torch.zeros(0))
        self.register_buffer("grid_width", torch.ones(0))
        self.register_buffer("grid_low", torch.zeros(0))
        self.register_buffer("grid_high", torch.zeros(0))

    def set_grid(
        self,
        location: np.ndarray,
        scale: np.ndarray,
        lowest: np.ndarray | None = None,
        highest: np.ndarray | None = None,
    ) -> DiscretizedGaussianLikelihood:
        """Place the integers of columns with these ``location`` and ``scale`` on the grid and,
        when ``censored``, bound it by the columns' ``lowest`` and ``highest`` values (original
        units, as seen in ``fit``)."""
        self.grid_offset = torch.as_tensor(-location / scale, dtype=torch.float32)
        self.grid_width = torch.as_tensor(1.0 / scale, dtype=torch.float32)
        if getattr(self, "censored", False) and lowest is not None and highest is not None:
            self.grid_low = torch.as_tensor((lowest - location) / scale, dtype=torch.float32)
            self.grid_high = torch.as_tensor((highest - location) / scale, dtype=torch.float32)
        return self

    def forward(self, params: torch.Tensor) -> Distribution:
        loc, raw_scale = self._split(params)
        return DiscretizedNormal(
            loc,
            softplus(raw_scale) + self.min_scale,
            self.grid_offset.to(loc.dtype),
            self.grid_width.to(loc.dtype),
            # Models saved before the bounds existed have no grid_low: uncensored, as fitted.
            *(
                (self.grid_low.to(loc.dtype), self.grid_high.to(loc.dtype))
                if getattr(self, "grid_low", _EMPTY).numel()
                else ()
            ),
        )

    generates_whole_numbers = True

    def support_values(self, distribution: Distribution, draws: torch.Tensor) -> torch.Tensor:
        """The grid points nearest the draws: the reparameterised draws are the normal's, kept
        continuous for the gradients of a mask model; what the model generates is rounded, as
        :meth:`DiscretizedNormal.sample` rounds. Averaging the unrounded draws would impute
        ``loc``, which the likelihood leaves anywhere within its cell once the scale is below
        the grid width (a pixel column that is 0 in 99% of rows imputed near 0.45, seven of
        its standard deviations)."""
        return distribution.nearest_level(draws)

    def check_data(self, X: np.ndarray) -> None:
        if not getattr(self, "integers_only", True):  # files from before the attribute: True
            return
        observed = X[~np.isnan(X)]
        if observed.size and not np.array_equal(observed, np.round(observed)):
            raise ValueError("likelihood='discretized_gaussian' needs integer values.")


def _place_columns(
    values: list[torch.Tensor], columns: list[torch.Tensor], reference: torch.Tensor, width: int
) -> torch.Tensor:
    """One tensor (..., width) with each block's ``values`` in its ``columns``; the leading
    shape and dtype are ``reference``'s."""
    out = reference.new_empty((*reference.shape[:-1], width))
    for where, value in zip(columns, values, strict=True):
        out[..., where] = value.to(out.dtype)
    return out


class JointObservation(Distribution):
    """Independent observation models over blocks of columns, as one distribution over rows.

    ``log_prob`` and ``sample`` return one value per column, shape (..., n_features), so that
    masking by the observed entries works as with a single likelihood.

    Parameters
    ----------
    parts : list of Distribution
        One per block, batch shape (..., block width).
    columns : list of LongTensor
        The columns of each block.
    n_features : int
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, parts: list[Distribution], columns: list[torch.Tensor], n_features: int):
        self.parts, self.columns = parts, columns
        batch_shape = (*parts[0].batch_shape[:-1], n_features)
        super().__init__(torch.Size(batch_shape), validate_args=False)

    def _gather(self, values: list[torch.Tensor], reference: torch.Tensor) -> torch.Tensor:
        return _place_columns(values, self.columns, reference, self.batch_shape[-1])

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        logs = [p.log_prob(value[..., c]) for p, c in zip(self.parts, self.columns, strict=True)]
        return self._gather(logs, logs[0])

    def sample(self, sample_shape: torch.Size = _NO_SHAPE) -> torch.Tensor:
        draws = [part.sample(sample_shape).to(torch.get_default_dtype()) for part in self.parts]
        return self._gather(draws, draws[0])


class ColumnLikelihoods(Likelihood):
    """One observation model per block of columns: mixed-type tables.

    The decoder output is split block by block (``decoder_width`` numbers each), every block's
    likelihood builds its distribution over its own columns, and the joint returns log p per
    entry, so masking, the bound and imputation work as with one likelihood.

    Parameters
    ----------
    blocks : list of (Likelihood, list of int)
        Each block's fitted likelihood and the (0-based) columns it models.
    """

    def __init__(self, blocks: list[tuple[Likelihood, list[int]]]) -> None:
        super().__init__()
        self.parts = nn.ModuleList([likelihood for likelihood, _ in blocks])
        self.columns = [list(map(int, columns)) for _, columns in blocks]
        self.n_features = sum(len(columns) for columns in self.columns)
        self._register_column_indices()

    def _register_column_indices(self) -> None:
        """Each block's columns as an index buffer, made once: see
        :meth:`CategoricalLikelihood._register_level_indices`."""
        for block, columns in enumerate(self.columns):
            index = torch.as_tensor(columns, dtype=torch.long)
            self.register_buffer(f"_columns_of_block_{block}", index, persistent=False)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "_columns_of_block_0" not in self._buffers:  # pickled before the buffers existed
            self._register_column_indices()

    def _indices(self, device) -> list[torch.Tensor]:
        return [
            self.get_buffer(f"_columns_of_block_{block}").to(device)
            for block in range(len(self.columns))
        ]

    def _slices(self, widths: list[int]):
        start = 0
        for width in widths:
            yield slice(start, start + width)
            start += width

    def decoder_width(self, n_features: int) -> int:
        return sum(p.decoder_width(len(c)) for p, c in zip(self.parts, self.columns, strict=True))

    def encoder_width(self, n_features: int) -> int:
        return sum(p.encoder_width(len(c)) for p, c in zip(self.parts, self.columns, strict=True))

    def forward(self, params: torch.Tensor) -> Distribution:
        widths = [p.decoder_width(len(c)) for p, c in zip(self.parts, self.columns, strict=True)]
        # Each block's parameters contiguous: see Likelihood._split.
        parts = [
            part(params[..., where].contiguous())
            for part, where in zip(self.parts, self._slices(widths), strict=True)
        ]
        return JointObservation(parts, self._indices(params.device), self.n_features)

    def encoder_view(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                part.encoder_view(x[..., c], mask[..., c])
                for part, c in zip(self.parts, self._indices(x.device), strict=True)
            ],
            dim=-1,
        )

    def mean(self, distribution: JointObservation) -> torch.Tensor:
        means = [p.mean(d) for p, d in zip(self.parts, distribution.parts, strict=True)]
        return distribution._gather(means, means[0])

    def imputation_statistics(self, distribution: JointObservation) -> torch.Tensor:
        return torch.cat(
            [
                p.imputation_statistics(d)
                for p, d in zip(self.parts, distribution.parts, strict=True)
            ],
            dim=-1,
        )

    def point_estimate(self, statistics: torch.Tensor) -> torch.Tensor:
        widths = [
            p.point_estimate_width(len(c)) for p, c in zip(self.parts, self.columns, strict=True)
        ]
        values = [
            part.point_estimate(statistics[..., where])
            for part, where in zip(self.parts, self._slices(widths), strict=True)
        ]
        return _place_columns(values, self._indices(statistics.device), statistics, self.n_features)

    def check_data(self, X: np.ndarray) -> None:
        for part, columns in zip(self.parts, self.columns, strict=True):
            part.check_data(X[:, columns])

    @property
    def has_reparameterized_sample(self) -> bool:  # type: ignore[override]
        # Some columns suffice: a model of the mask then covers those (see below).
        return any(part.has_reparameterized_sample for part in self.parts)

    def _column_flags(self, flags_of: Callable[[Likelihood, int], torch.Tensor]) -> torch.Tensor:
        """A per-column bool (D,) gathered from each block's ``flags_of(part, width)``."""
        flags = torch.zeros(self.n_features, dtype=torch.bool)
        for part, columns in zip(self.parts, self.columns, strict=True):
            flags[columns] = flags_of(part, len(columns))
        return flags

    def reparameterized_columns(self, n_features: int) -> torch.Tensor:
        return self._column_flags(lambda part, width: part.reparameterized_columns(width))

    def whole_number_columns(self, n_features: int) -> torch.Tensor:
        return self._column_flags(lambda part, width: part.whole_number_columns(width))

    def reparameterized_sample(self, distribution: JointObservation, noise: torch.Tensor):
        """Reparameterised draws of the columns whose likelihood has them; 0 in the others
        (categories, flags, counts), which a model of the mask then leaves out."""
        draws = []
        for part, block, columns in zip(
            self.parts, distribution.parts, distribution.columns, strict=True
        ):
            if part.has_reparameterized_sample:
                draws.append(part.reparameterized_sample(block, noise[..., columns]))
            else:
                draws.append(torch.zeros(block.batch_shape, dtype=noise.dtype, device=noise.device))
        return distribution._gather(draws, draws[0])

    def support_values(self, distribution: JointObservation, draws: torch.Tensor) -> torch.Tensor:
        values = [
            part.support_values(block, draws[..., columns])
            for part, block, columns in zip(
                self.parts, distribution.parts, distribution.columns, strict=True
            )
        ]
        return distribution._gather(values, values[0])


_LIKELIHOODS: dict[str, type[Likelihood]] = {
    "gaussian": GaussianLikelihood,
    "student_t": StudentTLikelihood,
    "bernoulli": BernoulliLikelihood,
    "categorical": CategoricalLikelihood,
    "poisson": PoissonLikelihood,
    "discretized_gaussian": DiscretizedGaussianLikelihood,
}


def make_likelihood(likelihood: str | Likelihood) -> Likelihood:
    """Build an observation model from its name, or copy a :class:`Likelihood` instance."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    try:
        return _LIKELIHOODS[likelihood]()
    except KeyError:
        raise ValueError(
            f"likelihood={likelihood!r} is not one of {sorted(_LIKELIHOODS)}."
        ) from None
