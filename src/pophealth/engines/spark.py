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
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, DataQualityWarning
from pophealth.contracts.schema import naive_timestamp
from pophealth.core.batch import score_patients

__all__ = ["score_spark", "output_columns"]

_REGISTER_COLUMNS = ("patient_id", "age", "date_of_birth")
_EVENT_COLUMNS = ("patient_id", "code", "code_system", "date")
_KIND = "_pophealth_row"


def output_columns(codelists: Mapping[str, str | None] | None, index_date) -> pd.DataFrame:
    """An empty frame with the columns and dtypes :func:`score_patients` returns."""
    reg = pd.DataFrame({"patient_id": pd.Series([], dtype=np.int64),
                        "age": pd.Series([], dtype=np.int64)})
    ev = pd.DataFrame({"patient_id": pd.Series([], dtype=np.int64),
                       "code": pd.Series([], dtype=object),
                       "code_system": pd.Series([], dtype=object),
                       "date": pd.Series([], dtype="datetime64[ns]")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return _plain(score_patients(reg, ev, index_date=index_date, codelists=codelists))


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
    return T.StringType()


def score_spark(register_sdf, events_sdf, *, index_date,
                codelists: Mapping[str, str | None] | None = None,
                num_partitions: int | None = None):
    """Score every register patient on Spark; returns a Spark DataFrame.

    Parameters
    ----------
    register_sdf, events_sdf : pyspark.sql.DataFrame
        Register (``patient_id`` and ``age`` or ``date_of_birth``) and events
        (``patient_id``, ``code``, ``code_system``, ``date``).
    index_date : date-like
    codelists : mapping, optional
        As for :func:`pophealth.score_patients`.
    num_partitions : int, optional
        Partitions to hash patients into (default: Spark's shuffle partitions).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per register patient: ``patient_id`` and the score columns.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    reg_cols = [c for c in _REGISTER_COLUMNS if c in register_sdf.columns]
    ev_cols = [c for c in _EVENT_COLUMNS if c in events_sdf.columns]
    for need, have, table in (("patient_id", reg_cols, "register"),
                              ("patient_id", ev_cols, "events"), ("code", ev_cols, "events")):
        if need not in have:
            raise ConfigError(f"score_spark: {table} lacks column '{need}'")
    template = output_columns(codelists, index_date)
    id_type = register_sdf.schema["patient_id"].dataType
    fields = [T.StructField("patient_id", id_type, False)] + [
        T.StructField(c, _spark_type(template[c].dtype, T), True)
        for c in template.columns if c != "patient_id"]
    schema = T.StructType(fields)
    columns = [f.name for f in fields]

    reg = register_sdf.select(*reg_cols).withColumn(_KIND, F.lit("R"))
    ev = events_sdf.select(*ev_cols).withColumn(_KIND, F.lit("E"))
    combined = reg.unionByName(ev, allowMissingColumns=True)
    combined = (combined.repartition(num_partitions, "patient_id") if num_partitions
                else combined.repartition("patient_id"))
    args = {"index_date": str(naive_timestamp(index_date).date()), "codelists": dict(codelists or {})}

    def score_partition(batches: Iterator) -> Iterator:
        import pyarrow as pa

        batches = list(batches)
        if not batches:
            return
        df = pa.Table.from_batches(batches).to_pandas(date_as_object=False)
        kind = df.pop(_KIND)
        for col in df.columns:  # Spark timestamps arrive in the session zone: keep the wall clock
            if isinstance(df[col].dtype, pd.DatetimeTZDtype):
                df[col] = df[col].dt.tz_localize(None)
        register = df.loc[kind == "R", reg_cols].reset_index(drop=True)
        if len(register) == 0:
            return
        events = df.loc[kind == "E", ev_cols].reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            scores = score_patients(register, events, index_date=args["index_date"],
                                    codelists=args["codelists"])
        out = _plain(scores)[columns]
        yield pa.RecordBatch.from_pandas(out, preserve_index=False)

    return combined.mapInArrow(score_partition, schema)
