"""Data-parallel training: the one Trainer under a process group, and fits through Spark."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from sparkutil import spark_session
from torch import distributed

from impute_dgm import VAEImputer


def low_rank_table(n_rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loadings = np.random.default_rng(123).normal(size=(2, 6))
    return np.tanh(rng.normal(size=(n_rows, 2)) @ loadings) + 0.1 * rng.normal(size=(n_rows, 6))


def with_missing(X: np.ndarray, seed: int) -> np.ndarray:
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < 0.2] = np.nan
    return X


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fit_on_rank(rank: int, world: int, port: int, directory: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        X = with_missing(low_rank_table(600, 0), 1)
        imputer = VAEImputer(
            n_epochs=4, hidden_dims=(16,), early_stopping=True, n_iter_no_change=2, random_state=0
        ).fit(X)
        torch.save(
            {"state": imputer.model_.state_dict(), "history": vars(imputer.history_)},
            os.path.join(directory, f"rank{rank}.pt"),
        )
    finally:
        distributed.destroy_process_group()


def test_ranks_train_one_model_together(tmp_path):
    """Under a process group every rank ends with the same weights (gradients all-reduced,
    early stopping agreed), and the loss logged is the mean over all ranks' rows."""
    mp.spawn(fit_on_rank, args=(2, free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for name, weights in ranks[0]["state"].items():
        assert torch.equal(weights, ranks[1]["state"][name]), name
    assert ranks[0]["history"]["train_loss"] == ranks[1]["history"]["train_loss"]
    assert ranks[0]["history"]["validation_loss"] == ranks[1]["history"]["validation_loss"]
    assert ranks[0]["history"]["best_epoch"] == ranks[1]["history"]["best_epoch"]
    # Each rank trained on its own half: the same fit in one process differs.
    single = VAEImputer(
        n_epochs=4, hidden_dims=(16,), early_stopping=True, n_iter_no_change=2, random_state=0
    ).fit(with_missing(low_rank_table(600, 0), 1))
    assert single.history_.train_loss != ranks[0]["history"]["train_loss"]


def rmse(imputer, X_missing, X) -> float:
    missing = np.isnan(X_missing)
    return float(np.sqrt(np.mean((imputer.transform(X_missing)[missing] - X[missing]) ** 2)))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # pyspark on pandas 3
def test_fit_distributed_on_spark_imputes_like_one_process():
    from impute_dgm.integrations.spark import fit_distributed

    spark = spark_session()
    try:
        import pandas as pd

        X = low_rank_table(1600, 0)
        X_missing = with_missing(X, 1)
        held_out = low_rank_table(400, 2)
        held_out_missing = with_missing(held_out, 3)
        settings = VAEImputer(n_epochs=40, hidden_dims=(32,), batch_size=64, random_state=0)
        frame = spark.createDataFrame(pd.DataFrame(X_missing, columns=[f"x{j}" for j in range(6)]))
        together = fit_distributed(settings, frame, num_processes=2)
        alone = VAEImputer(**settings.get_params()).fit(X_missing)
    finally:
        spark.stop()
    assert together is not settings and together.n_epochs_ == alone.n_epochs_ == 40
    assert together.budget_ == alone.budget_
    imputed = together.transform(held_out_missing)
    observed = ~np.isnan(held_out_missing)
    assert np.array_equal(imputed[observed], held_out_missing[observed])
    distributed_rmse = rmse(together, held_out_missing, held_out)
    single_rmse = rmse(alone, held_out_missing, held_out)
    print(f"held-out RMSE: 2 processes {distributed_rmse:.4f}, one process {single_rmse:.4f}")
    assert distributed_rmse <= 1.05 * single_rmse, (distributed_rmse, single_rmse)
