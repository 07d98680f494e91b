"""Spark local mode: score_spark equals in-memory scoring (marked ``spark``)."""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.synthetic import make_population

pyspark = pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark local mode needs Java"),
]

IDX = "2025-04-01"
LISTS = {"efi": "efi_synthetic_pc", "cms": "cms_synthetic_pc"}


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("pophealth-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .getOrCreate())
    yield session
    session.stop()


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
    return out


def test_score_spark_equals_in_memory(spark):
    from pophealth.engines.spark import score_spark

    pop = make_population(3_000, random_state=21, index_date=IDX)
    reg = _plain(pop.register[["patient_id", "age"]])
    ev = _plain(pop.events[["patient_id", "code", "code_system", "date"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        want = ph.score_patients(reg, ev, index_date=IDX, codelists=LISTS)
    got = score_spark(spark.createDataFrame(reg), spark.createDataFrame(ev), index_date=IDX,
                      codelists=LISTS, num_partitions=3).toPandas()
    got = got.set_index("patient_id").sort_index()
    want = want.sort_index()
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(reg)
    for col in want.columns:
        w = want[col]
        if isinstance(w.dtype, pd.CategoricalDtype):
            assert got[col].tolist() == w.astype(str).tolist(), col
        else:
            pd.testing.assert_series_equal(got[col], w, check_dtype=False, check_names=False,
                                           check_index_type=False)
