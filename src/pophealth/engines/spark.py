"""Spark adapter: the same batch function on Spark DataFrames via ``mapInArrow``.

NHS England's secure data environments run Databricks/Spark. :func:`score_spark` puts
each patient's register row and events in one partition (``repartition`` on
``patient_id``), then calls :func:`pophealth.score_patients` once per partition on
Arrow data. The batch function is split-invariant, so the result equals scoring the
population in memory, whatever the partitioning.

On Databricks: ``%pip install pophealth`` (or a wheel from this repository) on the
cluster, then::

    from pophealth.engines.spark import score_spark
    scores = score_spark(spark.table("register"), spark.table("events"),
                         index_date="2025-04-01")
    scores.write.mode("overwrite").saveAsTable("pophealth_scores")

Timestamps are compared with ``index_date`` on their wall-clock reading in the session
time zone (``spark.sql.session.timeZone``), so the result does not depend on the zone as
long as it is the one the dates were recorded in (``Europe/London`` for English NHS
data, or ``UTC`` for data stored in UTC): with ``index_date="2025-04-01"`` an event
recorded at 2025-04-01 00:30 is after the index date in every session zone, as it is in
memory.

pyspark is imported lazily and is not a dependency of pophealth itself
(``pip install "pophealth[spark]"``; on Databricks use the runtime's own pyspark).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, DataQualityWarning
from pophealth.contracts.schema import naive_timestamp
from pophealth.engines.pipeline import empty_activity, score_batch

__all__ = ["score_spark", "spark_tiers", "output_columns"]

_EVENT_COLUMNS = ("patient_id", "code", "code_system", "date")
_ACTIVITY_COLUMNS = ("patient_id", "date", "kind", "cost", "length_of_stay")
_KIND = "_pophealth_row"
_PREFIX = {"R": "r__", "E": "e__", "A": "a__"}


def _batch_args(codelists, segments: bool, segment_rules) -> dict:
    return {"codelists": dict(codelists or {}), "segments": segments,
            "segment_rules": segment_rules}


def output_columns(codelists: Mapping[str, str | None] | None, index_date, *,
                   register: pd.DataFrame | None = None, segments: bool = True,
                   segment_rules=None, risk: bool = False) -> pd.DataFrame:
    """An empty frame with the columns and dtypes :func:`score_spark` returns.

    ``register`` (a frame with the register's columns and dtypes; its first row, when it
    has one, is scored without events so that every column gets the dtype a real batch
    gives it - an empty batch sums to integers) sets the register columns the patient
    table carries; by default ``patient_id`` and ``age``.
    """
    reg = (register.iloc[:1].copy() if register is not None else
           pd.DataFrame({"patient_id": pd.Series([1], dtype=np.int64),
                         "age": pd.Series([80], dtype=np.int64)}))
    ev = pd.DataFrame({"patient_id": pd.Series([], dtype=reg["patient_id"].dtype),
                       "code": pd.Series([], dtype=object),
                       "code_system": pd.Series([], dtype=object),
                       "date": pd.Series([], dtype="datetime64[ns]")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        out = score_batch(reg, ev, empty_activity(), index_date=index_date, codelists=codelists,
                          segments=segments, segment_rules=segment_rules,
                          on_no_match="ignore")
    if risk:  # where score_batch puts it: after the patient table, before the segments
        at = out.columns.get_loc("segment") if "segment" in out.columns else len(out.columns)
        out.insert(at, "risk", np.zeros(len(out), dtype=np.float64))
    return _plain(out).iloc[:0]


def _plain(scores: pd.DataFrame) -> pd.DataFrame:
    """Categorical bands as strings, index as a column: what Spark can hold."""
    out = scores.reset_index()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def _spark_type(dtype, T):
    if pd.api.types.is_bool_dtype(dtype):
        return T.BooleanType()
    if pd.api.types.is_integer_dtype(dtype):
        return T.LongType()
    if pd.api.types.is_float_dtype(dtype):
        return T.DoubleType()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return T.TimestampNTZType()  # naive wall-clock dates, as the patient table holds them
    return T.StringType()


def _arrow_type(spark_type, T):
    import pyarrow as pa

    return {T.BooleanType: pa.bool_(), T.LongType: pa.int64(), T.IntegerType: pa.int32(),
            T.DoubleType: pa.float64(), T.TimestampNTZType: pa.timestamp("us"),
            T.StringType: pa.string()}[type(spark_type)]


def _broadcast(spark_session, model):
    """The model shipped once per executor (``SparkContext.broadcast``): tasks share it.

    A closure would carry the pickled model in every task's serialised function; a
    broadcast is pickled once on the driver, fetched once per executor and cached there.
    Spark Connect sessions (no SparkContext) fall back to the closure."""
    if model is None:
        return None
    try:
        return spark_session.sparkContext.broadcast(model)
    except Exception:  # pragma: no cover - Spark Connect: no SparkContext
        return _Captured(model)


class _Captured:
    """A stand-in with the broadcast's ``.value`` for sessions that cannot broadcast."""

    def __init__(self, value) -> None:
        self.value = value


def score_spark(register_sdf, events_sdf, activity_sdf=None, *, index_date,
                codelists: Mapping[str, str | None] | None = None, model=None,
                segments: bool = True, segment_rules=None,
                num_partitions: int | None = None):
    """The whole patient table on Spark, one :func:`~pophealth.engines.pipeline.score_batch`
    call per partition; returns a Spark DataFrame.

    Parameters
    ----------
    register_sdf, events_sdf : pyspark.sql.DataFrame
        Register (``patient_id``, ``age`` or ``date_of_birth``, and any other columns the
        patient table should carry: ``sex``, ``practice``, ``pcn``, ``imd_decile``, ...)
        and events (``patient_id``, ``code``, ``code_system``, ``date``).
    activity_sdf : pyspark.sql.DataFrame, optional
        Contacts (``patient_id``, ``date``, ``kind``, ``cost``, ``length_of_stay``) for the
        utilisation columns and risk features; none when omitted.
    index_date : date-like
    codelists : mapping, optional
        As for :func:`pophealth.score_patients`.
    model : fitted model, optional
        Adds ``risk`` (``model.predict_risk`` over the risk features). Broadcast once.
    segments : bool, default True
        Add ``segment`` and ``segment_rule``.
    segment_rules : SegmentRules, str or path, optional
    num_partitions : int, optional
        Partitions to hash patients into (default: Spark's shuffle partitions).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per register patient: ``patient_id`` and the patient-table columns (the
        identifier column ``nhs_number`` is not carried). No ``tier``: tiers are a cut
        over every patient's risk; add them with :func:`spark_tiers`. The no-silent-zeros
        and unrecognised-code rules are not re-judged per partition (``on_no_match=
        "ignore"``, ``max_unrecognised=1.0``): check a population with
        :func:`~pophealth.engines.streaming.score_dataset` or in memory first.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    tables = {"R": register_sdf, "E": events_sdf}
    if activity_sdf is not None:
        tables["A"] = activity_sdf
    cols = {"R": [c for c in register_sdf.columns if c != _KIND],
            "E": [c for c in _EVENT_COLUMNS if c in events_sdf.columns],
            "A": ([c for c in _ACTIVITY_COLUMNS if c in activity_sdf.columns]
                  if activity_sdf is not None else [])}
    for need, kind, table in (("patient_id", "R", "register"), ("patient_id", "E", "events"),
                              ("code", "E", "events"), ("code_system", "E", "events"),
                              ("patient_id", "A", "activity"), ("date", "A", "activity"),
                              ("kind", "A", "activity"), ("cost", "A", "activity")):
        if kind in tables and need not in cols[kind]:
            raise ConfigError(f"score_spark: {table} lacks column '{need}'")
    reg_one = register_sdf.select(*cols["R"]).limit(1).toPandas()
    template = output_columns(codelists, index_date, register=reg_one, segments=segments,
                              segment_rules=segment_rules, risk=model is not None)
    id_type = register_sdf.schema["patient_id"].dataType
    fields = [T.StructField("patient_id", id_type, False)] + [
        T.StructField(c, _spark_type(template[c].dtype, T), True)
        for c in template.columns if c != "patient_id"]
    schema = T.StructType(fields)
    columns = [f.name for f in fields]
    arrow_fields = [(f.name, _arrow_type(f.dataType, T)) for f in fields]

    parts = [tables[k].select(*[F.col(c).alias(_PREFIX[k] + c) for c in cols[k]])
             .withColumn("_pid", F.col(_PREFIX[k] + "patient_id")).withColumn(_KIND, F.lit(k))
             for k in tables]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.unionByName(part, allowMissingColumns=True)
    combined = (combined.repartition(num_partitions, "_pid") if num_partitions
                else combined.repartition("_pid"))
    args = {"index_date": str(naive_timestamp(index_date).date()),
            **_batch_args(codelists, segments, segment_rules)}
    shipped = _broadcast(register_sdf.sparkSession, model)
    has_activity = "A" in tables

    def score_partition(batches: Iterator) -> Iterator:
        import pyarrow as pa
        import pyarrow.compute as pc

        batches = list(batches)
        if not batches:
            return
        whole = pa.Table.from_batches(batches)
        kind = whole.column(_KIND)

        def table(k):
            # split in Arrow first: a table's own columns have no union nulls, so integer
            # ids stay integers in pandas
            sub = whole.filter(pc.equal(kind, k)).select([_PREFIX[k] + c for c in cols[k]])
            df = sub.to_pandas(date_as_object=False)
            for col in df.columns:  # Spark timestamps arrive in the session zone: keep the
                if isinstance(df[col].dtype, pd.DatetimeTZDtype):  # wall-clock reading
                    df[col] = df[col].dt.tz_localize(None)
            return df.rename(columns=lambda c: c[len(_PREFIX[k]):])

        register = table("R")
        if len(register) == 0:
            return
        events = table("E")
        activity = table("A") if has_activity else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            scores = score_batch(register, events, activity, index_date=args["index_date"],
                                 codelists=args["codelists"], segments=args["segments"],
                                 segment_rules=args["segment_rules"],
                                 model=shipped.value if shipped is not None else None,
                                 max_unrecognised=1.0, on_no_match="ignore")
        out = _plain(scores)[columns]
        yield pa.RecordBatch.from_pandas(out, schema=pa.schema(arrow_fields),
                                         preserve_index=False)

    return combined.mapInArrow(score_partition, schema)


def spark_tiers(scores_sdf, *, cuts: Sequence[float] = (0.005, 0.05, 0.2),
                labels: Sequence[str] | None = None):
    """Add ``tier`` to :func:`score_spark` output by the rule of
    :func:`pophealth.risk.tiers.risk_tiers`, over every row's ``risk``.

    A patient is in the first tier whose count ``k = top_count(cut, n)`` exceeds the number
    of strictly higher risks; that is, whose risk is at least the ``k``-th highest risk.
    So the cuts are three numbers: the risk column (8 bytes a patient) is collected to the
    driver once, the thresholds found there, and the tiers assigned by comparison.
    """
    from pyspark.sql import functions as F

    from pophealth.risk.tiers import DEFAULT_TIER_LABELS, risk_tiers, top_count

    risk_tiers(pd.Series([0.0]), cuts=cuts, labels=labels)  # the same argument checks
    labels = list(DEFAULT_TIER_LABELS if labels is None else labels)
    r = scores_sdf.select("risk").where(F.col("risk").isNotNull()).toPandas()["risk"]
    r = np.sort(r.to_numpy(dtype=float))[::-1]
    expr = None
    for cut, label in zip(np.asarray(cuts, dtype=float), labels, strict=False):
        k = int(top_count(cut, len(r)))
        if k == 0:
            continue
        cond = F.col("risk") >= float(r[k - 1])
        expr = F.when(cond, label) if expr is None else expr.when(cond, label)
    last = F.when(F.col("risk").isNotNull(), labels[-1])
    expr = last if expr is None else expr.when(F.col("risk").isNotNull(), labels[-1])
    return scores_sdf.withColumn("tier", expr)
