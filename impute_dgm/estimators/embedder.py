"""VAEEmbedder: latent codes, reconstructions, samples and likelihoods from a VAE."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from impute_dgm._device import draw_seed, seeded_torch
from impute_dgm.estimators._vae import VAE_PARAMETERS_DOC, BaseVAE


class VAEEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseVAE):
    """Represent rows by the posterior mean of a VAE's latent variable.

    The same model and training as :class:`VAEImputer` (importance-weighted bound, missing
    entries left out of the likelihood, any prior and observation model); the public methods
    read other things from it: ``transform`` gives E[z | x_obs] under the encoder,
    ``inverse_transform`` decodes codes to E[x | z], ``sample`` draws new rows from
    p(z) p(x | z), and ``score_samples`` estimates log p(x_obs).

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
        The observation model as configured for the data.
    history_ : TrainingHistory
        Per-epoch training and validation losses (negative bound per row).
    n_epochs_ : int
        Epochs actually run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from impute_dgm import VAEEmbedder
    >>> X = load_digits().data
    >>> embedder = VAEEmbedder(latent_dim=2, likelihood="categorical", n_epochs=2,
    ...                        random_state=0).fit(X)
    >>> embedder.transform(X[:3]).shape
    (3, 2)
    """

    def transform(self, X) -> np.ndarray:
        """Posterior mean of z for each row (missing entries allowed).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
        """
        check_is_fitted(self)
        _, X_model = self._encode(X, reset=False)
        return self._evaluate_rows(
            X_model,
            lambda model, x, mask, noise: model.posterior(x, mask).base_dist.loc,
            n_samples=1,
        )

    def _decode_mean(self, z: torch.Tensor, model) -> np.ndarray:
        means = model.likelihood.point_estimate(
            model.likelihood.imputation_statistics(model.observation_model(z))
        )
        return self.schema_.decode(means.cpu().numpy().astype(np.float64))

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode latent codes to the mean of p(x | z), in the original units.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim:
            raise ValueError(f"Z must have shape (n_samples, {self.latent_dim}), got {Z.shape}.")
        if not np.isfinite(Z).all():
            raise ValueError("Z contains NaN or infinity.")
        device = self._runtime_device()
        model, dtype = self._evaluation_model(device)
        with torch.no_grad():
            return self._decode_mean(torch.as_tensor(Z, dtype=dtype, device=device), model)

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw new rows: z from the prior, then x from p(x | z), in the original units.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        device = self._runtime_device()
        seed = draw_seed(check_random_state(random_state))
        with torch.no_grad(), seeded_torch(seed, device):
            z = self.model_.prior().sample((n_samples,))
            x = self.model_.observation_model(z).sample()
        return self.schema_.decode(x.cpu().numpy().astype(np.float64))

    def fit(self, X, y=None) -> VAEEmbedder:
        super().fit(X, y)
        self._n_features_out = self.latent_dim
        return self

    fit.__doc__ = BaseVAE.fit.__doc__


if VAEEmbedder.__doc__:  # absent under python -OO
    VAEEmbedder.__doc__ = VAEEmbedder.__doc__.replace("{parameters}", VAE_PARAMETERS_DOC)
