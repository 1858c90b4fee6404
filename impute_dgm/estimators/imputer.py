"""VAEImputer: missing-value imputation with MIWAE (Mattei & Frellsen, ICML 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from sklearn.base import OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import check_is_fitted

from impute_dgm._device import draw_seed, seeded_torch
from impute_dgm.budget import TrainingBudget, with_minimum_steps, with_small_table_batch
from impute_dgm.distributions.likelihoods import Likelihood
from impute_dgm.distributions.missingness import MISSINGNESS
from impute_dgm.distributions.priors import Prior
from impute_dgm.estimators._vae import VAE_PARAMETERS_DOC, BaseVAE
from impute_dgm.hidden_cells import HiddenCellError

# Rows per step of the self-masking model on small tables with batch_size="auto" (see _budget).
SELF_MASKING_SMALL_BATCH = 16
# The MAR model on small tables with n_epochs="auto": at least this many steps, at most
# MAR_MAX_EPOCHS epochs, on tables of MAR_MIN_ROWS rows or more (see _budget).
MAR_MIN_STEPS = 6000
MAR_MAX_EPOCHS = 600
MAR_MIN_ROWS = 256
# n_epochs="auto" keeps 300 epochs, early stopping off, up to IMPUTER_FULL_BUDGET_ROWS rows
# (four times the common SMALL_TABLE_ROWS), then rows seen grow like
# n ** IMPUTER_ROWS_SEEN_EXPONENT. On the scaling benchmark's 10,000-row table the common rule
# (161 epochs, 10% held out, early stopping) imputed 1.6% worse than 300 epochs on every row,
# on three seeds; the same 161 epochs on every row were still 1.4% worse: the epochs were
# missing (benchmarks/results/scaling_10k_auto_against_fixed300.json). The exponent keeps a
# million rows at the 7 epochs measured there; 100,000 rows get 57 epochs instead of 33. With
# this rule (scaling_2threads.json, scaling_seed1_100k_1m.json) the 1M fit takes 6.4 min on 2
# cores and imputes no worse than 100,000 rows (0.2029 / 0.2033 against 0.2036 / 0.2039).
IMPUTER_FULL_BUDGET_ROWS = 16_384
IMPUTER_ROWS_SEEN_EXPONENT = 0.08


class VAEImputer(OneToOneFeatureMixin, TransformerMixin, BaseVAE):
    """Impute missing values with a deep latent variable model trained by the MIWAE bound.

    The model p(x, z) = p(z) p(x | z) is fitted to incomplete rows by maximising the
    importance-weighted bound on log p(x_obs), in which the observation model is evaluated on
    observed entries only and the encoder q(z | x, m) sees the zero-filled row and its mask.
    ``transform`` fills each missing entry with the self-normalised importance sampling estimate
    of E[x_miss | x_obs]; observed entries are returned unchanged, bit for bit.

    Columns are standardised internally with statistics of their observed values (except for
    the Bernoulli likelihood), and imputations are returned in the original units.

    DataFrames may mix kinds of columns: floats, integers, booleans and categories (``category``,
    ``string`` or text), each with its own likelihood (see ``column_likelihoods``); they come
    back as DataFrames with the same columns, index and dtypes. ``sample_imputations`` draws
    several completed tables from p(x_miss | x_obs) for multiple imputation
    (:func:`impute_dgm.pooling.pool` combines analyses of them by Rubin's rules).

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    model_ : DeepLatentVariableModel
        The fitted torch module.
    schema_ : TableSchema
        Per-column kind, likelihood, scaling (learned from observed entries) and levels.
    likelihood_ : Likelihood
        The observation model as configured for the data (a ``ColumnLikelihoods`` for
        mixed columns).
    history_ : TrainingHistory
        Per-epoch training and validation losses (negative bound per row).
    proposal_history_ : TrainingHistory
        Per-epoch wake-phase losses of the encoder's refinement (only with
        ``proposal_epochs`` > 0).
    n_epochs_ : int
        Epochs actually run.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only for DataFrames with string column names).

    References
    ----------
    P.-A. Mattei and J. Frellsen. MIWAE: Deep Generative Modelling and Imputation of Incomplete
    Data Sets. ICML 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from impute_dgm import VAEImputer
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> X[::3, 1] = np.nan
    >>> imputer = VAEImputer(n_epochs=5, random_state=0).fit(X)
    >>> bool(np.isnan(imputer.transform(X)).any())
    False
    """

    _parameter_constraints: dict = {
        **BaseVAE._parameter_constraints,
        "missingness": [StrOptions(set(MISSINGNESS))],
        "proposal_epochs": [Interval(Integral, 0, None, closed="left")],
        "encoder_gradient": [StrOptions({"auto", "standard", "dreg"})],
    }
    _full_budget_rows = IMPUTER_FULL_BUDGET_ROWS
    _rows_seen_exponent = IMPUTER_ROWS_SEEN_EXPONENT

    def __init__(
        self,
        *,
        latent_dim: int = 10,
        hidden_dims: Sequence[int] = (128, 128),
        activation: str = "auto",
        likelihood: str | Likelihood = "auto",
        column_likelihoods: dict | None = None,
        handle_unknown: str = "error",
        missingness: str = "mar",
        prior: str | Prior = "standard",
        n_components: int = 10,
        n_importance: int = 20,
        kl_warmup: int = 0,
        n_eval_samples: int = 500,
        proposal_epochs: int = 0,
        encoder_gradient: str = "auto",
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
        super().__init__(
            latent_dim=latent_dim,
            hidden_dims=hidden_dims,
            activation=activation,
            likelihood=likelihood,
            column_likelihoods=column_likelihoods,
            handle_unknown=handle_unknown,
            prior=prior,
            n_components=n_components,
            n_importance=n_importance,
            kl_warmup=kl_warmup,
            n_eval_samples=n_eval_samples,
            eval_dtype=eval_dtype,
            mask_input=mask_input,
            n_epochs=n_epochs,
            batch_size=batch_size,
            lr=lr,
            lr_schedule=lr_schedule,
            weight_decay=weight_decay,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            device=device,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            warm_start=warm_start,
        )
        self.missingness = missingness
        self.proposal_epochs = proposal_epochs
        self.encoder_gradient = encoder_gradient

    def __setstate__(self, state: dict) -> None:
        # Files saved before these parameters existed were fitted without them.
        state.setdefault("proposal_epochs", 0)
        state.setdefault("encoder_gradient", "standard")
        super().__setstate__(state)

    def _budget(self, n_rows: int) -> TrainingBudget:
        # The not-MIWAE bound learns the mask model through reparameterised draws of the
        # missing values, a noisier signal than MIWAE's: on small tables, batches of 16 rows
        # (four times the steps) lowered its RMSE on self-masked data by 3-11% on five of the
        # suite's six tables (low-rank: +1.5%), moved it by -1% to +6% under MCAR, and cost
        # 1.5-2 times the fit time. Under MAR they helped digits but cost breast cancer and
        # diabetes 1-2%, so 64 stays there. Large tables (early stopping on) are unmeasured
        # and keep the common rule, whose batches already grow with the table.
        #
        # The MAR model's 64-row batches give a table of a few hundred rows only 5-10 steps an
        # epoch: 300 epochs left it under-trained. On selection draws (seeds 5-6, 17 cells of
        # the suite's tables) 600 epochs lowered RMSE by 1.0% on average, in 13 cells (digits
        # up to 6%, breast cancer and penguins 1-3.5%), while 1000 overfitted (+0.1%) and the
        # 178 rows of wine lost 5.5% in one cell: hence a floor of 6,000 steps, at most 600
        # epochs, from 256 rows (benchmarks/results/selection_draws_epochs.json).
        budget = super()._budget(n_rows)
        if self.missingness != "self_masking":
            return with_minimum_steps(
                budget,
                n_rows,
                self.n_epochs,
                min_steps=MAR_MIN_STEPS,
                max_epochs=MAR_MAX_EPOCHS,
                min_rows=MAR_MIN_ROWS,
            )
        return with_small_table_batch(budget, n_rows, self.batch_size, SELF_MASKING_SMALL_BATCH)

    def _validation_loss(self, device: torch.device) -> HiddenCellError:
        """Early stopping watches the imputation error on hidden held-out cells (see
        :mod:`impute_dgm.hidden_cells`), imputed with the training bound's K importance draws,
        the same every epoch."""
        generator = self._eval_generator(device)
        noise = self._validation_noise(generator)
        categorical = torch.tensor(
            [column.kind == "categorical" for column in self.schema_.columns_], device=device
        )
        return HiddenCellError(
            lambda x, mask: self.model_.impute(x, mask, noise), categorical, generator
        )

    def transform(self, X):
        """Fill missing entries with the importance-sampling estimate of E[x_miss | x_obs].

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN marking missing values.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features), or DataFrame
            ``X`` with every missing value replaced; observed entries are unchanged. A DataFrame
            with integer, boolean or category columns comes back as a DataFrame with the same
            columns, index and dtypes (categories imputed as their most probable level).
        """
        check_is_fitted(self)
        X, X_model = self._encode(X, reset=False)
        return self._fill(X, X_model, lambda model, x, mask, noise: model.impute(x, mask, noise))

    def _fill(
        self, X, X_model: np.ndarray, compute, n_samples: int | None = None, draws: bool = False
    ):
        """``X`` with its missing cells set from ``compute`` run on the incomplete rows
        (``draws``: values drawn from the model, whole numbers where it generates them)."""
        missing = np.isnan(X_model)
        values = np.zeros_like(X_model)
        rows = np.flatnonzero(missing.any(axis=1))
        if rows.size:
            values[rows] = self._evaluate_rows(X_model, compute, n_samples=n_samples, rows=rows)
        # decode() replaces a non-finite value (only a diverged model gives one) by the
        # column's mean or mode: the imputer never returns NaN or inf.
        decoded = self.schema_.decode(values)
        if draws:
            whole = self.likelihood_.whole_number_columns(self.n_features_in_).numpy()
            decoded[:, whole] = np.round(decoded[:, whole])
        return self.schema_.fill(X, decoded, missing)

    @validate_params(
        {
            "n_imputations": [Interval(Integral, 1, None, closed="left")],
            "random_state": ["random_state"],
            "n_proposals": [Interval(Integral, 1, None, closed="left")],
        },
        prefer_skip_nested_validation=True,
    )
    def sample_imputations(
        self, X, n_imputations: int = 5, random_state=None, n_proposals: int = 100
    ) -> list:
        """Draw completed tables from p(x_miss | x_obs) for multiple imputation.

        Each draw uses sampling-importance-resampling: ``n_proposals`` latents from
        q(z | x, m), one resampled per row by its importance weight, then every missing cell
        drawn from p(x | z) at it (categories and flags are drawn, not rounded). Observed cells
        are the same in every table. Analyse each table and pool the results with
        :func:`impute_dgm.pooling.pool` (Rubin's rules).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Data with missing values, as for :meth:`transform`.
        n_imputations : int, default=5
            Number of completed tables.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; an int gives the same tables on every call.
        n_proposals : int, default=100
            Latents drawn per row and imputation, among which one is resampled. Fewer than
            ``transform``'s ``n_eval_samples``: each imputation is one draw, not an average.

        Returns
        -------
        imputations : list of ndarray or DataFrame
            ``n_imputations`` completed copies of ``X``, each as :meth:`transform` returns it.
        """
        check_is_fitted(self)
        original = X
        X, X_model = self._encode(X, reset=False)
        random_state = check_random_state(random_state)
        device = self._runtime_device()

        def draw(model, x, mask, noise):
            # Fresh latents for every row and imputation (not the shared evaluation draws).
            fresh = torch.randn(noise.shape[0], *x.shape[:-1], noise.shape[-1]).to(noise)
            return model.sample_missing(x, mask, fresh)

        tables = []
        for _ in range(n_imputations):
            # A forked, seeded global stream: the draws follow random_state, and the caller's
            # torch RNG is left as it was.
            with seeded_torch(draw_seed(random_state), device):
                tables.append(self._fill(X, X_model, draw, n_samples=n_proposals, draws=True))
        # In the container ``set_output`` asks for, as transform's output is.
        return [_wrap_data_with_container("transform", table, original, self) for table in tables]


_MISSINGNESS_DOC = """missingness : {"mar", "self_masking"}, default="mar"
        What the model assumes of why values are missing. "mar": missing at random given the
        observed values (MIWAE). "self_masking": missing not at random, each column's values
        more or less likely to be missing by their own size, P(observed | x_j) =
        sigmoid(a_j x_j + c_j), learned with the rest by the not-MIWAE bound (Ipsen, Frellsen
        & Mattei, ICLR 2021): the missing values are drawn from p(x | z) inside the bound and
        log p(m | x) joins the importance weights, so imputations move towards the values that
        tend to go missing. The draws need a Gaussian likelihood (the rounded one of whole
        numbers included, drawn before rounding inside the bound, rounded for imputation):
        on a mixed table the mask model covers those columns, and categories and flags go
        missing at random in it. Draws stay within each column's observed range widened by a
        tenth. ``score_samples`` then estimates
        log p(x_obs, m), the mask's probability included. With ``batch_size="auto"`` it
        trains on batches of 16 rows up to 4,096 rows (the common rule beyond): the mask
        model learns from noisier gradients and gains from the extra steps.
    """

_PROPOSAL_DOC = """proposal_epochs : int, default=0
        Epochs of training for the encoder alone once the model is fitted, by the wake-phase
        update of reweighted wake-sleep: q(z | x, m) is moved towards the model's posterior
        p(z | x_obs) (the inclusive divergence, which suits an importance sampling proposal)
        while p(x, z) stays as fitted. ``transform`` and ``score_samples`` then reach a given
        accuracy with fewer ``n_eval_samples``. On selection draws of breast cancer, 50
        epochs took 7% of the fit's time and lowered imputation RMSE at 500 samples by 0.8%,
        and 64 samples then did as well as 512 without (README, "A better proposal"). Those
        figures predate the step floor of ``n_epochs="auto"``; on top of it 50 epochs moved
        RMSE by -0.5% to +1.1% on breast cancer and digits selection cells, and for the
        self-masking model, on top of its DReG gradients, by -0.3% on average over 14
        self-masked selection cells at 11% more fit time. 0 skips it (the
        default). Not with ``prior="vamp"``,
        whose p(z) is made with the encoder. Sets ``proposal_history_``.
    encoder_gradient : {"auto", "standard", "dreg"}, default="auto"
        How the encoder's gradient is estimated in training. "auto": "dreg" for the
        self-masking model (on 14 selection cells of self-masked data and wine MCAR 50% it
        lowered RMSE by 0.5% on average, better in 10; README, "Doubly reparameterised
        gradients"), "standard" for the MAR model. "standard": the gradient of the
        MIWAE bound by reparameterisation, whose signal-to-noise ratio for the encoder falls
        as ``n_importance`` grows (Rainforth et al., 2018). "dreg": the doubly
        reparameterised estimator (Tucker et al., 2019), with the same expectation and
        without that decline: the encoder then learns to be a proposal for the bound. Same
        cost. On 17 selection cells it lowered
        RMSE on breast cancer by 1.5-4.6% (4 of 4) and digits by 0.1-0.7% (3 of 3) and raised
        the in-sample log-likelihood there, but lost 0.4-8.0% on penguins (4 of 4) and up to
        0.7% on wine and the low-rank table; on the suite's seeds the MAR model gained in 13 of
        24 cells and the self-masking model in 5 of its 6 (README, "Doubly reparameterised
        gradients"). Those figures predate the step floor of ``n_epochs="auto"``; on top of
        it "dreg" moved the MAR model's RMSE by -2.0% to +7.5% on breast cancer and digits
        selection cells (README, "A floor of gradient steps").
    """

if VAEImputer.__doc__:  # absent under python -OO
    VAEImputer.__doc__ = VAEImputer.__doc__.replace(
        "{parameters}",
        VAE_PARAMETERS_DOC.replace("prior : ", _MISSINGNESS_DOC + "prior : ", 1).replace(
            "eval_dtype : ", _PROPOSAL_DOC + "eval_dtype : ", 1
        ),
    )
