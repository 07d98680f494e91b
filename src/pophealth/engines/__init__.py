"""Engines: Parquet/Arrow I/O, out-of-core streaming and Spark over the batch function.

* :mod:`~pophealth.engines.io` -- open and read Parquet files/datasets and CSV; atomic writes.
* :mod:`~pophealth.engines.pipeline` -- ``score_batch``: the one batch function for the whole
  patient table (indices, utilisation, segments, risk); ``global_tiers`` after the batches.
* :mod:`~pophealth.engines.streaming` -- ``score_dataset``: bucket by bucket, bounded memory.
* :mod:`~pophealth.engines.sus` -- ``read_sus_apc``, ``read_sus_op``, ``read_ecds``: SUS+/HES
  wide extracts to the long events and activity contracts.
* :mod:`~pophealth.engines.gp` -- ``read_gp_events``, ``read_gp_register``: GP extracts
  through a column mapping (NHS Data Dictionary sex codes accepted).
* :mod:`~pophealth.engines.extract_report` -- ``Extract``/``ExtractReport``: what a reader
  could not map, as counts and positions.
* :mod:`~pophealth.engines.spark` -- ``score_spark``: ``mapInArrow`` over patient partitions
  (import it explicitly; it needs ``pyspark``).

Imports core and the analyses, never jobs, cli or demo.
"""

from pophealth.engines.extract_report import Extract, ExtractReport
from pophealth.engines.gp import read_gp_events, read_gp_register
from pophealth.engines.io import atomic_file, open_dataset, read_table, write_parquet_atomic
from pophealth.engines.streaming import read_scores, score_dataset
from pophealth.engines.sus import read_ecds, read_sus_apc, read_sus_op

__all__ = [
    "Extract",
    "ExtractReport",
    "atomic_file",
    "open_dataset",
    "read_ecds",
    "read_gp_events",
    "read_gp_register",
    "read_scores",
    "read_table",
    "read_sus_apc",
    "read_sus_op",
    "score_dataset",
    "write_parquet_atomic",
]
