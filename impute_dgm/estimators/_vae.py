"""What every VAE estimator shares: the model, its fit by the importance-weighted bound, the
batched Monte Carlo evaluation, and ``score_samples``."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from impute_dgm._device import chunk_elements, draw_seed, make_generator, seeded_torch
from impute_dgm._progress import progress_bar
from impute_dgm._validation import check_table_input
from impute_dgm.distributions.likelihoods import Likelihood
from impute_dgm.distributions.missingness import make_missingness
from impute_dgm.distributions.networks import ACTIVATIONS
from impute_dgm.distributions.priors import PRIORS, Prior, VampPrior, make_prior
from impute_dgm.estimators._base import BaseTorchEstimator, _floating_masks
from impute_dgm.hidden_cells import ROWS_PER_CHUNK as VALIDATION_ROWS_PER_CHUNK
from impute_dgm.models import DeepLatentVariableModel
from impute_dgm.schema import TableSchema
from impute_dgm.training import Trainer

# Parameter docs shared by the VAE estimators' docstrings.
VAE_PARAMETERS_DOC = """latent_dim : int, default=10
        Dimension of z.
    hidden_dims : tuple of int, default=(128, 128)
        Hidden widths of the encoder and decoder MLPs.
    activation : {"auto", "silu", "tanh", "elu", "gelu", "relu"}, default="auto" \
(VAEImputer) or "tanh" (VAEEmbedder, VAEClassifier)
        Hidden activation of every MLP. A saturating tanh cannot follow rows far from the bulk
        (a cell 11 standard deviations out was imputed near 2); SiLU extrapolates. "auto": SiLU
        under ``missingness="mar"`` (breast cancer, 20% MCAR: RMSE 0.41 against 0.45 with
        tanh), tanh with a model of the mask, which SiLU made unstable.
    likelihood : {"auto", "gaussian", "student_t", "bernoulli", "categorical", "poisson", \
"discretized_gaussian"} or Likelihood, default="auto" (VAEImputer, VAEClassifier) or \
"gaussian" (VAEEmbedder)
        Observation model of every column of an array, and of the float columns of a
        DataFrame. The Gaussian's standard deviation is floored (``min_scale``) because the
        likelihood is otherwise unbounded; "categorical" models integer levels 0..n_levels-1
        (e.g. pixel intensities). "auto" chooses per column: "discretized_gaussian" (lenient
        about fractions at ``transform``) where every observed value is a whole number and the
        column is not constant, "gaussian" elsewhere and under a model of the mask. Imputations
        of such columns are conditional means, not rounded (arrays stay floats). The rounded
        normal is censored at the lowest and highest values seen in ``fit`` (its tails are
        the mass of the end points), so imputations and draws stay within that range.
    column_likelihoods : dict or None, default=None
        Per-column observation models, keyed by column name (DataFrames) or position (arrays),
        with the names above or ``Likelihood`` objects. Columns not named get one from their
        dtype: float -> ``likelihood``; integer (``int64``, ``Int64``) -> "discretized_gaussian"
        (a Gaussian on the column's integer grid; imputed as integers); bool / ``boolean`` ->
        "bernoulli"; ``category``, ``string`` and text -> "categorical" over the levels seen in
        ``fit`` (the encoder sees them one-hot; imputed as the most probable level).
    handle_unknown : {"error", "missing"}, default="error"
        A category level that ``fit`` never saw: a ValueError naming column and level, or a
        missing value.
    prior : {"standard", "mog", "vamp", "flow"} or Prior, default="standard"
        Prior p(z): N(0, I), a mixture of ``n_components`` Gaussians, a VampPrior with
        ``n_components`` pseudo-inputs, or a RealNVP flow over z.
    n_components : int, default=10
        Mixture components ("mog") or pseudo-inputs ("vamp").
    n_importance : int, default=20
        Importance samples K per row in the training bound (K = 1 is a plain VAE).
    kl_warmup : int, default=0
        Epochs over which the weight of log p(z) - log q(z | x) in the training bound grows
        linearly from 0 to 1 (KL warm-up, Sønderby et al. 2016); it keeps learned priors, the
        VampPrior above all, from collapsing early. Early stopping only watches the epochs after
        it.
    n_eval_samples : int, default=500
        Importance samples per row in ``transform`` (imputer) and ``score_samples``. The cost
        of evaluation grows in proportion; on breast cancer with 50% missing, imputation RMSE
        was 0.5463 at 1000, 0.5466 at 500, 0.5501 at 200 and 0.5579 at 50 samples
        (``benchmarks/scaling.py``), so 500 halves the time of 1000 at no accuracy worth
        having.
    eval_dtype : {"auto", "float64", "float32"}, default="auto"
        Precision of evaluation (``transform``, ``score_samples``, ``predict_proba``, ...).
        "auto": float64 on the CPU, where a row's result then does not depend on which rows
        share its batch (float32 matrix products round differently with the batch's shape;
        scikit-learn's invariance checks ask for 1e-7), and float32 on accelerators.
        "float32" on the CPU transformed a 30-column table 1.8-2.4 times as fast with the
        same RMSE to 4 digits, at the price of that invariance (results agree to float32
        rounding, about 1e-6). Training is float32 either way.
    mask_input : bool, default=True
        Whether the encoder sees the missingness mask beside the zero-filled data.
    n_epochs : int or "auto", default="auto"
        Maximum passes over the training rows. "auto": 300 up to 4,096 rows (small tables
        train as they always did), then fewer as the table grows, so that the rows seen in all
        grow like n ** 0.3 (e.g. 161 epochs at 10,000 rows, 7 at a million; see
        :mod:`impute_dgm.budget`). VAEImputer keeps 300 epochs up to 16,384 rows, then
        its rows seen grow like n ** 0.08 (57 epochs at 100,000 rows, 7 at a million): at
        10,000 rows 161 epochs imputed 1.4-1.6% worse than 300. Its MAR model trains tables
        of 256 to 4,096 rows for at least 6,000 steps, at most 600 epochs (600 up to 640
        rows, 375 at 1,000, 300 above 1,216): 300 epochs left such tables under-trained. The
        resolved settings are in ``budget_``.
    batch_size : int or "auto", default="auto"
        Rows per Adam step. "auto": 64 up to 4,096 rows, doubled each time the table
        quadruples beyond (256 at 100,000 rows), at most 1,024 (VAEImputer's self-masking
        model and VAEClassifier take 16 up to 4,096 rows, see ``missingness`` and
        ``alpha``).
    lr : float, default=1e-3
        Adam learning rate.
    lr_schedule : {"constant", "cosine", "plateau"}, default="constant"
        Learning-rate schedule; "cosine" anneals it to ``lr / 100`` over ``n_epochs``;
        "plateau" cuts it when the held-out (or training) loss stops improving (see
        :class:`~impute_dgm.training.Trainer`).
    weight_decay : float, default=0.0
        Adam weight decay.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows (at most 10,000), stop when their
        validation loss has not improved for ``n_iter_no_change`` epochs, and keep the best
        weights (needs at least 10 rows). "auto" turns it on above 4,096 rows (VAEImputer:
        above 16,384), where holding rows out costs little. ``VAEImputer``'s validation loss
        is its imputation error on observed cells of the held-out rows hidden for the purpose
        (what an imputer is for: on breast cancer the held-out bound peaks long before the
        imputations stop improving); the other estimators use the held-out bound.
    validation_fraction : float, default=0.1
        Share of rows held out for early stopping.
    n_iter_no_change : int, default=30
        Patience of early stopping, in epochs.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to compute; "auto" uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and the Monte Carlo draws of
        evaluation; an int gives identical results across fits.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar over epochs.
    callbacks : sequence of callables or None, default=None
        Each is called as ``callback(epoch, logs)`` after every epoch (e.g. MLflow logging).
    warm_start : bool, default=False
        When the estimator is fitted already, ``fit`` continues training its weights for
        another ``n_epochs`` (fresh optimiser state) instead of starting over; the column
        schema and scaling of the first fit are kept, so ``X`` must have the same columns.
        ``history_`` and ``n_epochs_`` then describe the last call."""


class BaseVAE(BaseTorchEstimator):
    """Base class of the VAE estimators (not for direct use)."""

    _parameter_constraints: dict = {
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": ["array-like"],
        "activation": [StrOptions({"auto", *ACTIVATIONS})],
        "likelihood": [
            StrOptions(
                {
                    "auto",
                    "gaussian",
                    "student_t",
                    "bernoulli",
                    "categorical",
                    "poisson",
                    "discretized_gaussian",
                }
            ),
            Likelihood,
        ],
        "column_likelihoods": [dict, None],
        "handle_unknown": [StrOptions({"error", "missing"})],
        "prior": [StrOptions(set(PRIORS)), Prior],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_importance": [Interval(Integral, 1, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "n_eval_samples": [Interval(Integral, 1, None, closed="left")],
        "mask_input": ["boolean"],
        "callbacks": [list, tuple, None],
        **BaseTorchEstimator._torch_parameter_constraints,
    }

    def __init__(
        self,
        *,
        latent_dim: int = 10,
        hidden_dims: Sequence[int] = (128, 128),
        activation: str = "tanh",
        likelihood: str | Likelihood = "gaussian",
        column_likelihoods: dict | None = None,
        handle_unknown: str = "error",
        prior: str | Prior = "standard",
        n_components: int = 10,
        n_importance: int = 20,
        kl_warmup: int = 0,
        n_eval_samples: int = 500,
        eval_dtype: str = "auto",
        mask_input: bool = True,
        n_epochs: int | str = "auto",
        batch_size: int | str = "auto",
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        weight_decay: float = 0.0,
        early_stopping: bool | str = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 30,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: Sequence | None = None,
        warm_start: bool = False,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.likelihood = likelihood
        self.column_likelihoods = column_likelihoods
        self.handle_unknown = handle_unknown
        self.prior = prior
        self.n_components = n_components
        self.n_importance = n_importance
        self.kl_warmup = kl_warmup
        self.n_eval_samples = n_eval_samples
        self.eval_dtype = eval_dtype
        self.mask_input = mask_input
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def __setstate__(self, state: dict) -> None:
        # Estimators saved before ``activation`` existed hold tanh networks.
        state.setdefault("activation", "tanh")
        super().__setstate__(state)

    # --- model -------------------------------------------------------------------------
    def _build_model(self) -> DeepLatentVariableModel:
        # Fresh copies of the configured pieces: the model owns its modules, and rebuilding
        # (unpickling) gives the same architecture before the weights are loaded.
        return DeepLatentVariableModel(
            n_features=self.n_features_in_,
            latent_dim=self.latent_dim,
            hidden_dims=tuple(int(h) for h in self.hidden_dims),
            likelihood=copy.deepcopy(self.likelihood_),
            prior=copy.deepcopy(self._prior_template),
            mask_input=self.mask_input,
            missingness=make_missingness(getattr(self, "missingness", "mar"), self.n_features_in_),
            activation=self._activation(),
        )

    def _build_seeded(self, seed: int, device: torch.device) -> torch.nn.Module:
        with seeded_torch(seed, device):
            # The prior is made inside the seeded block: a named prior's random initialisation
            # (mixture means, flow weights) must follow random_state, not torch's global seed.
            # It is kept as the template _build_model copies, so unpickling rebuilds the same
            # architecture. A Prior object given by the user is copied, never trained itself.
            self._prior_template = copy.deepcopy(
                make_prior(self.prior, self.latent_dim, self.n_components)
            )
            return self._build_model().to(device)

    def _encode(self, X, *, reset: bool, dtype: type = np.float64) -> tuple[object, np.ndarray]:
        """Validate ``X`` (fitting the column schema when ``reset``) and put it in model units.

        Returns ``X`` as checked (a DataFrame for tables with integer, boolean or category
        columns, else a float64 array) and its model-unit values in ``dtype``, NaN where
        missing (float32 for training: the tensors then share its memory).
        """
        if reset:
            X = check_table_input(self, X, reset=True, forbid_all_missing_columns=True)
            # Under a model of the mask too: the rounded normal of whole numbers is drawn
            # before rounding (self-masked digits, selection draws 5 / 6: 1.27 / 1.26 against
            # 1.38 / 1.34 with a Gaussian for every column; wine 1.03 / 1.02 against 1.02 / 1.04).
            self.schema_ = TableSchema(
                self.likelihood,
                getattr(self, "column_likelihoods", None),
                getattr(self, "handle_unknown", "error"),
            ).fit(X)
        else:
            X = check_table_input(self, X, reset=False, table=self.schema_.is_table_)
        return X, self.schema_.encode(X, dtype)

    def _activation(self) -> str:
        # SiLU follows rows far from the bulk, which imputation under MAR wants. With a model
        # of the mask, a decoder that can reach any value lets the bound explain missing cells
        # by extreme values: tanh keeps the self-masking model stable (suite, MNAR cells:
        # diabetes 1.06 with tanh against 1.29 with SiLU; under MAR data 1.38 against 1.95).
        if self.activation != "auto":
            return self.activation
        return "silu" if getattr(self, "missingness", "mar") == "mar" else "tanh"

    def _encoder_gradient(self) -> str:
        # Doubly reparameterised encoder gradients help the self-masking model, whose encoder
        # is the proposal for both p(x) and p(m | x): on 14 selection cells (seeds 5-6; every
        # table's MNAR cells and wine MCAR 50%) RMSE -0.5% on average, better in 10, at no cost
        # (benchmarks/results/selection_draws_self_masking.json). Under MAR, on top of the
        # step floor, they moved breast cancer and digits by -2.0% to +7.5%: not by default.
        gradient = getattr(self, "encoder_gradient", "standard")
        if gradient != "auto":
            return gradient
        return "dreg" if getattr(self, "missingness", "mar") == "self_masking" else "standard"

    @staticmethod
    def _to_tensors(
        X: np.ndarray,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        boolean_mask: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """(x, mask) tensors from model units: x zero-filled, mask 1 where observed.

        X already in ``dtype`` on the CPU becomes x without a copy, and is zero-filled with it;
        otherwise one copy in ``dtype`` is made (no float64 temporary of the whole table on
        the way to float32). With ``boolean_mask`` the mask stays bool (a byte a cell, not
        four): training keeps it so and makes each batch's float."""
        x = torch.as_tensor(X, dtype=dtype, device=device)
        mask = ~torch.isnan(x)
        return x.nan_to_num_(0.0), mask if boolean_mask else mask.to(dtype)

    def _initialise_model(
        self, X: np.ndarray
    ) -> tuple[np.random.RandomState, torch.device, tuple[torch.Tensor, torch.Tensor]]:
        """Build the seeded model for model-unit data X (from :meth:`_encode`), initialise its
        prior. Returns the random state (for the rest of the fit), the device and (x, mask)."""
        if self._warm():
            random_state, device = self._start_fit()
            self.model_.to(device)
            return random_state, device, self._to_tensors(X, device, boolean_mask=True)
        self.likelihood_ = self.schema_.likelihood_
        missingness = getattr(self, "missingness", "mar")
        if missingness != "mar" and not self.likelihood_.has_reparameterized_sample:
            raise ValueError(
                f"missingness={missingness!r} draws the missing values by reparameterisation "
                "inside the bound, which only likelihood='gaussian' offers: no column has it "
                f"(got {type(self.likelihood_).__name__})."
            )
        random_state, device = self._start_fit()
        self.model_ = self._build_seeded(draw_seed(random_state), device)
        self._eval_seed = draw_seed(random_state)
        data = self._to_tensors(X, device, boolean_mask=True)
        self.model_.prior.initialize(*data, make_generator(draw_seed(random_state), device))
        if getattr(self.model_, "missingness", None) is not None:
            self.model_.missingness.fit_range(*data)
        return random_state, device, data

    def _train_with_kl_warmup(self, loss, evaluate, data, random_state, device):
        """Run the shared Trainer with ``loss(batch, generator, kl_weight)``.

        The weight grows linearly to 1 over the first ``kl_warmup`` epochs (1 without warm-up),
        and early stopping ignores those epochs. Sets ``history_`` and ``n_epochs_``.
        """
        kl_weight = 1.0

        def set_kl_weight(epoch: int) -> None:
            nonlocal kl_weight
            kl_weight = min(1.0, (epoch + 1) / self.kl_warmup) if self.kl_warmup else 1.0

        self.history_ = self._train(
            lambda batch, generator: loss(batch, generator, kl_weight),
            evaluate,
            data,
            random_state,
            device,
            type(self).__name__,
            warmup_epochs=self.kl_warmup,
            on_epoch_start=set_kl_weight,
        )
        self.n_epochs_ = len(self.history_.train_loss)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to (possibly incomplete) data by the importance-weighted bound.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN marking missing values. Every column needs an observed value.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        # Only the model units are kept, in float32: the checked copy of X is dropped at once
        # and the training tensors share the units' memory (memory: 0.6 x a float64 table).
        X_model = self._encode(X, reset=not self._warm(), dtype=np.float32)[1]
        random_state, device, data = self._initialise_model(X_model)
        del X_model  # the tensors hold the table now
        proposal_epochs = getattr(self, "proposal_epochs", 0)
        if proposal_epochs and isinstance(self.model_.prior, VampPrior):
            raise ValueError(
                f"proposal_epochs={proposal_epochs} trains the encoder after the fit, but "
                "prior='vamp' computes p(z) with that encoder, so the model itself would "
                "change; use proposal_epochs=0 with the VampPrior."
            )
        noise_dim, n_importance = self.model_.noise_dim, self.n_importance
        bound = (
            self.model_.doubly_reparameterized_bound
            if self._encoder_gradient() == "dreg"
            else self.model_.bound
        )

        def loss(batch, generator, kl_weight):
            x, mask = batch
            noise = torch.randn(
                n_importance, x.shape[0], noise_dim, generator=generator, device=device
            )
            return -bound(x, mask, noise, kl_weight).mean()

        self._train_with_kl_warmup(loss, self._validation_loss(device), data, random_state, device)
        if proposal_epochs:
            self._refine_proposal(proposal_epochs, data, random_state, device)
        return self

    def _refine_proposal(
        self,
        n_epochs: int,
        data: tuple[torch.Tensor, torch.Tensor],
        random_state: np.random.RandomState,
        device: torch.device,
    ) -> None:
        """Train the encoder alone for ``n_epochs`` by its wake-phase objective
        (:meth:`DeepLatentVariableModel.proposal_loss`), the fitted p(x, z) frozen: q(z | x, m)
        then fits the model's posterior as an importance sampling proposal should, and the
        estimates of ``transform`` and ``score_samples`` improve for a given number of draws.
        Sets ``proposal_history_``."""
        model, n_importance = self.model_, self.n_importance
        encoder = {id(p) for p in model.encoder.parameters()}
        frozen = [p for p in model.parameters() if id(p) not in encoder and p.requires_grad]

        def loss(batch, generator):
            x, mask = _floating_masks(batch)
            noise = torch.randn(
                n_importance, x.shape[0], model.noise_dim, generator=generator, device=device
            )
            return model.proposal_loss(x, mask, noise).mean()

        trainer = Trainer(
            n_epochs=n_epochs,
            batch_size=self.budget_.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            verbose=self.verbose,
            description="proposal",
        )
        # Frozen parameters get no gradient (and no all-reduce under DistributedDataParallel).
        for parameter in frozen:
            parameter.requires_grad_(False)
        try:
            self.proposal_history_ = trainer.fit(
                model, loss, data, make_generator(draw_seed(random_state), device)
            )
        finally:
            for parameter in frozen:
                parameter.requires_grad_(True)

    def _validation_noise(self, generator: torch.Generator) -> torch.Tensor:
        """K importance draws shared by every held-out row and reused every epoch, so that the
        validation losses of successive epochs compare."""
        return torch.randn(
            self.n_importance,
            1,
            self.model_.noise_dim,
            generator=generator,
            device=generator.device,
        )

    def _validation_loss(self, device: torch.device):
        """The early-stopping signal on held-out (x, mask): minus their bound."""
        noise = self._validation_noise(self._eval_generator(device))

        def evaluate(data) -> float:
            x, mask = data
            # In row chunks: memory stays that of a chunk however many rows are held out.
            total = sum(
                float(self.model_.bound(x[rows], mask[rows], noise).sum())
                for rows in self._row_chunks(x.shape[0], VALIDATION_ROWS_PER_CHUNK)
            )
            return -total / x.shape[0]

        return evaluate

    # --- evaluation --------------------------------------------------------------------
    def _evaluate_rows(
        self,
        X: np.ndarray,
        compute,
        n_samples: int | None = None,
        rows: np.ndarray | None = None,
        copies: int = 1,
    ) -> np.ndarray:
        """Run ``compute(model, x, mask, noise)`` over row chunks of model-unit ``X`` (only
        ``rows`` of it, when given) with shared noise draws; ``compute`` that evaluates each
        row ``copies`` times (once per class, say) gets chunks that many times smaller.
        Returns its tensors stacked along the rows, as one float64 array.

        The same standard-normal draws serve every row (common random numbers), so a row's
        result does not depend on which other rows share its batch, and repeated calls agree.
        Tensors are made one chunk at a time: memory beyond ``X`` stays that of a chunk.
        """
        device = self._runtime_device()
        model, dtype = self._evaluation_model(device)
        n_samples = self.n_eval_samples if n_samples is None else n_samples
        noise_dim = getattr(model, "noise_dim", self.latent_dim)
        noise = torch.randn(
            n_samples, 1, noise_dim, generator=self._eval_generator(device), device=device
        ).to(dtype)
        width = max(model.likelihood.decoder_width(self.n_features_in_), *self.hidden_dims, 1)
        rows_per_chunk = max(1, chunk_elements(device) // (n_samples * width * copies))
        rows = np.arange(X.shape[0]) if rows is None else rows
        results = None
        # A bar where evaluation takes more than one chunk (a million rows at 500 samples a
        # row take minutes).
        bar = progress_bar(
            total=len(rows),
            show=self.verbose >= 1 and len(rows) > rows_per_chunk,
            description="evaluating",
            unit="rows",
        )
        with torch.no_grad(), bar:
            for chunk in self._row_chunks(len(rows), rows_per_chunk):
                x, mask = self._to_tensors(X[rows[chunk]], device, dtype)
                result = compute(model, x, mask, noise).cpu().numpy()
                if results is None:
                    results = np.empty((len(rows), *result.shape[1:]), dtype=np.float64)
                # Copied into one array made once, not kept chunk by chunk: small arrays that
                # outlive a chunk pin the freed pages of its large temporaries in the allocator's
                # heap, which then grows with every chunk (transform of 16,000 rows: +1.9 GiB).
                results[chunk] = result
                bar.update(chunk.stop - chunk.start)
        return np.empty((0,)) if results is None else results

    def score_samples(self, X) -> np.ndarray:
        """Importance-weighted estimate of log p(x_obs) per row, in nats of the original units.

        Uses ``n_eval_samples`` importance samples; the estimate is a stochastic lower bound
        that tightens as the number of samples grows. Rows with nothing observed score 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        _, X_model = self._encode(X, reset=False)
        scores = self._evaluate_rows(
            X_model, lambda model, x, mask, noise: model.bound(x, mask, noise)
        )
        observed = ~np.isnan(X_model)
        # Change of variables from the standardised units the model works in (continuous
        # columns only: the others have probabilities, in any units).
        scores -= observed @ self.schema_.log_scale_
        scores[~observed.any(axis=1)] = 0.0
        return scores

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples` (higher is better); lets model selection rank fits."""
        return float(np.mean(self.score_samples(X)))
