"""Reading and writing tables: Parquet files, partitioned Parquet datasets and CSV.

pophealth's own layout (written by :func:`pophealth.synthetic.write_population` and
expected by :func:`pophealth.engines.streaming.score_dataset`) is one directory per table,
hive-partitioned by patient bucket, each file sorted by ``patient_id``::

    root/register/bucket=000/part-00000.parquet
    root/events/bucket=000/part-00000.parquet
    ...
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

__all__ = ["DICTIONARY_COLUMNS", "open_dataset", "read_table", "buckets", "iter_batches",
           "atomic_file", "write_parquet_atomic"]


#: String columns read as Arrow dictionaries (pandas categoricals): the core then reuses
#: the dictionary instead of building and hashing one Python string per row.
DICTIONARY_COLUMNS: tuple[str, ...] = ("code", "code_system", "kind", "setting")


def open_dataset(path) -> ds.Dataset:
    """Open a Parquet file or hive-partitioned Parquet directory (or a CSV file).

    Parquet string columns named in :data:`DICTIONARY_COLUMNS` are read as dictionaries.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist or holds no data files.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "input not found", str(path))
    if path.is_file() and path.suffix.lower() == ".csv":
        return ds.dataset(path, format="csv")
    fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": list(DICTIONARY_COLUMNS)})
    dataset = ds.dataset(path, format=fmt, partitioning="hive")
    if not dataset.files:
        raise FileNotFoundError(2, "no Parquet files under input", str(path))
    return dataset


def _encode_dictionaries(table: pa.Table) -> pa.Table:
    """Dictionary-encode the :data:`DICTIONARY_COLUMNS` that arrived as plain strings (CSV)."""
    for name in DICTIONARY_COLUMNS:
        if name in table.column_names:
            col = table.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                i = table.column_names.index(name)
                table = table.set_column(i, name, pc.dictionary_encode(col))
    return table


def read_table(path, *, columns: Sequence[str] | None = None, filter=None) -> pd.DataFrame:
    """Read a table (file or dataset) into pandas.

    Codes, code systems, activity kinds and settings come back as categoricals (Arrow
    dictionaries), never as one Python string per row; other dictionary columns become
    categoricals too.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from pophealth.engines.io import read_table
    >>> ev = pd.DataFrame({"patient_id": [1, 2], "code": ["I21", "I21"],
    ...                    "code_system": ["icd10", "icd10"]})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ev.to_parquet(f"{d}/events.parquet")
    ...     back = read_table(f"{d}/events.parquet")
    >>> back["code"].dtype.name, back["code"].tolist()
    ('category', ['I21', 'I21'])

    A CSV value that cannot be read as its column's type is a
    :class:`~pophealth.contracts.exceptions.SchemaError` naming the column and row, never
    the value (Arrow's own message quotes it):

    >>> with tempfile.TemporaryDirectory() as d:
    ...     rows = "patient_id,code,code_system\\n" + "1,I21,icd10\\n" * 100_000 + "x,I21,icd10\\n"
    ...     _ = open(f"{d}/events.csv", "w").write(rows)
    ...     read_table(f"{d}/events.csv")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: events.csv: column 'patient_id' breaks rule 'csv_type' (a value cannot be read as int64) in 1 row(s); first positions [100000]
    """
    dataset = open_dataset(path)
    try:
        table = dataset.to_table(columns=list(columns) if columns else None, filter=filter)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if not isinstance(dataset.format, ds.CsvFileFormat):
            raise
        raise _csv_error(Path(path).name, dataset.schema.names, str(exc)) from None
    return _encode_dictionaries(table).to_pandas()


def _csv_error(name: str, columns: list, message: str):
    """A :class:`SchemaError` for an Arrow CSV read error, built from the column and row
    numbers in Arrow's message only: the rest of it may quote the offending value or row."""
    from pophealth.contracts.exceptions import SchemaError

    col = re.search(r"CSV column #(\d+)", message)
    row = re.search(r"Row #(\d+)", message)
    to = re.search(r"conversion error to (\w+)", message)
    column = columns[int(col.group(1))] if col and int(col.group(1)) < len(columns) else ""
    # Arrow counts CSV lines from 1 with the header as line 1: data position = line - 2
    pos = [int(row.group(1)) - 2] if row and int(row.group(1)) >= 2 else []
    if column and to:
        return SchemaError(f"{name}: column '{column}' breaks rule 'csv_type' (a value cannot "
                           f"be read as {to.group(1)}) in 1 row(s); first positions {pos}",
                           [{"column": column, "rule": "csv_type", "count": 1,
                             "positions": pos}])
    where = f" near row position {pos[0]}" if pos else ""
    return SchemaError(f"{name}: cannot be parsed as CSV (rule 'csv_parse'){where}",
                       [{"column": column, "rule": "csv_parse", "count": 1, "positions": pos}])


def buckets(dataset: ds.Dataset) -> list | None:
    """Sorted values of the ``bucket`` partition field, or None if not partitioned so."""
    if "bucket" not in dataset.schema.names:
        return None
    values = set()
    for fragment in dataset.get_fragments():
        expr = ds.get_partition_keys(fragment.partition_expression)
        if "bucket" in expr:
            values.add(expr["bucket"])
    return sorted(values)


def iter_batches(path, *, columns: Sequence[str] | None = None, batch_size: int = 1_000_000,
                 filter=None) -> Iterator[pa.RecordBatch]:
    """Stream record batches from a dataset with bounded memory."""
    yield from open_dataset(path).to_batches(columns=list(columns) if columns else None,
                                             filter=filter, batch_size=batch_size)


@contextlib.contextmanager
def atomic_file(target) -> Iterator:
    """Open a temporary sibling of ``target`` for binary writing; on success fsync it
    and rename it over ``target``, on any error remove it.

    A reader never sees a half-written file; a killed writer leaves at most a
    ``.<name>.*.tmp`` sibling (same directory, so the rename is atomic).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_parquet_atomic(table: pa.Table | pd.DataFrame, target) -> Path:
    """Write Parquet through :func:`atomic_file`."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table)
    with atomic_file(target) as fh:
        pq.write_table(table, fh, compression="zstd")
    return Path(target)
