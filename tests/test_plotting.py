"""Figures render from fitted estimators."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need the optional matplotlib")
matplotlib.use("Agg")

from impute_dgm import VAEEmbedder  # noqa: E402
from impute_dgm.plotting import (  # noqa: E402
    plot_image_grid,
    plot_latent_space,
    plot_training_curves,
)


@pytest.fixture(scope="module")
def embedder():
    from sklearn.datasets import load_digits

    X = load_digits().data[:300]
    return VAEEmbedder(
        likelihood="categorical",
        latent_dim=3,
        n_epochs=3,
        early_stopping=True,
        random_state=0,
    ).fit(X), X


def test_image_grid(embedder, tmp_path):
    model, _ = embedder
    figure = plot_image_grid(model.sample(20, random_state=0), (8, 8), n_columns=10, title="s")
    assert len(figure.axes) == 20
    figure.savefig(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_latent_space_uses_pca_beyond_two_dimensions(embedder):
    from sklearn.datasets import load_digits

    model, X = embedder
    ax = plot_latent_space(model.transform(X), load_digits().target[:300])
    assert ax.get_xlabel() == "PC1 of z"
    points = ax.collections[0].get_offsets()
    assert points.shape == (300, 2) and np.isfinite(points).all()


def test_training_curves(embedder):
    model, _ = embedder
    ax = plot_training_curves(model)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["training", "validation"]
    assert len(ax.get_lines()[0].get_xdata()) == model.n_epochs_
