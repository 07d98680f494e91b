"""Low-level vectorised helpers shared by the scoring core (private).

Everything here works on whole columns with numpy/pyarrow and never loops over rows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError

# A dense lookup table is used for integer ids when max-min is at most this factor
# times the number of register patients (plus slack); otherwise a hash index.
_DENSE_FACTOR = 8
# rows compared first (strided) when checking whether an object column is constant
_SAMPLE = 4_096


def factorize(values) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(codes, uniques)`` with ``codes == -1`` for missing values.

    ``values`` is a pandas Series, a numpy array or an Arrow (chunked) array. ``codes``
    is a signed integer array of the narrowest width at hand (a categorical's or Arrow
    dictionary's own indices are not widened).
    Categorical and Arrow dictionary columns reuse their dictionary without hashing;
    Arrow string columns are dictionary-encoded by Arrow (C++, GIL released); numpy
    object columns go through :func:`_factorize_objects`.
    """
    if is_arrow_array(values):
        return _factorize_arrow(values)
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return values.cat.codes.to_numpy(), np.asarray(dtype.categories, dtype=object)
        arrow = _arrow_of(values)
        if arrow is not None:
            return _factorize_arrow(arrow)
        values = values.to_numpy()
    if values.dtype == object:
        return _factorize_objects(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _factorize_objects(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factorize an object array of strings by value (pandas' hash table).

    This is the route for in-memory object columns. Files are read with codes as
    dictionaries (:func:`pophealth.engines.io.read_table`), which skips hashing altogether;
    ``benchmarks/bench_factorize.py`` measures both routes.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def is_constant_object(values: np.ndarray) -> bool:
    """True when every element of an object array equals the first (by value).

    A strided sample is compared first, so a column that varies is rejected after a few
    thousand comparisons; only a column that looks constant is compared in full.
    """
    n = len(values)
    if n == 0:
        return False
    first = values[0]
    if first is None or (isinstance(first, float) and np.isnan(first)):
        return False
    step = max(1, n // _SAMPLE)
    if not bool(np.all(values[::step] == first)):
        return False
    return bool(np.all(values == first))


def is_arrow_table(obj) -> bool:
    """True for a :class:`pyarrow.Table` (without importing pyarrow when it is not loaded)."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(obj, pa.Table)


def is_arrow_source(obj) -> bool:
    """True for an Arrow table or a re-readable Arrow batch source: an object with an
    Arrow ``schema`` and ``to_batches(columns=...)`` (a :class:`pyarrow.dataset.Dataset`,
    :func:`pophealth.engines.io.scan`). A one-shot ``RecordBatchReader`` is not one: a
    second pass over it would silently see no rows."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return False
    if isinstance(obj, pa.Table):
        return True
    return isinstance(getattr(obj, "schema", None), pa.Schema) and callable(
        getattr(obj, "to_batches", None)) and not isinstance(obj, pa.RecordBatchReader)


def is_arrow_array(obj) -> bool:
    """True for a :class:`pyarrow.Array` or :class:`pyarrow.ChunkedArray`."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(obj, (pa.Array, pa.ChunkedArray))


@dataclass
class EventChunk:
    """Rows ``offset:offset + n`` of an events table, as the flag core reads them.

    ``n`` is None when the rows that exist are given by ``system_keep`` (the core counts
    them); ``offset`` is then unknown too (None) and the core orders chunks by position.
    """

    offset: int | None
    n: int | None
    codes: object  # pandas Series or Arrow chunked array
    systems: object
    pids: np.ndarray | ArrowRows | None  # None when some ids are missing (see null_ids)
    dates: np.ndarray | ArrowRows | None
    null_ids: np.ndarray | None = None  # positions (in this chunk) of missing patient ids
    keep: np.ndarray | None = None  # rows of the arrays that exist (a scan's filter)
    #: rows exist where this is True at their code-system dictionary index (last element:
    #: a missing system): a scan's filter on the code system, per dictionary value
    system_keep: np.ndarray | None = None


class EventColumns:
    """The events of :func:`pophealth.flag_conditions` as chunks, from a pandas
    DataFrame, an Arrow table or an Arrow batch source (:func:`is_arrow_source`): one
    code path for all. Arrow codes and systems stay dictionary arrays (never decoded);
    Arrow patient ids and dates become numpy int64 only for the rows the core asks for
    (:class:`ArrowRows`); an Arrow source is read batch by batch, never whole in memory.
    """

    COLUMNS = ("patient_id", "code", "code_system", "date")

    def __init__(self, events) -> None:
        self.events = events
        self.arrow = is_arrow_source(events)
        if self.arrow:
            self.names = [str(c) for c in events.schema.names]
        else:
            self.names = [str(c) for c in events.columns]

    def has(self, name: str) -> bool:
        return name in self.names

    def chunks(self, rows: int, table: str = "events", *, date_window=None):
        """Yield :class:`EventChunk` of about ``rows`` rows, in order.

        ``date_window`` ``(lo, hi)`` (int64 nanoseconds, ``lo`` None for no lower bound):
        a Parquet scan (:func:`pophealth.engines.io.scan`) leaves the date column out of
        the row groups whose statistics prove every date non-null and in ``(lo, hi]``;
        their chunks have ``dates`` None (every row inside the window).
        """
        if not self.arrow:
            yield from self._pandas_chunks(rows, table)
            return
        need = [c for c in self.COLUMNS if c in self.names]
        if is_arrow_table(self.events):
            pairs = ((b, None) for b in self.events.select(need).to_batches())
        elif callable(getattr(self.events, "to_masked_batches", None)):  # engines.io.Scan
            omit = {"date": date_window} if date_window is not None and "date" in need else None
            pairs = self.events.to_masked_batches(columns=need, per_value=True, omit=omit)
        else:
            pairs = ((b, None) for b in self.events.to_batches(columns=need))
        group, masks, size, names = [], [], 0, None
        for batch, keep in pairs:
            if not batch.num_rows:
                continue
            if group and batch.schema.names != names:  # a row group without dates
                yield self._arrow_chunk(group, masks, table)
                group, masks, size = [], [], 0
            names = batch.schema.names
            group.append(batch)
            masks.append(keep)
            size += int(keep.sum()) if isinstance(keep, np.ndarray) else batch.num_rows
            if size >= rows:
                yield self._arrow_chunk(group, masks, table)
                group, masks, size = [], [], 0
        if group:
            yield self._arrow_chunk(group, masks, table)

    def _pandas_chunks(self, rows: int, table: str):
        ev = self.events
        n = len(ev)
        pids = id_array(ev["patient_id"], table)
        dates = datetimes(ev["date"]) if self.has("date") else None
        for a in range(0, n, rows):
            b = min(n, a + rows)
            yield EventChunk(a, b - a, ev["code"].iloc[a:b], ev["code_system"].iloc[a:b],
                             pids[a:b], None if dates is None else dates[a:b])

    def _arrow_chunk(self, group: list, masks: list, table: str) -> EventChunk:
        import pyarrow as pa

        t = pa.Table.from_batches(group)
        keep, system_keep = None, None
        col = t.column("patient_id")
        # one batch filtered on its code system per dictionary value: the core folds
        # the filter into its (system, code) keys, no row mask is built
        if (len(group) == 1 and getattr(masks[0], "column", None) == "code_system"
                and not col.null_count):
            system_keep = masks[0].passed
        else:
            masks = [m.rows(b) if hasattr(m, "rows") else m
                     for b, m in zip(group, masks, strict=True)]
            if any(m is not None for m in masks):
                keep = np.concatenate([np.ones(b.num_rows, bool) if m is None else m
                                       for b, m in zip(group, masks, strict=True)])
        n = None if system_keep is not None else (
            t.num_rows if keep is None else int(keep.sum()))
        chunk = EventChunk(None, n, t.column("code"), t.column("code_system"), None, None,
                           keep=keep, system_keep=system_keep)
        if col.null_count:
            missing = col.is_null().to_numpy(zero_copy_only=False)
            if keep is not None:  # positions among the rows passing the filter
                missing = missing[keep]
            if missing.any():
                chunk.null_ids = np.flatnonzero(missing)
                return chunk
        # ids and dates stay Arrow: the core converts only the rows whose code matched
        chunk.pids = ArrowRows(col, table)
        if "date" in t.column_names:
            chunk.dates = ArrowRows(t.column("date"), table, dates=True)
        return chunk


class ArrowRows:
    """An Arrow id or date column of one chunk, converted to numpy int64 (or object ids)
    only for the rows asked for: the flag core needs them for matched rows only."""

    def __init__(self, col, table: str, dates: bool = False) -> None:
        self.col, self.table, self.dates = col, table, dates

    def __len__(self) -> int:
        return len(self.col)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        import pyarrow as pa

        part = self.col.take(pa.array(rows, type=pa.int64()))
        if self.dates:
            return _arrow_datetimes(part)
        if pa.types.is_integer(part.type):
            return part.to_numpy().astype(np.int64, copy=False)
        return id_array(part.to_pandas(), self.table)


def _arrow_datetimes(col) -> np.ndarray:
    """An Arrow date column as :func:`datetimes` gives it (NaT = int64 min)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_timestamp(col.type) and col.type.tz is None):
        return datetimes(col.to_pandas())  # dates, tz-aware, strings: the pandas rules
    if col.type.unit != "ns":
        col = pc.cast(col, pa.timestamp("ns"))  # out-of-range dates raise
    ns = pc.cast(col, pa.int64())
    if ns.null_count:
        ns = ns.fill_null(np.iinfo(np.int64).min)
    return ns.to_numpy().astype(np.int64, copy=False)


def _arrow_of(series: pd.Series):
    arr = series.array
    if isinstance(series.dtype, (pd.ArrowDtype,)) or (
        isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"
    ):
        return arr.__arrow_array__()
    return None


def _factorize_arrow(chunked) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(chunked, pa.Array):
        chunked = pa.chunked_array([chunked])
    if not pa.types.is_dictionary(chunked.type):
        chunked = pc.dictionary_encode(chunked)
    chunked = chunked.unify_dictionaries()
    if chunked.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    dictionary = chunked.chunk(0).dictionary
    parts = [_dictionary_codes(c) for c in chunked.chunks]
    codes = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return codes, np.asarray(dictionary.to_pylist(), dtype=object)


def one_dictionary(values):
    """``(codes, dictionary)`` of a one-chunk Arrow dictionary array (``codes`` as
    :func:`factorize` gives them, the dictionary still Arrow), else None."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks != 1:
            return None
        values = values.chunk(0)
    if not isinstance(values, pa.DictionaryArray):
        return None
    return _dictionary_codes(values), values.dictionary


def _dictionary_codes(values) -> np.ndarray:
    """The indices of an Arrow dictionary array as numpy, ``-1`` for a null (unsigned
    indices widened to int64 so that -1 fits)."""
    import pyarrow as pa

    idx = values.indices
    if pa.types.is_unsigned_integer(idx.type):
        idx = idx.cast(pa.int64())
    return (idx.fill_null(-1) if idx.null_count else idx).to_numpy(zero_copy_only=False)


def id_array(values: pd.Series | pd.Index | np.ndarray, table: str = "events") -> np.ndarray:
    """Patient ids as a numpy array (int64 for integer ids, object otherwise).

    Raises
    ------
    SchemaError
        If any id is missing (count and positions, never values).
    """
    if not isinstance(values, (pd.Series, pd.Index)):
        values = pd.Series(np.asarray(values))
    missing = np.asarray(values.isna())
    if missing.any():
        pos = np.flatnonzero(missing)[:10].tolist()
        raise SchemaError(
            f"{table}: column 'patient_id' breaks rule 'not_null' in {int(missing.sum())} "
            f"row(s); first positions {pos}"
        )
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(dtype.categories.dtype)
        dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        if pa.types.is_integer(dtype.pyarrow_dtype):
            return values.to_numpy(dtype=np.int64)
        return values.to_numpy(dtype=object)
    if pd.api.types.is_integer_dtype(dtype):
        return values.to_numpy(dtype=np.int64)
    return values.to_numpy(dtype=object)


def is_sorted(a: np.ndarray) -> bool:
    """True when ``a`` is non-decreasing (grouped-by-patient input)."""
    if len(a) < 2:
        return True
    if a.dtype == object:
        return False
    return bool(np.all(a[1:] >= a[:-1]))


class PatientLookup:
    """Maps patient ids to register row positions; built once, reused for every chunk.

    Consecutive ids in order (``lo..hi``) need no table (position = id - lo); a dense
    lookup table (int32 positions) serves other compact integer ids, a hash index the
    rest. :meth:`positions` compresses runs when ids are grouped by patient.
    """

    def __init__(self, register_ids: np.ndarray) -> None:
        self.ids = register_ids
        self.is_object = register_ids.dtype == object
        self.lut = None
        self.index = None
        self.contiguous = False
        m = len(register_ids)
        if m and not self.is_object:
            lo, hi = int(register_ids.min()), int(register_ids.max())
            if hi - lo + 1 == m and (m == 1 or bool(np.all(register_ids[1:] > register_ids[:-1]))):
                # strictly increasing m ids in m slots: exactly lo..hi, position = id - lo
                self.lo, self.hi, self.contiguous = lo, hi, True
            elif hi - lo <= _DENSE_FACTOR * m + 1024:
                self.lo, self.hi = lo, hi
                self.lut = np.full(hi - lo + 1, -1, dtype=np.int32 if m < 2**31 else np.int64)
                self.lut[register_ids - lo] = np.arange(m)
        if self.lut is None and not self.contiguous:
            self.index = pd.Index(register_ids)

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        if len(self.ids) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        if self.contiguous:
            out = keys - self.lo
            out[(keys < self.lo) | (keys > self.hi)] = -1
            return out
        if self.lut is not None:
            inside = (keys >= self.lo) & (keys <= self.hi)
            if inside.all():
                return self.lut[keys - self.lo].astype(np.int64, copy=False)
            out = np.full(len(keys), -1, dtype=np.int64)
            out[inside] = self.lut[keys[inside] - self.lo]
            return out
        return self.index.get_indexer(keys).astype(np.int64, copy=False)

    def positions(self, event_ids: np.ndarray) -> np.ndarray:
        """Register positions of ``event_ids`` (``-1`` where not registered)."""
        n = len(event_ids)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if (event_ids.dtype == object) != self.is_object:
            raise SchemaError(
                "patient_id: rule 'same_id_type' broken: register and events ids must both be "
                "integers or both be strings"
            )
        if is_sorted(event_ids):
            starts = np.flatnonzero(np.concatenate(([True], event_ids[1:] != event_ids[:-1])))
            run_pos = self._lookup(event_ids[starts])
            lengths = np.diff(np.append(starts, n))
            return np.repeat(run_pos, lengths)
        return self._lookup(event_ids)


def positions(event_ids: np.ndarray, register_ids: np.ndarray) -> np.ndarray:
    """Map event patient ids to register row positions (``-1`` if not registered)."""
    return PatientLookup(register_ids).positions(event_ids)


def index_positions(index: pd.Index, ids: np.ndarray) -> np.ndarray:
    """Positions in ``index`` (register ids) of ``ids`` (``-1``: not in it).

    Unique int64 ids on both sides go through :class:`PatientLookup` (run-length lookups
    when ``ids`` are grouped by patient, as a job batch reads them); anything else through
    the index's hash table, which gives ``-1`` for ids of another type.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> index_positions(pd.Index([10, 11, 12]), np.array([12, 12, 10, 99])).tolist()
    [2, 2, 0, -1]
    """
    if index.dtype == np.int64 and ids.dtype == np.int64 and index.is_unique:
        return PatientLookup(index.to_numpy()).positions(ids)
    return index.get_indexer(ids)


def datetimes(values: pd.Series) -> np.ndarray:
    """A date column as int64 nanoseconds since the epoch (NaT = int64 min); tz-aware
    columns on local wall-clock time (:func:`pophealth.contracts.schema.as_datetime64`)."""
    if values.dtype == np.dtype("datetime64[ns]"):
        return values.to_numpy().view(np.int64)
    from pophealth.contracts.schema import as_datetime64

    return as_datetime64(values).view(np.int64)
