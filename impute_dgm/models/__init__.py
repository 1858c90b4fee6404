"""The model cores behind the VAE estimators, in one place.

- :class:`DeepLatentVariableModel` (:mod:`~impute_dgm.models.latent_variable`): p(z) p(x | z)
  with an amortised q(z | x, m), the MIWAE bound and its not-MIWAE (missing-not-at-random)
  variant; used by ``VAEImputer`` and ``VAEEmbedder``.
- :class:`LabelledLatentVariableModel` (:mod:`~impute_dgm.models.labelled`): M2, with the label
  as a latent variable; used by ``VAEClassifier``.
"""

from impute_dgm.models.labelled import LabelledLatentVariableModel
from impute_dgm.models.latent_variable import DeepLatentVariableModel, ImportanceSamples

__all__ = ["DeepLatentVariableModel", "ImportanceSamples", "LabelledLatentVariableModel"]
