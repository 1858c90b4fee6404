"""Figures for fitted estimators (matplotlib is optional: ``pip install impute-dgm[plot]``).

Each function draws on a new or given Axes / Figure and returns it, so it works in notebooks,
scripts (``fig.savefig``) and MLflow logging alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("Plotting needs matplotlib: pip install 'impute-dgm[plot]'.") from error
    return plt


def plot_image_grid(
    images: np.ndarray,
    image_shape: Sequence[int],
    n_columns: int = 10,
    title: str | None = None,
    cmap: str = "gray_r",
) -> Any:
    """A grid of images given as flat rows (e.g. ``VAEEmbedder.sample`` on digits).

    Parameters
    ----------
    images : array of shape (n_images, prod(image_shape))
    image_shape : (H, W)
    n_columns : int, default=10
    title : str, optional
    cmap : str, default="gray_r"

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    images = np.asarray(images, dtype=float)
    height, width = image_shape
    n_rows = int(np.ceil(len(images) / n_columns))
    figure, axes = plt.subplots(
        n_rows, n_columns, figsize=(n_columns * 0.8, n_rows * 0.8), squeeze=False
    )
    low, high = np.nanmin(images), np.nanmax(images)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < len(images):
            ax.imshow(images[index].reshape(height, width), cmap=cmap, vmin=low, vmax=high)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_latent_space(
    codes: np.ndarray,
    labels: np.ndarray | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Scatter of latent codes (the aggregate posterior), coloured by ``labels``.

    Codes with more than two dimensions are shown on their first two principal components.

    Parameters
    ----------
    codes : array of shape (n_samples, latent_dim), e.g. ``VAEEmbedder.transform(X)``
    labels : array of shape (n_samples,), optional
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = _pyplot()
    codes = np.asarray(codes, dtype=float)
    xlabel, ylabel = "z1", "z2"
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        codes = PCA(n_components=2).fit_transform(codes)
        xlabel, ylabel = "PC1 of z", "PC2 of z"
    elif codes.shape[1] == 1:
        codes = np.column_stack([codes[:, 0], np.zeros(len(codes))])
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, s=6, cmap="tab10", alpha=0.8)
    if labels is not None:
        ax.legend(*scatter.legend_elements(), loc="best", fontsize="small", markerscale=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def plot_training_curves(estimator: Any, ax: Any = None) -> Any:
    """Training and validation loss per epoch of a fitted estimator (its ``history_``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = _pyplot()
    history = estimator.history_
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, label="training")
    if history.validation_loss:
        ax.plot(epochs, history.validation_loss, label="validation")
        ax.axvline(history.best_epoch + 1, color="grey", linestyle=":", label="kept")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative bound per row)")
    ax.set_title(type(estimator).__name__)
    ax.legend()
    return ax
