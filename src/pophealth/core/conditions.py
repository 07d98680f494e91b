"""Coded events -> per-patient condition flags: the vectorised core.

Algorithm (no Python loop over patients or events). Events (pandas, an Arrow table, or
an Arrow batch source read batch by batch) are taken in chunks of about ``_CHUNK_ROWS``
rows, processed on ``_THREADS`` threads; for each chunk:

1. factorize the code column (categorical/Arrow dictionaries are reused as is) and the
   code-system column; each row gets an integer key (system, code) and one
   ``bincount`` counts the rows per key (rows that a Parquet scan's filter on the code
   system drops are dropped per system value, from the counts; other filters give a row
   mask);
2. classify the keys that have rows (other system / unrecognised / not in the list /
   matched): a code book shared by all chunks normalises, validates and matches each
   *distinct* raw code once per call, and only codes that occur in a system the list
   covers (a Parquet dictionary also holds the codes of filtered-out rows);
3. for matched rows only, map the patient to a register row position through a lookup
   built once per call (run-length compressed when events are grouped by patient; a
   dense table for compact integer ids; a hash index otherwise);
4. keep rows inside ``(index_date - lookback_days, index_date]`` (a Parquet scan does not
   read the dates of row groups whose statistics prove every date inside);
5. scatter (condition, patient position) pairs into a condition-major boolean matrix
   (each condition's column contiguous for the scorers).

The function is pure and row-order/batch-split invariant: flags of a concatenation of
patient batches equal the concatenation of the batches' flags.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    SchemaError,
    user_stacklevel,
)
from pophealth.contracts.schema import naive_timestamp
from pophealth.core.arrays import (
    EventChunk,
    EventColumns,
    PatientLookup,
    factorize,
    id_array,
    is_arrow_source,
    is_constant_object,
    one_dictionary,
)
from pophealth.core.codelists import Codelist, load_codelist
from pophealth.core.codes import KNOWN_SYSTEMS, is_valid_code, normalise_codes, normalise_system

__all__ = ["flag_conditions", "FlagReport", "register_ids", "require_event_columns",
           "system_counts_text", "EVENT_COLUMNS", "MISSING_SYSTEM", "UNKNOWN_SYSTEM"]

logger = logging.getLogger(__name__)

_NS_PER_DAY = 86_400 * 10**9

#: The columns every events table needs.
EVENT_COLUMNS = ("patient_id", "code", "code_system")
#: Label under which rows without a code system are counted in :attr:`FlagReport.systems`.
MISSING_SYSTEM = "<missing>"
#: Label under which rows are counted whose code system is neither one of
#: :data:`pophealth.core.codes.KNOWN_SYSTEMS` nor covered by the list (never printed).
UNKNOWN_SYSTEM = "<unknown system>"
_SHOW_COLUMNS = 12


def require_event_columns(events, who: str = "events") -> None:
    """Raise a one-line :class:`SchemaError` unless ``events`` is a long events table.

    The message names the required columns and the columns found (column names only,
    never values) and says how to get there: a comorbidipy-shaped frame (``id``,
    ``code``) needs renaming; a wide hospital extract (one column per diagnosis
    position, as in SUS+/HES/ECDS) needs making long first.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.core.conditions import require_event_columns
    >>> require_event_columns(pd.DataFrame({"id": [1], "code": ["I50"]}))
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: events: missing column 'patient_id', 'code_system' (rule 'missing_column'): need columns patient_id, code, code_system; got id, code - ...
    """
    if not isinstance(events, pd.DataFrame) and not is_arrow_source(events):
        raise SchemaError(f"{who}: expected a DataFrame or Arrow table of coded events with "
                          f"columns {', '.join(EVENT_COLUMNS)}")
    cols = EventColumns(events).names
    missing = [c for c in EVENT_COLUMNS if c not in cols]
    if not missing:
        return
    shown = ", ".join(cols[:_SHOW_COLUMNS]) or "no columns"
    if len(cols) > _SHOW_COLUMNS:
        shown += f", ... ({len(cols)} columns)"
    raise SchemaError(
        f"{who}: missing column {', '.join(repr(c) for c in missing)} (rule 'missing_column'): "
        f"need columns {', '.join(EVENT_COLUMNS)}; got {shown} - one row per coded event: "
        "rename columns with "
        "events.rename(columns={...}), make a wide extract (one column per diagnosis "
        "position) long first, or use the pophealth.engines.extracts readers",
        problems=[{"column": c, "rule": "missing_column", "count": 0, "positions": []}
                  for c in missing],
    )


@dataclass(frozen=True)
class FlagReport:
    """Counts of what :func:`flag_conditions` used and excluded (never values).

    ``n_events == n_other_system + n_unrecognised + n_not_in_list + n_unknown_patient
    + n_after_index_date + n_before_lookback + n_missing_date + n_used``: each row is
    counted under the first reason that applies in that order (code-level reasons
    first, then patient and date reasons for rows whose code is in the list).

    ``codelist_systems`` are the (canonical) code systems the list covers; ``systems``
    maps every code system seen in the events (canonical name; :data:`MISSING_SYSTEM`
    for rows without one; :data:`UNKNOWN_SYSTEM` for names that are neither known nor
    the list's, as those may be any data) to ``{"n_events", "covered", "n_matched"}``: its rows, whether
    the list covers it, and its rows whose code is in the list. The ``n_events`` add up
    to ``n_events``; the uncovered ones add up to ``n_other_system``.
    """

    codelist: str
    n_patients: int
    n_events: int
    n_other_system: int
    n_unrecognised: int
    n_unrecognised_unique: int
    n_not_in_list: int
    n_unknown_patient: int
    n_after_index_date: int
    n_before_lookback: int
    n_missing_date: int
    n_used: int
    unrecognised_fraction: float
    codelist_systems: tuple[str, ...] = ()
    systems: dict = field(default_factory=dict)

    @property
    def n_covered_system(self) -> int:
        """Rows in a code system the list covers (the only rows that can match it)."""
        return self.n_events - self.n_other_system

    def as_dict(self) -> dict:
        return asdict(self)


def register_ids(register: pd.DataFrame) -> pd.Index:
    """The register's patient ids as an Index named ``patient_id`` (column or index)."""
    if isinstance(register, pd.DataFrame) and "patient_id" in register.columns:
        ids = register["patient_id"]
    elif isinstance(register, (pd.DataFrame, pd.Series)) and register.index.name == "patient_id":
        ids = register.index.to_series()
    elif isinstance(register, (pd.Index, pd.Series)):
        ids = pd.Series(register)
    else:
        raise SchemaError("register: missing column 'patient_id' (rule 'missing_column')")
    values = ids.to_numpy()
    if values.dtype.kind in "iu" and (len(values) < 2 or bool(np.all(values[1:] > values[:-1]))):
        return pd.Index(values, name="patient_id")  # strictly increasing: unique, no hashing
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise SchemaError(
            f"register: column 'patient_id' breaks rule 'unique' in {int(dup.sum())} row(s); "
            f"first positions {np.flatnonzero(dup)[:10].tolist()}"
        )
    return pd.Index(ids.to_numpy(), name="patient_id")


def flag_conditions(
    events: pd.DataFrame,
    codelist,
    *,
    register,
    index_date,
    lookback_days: int | None = None,
    max_unrecognised: float = 0.05,
    warn_other_system: float | None = 0.2,
    on_no_match: str = "raise",
    threads: int | None = None,
) -> pd.DataFrame:
    """Flag, for every register patient, which code-list conditions they have.

    Parameters
    ----------
    events : DataFrame, pyarrow.Table or Arrow batch source
        Long table with ``patient_id``, ``code``, ``code_system`` and optionally
        ``date`` (without a date column every event is taken as on/before
        ``index_date``; ``lookback_days`` then needs dates). Codes and systems may be
        strings, categoricals or Arrow dictionaries: each chunk's distinct values are
        classified once and the rows follow by their integer codes. Arrow input is
        never converted to pandas: a table (:func:`pophealth.engines.io.read_arrow`),
        or a re-readable source with ``schema`` and ``to_batches(columns=)`` (a
        :class:`pyarrow.dataset.Dataset`, :func:`pophealth.engines.io.scan`) read batch
        by batch, so the events are never whole in memory. Every form gives the same
        flags and report for the same rows.
    codelist : str, path, DataFrame or Codelist
        See :func:`pophealth.load_codelist`.
    register : DataFrame or Index
        The denominator: one row per patient (``patient_id`` column or index).
    index_date : date-like
        Events after it never count. Tz-aware event dates and ``index_date`` are
        compared on the local wall-clock time of their own zone (the one convention of
        :mod:`pophealth.contracts.schema`).
    lookback_days : int, optional
        Count only events with ``index_date - lookback_days < date <= index_date``.
    max_unrecognised : float
        Fraction of the list's-system rows with invalid codes above which a
        :class:`CodelistError` is raised (the wrong column was probably passed).
    warn_other_system : float or None, default 0.2
        Warn (:class:`DataQualityWarning`, with row counts per code system) when this
        fraction or more of the event rows are in code systems the list does not cover
        (say GP events in SNOMED CT against an ICD-10 list); ``None`` never warns.
    on_no_match : {"raise", "warn", "ignore"}
        What to do when there are events but not one row is in a code system the list
        covers, so every flag would be False because of the code system alone:
        ``"raise"`` a :class:`CodelistError` naming the systems seen (with counts) and
        the systems the list covers; ``"warn"`` the same as a warning; ``"ignore"`` only
        records it in the report (for callers that judge several lists together, as
        :func:`pophealth.score_patients` does). An empty events table is never an error.
        System names are compared after :func:`pophealth.core.codes.normalise_system`,
        so ``"SNOMED CT"`` events match a ``snomed`` list.
    threads : int, optional
        Event chunks processed concurrently (default 2). A caller that already runs
        one process per core (the job's batch workers) passes 1. The flags and report
        do not depend on it.

    Returns
    -------
    DataFrame
        Boolean, index ``patient_id`` in register order, one column per condition.
        ``result.attrs["pophealth_report"]`` holds a :class:`FlagReport` dict.

    Raises
    ------
    SchemaError
        When ``events`` lacks ``patient_id``, ``code`` or ``code_system`` (e.g. a
        comorbidipy ``id, code`` frame or a wide SUS+ extract).
    CodelistError
        When no event row is in a system the list covers (``on_no_match="raise"``) or
        too many codes are unrecognised.

    Warns
    -----
    DataQualityWarning
        When codes are unrecognised, patients are not on the register, dates are
        missing, or ``warn_other_system`` or more of the rows are in systems the list
        does not cover (with counts per system).

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3]})
    >>> ev = pd.DataFrame({"patient_id": [1, 1, 2], "code": ["E11.2", "i50", "E119"],
    ...                    "code_system": "icd10",
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2026-01-01"])})
    >>> flags = ph.flag_conditions(ev, "charlson_quan2005_icd10", register=reg,
    ...                            index_date="2025-04-01")
    >>> flags[["chf", "diab", "diabwc"]]
                  chf   diab  diabwc
    patient_id
    1            True  False    True
    2           False  False   False
    3           False  False   False
    """
    if lookback_days is not None and (int(lookback_days) != lookback_days or lookback_days < 1):
        raise ConfigError("flag_conditions: lookback_days must be a positive whole number of days")
    if not 0 <= max_unrecognised <= 1:
        raise ConfigError("flag_conditions: max_unrecognised must be a fraction between 0 and 1")
    if warn_other_system is not None and not 0 <= warn_other_system <= 1:
        raise ConfigError("flag_conditions: warn_other_system must be a fraction between 0 and 1 "
                          "or None")
    if on_no_match not in _ON_NO_MATCH:
        raise ConfigError(f"flag_conditions: on_no_match must be one of {', '.join(_ON_NO_MATCH)}")
    if threads is not None and (int(threads) != threads or threads < 1):
        raise ConfigError("flag_conditions: threads must be a positive whole number")
    require_event_columns(events)
    cl: Codelist = load_codelist(codelist)
    ids = register_ids(register)
    reg_ids = id_array(ids, "register")
    n_pat, n_cond = len(reg_ids), len(cl.conditions)
    cols = EventColumns(events)
    # index_date and event dates on local wall-clock time (the contracts.schema convention)
    index_ns = int(np.datetime64(naive_timestamp(index_date), "ns").view(np.int64))
    has_date = cols.has("date")
    if not has_date and lookback_days is not None:
        raise SchemaError(
            f"events: missing column 'date' needed for lookback_days={lookback_days} "
            "(pass lookback_days=None to count every event)"
        )
    window = (index_ns, None if lookback_days is None
              else index_ns - int(lookback_days) * _NS_PER_DAY)
    lookup = PatientLookup(reg_ids)
    # condition-major storage: each condition's column is contiguous for the scorers
    flags_t = np.zeros((n_cond, n_pat), dtype=bool)
    book = _CodeBook(cl)
    scratch = _Scratch()  # per thread, for this call only

    def run(chunk: EventChunk) -> _Counts:
        part = _Counts()
        part.rows = chunk.n or 0  # None: counted by _flag_chunk (system_keep)
        if chunk.null_ids is not None:
            part.null_ids = chunk.null_ids
            return part
        _flag_chunk(chunk.codes, chunk.systems, chunk.pids, chunk.dates, book, lookup, window,
                    flags_t, part, chunk.keep, scratch, chunk.system_keep)
        return part

    # chunks are independent: numpy/Arrow release the GIL in the heavy loops; the flag
    # matrix only ever receives True, so concurrent writes cannot disagree. A Parquet
    # scan leaves dates out of row groups whose statistics prove them inside the window.
    chunks = cols.chunks(_CHUNK_ROWS, date_window=(window[1], window[0]) if has_date else None)
    acc = _Counts.merge(_map_bounded(run, chunks, _THREADS if threads is None else int(threads)))
    if len(acc.null_ids):
        raise SchemaError(
            f"events: column 'patient_id' breaks rule 'not_null' in {len(acc.null_ids)} "
            f"row(s); first positions {np.sort(acc.null_ids)[:10].tolist()}"
        )
    n = acc.rows
    n_in_sys = acc.classes[1:].sum()
    report = FlagReport(
        codelist=cl.name, n_patients=n_pat, n_events=n,
        n_other_system=int(acc.classes[0]), n_unrecognised=int(acc.classes[1]),
        n_unrecognised_unique=len(acc.unrecognised), n_not_in_list=int(acc.classes[2]),
        n_unknown_patient=acc.unknown, n_after_index_date=acc.after,
        n_before_lookback=acc.before, n_missing_date=acc.missing, n_used=acc.used,
        unrecognised_fraction=(int(acc.classes[1]) / int(n_in_sys)) if n_in_sys else 0.0,
        codelist_systems=tuple(cl.code_systems),
        systems={k: {"n_events": int(v[0]), "covered": k in cl.code_systems,
                     "n_matched": int(v[1])} for k, v in sorted(acc.systems.items())},
    )
    _check_systems(report, warn_other_system, on_no_match)
    _warn_and_check(report, max_unrecognised)
    out = pd.DataFrame(flags_t.T, index=ids.copy(), columns=list(cl.conditions), copy=False)
    out.columns.name = None
    out.attrs["pophealth_report"] = report.as_dict()
    return out


def _map_bounded(fn, items, workers: int) -> list:
    """``[fn(x) for x in items]`` on ``workers`` threads, reading ``items`` (a generator
    that may read a file) only as fast as the workers take them: at most ``workers``
    chunks are in memory at once."""
    if workers <= 1:
        return [fn(x) for x in items]
    out, pending = [], deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for x in items:
            pending.append(pool.submit(fn, x))
            if len(pending) >= workers:
                out.append(pending.popleft().result())
        out.extend(f.result() for f in pending)
    return out


_CHUNK_ROWS = 1 << 19  # rows per pass: bounds the per-row temporaries (and peak memory)
_THREADS = 2  # chunks processed concurrently (the machines this targets have 2+ cores)
_ON_NO_MATCH = ("raise", "warn", "ignore")


class _Scratch(threading.local):
    """Work arrays of one :func:`flag_conditions` call, one set per thread, reused chunk
    after chunk: a fresh array of a million rows costs page faults (the kernel zeroes
    every page first touched), a reused one none."""

    def array(self, name: str, n: int, dtype) -> np.ndarray:
        buf = getattr(self, name, None)
        if buf is None or len(buf) < n or buf.dtype != dtype:
            buf = np.empty(n, dtype=dtype)
            setattr(self, name, buf)
        return buf[:n]


class _Counts:
    """Row counts accumulated over chunks."""

    def __init__(self) -> None:
        self.classes = np.zeros(4, dtype=np.int64)
        self.unrecognised: set = set()
        self.systems: dict[str, np.ndarray] = {}  # canonical system -> [rows, matched rows]
        self.unknown = self.after = self.before = self.missing = self.used = self.rows = 0
        self.null_ids = np.zeros(0, dtype=np.int64)  # positions in the chunk's rows

    @classmethod
    def merge(cls, parts: list[_Counts]) -> _Counts:
        """Sum the counts of consecutive chunks (in order): null-id positions become
        positions in the whole events table."""
        total = cls()
        for p in parts:
            total.classes += p.classes
            total.unrecognised |= p.unrecognised
            for name, counts in p.systems.items():
                total.add_system(name, counts)
            total.null_ids = np.concatenate([total.null_ids, p.null_ids + total.rows])
            for name in ("unknown", "after", "before", "missing", "used", "rows"):
                setattr(total, name, getattr(total, name) + getattr(p, name))
        return total

    def add_system(self, name: str, counts: np.ndarray) -> None:
        if name in self.systems:
            self.systems[name] = self.systems[name] + counts
        else:
            self.systems[name] = counts.astype(np.int64)


class _CodeBook:
    """Classification of every distinct raw code seen so far, per code system.

    Normalisation, validity and code-list matching run once per distinct raw code for
    the whole call, however many chunks the events are read in.
    """

    def __init__(self, cl: Codelist) -> None:
        self.cl = cl
        self.code_systems = cl.code_systems
        self._matchers: dict = {}
        self.index: dict[str, pd.Index] = {}
        self.klass: dict[str, np.ndarray] = {}
        self.norm: dict[str, np.ndarray] = {}
        self.pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._systems: dict = {}  # raw system name -> canonical name (None when missing)
        self._dictionaries: list = []  # (Arrow dictionary, its values, code-id memo)
        self._lock = threading.Lock()

    def canonical_systems(self, raw: np.ndarray) -> list:
        """Canonical names of the (unique) raw system names, each normalised once a call."""
        with self._lock:
            new = [x for x in raw.tolist() if x not in self._systems]
            if new:
                canon = normalise_system(np.asarray(new, dtype=object)).tolist()
                self._systems.update(zip(new, canon, strict=True))
            return [self._systems[x] for x in raw.tolist()]

    def factorize(self, codes) -> tuple[np.ndarray, np.ndarray, dict | None]:
        """:func:`~pophealth.core.arrays.factorize` of a chunk's codes, plus the memo of
        code ids for :meth:`lookup`: the values of a one-chunk Arrow dictionary are
        built once per distinct dictionary (the row groups of a file often share one)."""
        one = one_dictionary(codes)
        if one is None:
            return (*factorize(codes), None)
        idx, dictionary = one
        with self._lock:
            for seen, values, memo in self._dictionaries:
                if len(seen) == len(dictionary) and seen.equals(dictionary):
                    return idx, values, memo
            values = np.asarray(dictionary.to_pylist(), dtype=object)
            self._dictionaries = [*self._dictionaries[-3:], (dictionary, values, {})]
            return idx, values, self._dictionaries[-1][2]

    def lookup(self, system: str, raw: np.ndarray, seen: np.ndarray,
               memo: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
        """Global ids of the (non-missing) raw codes ``raw[seen]``, classifying new ones;
        ``memo`` (from :meth:`factorize`) keeps the ids of ``raw``'s positions.

        Returns the ids with a consistent snapshot of (classes, normalised codes, pairs).
        """
        with self._lock:
            if memo is None:
                gid = self._lookup(system, raw[seen])
            else:
                known = memo.setdefault(system, np.full(len(raw), -1, np.int64))
                todo = seen[known[seen] < 0]
                if len(todo):
                    known[todo] = self._lookup(system, raw[todo])
                gid = known[seen]
            return gid, self.klass[system], self.norm[system], self.pairs[system]

    def _lookup(self, system: str, raw: np.ndarray) -> np.ndarray:
        if system not in self.index:
            self.index[system] = pd.Index([], dtype=object)
            self.klass[system] = np.zeros(0, np.int8)
            self.norm[system] = np.zeros(0, object)
            self.pairs[system] = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        index = self.index[system]
        gid = index.get_indexer(raw) if len(index) else np.full(len(raw), -1, np.int64)
        new = gid < 0
        if new.any():
            # an Arrow dictionary may repeat a value: the book holds each raw code once
            where, fresh = pd.factorize(raw[new], use_na_sentinel=False)
            fresh = np.asarray(fresh, dtype=object)
            norm = normalise_codes(fresh, system)
            valid = is_valid_code(norm, system)
            klass = np.where(valid, 2, 1).astype(np.int8)
            if system not in self._matchers:
                self._matchers[system] = self.cl.matcher(system)
            ci, ki = self._matchers[system].match(norm)
            ci, ki = ci[valid[ci]], ki[valid[ci]]  # an invalid code never counts
            klass[ci] = 3
            base = len(index)
            old_c, old_k = self.pairs.get(system, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            self.pairs[system] = (np.concatenate([old_c, ci + base]), np.concatenate([old_k, ki]))
            self.index[system] = index.append(pd.Index(fresh, dtype=object))
            self.klass[system] = np.concatenate([self.klass.get(system, np.zeros(0, np.int8)),
                                                 klass])
            self.norm[system] = np.concatenate([self.norm.get(system, np.zeros(0, object)), norm])
            gid[new] = base + where
        return gid


def _flag_chunk(codes, systems_col, pids, dates, book: _CodeBook, lookup: PatientLookup,
                window, flags_t: np.ndarray, acc: _Counts,
                present: np.ndarray | None = None, scratch: _Scratch | None = None,
                system_keep: np.ndarray | None = None) -> None:
    """Classify one chunk of events and set the flags it proves (see module docstring).

    ``pids`` and ``dates`` are numpy arrays or :class:`~pophealth.core.arrays.ArrowRows`;
    either is indexed by the matched rows only. Rows where ``present`` is False do not exist
    (a scan's filter): they go to keys past the table that are counted nowhere. Rows whose
    code system is at a dictionary position where ``system_keep`` is False (its last
    element: a missing system) do not exist either: their keys' counts are dropped, and
    the rows that exist are added to ``acc.rows``. The per-row key arrays live in
    ``scratch`` (the calling thread's, reused chunk after chunk).
    """
    n_pat = flags_t.shape[1]
    # 1. unique codes and systems; each row gets a key = (system, unique code)
    code_idx, uniq_codes, memo = book.factorize(codes)
    if (isinstance(systems_col, pd.Series) and systems_col.dtype == object and len(code_idx)
            and is_constant_object(systems_col.to_numpy())):
        sys_idx, uniq_sys = None, np.array([systems_col.iloc[0]], dtype=object)
    else:
        sys_idx, uniq_sys = factorize(systems_col)
    systems = book.code_systems
    norm_sys = book.canonical_systems(uniq_sys)
    n_u, n_su = len(uniq_codes), len(uniq_sys)
    width = n_u + 1  # column 0 stands for a missing code, code i is column i + 1
    n_keys = (n_su + 1) * width  # block 0: missing system, system j is block j + 1
    # key = (system + 1) * width + (code + 1), so a missing (-1) code or system lands on
    # column or block 0; intp, so neither bincount nor the gathers below copy it to widen
    # it. Absent rows are shifted one table up (keys n_keys..2 * n_keys - 1, class 0,
    # counted nowhere): arithmetic, no branch per row.
    n = len(code_idx)
    key = scratch.array("key", n, np.intp) if scratch is not None else np.empty(n, np.intp)
    n_tab = n_keys
    if present is not None:
        n_tab = 2 * n_keys
        np.multiply(np.logical_not(present).view(np.uint8), n_keys, out=key, dtype=np.intp)
        key += code_idx
        if sys_idx is not None:
            tmp = scratch.array("tmp", n, np.intp) if scratch is not None else None
            key += np.multiply(sys_idx, width, out=tmp, dtype=np.intp)
    elif sys_idx is not None:
        np.multiply(sys_idx, width, out=key, dtype=np.intp)
        key += code_idx
    else:
        key[:] = code_idx
    key += width + 1
    key_counts = np.bincount(key, minlength=n_tab)[:n_keys]
    if system_keep is not None:
        if len(system_keep) != n_su + 1:
            raise RuntimeError("flag_conditions: system_keep does not match the code-system "
                               "dictionary")  # an internal invariant (EventColumns)
        # a missing system (last element) is block 0, dictionary position j block j + 1
        gone = np.roll(~np.asarray(system_keep, dtype=bool), 1)
        key_counts.reshape(n_su + 1, width)[gone] = 0
        acc.rows += int(key_counts.sum())

    # 2. classify the keys that have rows (a dictionary may hold codes of absent rows or
    # of other systems: those are never looked at). Per key: 0 other system,
    # 1 unrecognised, 2 not in list, 3 matched; conditions as (key, condition) pairs.
    klass = np.zeros(n_tab, dtype=np.int8)  # keys from n_keys on: absent rows, class 0
    norms: dict[int, tuple[str, np.ndarray]] = {}  # block -> (system, normalised codes)
    pair_keys, pair_conds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for su, name in enumerate(norm_sys):
        if name not in systems:
            continue
        base = (su + 1) * width
        klass[base] = 1  # a missing code is unrecognised
        norm = np.empty(n_u, dtype=object)
        norms[su + 1] = (name, norm)
        seen = np.flatnonzero(key_counts[base + 1:base + width])
        if not len(seen):
            continue
        gid, book_klass, book_norm, (g_codes, g_conds) = book.lookup(name, uniq_codes, seen,
                                                                     memo)
        klass[base + 1 + seen] = book_klass[gid]
        norm[seen] = book_norm[gid]
        # conditions of this chunk's codes: the book's pairs of each seen code's id (the
        # book keeps its pairs sorted by id), so two dictionary positions holding the
        # same code both get its conditions
        start = np.searchsorted(g_codes, gid, "left")
        reps = np.searchsorted(g_codes, gid, "right") - start
        offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps - start, reps)
        pair_keys.append(np.repeat(seen, reps) + base + 1)
        pair_conds.append(g_conds[offs])
    acc.classes += np.bincount(klass[:n_keys], weights=key_counts, minlength=4).astype(np.int64)
    for k in np.flatnonzero((klass[:n_keys] == 1) & (key_counts > 0)).tolist():
        system, norm = norms[k // width]
        acc.unrecognised.add((system, None if k % width == 0 else norm[k % width - 1]))
    # rows and matched rows per code system: sums over each system's block of keys
    blocks = key_counts.reshape(n_su + 1, width)
    per_system = np.stack([blocks.sum(axis=1),
                           (blocks * (klass[:n_keys].reshape(n_su + 1, width) == 3)).sum(axis=1)],
                          1)
    names = [_label(x, systems) for x in norm_sys]
    for name, counts in zip([MISSING_SYSTEM, *names], per_system, strict=True):
        if counts[0]:
            acc.add_system(name, counts)
    matched = klass == 3
    if not matched.any():
        return
    sel = np.flatnonzero(matched[key])  # rows whose code is in the list

    # 3. patients and 4. date window, for matched rows only
    pos = lookup.positions(pids[sel])
    known = pos >= 0
    use = known
    if dates is not None:
        d = dates[sel]
        missing_date = d == np.iinfo(np.int64).min
        after = d > window[0]
        before = (~missing_date & (d <= window[1])) if window[1] is not None else None
        acc.missing += int((known & missing_date).sum())
        acc.after += int((known & after).sum())
        use = known & ~after & ~missing_date
        if before is not None:
            acc.before += int((known & ~after & before).sum())
            use &= ~before
    acc.unknown += int((~known).sum())
    acc.used += int(use.sum())

    # 5. scatter (condition, patient position) into the condition-major flag matrix
    k_used, p_used = key[sel[use]], pos[use]
    if not len(k_used):
        return
    pk_key, pk_cond = np.concatenate(pair_keys), np.concatenate(pair_conds)
    order = np.argsort(pk_key, kind="stable")
    pk_key, pk_cond = pk_key[order], pk_cond[order]
    counts = np.bincount(pk_key, minlength=n_keys)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    flat = flags_t.reshape(-1)
    single = counts[k_used] == 1
    flat[pk_cond[starts[k_used[single]]] * n_pat + p_used[single]] = True
    if not single.all():
        km, pm = k_used[~single], p_used[~single]
        reps = counts[km]
        offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        flat[pk_cond[np.repeat(starts[km], reps) + offs] * n_pat + np.repeat(pm, reps)] = True


def _label(name, covered: tuple[str, ...]) -> str:
    """Printable label of a normalised system name read from the events."""
    if not isinstance(name, str) or not name:
        return MISSING_SYSTEM
    return name if name in KNOWN_SYSTEMS or name in covered else UNKNOWN_SYSTEM


def system_counts_text(systems: dict, covered: bool | None = None) -> str:
    """Rows per code system, most rows first: names and counts only (never codes).

    ``covered`` keeps only the systems with that ``covered`` value (all when ``None``).

    Examples
    --------
    >>> from pophealth.core.conditions import system_counts_text
    >>> system_counts_text({"icd10": {"n_events": 2, "covered": True},
    ...                     "snomed": {"n_events": 12, "covered": False}})
    'snomed 12, icd10 2'
    """
    items = [(name, int(v["n_events"])) for name, v in systems.items()
             if covered is None or bool(v["covered"]) == covered]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {n}" for name, n in items) or "none"


def _check_systems(r: FlagReport, warn_other_system: float | None, on_no_match: str) -> None:
    """Raise or warn when rows cannot match the list because of their code system."""
    if not r.n_events or not r.n_other_system:
        return
    covers = ", ".join(r.codelist_systems) or "no system"
    other = system_counts_text(r.systems, covered=False)
    if r.n_covered_system == 0:
        if on_no_match == "ignore":
            return
        text = (f"flag_conditions({r.codelist}): no event row can match the list: all "
                f"{r.n_events} row(s) are in code system(s) it does not cover ({other}); the "
                f"list covers {covers}; tag the events with the list's system or pass a code "
                "list for theirs")
        if on_no_match == "raise":
            raise CodelistError(text)
        warnings.warn(text, DataQualityWarning, stacklevel=user_stacklevel())
        return
    share = r.n_other_system / r.n_events
    if warn_other_system is not None and share >= warn_other_system:
        warnings.warn(
            f"flag_conditions({r.codelist}): {r.n_other_system} of {r.n_events} event row(s) "
            f"({share:.0%} >= warn_other_system={warn_other_system:.0%}) are in code "
            f"system(s) the list does not cover ({other}) and cannot count; the list covers "
            f"{covers} ({r.n_covered_system} row(s), {_n_matched(r)} with a code in the list)",
            DataQualityWarning, stacklevel=user_stacklevel(),
        )


def _n_matched(r: FlagReport) -> int:
    return sum(int(v["n_matched"]) for v in r.systems.values())


def _warn_and_check(r: FlagReport, max_unrecognised: float) -> None:
    if r.n_unrecognised and r.unrecognised_fraction > max_unrecognised:
        raise CodelistError(
            f"events: column 'code' breaks rule 'recognised_code' in {r.n_unrecognised} of "
            f"{r.n_events - r.n_other_system} row(s) in the code list's system(s) "
            f"({r.unrecognised_fraction:.1%} > max_unrecognised={max_unrecognised:.1%}); "
            "was the wrong column or code system passed?"
        )
    parts = []
    if r.n_unrecognised:
        parts.append(f"{r.n_unrecognised} row(s) with unrecognised codes "
                     f"({r.n_unrecognised_unique} distinct)")
    if r.n_unknown_patient:
        parts.append(f"{r.n_unknown_patient} row(s) for patients not on the register")
    if r.n_missing_date:
        parts.append(f"{r.n_missing_date} row(s) with a missing date")
    if parts:
        warnings.warn(
            f"flag_conditions({r.codelist}): excluded " + "; ".join(parts),
            DataQualityWarning,
            stacklevel=user_stacklevel(),
        )
    logger.info("flag_conditions(%s): %s", r.codelist, r.as_dict())
