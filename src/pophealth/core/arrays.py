"""Low-level vectorised helpers shared by the scoring core (private).

Everything here works on whole columns with numpy/pyarrow and never loops over rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError

# A dense lookup table is used for integer ids when max-min is at most this factor
# times the number of register patients (plus slack); otherwise a hash index.
_DENSE_FACTOR = 8
# rows compared first (strided) when checking whether an object column is constant
_SAMPLE = 4_096


def factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(codes, uniques)`` with ``codes == -1`` for missing values.

    Categorical and Arrow dictionary columns reuse their dictionary without hashing;
    Arrow string columns are dictionary-encoded by Arrow (C++, GIL released); numpy
    object columns go through :func:`_factorize_objects`.
    """
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy()
            return codes.astype(np.int64, copy=False), np.asarray(dtype.categories, dtype=object)
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
    parts = [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in chunked.chunks]
    codes = np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)
    return codes, np.asarray(dictionary.to_pylist(), dtype=object)


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

    A dense lookup table (int32 positions) for compact integer ids, a hash index
    otherwise. :meth:`positions` compresses runs when ids are grouped by patient.
    """

    def __init__(self, register_ids: np.ndarray) -> None:
        self.ids = register_ids
        self.is_object = register_ids.dtype == object
        self.lut = None
        self.index = None
        m = len(register_ids)
        if m and not self.is_object:
            lo, hi = int(register_ids.min()), int(register_ids.max())
            if hi - lo <= _DENSE_FACTOR * m + 1024:
                self.lo, self.hi = lo, hi
                self.lut = np.full(hi - lo + 1, -1, dtype=np.int32 if m < 2**31 else np.int64)
                self.lut[register_ids - lo] = np.arange(m)
        if self.lut is None:
            self.index = pd.Index(register_ids)

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        if len(self.ids) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
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


def datetimes(values: pd.Series) -> np.ndarray:
    """A date column as int64 nanoseconds since the epoch (NaT = int64 min); tz-aware
    columns on local wall-clock time (:func:`pophealth.contracts.schema.as_datetime64`)."""
    if values.dtype == np.dtype("datetime64[ns]"):
        return values.to_numpy().view(np.int64)
    from pophealth.contracts.schema import as_datetime64

    return as_datetime64(values).view(np.int64)
