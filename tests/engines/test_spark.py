"""Spark local mode: score_spark equals in-memory scoring (marked ``spark``).

These tests never skip: without pyspark the module fails to import and without Java
the session fixture fails, so a CI machine that cannot run Spark fails loudly (`.ci/run`
installs Java when it is missing). The comparison runs with Spark's default
partitioning and with explicit partition counts, in UTC and non-UTC session time
zones, on data with events at midnight, just either side of it, at the HFRS look-back
edge and inside DST gaps/overlaps, so a time-zone or partitioning fault changes a score.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.engines.pipeline import global_tiers, score_batch, score_batch_parts
from pophealth.synthetic import make_population

pytestmark = [pytest.mark.spark]

IDX = "2025-04-01"
LISTS = {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"}
FMT = "%Y-%m-%d %H:%M:%S"

#: Crafted patients (age 80), each with one eFI code (SYN0390, activity limitation: one
#: deficit of 36, all history) and one HFRS code (ICD-10 F05, 3.2 points, window
#: (index - 730 days, index] = (2023-04-02 00:00, 2025-04-01 00:00]) at the same wall-clock
#: time. Expected (efi_deficits, hfrs) worked by hand from those windows.
CRAFTED = [
    ("2025-04-01 00:00:00", 1, 3.2),  # on the index instant: counted
    ("2025-04-01 00:30:00", 0, 0.0),  # half an hour after: not counted
    ("2025-03-31 23:30:00", 1, 3.2),  # half an hour before midnight: counted
    ("2025-04-01 23:59:59", 0, 0.0),  # later on the index day: after the index instant
    ("2025-04-02 00:00:00", 0, 0.0),  # next midnight
    ("2023-04-02 00:00:00", 1, 0.0),  # HFRS look-back edge (open): eFI yes, HFRS no
    ("2023-04-02 00:30:00", 1, 3.2),  # just inside the HFRS look-back
    ("2023-04-01 23:30:00", 1, 0.0),  # just outside the HFRS look-back
    ("2025-03-30 01:30:00", 1, 3.2),  # Europe/London spring-forward gap
    ("2024-10-27 01:30:00", 1, 3.2),  # Europe/London autumn overlap
    ("2025-03-09 02:30:00", 1, 3.2),  # America/New_York spring-forward gap
    ("2024-11-03 01:30:00", 1, 3.2),  # America/New_York autumn overlap
]
CRAFTED_FROM = 10_000_001


def _java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").is_file()
    return shutil.which("java") is not None


@pytest.fixture(scope="module")
def spark():
    """One local SparkSession for the module, left at Spark's default partitioning."""
    if not _java_available():
        pytest.fail("Spark local mode needs Java 17 (JAVA_HOME/bin/java or java on PATH); "
                    "install openjdk-17-jre-headless — this test fails rather than skips")
    from pyspark.sql import SparkSession  # ImportError here is a failure, not a skip

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("pophealth-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
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


@pytest.fixture(scope="module")
def population():
    """Synthetic register + events, plus the crafted boundary patients; and in-memory scores."""
    pop = make_population(2_000, random_state=21, index_date=IDX)
    reg = _plain(pop.register[["patient_id", "age"]])
    ev = _plain(pop.events[["patient_id", "code", "code_system", "date"]])
    ids = list(range(CRAFTED_FROM, CRAFTED_FROM + len(CRAFTED)))
    reg = pd.concat([reg, pd.DataFrame({"patient_id": ids, "age": 80})], ignore_index=True)
    stamps = pd.to_datetime([s for s, _, _ in CRAFTED], format=FMT)
    crafted = pd.DataFrame({
        "patient_id": ids * 2,
        "code": ["SYN0390"] * len(ids) + ["F05"] * len(ids),
        "code_system": ["synthetic_pc"] * len(ids) + ["icd10"] * len(ids),
        "date": list(stamps) * 2,
    })
    ev = pd.concat([ev, crafted], ignore_index=True)
    # some synthetic events late on the index day too, not only the crafted ones
    late = ev.index[ev["date"] == pd.Timestamp(IDX)]
    assert len(late) > 0, "the synthetic population has no events on the index date"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        want = score_batch(reg, ev, index_date=IDX, codelists=LISTS, on_no_match="ignore")
        indices = ph.score_patients(reg, ev, index_date=IDX, codelists=LISTS)
    # the batch function's table carries the indices of score_patients unchanged
    pd.testing.assert_frame_equal(want[indices.columns], indices)
    return reg, ev, want.sort_index()


def test_crafted_boundary_patients_score_as_worked_by_hand_in_memory(population):
    _, _, want = population
    ids = range(CRAFTED_FROM, CRAFTED_FROM + len(CRAFTED))
    got = want.loc[list(ids), ["efi_deficits", "hfrs"]]
    assert got["efi_deficits"].tolist() == [d for _, d, _ in CRAFTED]
    assert got["hfrs"].round(6).tolist() == [h for _, _, h in CRAFTED]


CASES = [
    pytest.param(3, "UTC", id="3-partitions-UTC"),
    pytest.param(None, "UTC", id="default-partitions-UTC"),
    pytest.param(None, "Europe/London", id="default-partitions-Europe/London"),
    pytest.param(7, "America/New_York", id="7-partitions-America/New_York"),
]


@pytest.mark.parametrize(("num_partitions", "tz"), CASES)
def test_score_spark_equals_in_memory(spark, population, num_partitions, tz):
    from pyspark.sql import functions as F

    from pophealth.engines.spark import score_spark

    reg, ev, want = population
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", tz)
    try:
        # Dates reach Spark as text and are parsed by Spark in the session zone, as a table
        # loaded from CSV would be: the wall-clock reading is what was recorded.
        ev_text = ev.assign(date=ev["date"].dt.strftime(FMT))
        ev_sdf = spark.createDataFrame(ev_text).withColumn(
            "date", F.to_timestamp("date", "yyyy-MM-dd HH:mm:ss"))
        assert dict(ev_sdf.dtypes)["date"] == "timestamp"
        got = score_spark(spark.createDataFrame(reg), ev_sdf, index_date=IDX,
                          codelists=LISTS, num_partitions=num_partitions).toPandas()
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    got = got.set_index("patient_id").sort_index()
    assert list(got.columns) == list(want.columns)
    assert got.index.tolist() == want.index.tolist()
    crafted = list(range(CRAFTED_FROM, CRAFTED_FROM + len(CRAFTED)))
    assert got.loc[crafted, "efi_deficits"].tolist() == [d for _, d, _ in CRAFTED], tz
    assert got.loc[crafted, "hfrs"].round(6).tolist() == [h for _, _, h in CRAFTED], tz
    _assert_same(got, want)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        w = want[col]
        if isinstance(w.dtype, pd.CategoricalDtype) or w.dtype == object:
            assert got[col].tolist() == w.astype(object).where(w.notna(), None).tolist(), col
        elif pd.api.types.is_datetime64_dtype(w.dtype):
            # Spark's toPandas gives datetime64[ns]; the in-memory table keeps [us]: same
            # instants, compared in one unit (a unit mix-up would still differ 1000-fold)
            pd.testing.assert_series_equal(got[col].astype("datetime64[ns]"),
                                           w.astype("datetime64[ns]"), check_names=False,
                                           check_index_type=False)
        else:
            pd.testing.assert_series_equal(got[col], w, check_dtype=False, check_names=False,
                                           check_index_type=False)


def test_missing_java_fails_the_spark_test_rather_than_skipping(tmp_path):
    """Run one Spark case in a child pytest with JAVA_HOME pointing nowhere."""
    env = dict(os.environ, JAVA_HOME=str(tmp_path / "no-java"))
    node = f"{Path(__file__).resolve()}::test_score_spark_equals_in_memory[3-partitions-UTC]"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", node],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
        timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 error" in out, out
    assert "needs Java 17" in out, out
    assert "skipped" not in out.lower(), out


@pytest.fixture(scope="module")
def pipeline_population():
    """A synthetic register (all columns), events and activity, a fitted model, and the
    in-memory whole-pipeline table (one batch) with global tiers."""
    from pophealth.risk.models import RiskModel

    pop = make_population(1_500, random_state=8, index_date=IDX)
    reg = _plain(pop.register.drop(columns=["nhs_number"]))
    ev = _plain(pop.events[["patient_id", "code", "code_system", "date"]])
    act = _plain(pop.activity[["patient_id", "date", "kind", "cost", "length_of_stay"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _, X, _ = score_batch_parts(reg, ev, act, index_date=IDX, codelists=LISTS,
                                    features=True, segments=False)
        y = pop.outcomes["emergency_admission"].reindex(X.index).to_numpy(dtype=bool)
        model = RiskModel(method="hgb", calibration="sigmoid", random_state=0).fit(X, y)
        want = score_batch(reg, ev, act, index_date=IDX, codelists=LISTS, model=model,
                           max_unrecognised=1.0, on_no_match="ignore")
    want = want.sort_index()
    want["tier"] = global_tiers(want["risk"], cuts=(0.01, 0.05, 0.2))
    return reg, ev, act, model, want


def test_spark_runs_the_whole_pipeline_equal_to_in_memory(spark, pipeline_population):
    from pophealth.engines.spark import score_spark, spark_tiers

    reg, ev, act, model, want = pipeline_population
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        sdf = score_spark(spark.createDataFrame(reg), spark.createDataFrame(ev),
                          spark.createDataFrame(act), index_date=IDX, codelists=LISTS,
                          model=model, num_partitions=2)
        got = spark_tiers(sdf, cuts=(0.01, 0.05, 0.2)).toPandas()
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    got = got.set_index("patient_id").sort_index()
    assert got.index.tolist() == want.index.tolist()
    for col in ("risk", "segment", "tier", "prior_cost", "frailty_band", "cms_general"):
        assert col in got.columns
    assert got["risk"].notna().all() and (got["segment"] != "").all()
    # hand check of the tier sizes: n = 1500, k = ceil(0.01 n) = 15, ceil(0.05 n) = 75,
    # ceil(0.2 n) = 300 (ties can only add to a tier)
    assert (got["tier"] == "very high").sum() >= 15
    assert got["tier"].isin(["very high", "high"]).sum() >= 75
    want_plain = want.copy()
    for col in want_plain.columns:  # Spark holds naive timestamps at microseconds
        if pd.api.types.is_datetime64_any_dtype(want_plain[col]):
            want_plain[col] = want_plain[col].astype("datetime64[us]")
    _assert_same(got, want_plain)


def test_the_model_is_broadcast_not_captured(spark):
    from pyspark.broadcast import Broadcast

    from pophealth.engines.spark import _broadcast

    model = {"a fitted model": 1}
    shipped = _broadcast(spark, model)
    assert isinstance(shipped, Broadcast) and shipped.value == model
    assert _broadcast(spark, None) is None
