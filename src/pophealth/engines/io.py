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
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

__all__ = ["DICTIONARY_COLUMNS", "open_dataset", "read_table", "read_arrow", "scan", "Scan",
           "ValueMask", "buckets", "iter_batches", "atomic_file", "write_parquet_atomic"]


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


def read_table(path, *, columns: Sequence[str] | None = None, filter=None,
               combine_chunks: bool = False) -> pd.DataFrame:
    """Read a table (file or dataset) into pandas.

    Codes, code systems, activity kinds and settings come back as categoricals (Arrow
    dictionaries), never as one Python string per row; other dictionary columns become
    categoricals too. ``combine_chunks=True`` joins each column's chunks (one per
    record batch) in Arrow before the conversion: the same frame for about a third less
    CPU on a dictionary-heavy table (a job batch's 2.4M event rows: 0.037 -> 0.025 s),
    at the cost of a second copy of the Arrow table while it is made (for batch-sized
    reads, not whole populations).

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
    table = read_arrow(path, columns=columns, filter=filter)
    if combine_chunks:
        table = table.combine_chunks()
    # self_destruct frees each Arrow column once converted: the table and the frame are
    # never both whole in memory (split_blocks keeps columns apart, no block copies)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def read_arrow(path, *, columns: Sequence[str] | None = None, filter=None) -> pa.Table:
    """Read a table (file or dataset) as an Arrow table, for the core as is.

    Like :func:`read_table` but without pandas: codes, code systems, kinds and settings
    stay Arrow dictionaries and :func:`pophealth.flag_conditions` (so every index) reads
    them chunk by chunk, never building one Python string per row. Patient ids and dates
    stay numeric. A filter on one dictionary column is evaluated per dictionary value
    (:func:`scan`). To score a file without holding it in memory, pass :func:`scan`'s
    result to the core instead.

    Examples
    --------
    >>> import tempfile, pandas as pd, pyarrow.dataset as ds
    >>> import pophealth as ph
    >>> from pophealth.engines.io import read_arrow
    >>> ev = pd.DataFrame({"patient_id": [1, 1, 2], "code": ["I21", "C78.0", "I21"],
    ...                    "code_system": ["icd10", "icd10", "snomed"]})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ev.to_parquet(f"{d}/events.parquet")
    ...     t = read_arrow(f"{d}/events.parquet", filter=ds.field("code_system") == "icd10")
    >>> t.schema.field("code").type
    DictionaryType(dictionary<values=string, indices=int32, ordered=0>)
    >>> ph.charlson(t, register=pd.DataFrame({"patient_id": [1, 2]}),
    ...             index_date="2025-04-01").tolist()  # Quan 2011: MI 0, metastatic 6
    [6, 0]
    """
    dataset = open_dataset(path)
    try:
        table = Scan(dataset, columns=columns, filter=filter).to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if not isinstance(dataset.format, ds.CsvFileFormat):
            raise
        raise _csv_error(Path(path).name, dataset.schema.names, str(exc)) from None
    return _encode_dictionaries(table)


#: Rows per record batch of a Parquet :class:`Scan`: one batch per row group as
#: pyarrow writes them by default (2**20 rows). Arrow's default (2**17) made the core
#: glue eight batches back into each chunk (copies of every column and of the
#: dictionary indices), and in a fresh process those copies are fresh pages: at 1M
#: patients a third of the process's CPU went to page faults. Whole row groups need
#: no copy (benchmarks/bench_peer.py: about 0.15 s less CPU, 3x fewer page faults).
SCAN_BATCH_ROWS = 1 << 20


# Scanner options of Scan: read a row group's columns page by page, not all at
# once (pre_buffer), and keep one batch ahead: the same speed from a local file with
# about 0.1 GiB less peak memory at 1M patients (benchmarks/bench_peer.py).
def _scan_options(dataset: ds.Dataset) -> dict:
    if not isinstance(dataset.format, ds.ParquetFileFormat):
        return {}
    return {"fragment_scan_options": ds.ParquetFragmentScanOptions(pre_buffer=False),
            "batch_readahead": 1, "fragment_readahead": 1, "batch_size": SCAN_BATCH_ROWS}


def _row_group_runs(dataset: ds.Dataset, omit: dict):
    """``(part, omitted columns)`` covering ``dataset`` in order: runs of consecutive
    Parquet row groups that leave out the same columns of ``omit`` (see
    :meth:`Scan.to_masked_batches`). Without ``omit`` (or for CSV), the dataset whole."""
    if not omit or not isinstance(dataset, ds.FileSystemDataset) or not isinstance(
            dataset.format, ds.ParquetFileFormat):
        yield dataset, frozenset()
        return
    bounds = [c for c in omit if c in dataset.schema.names
              and _naive_time(dataset.schema.field(c).type)]
    if not bounds:  # no column whose statistics could prove anything: no footers to read
        yield dataset, frozenset()
        return
    runs: list = []
    for fragment in dataset.get_fragments():
        for part in fragment.split_by_row_group():
            meta = part.metadata.row_group(part.row_groups[0].id)
            names = {meta.column(i).path_in_schema: i for i in range(meta.num_columns)}
            out = frozenset(c for c in bounds if c in names and _within(
                meta.column(names[c]).statistics, *omit[c]))
            if runs and runs[-1][0] == out:
                runs[-1][1].append(part)
            else:
                runs.append((out, [part]))
    if len(runs) <= 1 and not (runs and runs[0][0]):
        yield dataset, frozenset()
        return
    for out, parts in runs:
        yield ds.FileSystemDataset(parts, dataset.schema, dataset.format,
                                   dataset.filesystem), out


#: nanoseconds per unit of a Parquet Timestamp / Date logical type
_NS = {"milliseconds": 10**6, "microseconds": 10**3, "nanoseconds": 1}


def _naive_time(arrow_type) -> bool:
    """True for a column whose statistics compare on naive wall-clock nanoseconds
    (timestamps without a time zone, dates)."""
    return (pa.types.is_timestamp(arrow_type) and arrow_type.tz is None) or \
        pa.types.is_date32(arrow_type)


def _within(stats, lo: int | None, hi: int) -> bool:
    """True when Parquet column-chunk ``stats`` prove every value non-null and in
    ``(lo, hi]`` (int64 nanoseconds; naive timestamps or dates only)."""
    if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
        return False
    logical = json.loads(stats.logical_type.to_json())
    if logical.get("Type") == "Timestamp" and not logical.get("isAdjustedToUTC"):
        scale = _NS.get(logical.get("timeUnit"))
    elif logical.get("Type") == "Date" and stats.physical_type == "INT32":
        scale = 86_400 * 10**9
    else:
        scale = None
    if scale is None or stats.physical_type not in ("INT64", "INT32"):
        return False
    low, high = int(stats.min_raw) * scale, int(stats.max_raw) * scale
    return high <= hi and (lo is None or low > lo)


def scan(path, *, columns: Sequence[str] | None = None, filter=None) -> Scan:
    """A re-readable, filtered scan of a Parquet file or dataset, for the core.

    Pass it where events go (:func:`pophealth.flag_conditions`, ``charlson``...): the
    core reads it batch by batch (about a million rows at a time), so the file is never
    whole in memory and the unfiltered rows are never kept. Each use reads the file
    again. Codes stay Arrow dictionaries; a filter on one dictionary column is evaluated
    per dictionary value (see :class:`Scan`). The core skips reading the dates of row
    groups whose Parquet statistics prove every date inside its window.

    Examples
    --------
    >>> import tempfile, pandas as pd, pyarrow.dataset as ds
    >>> import pophealth as ph
    >>> from pophealth.engines.io import scan
    >>> ev = pd.DataFrame({"patient_id": [1, 1, 2], "code": ["I21", "C78.0", "I21"],
    ...                    "code_system": ["icd10", "icd10", "snomed"]})
    >>> reg = pd.DataFrame({"patient_id": [1, 2]})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ev.to_parquet(f"{d}/events.parquet")
    ...     events = scan(f"{d}/events.parquet", filter=ds.field("code_system") == "icd10")
    ...     ph.charlson(events, register=reg, index_date="2025-04-01").tolist()
    [6, 0]
    """
    return Scan(open_dataset(path), columns=columns, filter=filter)


class Scan:
    """Rows of ``dataset`` passing ``filter``, as Arrow record batches (re-readable).

    A filter that depends on one dictionary column only (``code_system == "icd10"``, an
    ``isin`` on ``code``...) is evaluated once per *dictionary value* of each record
    batch and gathered to the rows through the dictionary indices: the column is never
    decoded to one string per row (Arrow's own filter decodes it). Any other filter
    (several columns, partition keys) is handed to Arrow's scanner as is. Both give the
    same rows in the same order.

    Attributes
    ----------
    schema : pyarrow.Schema
        The columns the scan yields.
    """

    def __init__(self, dataset: ds.Dataset, *, columns: Sequence[str] | None = None,
                 filter=None) -> None:
        self.dataset = dataset
        self.columns = list(columns) if columns else list(dataset.schema.names)
        self.filter = filter
        self.on = _dictionary_filter_column(dataset, filter)
        self.schema = pa.schema([dataset.schema.field(n) for n in self.columns])

    def to_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Yield the filtered batches (of ``columns``, default all the scan's)."""
        for batch, keep in self.to_masked_batches(columns):
            if keep is not None:
                batch = batch.filter(pa.array(keep))
            yield batch

    def to_masked_batches(self, columns: Sequence[str] | None = None, *,
                          per_value: bool = False, omit: dict | None = None):
        """Yield ``(batch, keep)``: the rows passing the filter are ``batch`` where the
        boolean numpy ``keep`` is True (``keep`` None: all of them). Nothing is copied to
        drop rows; :func:`pophealth.flag_conditions` reads batches this way and treats
        the other rows as absent (not counted anywhere), saving the filter's copy.

        With ``per_value=True`` a filter on one dictionary column that the batch holds
        comes as a :class:`ValueMask` (one flag per dictionary value) instead of a row
        mask. ``omit`` maps a column to ``(lo, hi)`` (int64 nanoseconds, ``lo`` None for
        no lower bound): the column is left out of the batches of every Parquet row group
        whose statistics prove all its values non-null with ``lo < value <= hi``.
        """
        names = list(columns) if columns is not None else self.columns
        memo: list = []  # the last dictionary and its per-value result (batches share them)
        for part, omitted in _row_group_runs(self.dataset, omit or {}):
            use = [n for n in names if n not in omitted]
            if self.on is None:
                for batch in part.to_batches(columns=use, filter=self.filter,
                                             **_scan_options(part)):
                    yield batch, None
                continue
            read = use if self.on in use else [*use, self.on]
            for batch in part.to_batches(columns=read, **_scan_options(part)):
                column = batch.column(self.on)
                if per_value and self.on in use and pa.types.is_dictionary(column.type):
                    passed = _dictionary_passed(column.dictionary, self.filter, self.on, memo)
                    if passed.any():
                        yield batch, (None if passed.all() else ValueMask(self.on, passed))
                    continue
                keep = _dictionary_mask(column, self.filter, self.on, memo)
                if not keep.any():
                    continue
                yield batch.select(use), (None if keep.all() else keep)

    def to_table(self) -> pa.Table:
        """All the filtered rows as one table."""
        return pa.Table.from_batches(list(self.to_batches()), schema=self.schema)


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


def _dictionary_filter_column(dataset: ds.Dataset, filter) -> str | None:
    """The one dictionary column ``filter`` depends on, or None (no filter, CSV, other).

    A filter evaluates on a one-column table only if it names no other field, which is
    how the dependency is found (Arrow exposes no list of an expression's fields).
    """
    if filter is None or not isinstance(dataset.format, ds.ParquetFileFormat):
        return None
    for name in DICTIONARY_COLUMNS:
        if name not in dataset.schema.names:
            continue
        field_type = dataset.schema.field(name).type
        if not pa.types.is_dictionary(field_type):
            continue
        probe = pa.table({name: pa.array([], type=field_type.value_type)})
        try:
            ds.dataset(probe).to_table(filter=filter)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
            continue
        return name
    return None


@dataclass(frozen=True)
class ValueMask:
    """The rows of a batch passing a filter on dictionary column ``column``, given per
    dictionary value: a row passes where ``passed`` at its dictionary index is True (the
    last element stands for a null row)."""

    column: str
    passed: np.ndarray

    def rows(self, batch) -> np.ndarray:
        """The boolean row mask of ``batch``."""
        return _gather_passed(batch.column(self.column), self.passed)


def _dictionary_mask(column: pa.Array, filter, name: str, memo: list | None = None):
    """Row mask of ``filter`` on a dictionary column: evaluated on its values (plus one
    null, for null rows), gathered by the indices. Null results fail, as in Arrow.

    ``memo`` (a list) keeps the last dictionary and its result, so batches that share a
    dictionary (those of one Parquet row group) evaluate the filter once.
    """
    if isinstance(column, pa.ChunkedArray):
        parts = [_dictionary_mask(c, filter, name, memo) for c in column.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    return _gather_passed(column, _dictionary_passed(column.dictionary, filter, name, memo))


def _dictionary_passed(values: pa.Array, filter, name: str, memo: list | None) -> np.ndarray:
    """``filter`` on each dictionary value, plus a last element for a null (False where
    the result is null)."""
    if memo and memo[0].equals(values):
        return memo[1]
    probe = pa.table({name: pa.concat_arrays([values, pa.nulls(1, values.type)])})
    # on this thread: the shared pool is busy decoding the file being scanned
    passed = ds.dataset(probe).to_table(columns={"keep": filter}, use_threads=False)
    passed = passed.column("keep").fill_null(False).to_numpy(zero_copy_only=False)
    passed = passed.astype(bool)
    if memo is not None:
        memo[:] = [values, passed]
    return passed


def _gather_passed(column: pa.Array, passed: np.ndarray) -> np.ndarray:
    """Row mask of a dictionary array from the per-value result ``passed``."""
    idx = column.indices
    if idx.null_count:
        idx = idx.fill_null(len(passed) - 1)
    idx = idx.to_numpy(zero_copy_only=False)
    # few passing (or few failing) values: compare the indices with them, one branch-free
    # pass each; otherwise gather the per-value result through the indices
    hits = np.flatnonzero(passed)
    if len(hits) <= _FEW_VALUES:
        return _any_equal(idx, hits)
    misses = np.flatnonzero(~passed)
    if len(misses) <= _FEW_VALUES:
        return ~_any_equal(idx, misses)
    return passed[idx]


_FEW_VALUES = 4


def _any_equal(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows of ``idx`` equal to one of ``values`` (a few)."""
    out = np.zeros(len(idx), dtype=bool)
    for v in values.tolist():
        out |= idx == v
    return out


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
def atomic_file(target, *, sync: bool = True) -> Iterator:
    """Open a temporary sibling of ``target`` for binary writing; on success fsync it
    (unless ``sync=False``: a caller that fsyncs many files at once, later) and rename it
    over ``target``, on any error remove it.

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
            if sync:
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
