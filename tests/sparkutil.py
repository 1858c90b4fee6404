"""A local Spark session for the tests that need one (skipped without pyspark or Java)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest


def spark_session():
    pyspark = pytest.importorskip("pyspark", reason="Spark needs the optional [spark] extra")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (no java on PATH, no JAVA_HOME)")
    from pyspark.sql import SparkSession

    del pyspark
    # Spark's Python workers must be this interpreter (with impute_dgm), not `python3` on PATH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return (
        SparkSession.builder.master("local[2]")
        .appName("impute-dgm-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
