"""VAEImputer: missing-value imputation with MIWAE (Mattei & Frellsen, ICML 2019)."""

from __future__ import annotations

import numpy as np
from sklearn.base import OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from impute_dgm._validation import check_array_input
from impute_dgm.estimators._vae import VAE_PARAMETERS_DOC, BaseVAE


class VAEImputer(OneToOneFeatureMixin, TransformerMixin, BaseVAE):
    """Impute missing values with a deep latent variable model trained by the MIWAE bound.

    The model p(x, z) = p(z) p(x | z) is fitted to incomplete rows by maximising the
    importance-weighted bound on log p(x_obs), in which the observation model is evaluated on
    observed entries only and the encoder q(z | x, m) sees the zero-filled row and its mask.
    ``transform`` fills each missing entry with the self-normalised importance sampling estimate
    of E[x_miss | x_obs]; observed entries are returned unchanged, bit for bit.

    Columns are standardised internally with statistics of their observed values (except for
    the Bernoulli likelihood), and imputations are returned in the original units.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    model_ : DeepLatentVariableModel
        The fitted torch module.
    scaler_ : ObservedScaler
        Per-column location and scale learned from observed entries.
    likelihood_ : Likelihood
        The observation model as configured for the data (e.g. levels of "categorical").
    history_ : TrainingHistory
        Per-epoch training and validation losses (negative bound per row).
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

    def transform(self, X):
        """Fill missing entries with the importance-sampling estimate of E[x_miss | x_obs].

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN marking missing values.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            ``X`` with every NaN replaced; observed entries are unchanged.
        """
        check_is_fitted(self)
        X = check_array_input(self, X, reset=False)
        missing = np.isnan(X)
        X_imputed = X.copy()
        rows = np.flatnonzero(missing.any(axis=1))
        if rows.size == 0:
            return X_imputed
        parts = self._evaluate_rows(
            X[rows], lambda model, x, mask, noise: model.impute(x, mask, noise).cpu().numpy()
        )
        estimate = self.scaler_.inverse_transform(np.concatenate(parts).astype(np.float64))
        # A non-finite estimate can only come from a diverged model; fall back to the column
        # location rather than ever returning NaN or inf.
        estimate = np.where(np.isfinite(estimate), estimate, self.scaler_.location_)
        block = X_imputed[rows]
        block[missing[rows]] = estimate[missing[rows]]
        X_imputed[rows] = block
        return X_imputed


if VAEImputer.__doc__:  # absent under python -OO
    VAEImputer.__doc__ = VAEImputer.__doc__.replace("{parameters}", VAE_PARAMETERS_DOC)
