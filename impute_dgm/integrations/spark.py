"""Training on a Spark cluster: data-parallel fits through ``TorchDistributor``.

``fit_distributed`` starts ``num_processes`` PyTorch processes with
:class:`pyspark.ml.torch.distributor.TorchDistributor` (part of pyspark, the ``[spark]``
extra). Every process fits a copy of the estimator; the one training loop
(:class:`impute_dgm.training.Trainer`) sees the process group and trains data-parallel: each
process on its share of the rows, gradients all-reduced by ``DistributedDataParallel`` (gloo
on CPUs, NCCL on GPUs), early stopping decided once for all. The fitted estimator of rank 0
comes back to the driver, ready for ``transform``, ``log_model`` and ``spark_udf``.
"""

from __future__ import annotations

import os
from typing import Any

from sklearn.base import clone


def _fit_on_rank(estimator: Any, table: Any, use_gpu: bool) -> Any:
    """Runs in every process that TorchDistributor starts: join the group, fit, leave.

    Every rank returns its estimator (they hold the same weights): in local mode each process
    writes its output to the same file, and whichever comes last is what the driver reads.
    """
    import torch
    from torch import distributed

    if use_gpu:
        # One GPU per process: "cuda" then means this process's own.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    distributed.init_process_group(backend="nccl" if use_gpu else "gloo")
    try:
        estimator.fit(table)
    finally:
        distributed.destroy_process_group()
    return estimator


def fit_distributed(
    estimator: Any,
    spark_dataframe: Any,
    num_processes: int = 2,
    *,
    local_mode: bool = True,
    use_gpu: bool = False,
) -> Any:
    """Fit a copy of ``estimator`` data-parallel on ``num_processes`` PyTorch processes.

    Parameters
    ----------
    estimator : VAEImputer, VAEEmbedder or FlowDensityEstimator
        Unfitted settings; a clone is fitted (the budget, ``batch_size`` included, is that of
        one process on the whole table: each step's rows are split among the processes).
    spark_dataframe : pyspark.sql.DataFrame
        The training table (missing values as null or NaN). It is collected to the driver as
        pandas and handed to every process, which keeps its own share of the rows: the table
        must fit in the driver's memory (a million rows of 30 doubles take 240 MB).
    num_processes : int, default=2
        Processes (Spark tasks, or GPUs with ``use_gpu``) that train together.
    local_mode : bool, default=True
        Run the processes on the driver (True) or as Spark tasks on the executors (False, a
        real cluster; see ``TorchDistributor``).
    use_gpu : bool, default=False
        One GPU per process and the NCCL backend; otherwise CPUs and gloo.

    Returns
    -------
    estimator
        The fitted clone (every rank ends with the same weights).
    """
    if num_processes < 1:
        raise ValueError(f"num_processes must be at least 1, got {num_processes!r}.")
    try:
        from pyspark.ml.torch.distributor import TorchDistributor
    except ImportError as error:  # pragma: no cover - the [spark] extra is optional
        raise ImportError(
            "fit_distributed needs pyspark: pip install 'impute-dgm[spark]'."
        ) from error
    table = spark_dataframe.toPandas()
    distributor = TorchDistributor(
        num_processes=num_processes, local_mode=local_mode, use_gpu=use_gpu
    )
    return distributor.run(_fit_on_rank, clone(estimator), table, use_gpu)
