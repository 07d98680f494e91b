"""Engines: Parquet/Arrow I/O, out-of-core streaming and Spark over the batch function.

* :mod:`~pophealth.engines.io` -- open and read Parquet files/datasets and CSV; atomic writes.
* :mod:`~pophealth.engines.streaming` -- ``score_dataset``: bucket by bucket, bounded memory.
* :mod:`~pophealth.engines.spark` -- ``score_spark``: ``mapInArrow`` over patient partitions
  (import it explicitly; it needs ``pyspark``).

Imports core and the analyses, never jobs, cli or demo.
"""

from pophealth.engines.io import atomic_file, open_dataset, read_table, write_parquet_atomic
from pophealth.engines.streaming import read_scores, score_dataset

__all__ = [
    "atomic_file",
    "open_dataset",
    "read_scores",
    "read_table",
    "score_dataset",
    "write_parquet_atomic",
]
