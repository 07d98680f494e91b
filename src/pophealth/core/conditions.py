"""Coded events -> per-patient condition flags: the vectorised core.

Algorithm (no Python loop over patients or events). Events are read in chunks of
``_CHUNK_ROWS`` rows, processed on ``_THREADS`` threads; for each chunk:

1. factorize the code column (categorical/Arrow dictionaries are reused as is) and the
   code-system column; a code book shared by all chunks normalises, validates and
   matches each *distinct* raw code once per call; each row gets a small integer key;
2. classify every key (other system / unrecognised / not in the list / matched) and
   count rows per key with one ``bincount``;
3. for matched rows only, map the patient to a register row position through a lookup
   built once per call (run-length compressed when events are grouped by patient; a
   dense table for compact integer ids; a hash index otherwise);
4. keep rows inside ``(index_date - lookback_days, index_date]``;
5. scatter (condition, patient position) pairs into a condition-major boolean matrix
   (each condition's column contiguous for the scorers).

The function is pure and row-order/batch-split invariant: flags of a concatenation of
patient batches equal the concatenation of the batches' flags.
"""

from __future__ import annotations

import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

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
    PatientLookup,
    datetimes,
    factorize,
    id_array,
    is_constant_object,
)
from pophealth.core.codelists import Codelist, load_codelist
from pophealth.core.codes import is_valid_code, normalise_codes, normalise_system

__all__ = ["flag_conditions", "FlagReport", "register_ids"]

logger = logging.getLogger(__name__)

_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class FlagReport:
    """Counts of what :func:`flag_conditions` used and excluded (never values).

    ``n_events == n_other_system + n_unrecognised + n_not_in_list + n_unknown_patient
    + n_after_index_date + n_before_lookback + n_missing_date + n_used``: each row is
    counted under the first reason that applies in that order (code-level reasons
    first, then patient and date reasons for rows whose code is in the list).
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
) -> pd.DataFrame:
    """Flag, for every register patient, which code-list conditions they have.

    Parameters
    ----------
    events : DataFrame
        Long table with ``patient_id``, ``code``, ``code_system`` and optionally
        ``date`` (without a date column every event is taken as on/before
        ``index_date``; ``lookback_days`` then needs dates).
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

    Returns
    -------
    DataFrame
        Boolean, index ``patient_id`` in register order, one column per condition.
        ``result.attrs["pophealth_report"]`` holds a :class:`FlagReport` dict.

    Warns
    -----
    DataQualityWarning
        When codes are unrecognised, patients are not on the register or dates are
        missing (with counts).

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
    cl: Codelist = load_codelist(codelist)
    ids = register_ids(register)
    reg_ids = id_array(ids, "register")
    n_pat, n_cond = len(reg_ids), len(cl.conditions)
    for col in ("patient_id", "code", "code_system"):
        if col not in events.columns:
            raise SchemaError(f"events: missing column '{col}' (rule 'missing_column')")
    n = len(events)
    # index_date and event dates on local wall-clock time (the contracts.schema convention)
    index_ns = int(np.datetime64(naive_timestamp(index_date), "ns").view(np.int64))
    has_date = "date" in events.columns
    if not has_date and lookback_days is not None:
        raise SchemaError(
            f"events: missing column 'date' needed for lookback_days={lookback_days} "
            "(pass lookback_days=None to count every event)"
        )
    window = (index_ns, None if lookback_days is None
              else index_ns - int(lookback_days) * _NS_PER_DAY)
    lookup = PatientLookup(reg_ids)
    pids = id_array(events["patient_id"], "events")
    dates = datetimes(events["date"]) if has_date else None
    # condition-major storage: each condition's column is contiguous for the scorers
    flags_t = np.zeros((n_cond, n_pat), dtype=bool)
    book = _CodeBook(cl)
    bounds = [(a, min(n, a + _CHUNK_ROWS)) for a in range(0, n, _CHUNK_ROWS)]

    def run(chunk: tuple[int, int]) -> _Counts:
        a, b = chunk
        part = _Counts()
        _flag_chunk(events["code"].iloc[a:b], events["code_system"].iloc[a:b], pids[a:b],
                    None if dates is None else dates[a:b], book, lookup, window, flags_t, part)
        return part

    if len(bounds) > 1 and _THREADS > 1:
        # chunks are independent: numpy/Arrow release the GIL in the heavy loops; the
        # flag matrix only ever receives True, so concurrent writes cannot disagree
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            parts = list(pool.map(run, bounds))
    else:
        parts = [run(c) for c in bounds]
    acc = _Counts.merge(parts)
    n_in_sys = acc.classes[1:].sum()
    report = FlagReport(
        codelist=cl.name, n_patients=n_pat, n_events=n,
        n_other_system=int(acc.classes[0]), n_unrecognised=int(acc.classes[1]),
        n_unrecognised_unique=len(acc.unrecognised), n_not_in_list=int(acc.classes[2]),
        n_unknown_patient=acc.unknown, n_after_index_date=acc.after,
        n_before_lookback=acc.before, n_missing_date=acc.missing, n_used=acc.used,
        unrecognised_fraction=(int(acc.classes[1]) / int(n_in_sys)) if n_in_sys else 0.0,
    )
    _warn_and_check(report, max_unrecognised)
    out = pd.DataFrame(flags_t.T, index=ids.copy(), columns=list(cl.conditions), copy=False)
    out.columns.name = None
    out.attrs["pophealth_report"] = report.as_dict()
    return out


_CHUNK_ROWS = 2_000_000  # rows per pass: bounds the per-row temporaries
_THREADS = 2  # chunks processed concurrently (the machines this targets have 2+ cores)


class _Counts:
    """Row counts accumulated over chunks."""

    def __init__(self) -> None:
        self.classes = np.zeros(4, dtype=np.int64)
        self.unrecognised: set = set()
        self.unknown = self.after = self.before = self.missing = self.used = 0

    @classmethod
    def merge(cls, parts: list[_Counts]) -> _Counts:
        total = cls()
        for p in parts:
            total.classes += p.classes
            total.unrecognised |= p.unrecognised
            for name in ("unknown", "after", "before", "missing", "used"):
                setattr(total, name, getattr(total, name) + getattr(p, name))
        return total


class _CodeBook:
    """Classification of every distinct raw code seen so far, per code system.

    Normalisation, validity and code-list matching run once per distinct raw code for
    the whole call, however many chunks the events are read in.
    """

    def __init__(self, cl: Codelist) -> None:
        self.cl = cl
        self.index: dict[str, pd.Index] = {}
        self.klass: dict[str, np.ndarray] = {}
        self.norm: dict[str, np.ndarray] = {}
        self.pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def lookup(self, system: str, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                            np.ndarray, tuple]:
        """Global ids of the (unique, non-missing) raw codes, classifying new ones.

        Returns the ids with a consistent snapshot of (classes, normalised codes, pairs).
        """
        with self._lock:
            gid = self._lookup(system, raw)
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
            fresh = raw[new]
            norm = normalise_codes(fresh, system)
            valid = is_valid_code(norm, system)
            klass = np.where(valid, 2, 1).astype(np.int8)
            ci, ki = self.cl.match(norm, system)
            ci, ki = ci[valid[ci]], ki[valid[ci]]  # an invalid code never counts
            klass[ci] = 3
            base = len(index)
            old_c, old_k = self.pairs.get(system, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            self.pairs[system] = (np.concatenate([old_c, ci + base]), np.concatenate([old_k, ki]))
            self.index[system] = index.append(pd.Index(fresh, dtype=object))
            self.klass[system] = np.concatenate([self.klass.get(system, np.zeros(0, np.int8)),
                                                 klass])
            self.norm[system] = np.concatenate([self.norm.get(system, np.zeros(0, object)), norm])
            gid[new] = base + np.arange(len(fresh))
        return gid


def _flag_chunk(codes: pd.Series, systems_col: pd.Series, pids: np.ndarray,
                dates: np.ndarray | None, book: _CodeBook, lookup: PatientLookup, window,
                flags_t: np.ndarray, acc: _Counts) -> None:
    """Classify one chunk of events and set the flags it proves (see module docstring)."""
    n = len(pids)
    n_pat = flags_t.shape[1]
    # 1-2. unique codes and systems; each row gets a key = (system, unique code)
    code_idx, uniq_codes = factorize(codes)
    if systems_col.dtype == object and n and is_constant_object(systems_col.to_numpy()):
        sys_idx, uniq_sys = None, np.array([systems_col.iloc[0]], dtype=object)
    else:
        sys_idx, uniq_sys = factorize(systems_col)
    systems = book.cl.code_systems
    norm_sys = normalise_system(uniq_sys).to_numpy(dtype=object)
    sys_of = np.array([systems.index(x) if x in systems else -1 for x in norm_sys], np.int64)
    n_u, n_su = len(uniq_codes), len(uniq_sys)
    width = n_u + 1  # column n_u stands for a missing code
    # per key: 0 other system, 1 unrecognised, 2 not in list, 3 matched; conditions (CSR)
    klass = np.zeros((n_su + 1) * width, dtype=np.int8)  # last block: missing system
    labels = np.empty(len(klass), dtype=object)
    pair_keys, pair_conds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for su, system_pos in enumerate(sys_of):
        if system_pos < 0:
            continue
        system = systems[system_pos]
        gid, book_klass, book_norm, (g_codes, g_conds) = book.lookup(system, uniq_codes)
        block = np.full(width, 1, dtype=np.int8)
        block[:n_u] = book_klass[gid]
        klass[su * width:(su + 1) * width] = block
        labels[su * width:(su + 1) * width] = list(zip(
            [system] * width, np.append(book_norm[gid], None).tolist(), strict=True))
        # conditions of this chunk's codes: invert gid -> local position
        local = np.full(len(book_klass), -1, dtype=np.int64)
        local[gid] = np.arange(n_u)
        keep = local[g_codes] >= 0
        pair_keys.append(local[g_codes[keep]] + su * width)
        pair_conds.append(g_conds[keep])
    codes_col = np.where(code_idx < 0, n_u, code_idx)
    if sys_idx is None:
        key = codes_col
    else:
        key = np.where(sys_idx < 0, n_su, sys_idx) * width + codes_col
    key_counts = np.bincount(key, minlength=len(klass))
    acc.classes += np.bincount(klass, weights=key_counts, minlength=4).astype(np.int64)
    acc.unrecognised.update(labels[(klass == 1) & (key_counts > 0)].tolist())
    sel = np.flatnonzero(klass[key] == 3)  # rows whose code is in the list

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
    counts = np.bincount(pk_key, minlength=len(klass))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    flat = flags_t.reshape(-1)
    single = counts[k_used] == 1
    flat[pk_cond[starts[k_used[single]]] * n_pat + p_used[single]] = True
    if not single.all():
        km, pm = k_used[~single], p_used[~single]
        reps = counts[km]
        offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        flat[pk_cond[np.repeat(starts[km], reps) + offs] * n_pat + np.repeat(pm, reps)] = True


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
