"""FlowDensityEstimator: RealNVP density estimation with the KernelDensity interface."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from impute_dgm._device import chunk_elements, draw_seed, make_generator
from impute_dgm._progress import progress_bar
from impute_dgm._validation import check_array_input, check_integer_levels
from impute_dgm.estimators._base import TorchEstimatorMixin
from impute_dgm.estimators._base_mixture import fit_base_mixture, mixture_module
from impute_dgm.flows import Affine, Flow, Logit, make_image_flow, make_tabular_flow
from impute_dgm.flows.dequantization import UniformDequantizer, VariationalDequantizer

# Smallest column spread the flow's float32 standardisation can represent safely.
TINY_SPREAD = 1e-30
# Largest magnitude the flow trains on: its data tensors are float32 (at most 3.4e38).
MAX_TRAINING_VALUE = 1e38


class FlowDensityEstimator(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimatorMixin, BaseEstimator
):
    """Density estimation with a normalising flow (spline or RealNVP couplings).

    The flow maps a row x to a code u = f(x) with a base distribution p_u, and
    log p(x) = log p_u(f(x)) + log|det df/dx|. Tabular data get rational-quadratic spline
    couplings with alternating masks on standardised columns (the standardisation is part of
    the density), on a base that is a Gaussian mixture fitted to the data: the flow starts
    where a cross-validated ``GaussianMixture`` ends and learns what it misses.
    Images get RealNVP's multi-scale architecture with checkerboard and channel-wise masks and
    squeezing. Discrete data (pixel levels, counts) can be dequantised: the model is then a
    density over x + u with noise u in [0, 1)^D, uniform or learned (variational), and
    ``score_samples`` estimates a lower bound on the log-probability of the discrete row (bin
    width 1, so no log bin-width term in the original units).

    Like :class:`sklearn.neighbors.KernelDensity`: ``fit``, ``score_samples`` (log density per
    row, nats), ``score`` (the mean log density) and ``sample``; plus ``transform`` (x to u)
    and ``inverse_transform`` (u to x).

    Parameters
    ----------
    n_layers : int, default=4
        Coupling layers (tabular), or coupling layers per scale (image).
    hidden_dims : tuple of int, default=(64, 64)
        Hidden widths of the MLP conditioners (tabular).
    coupling : {"spline", "affine"}, default="spline"
        Tabular couplings: affine (RealNVP) or monotonic rational-quadratic splines on
        [-5, 5] in standardised units with identity tails (neural spline flows, Durkan et al.
        2019), far more flexible per layer.
    n_bins : int, default=32
        Bins of each spline (``coupling="spline"``). Many bins cost little (the conditioner's
        last layer) and let sharp edges (a chequerboard, discrete-valued columns) be followed.
    base : {"mixture", "normal"}, default="mixture"
        Base distribution of tabular flows on continuous data: a mixture of Gaussians fitted
        to the standardised training rows and trained further with the couplings, or N(0, I).
        Image and dequantised flows, and a table of one row, use N(0, I).
    n_components : int or "auto", default="auto"
        Components of the mixture base. "auto" chooses 1, 2 or 4 components and full or
        diagonal covariances by 3-fold cross-validated log-likelihood on at most 5,000 rows (a
        coarse start: the couplings add the detail); an int fits that many full-covariance
        components.
    architecture : {"tabular", "image"}, default="tabular"
        Flat couplings with alternating masks, or the multi-scale image flow.
    image_shape : tuple (C, H, W) or (H, W), default=None
        Shape of each row as an image; required with ``architecture="image"``.
    n_scales : int, default=2
        Scales of the image architecture.
    hidden_channels : int, default=64
        Width of the convolutional conditioners (image).
    n_blocks : int, default=2
        Residual blocks per convolutional conditioner (image).
    normalization : {None, "actnorm", "batchnorm"}, default=None
        Normalisation layer after each coupling (exact log-determinants).
    invertible_linear : bool, default=False
        An LU-parametrised invertible linear layer after each tabular coupling (starting as a
        random permutation), so that every feature conditions every other.
    dequantize : bool or {"uniform", "variational"}, default=False
        Treat the data as integer levels 0..L-1, add noise u in [0, 1) and logit-transform
        (x + u) / L into the real line before the couplings. ``True`` or "uniform": u is
        uniform (RealNVP). "variational": u is drawn from a learned q(u | x), trained with the
        flow on the bound log P(x) >= E_q[log p(x + u) - log q(u | x)] (Flow++'s variational
        dequantisation), which tightens the bound.
    n_levels : int, default=None
        Number of discrete levels L; inferred as max(X) + 1 when None.
    n_dequantization_samples : int, default=10
        Noise draws K of ``score_samples`` for dequantised data (an importance-weighted bound:
        larger K, tighter bound).
    logit_alpha : float, default=0.05
        Margin of the logit transform for dequantised data: (x + u) / L is squeezed into
        [alpha, 1 - alpha] before the logit, so the density stays finite at the edges. The
        continuous density then puts a little mass outside [0, L) (about 3% in the tests), so
        the discrete model is sub-normalised and ``score_samples`` stays a lower bound.
    n_epochs : int or "auto", default="auto"
        Maximum passes over the training rows. "auto": 400 up to 4,096 rows, then fewer as the
        table grows (the rows seen grow like n ** 0.3; see :mod:`impute_dgm.budget`). With
        early stopping and the plateau schedule most fits end well before.
    batch_size : int or "auto", default="auto"
        Rows per step. "auto": 128 up to 4,096 rows, doubled each time the table quadruples
        beyond, at most 2,048.
    lr : float, default=3e-3
    lr_schedule : {"constant", "cosine", "plateau"}, default="plateau"
        "cosine" anneals the rate to ``lr / 100`` over ``n_epochs``; "plateau" cuts it when
        the held-out (or training) loss stops improving, and early stopping waits for the
        cuts (see :class:`~impute_dgm.training.Trainer`).
    weight_decay : float, default=0.0
    weight_averaging : float or None, default=None
        Decay per step of an exponential moving average of the weights (Polyak averaging,
        which Glow and Flow++ report held-out likelihoods with); validation, early stopping
        and the fitted flow use the averaged weights. It averages over about
        ``1 / (1 - weight_averaging)`` steps, so it suits fits of many more steps than that
        (0.999 on 10,000 rows of batches of 128: 14 epochs). None keeps the raw weights.
    early_stopping : bool, default=True
        On by default: flows overfit, and the held-out log-likelihood is the quantity of
        interest.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
    eval_dtype : {"auto", "float64", "float32"}, default="auto"
        Precision of ``score_samples`` and of the exact maps (``transform`` and its inverse).
        "auto": float64 on the CPU, where a row's score then does not depend on which rows
        share its batch, and float32 on accelerators. "float32" on the CPU scored digits 1.9
        times as fast, within 0.01 nats a row. Training is float32 either way.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    callbacks : sequence of callables or None, default=None
    warm_start : bool, default=False
        When fitted already, ``fit`` continues training the flow for another ``n_epochs``
        (fresh optimiser state) with the first fit's scaling and levels.

    Attributes
    ----------
    model_ : Flow
    history_ : TrainingHistory
    n_epochs_ : int
    n_levels_ : int or None
        Discrete levels used for dequantisation.
    base_mixture_ : sklearn.mixture.GaussianMixture or None
        The mixture the base started from (``base="mixture"``); the trained base is in
        ``model_.base``.
    n_features_in_, feature_names_in_

    References
    ----------
    L. Dinh, J. Sohl-Dickstein and S. Bengio. Density estimation using Real NVP. ICLR 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from impute_dgm import FlowDensityEstimator
    >>> X = np.random.default_rng(0).normal(size=(500, 2))
    >>> flow = FlowDensityEstimator(n_layers=4, hidden_dims=(32,), n_epochs=5, random_state=0)
    >>> flow.fit(X).score_samples(X[:3]).shape
    (3,)
    """

    _base_n_epochs = 400
    _base_batch_size = 128

    _parameter_constraints: dict = {
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": ["array-like"],
        "coupling": [StrOptions({"affine", "spline"})],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "base": [StrOptions({"mixture", "normal"})],
        "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "architecture": [StrOptions({"tabular", "image"})],
        "image_shape": ["array-like", None],
        "n_scales": [Interval(Integral, 1, None, closed="left")],
        "hidden_channels": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 0, None, closed="left")],
        "normalization": [StrOptions({"actnorm", "batchnorm"}), None],
        "invertible_linear": ["boolean"],
        "dequantize": ["boolean", StrOptions({"uniform", "variational"})],
        "n_levels": [Interval(Integral, 2, None, closed="left"), None],
        "n_dequantization_samples": [Interval(Integral, 1, None, closed="left")],
        "logit_alpha": [Interval(Real, 0, 0.5, closed="neither")],
        "callbacks": [list, tuple, None],
        **TorchEstimatorMixin._torch_parameter_constraints,
        "weight_averaging": [Interval(Real, 0, 1, closed="neither"), None],
    }

    def __init__(
        self,
        *,
        n_layers: int = 4,
        hidden_dims: Sequence[int] = (64, 64),
        coupling: str = "spline",
        n_bins: int = 32,
        base: str = "mixture",
        n_components: int | str = "auto",
        architecture: str = "tabular",
        image_shape: Sequence[int] | None = None,
        n_scales: int = 2,
        hidden_channels: int = 64,
        n_blocks: int = 2,
        normalization: str | None = None,
        invertible_linear: bool = False,
        dequantize: bool | str = False,
        n_levels: int | None = None,
        n_dequantization_samples: int = 10,
        logit_alpha: float = 0.05,
        n_epochs: int | str = "auto",
        batch_size: int | str = "auto",
        lr: float = 3e-3,
        lr_schedule: str = "plateau",
        weight_decay: float = 0.0,
        weight_averaging: float | None = None,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device: str | torch.device = "auto",
        eval_dtype: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: Sequence | None = None,
        warm_start: bool = False,
    ) -> None:
        self.n_layers = n_layers
        self.hidden_dims = hidden_dims
        self.coupling = coupling
        self.n_bins = n_bins
        self.base = base
        self.n_components = n_components
        self.architecture = architecture
        self.image_shape = image_shape
        self.n_scales = n_scales
        self.hidden_channels = hidden_channels
        self.n_blocks = n_blocks
        self.normalization = normalization
        self.invertible_linear = invertible_linear
        self.dequantize = dequantize
        self.n_levels = n_levels
        self.n_dequantization_samples = n_dequantization_samples
        self.logit_alpha = logit_alpha
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.weight_averaging = weight_averaging
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.eval_dtype = eval_dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start

    # --- model -------------------------------------------------------------------------
    def _image_shape(self) -> tuple[int, int, int]:
        if self.image_shape is None:
            raise ValueError("architecture='image' needs image_shape=(C, H, W) or (H, W).")
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or math.prod(shape) != self.n_features_in_:
            raise ValueError(
                f"image_shape={self.image_shape!r} does not hold the {self.n_features_in_} "
                "features of each row."
            )
        return shape

    def _build_model(self) -> Flow:
        dequantizer = None
        if self.dequantize:
            preprocessing = [Logit(self.n_levels_, self.logit_alpha)]
            # Uniform noise has no parameters: files saved before dequantisers load unchanged.
            dequantizer = (
                VariationalDequantizer(
                    self.n_features_in_, self.n_levels_, tuple(int(h) for h in self.hidden_dims)
                )
                if self.dequantize == "variational"
                else UniformDequantizer()
            )
        else:
            preprocessing = [
                Affine(
                    torch.as_tensor(self.scaler_.mean_, dtype=torch.float32),
                    torch.as_tensor(self.scaler_.scale_, dtype=torch.float32),
                )
            ]
        if self.architecture == "image":
            return make_image_flow(
                self._image_shape(),
                self.n_scales,
                self.n_layers,
                self.hidden_channels,
                self.n_blocks,
                self.normalization,
                preprocessing,
                dequantizer=dequantizer,
            )
        return make_tabular_flow(
            self.n_features_in_,
            self.n_layers,
            tuple(int(h) for h in self.hidden_dims),
            self.normalization,
            preprocessing,
            coupling=self.coupling,
            n_bins=self.n_bins,
            base=None if self.base_mixture_ is None else mixture_module(self.base_mixture_),
            linear=self.invertible_linear,
            dequantizer=dequantizer,
        )

    # What estimators saved before these parameters existed were fitted with.
    _SAVED_BEFORE = {
        "coupling": "affine",
        "n_bins": 8,
        "base": "normal",
        "n_components": "auto",
        "base_mixture_": None,
        "invertible_linear": False,
    }

    def __setstate__(self, state: dict) -> None:
        # An older file lacks the newer parameters: give them the behaviour it was fitted with,
        # so that it loads, scores, reports get_params and refits as before.
        super().__setstate__({**self._SAVED_BEFORE, **state})

    def _check_levels(self, X: np.ndarray) -> None:
        check_integer_levels(X, self.n_levels_, "dequantize=True")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A density estimator first (score_samples is what it is for); transform is extra.
        tags.estimator_type = "density_estimator"
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> FlowDensityEstimator:
        """Fit the flow by maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Complete data (NaN is refused: impute first, e.g. with VAEImputer).
        y : None
            Ignored.

        Returns
        -------
        self : FlowDensityEstimator
        """
        warm = self._warm()
        X = check_array_input(self, X, reset=not warm, allow_nan=False, max_abs=MAX_TRAINING_VALUE)
        if warm:
            if self.dequantize:
                self._check_levels(X)
            random_state, device = self._start_fit()
            self.model_.to(device)
        else:
            self.n_levels_ = None
            if self.dequantize:
                self.n_levels_ = int(self.n_levels if self.n_levels else X.max() + 1)
                self.n_levels_ = max(self.n_levels_, 2)
                self._check_levels(X)
            # Continuous data enter the flow standardised (an Affine layer, so densities stay
            # in the data's units); dequantised levels go through the logit instead.
            self.scaler_ = None if self.dequantize else StandardScaler().fit(X)
            if self.scaler_ is not None and (self.scaler_.scale_ < TINY_SPREAD).any():
                # The flow standardises in float32, where such a scale underflows to 0.
                tiny = np.flatnonzero(self.scaler_.scale_ < TINY_SPREAD)
                raise ValueError(
                    f"Column(s) {tiny[:5].tolist()} vary by less than {TINY_SPREAD:g}: too little "
                    "to standardise in float32; rescale them."
                )
            random_state, device = self._start_fit()
            self.base_mixture_ = None
            if self.base == "mixture" and self.architecture == "tabular" and not self.dequantize:
                self.base_mixture_ = fit_base_mixture(
                    self.scaler_.transform(X), self.n_components, random_state
                )
            self.model_ = self._build_seeded(draw_seed(random_state), device)
            self._eval_seed = draw_seed(random_state)
        dequantize = self.dequantize
        validation_noise = None

        def dequantized_log_prob(x, noise):
            """log p(x + u) - log q(u | x): the bound on log P(x) of one noise draw."""
            u, log_q = self.model_.dequantizer(x, noise)
            return self.model_.log_prob(x + u) - log_q

        def loss(batch, generator):
            (x,) = batch
            if dequantize:
                noise = torch.rand(x.shape, generator=generator, device=x.device)
                return -dequantized_log_prob(x, noise).mean()
            return -self.model_.log_prob(x).mean()

        def evaluate(data):
            nonlocal validation_noise
            (x,) = data
            if dequantize:
                if validation_noise is None:  # one fixed draw: a comparable number per epoch
                    validation_noise = torch.rand(
                        x.shape, generator=self._eval_generator(device), device=device
                    )
                return float(-dequantized_log_prob(x, validation_noise).mean())
            return float(-self.model_.log_prob(x).mean())

        if self.normalization is not None and not warm:
            self._initialize_normalization(X, device, random_state)
        data = (torch.tensor(X, dtype=torch.float32, device=device),)
        self.history_ = self._train(
            loss, evaluate, data, random_state, device, "FlowDensityEstimator"
        )
        self.n_epochs_ = len(self.history_.train_loss)
        self._n_features_out = self.n_features_in_
        return self

    def _initialize_normalization(self, X, device, random_state) -> None:
        """Run one training-mode pass on a batch so ActNorm initialises from data."""
        rows = random_state.choice(X.shape[0], min(X.shape[0], 512), replace=False)
        x = torch.as_tensor(X[rows], dtype=torch.float32, device=device)
        if self.dequantize:
            x = x + 0.5
        self.model_.train()
        with torch.no_grad():
            self.model_(x)

    # --- evaluation --------------------------------------------------------------------
    def _rows_per_chunk(self, device: torch.device) -> int:
        width = self.n_features_in_ * max(self.hidden_channels, 64)
        return max(1, chunk_elements(device) // width)

    def score_samples(self, X) -> np.ndarray:
        """Log density of each row, in nats of the original units.

        With ``dequantize`` set this is the importance-weighted bound
        log (1/K) sum_k p(x + u_k) / q(u_k | x) over K = ``n_dequantization_samples`` noise
        draws (Burda et al., 2016): a lower bound on log P(x) of the discrete row in
        expectation, tighter as K grows (q = 1 for uniform dequantisation).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = check_array_input(self, X, reset=False, allow_nan=False)
        device = self._runtime_device()
        model, dtype = self._evaluation_model(device)
        n_draws = self.n_dequantization_samples if self.dequantize else 1
        noise = None
        if self.dequantize:
            self._check_levels(X)
            # The same draws for every row (common random numbers): results do not depend on
            # the batch a row is scored with.
            noise = torch.rand(
                n_draws, 1, X.shape[1], generator=self._eval_generator(device), device=device
            ).to(dtype)
        x_all = torch.tensor(X, dtype=dtype, device=device)
        # Chunks write into one array made once: small results kept chunk by chunk would pin
        # the freed pages of the chunks' temporaries (see VAEImputer's evaluation).
        scores = torch.empty(X.shape[0], dtype=dtype, device=device)
        rows_per_chunk = max(1, self._rows_per_chunk(device) // n_draws)
        bar = progress_bar(
            total=X.shape[0],
            show=self.verbose >= 1 and X.shape[0] > rows_per_chunk,
            description="scoring",
            unit="rows",
        )
        with torch.no_grad(), bar:
            for rows in self._row_chunks(X.shape[0], rows_per_chunk):
                x = x_all[rows]
                if noise is None:
                    scores[rows] = model.log_prob(x)
                else:
                    x_draws = x[None].expand(n_draws, *x.shape)
                    u, log_q = model.dequantizer(x_draws, noise.expand_as(x_draws))
                    log_p = model.log_prob((x_draws + u).reshape(-1, X.shape[1]))
                    log_weights = log_p.reshape(n_draws, -1) - log_q
                    scores[rows] = torch.logsumexp(log_weights, 0) - math.log(n_draws)
                bar.update(rows.stop - rows.start)
        return scores.cpu().numpy().astype(np.float64)

    def score(self, X, y=None) -> float:
        """Mean log density per row (higher is better; what model selection maximises).

        Note that :class:`~sklearn.neighbors.KernelDensity` returns the sum; the mean is
        comparable across data sets of different sizes.
        """
        return float(np.mean(self.score_samples(X)))

    def bits_per_dim(self, X) -> float:
        """-score(X) / (n_features * log 2): the usual unit for discrete (image) data."""
        return -self.score(X) / (self.n_features_in_ * math.log(2))

    def _map(self, values: np.ndarray, inverse: bool, exact: bool = True) -> np.ndarray:
        """Apply the flow (or its inverse) in chunks; ``exact`` uses the float64 CPU copy."""
        device = self._runtime_device()
        if exact:
            model, dtype = self._evaluation_model(device)
        else:
            model, dtype = self.model_, torch.float32
        tensor = torch.tensor(values, dtype=dtype, device=device)
        outputs = torch.empty_like(tensor)  # filled chunk by chunk (see score_samples)
        with torch.no_grad():
            for rows in self._row_chunks(len(values), self._rows_per_chunk(device)):
                mapped = model.inverse(tensor[rows]) if inverse else model(tensor[rows])
                outputs[rows] = mapped[0]
        return outputs.cpu().numpy().astype(np.float64)

    def transform(self, X) -> np.ndarray:
        """Map rows to their latent codes u = f(x), distributed as the base under the model
        (N(0, I), or the trained mixture of ``base="mixture"``).

        Dequantised rows are mapped from the centre of their bin, x + 0.5.
        """
        check_is_fitted(self)
        X = check_array_input(self, X, reset=False, allow_nan=False)
        return self._map(X + 0.5 if self.dequantize else X, inverse=False)

    def inverse_transform(self, U) -> np.ndarray:
        """Map latent codes back to data space (levels are floored for dequantised data)."""
        check_is_fitted(self)
        U = np.asarray(U, dtype=np.float64)
        if U.ndim != 2 or U.shape[1] != self.n_features_in_:
            raise ValueError(
                f"U must have shape (n_samples, {self.n_features_in_}), got {U.shape}."
            )
        return self._to_data(self._map(U, inverse=True))

    def _to_data(self, values: np.ndarray) -> np.ndarray:
        if self.dequantize:
            return np.clip(np.floor(values), 0, self.n_levels_ - 1)
        return values

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw rows from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None uses a fresh seed from numpy's global generator.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        device = self._runtime_device()
        seed = draw_seed(check_random_state(random_state))
        u = self.model_.base.sample(n_samples, make_generator(seed, device))
        # Float32 is enough here: samples need no batch-independence to 1e-7, and speed counts.
        return self._to_data(self._map(u.cpu().numpy(), inverse=True, exact=False))
