"""The patient-level feature table that the risk models are fitted on and score.

:func:`make_features` turns a register, per-patient flags/scores and 12 months of
activity into one all-numeric (float64) table indexed by ``patient_id`` in register
order, so the same table feeds :class:`pophealth.risk.models.RiskModel`,
:class:`pophealth.risk.models.CoxRiskModel` and any scikit-learn estimator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import naive_timestamp
from pophealth.core.ages import age_at
from pophealth.core.conditions import register_ids
from pophealth.risk.feature_inputs import _values, check_feature_inputs

__all__ = ["BASE_FEATURES", "UTILISATION_KINDS", "make_features"]

#: Activity kind(s) counted by each prior-utilisation feature (12 months up to index).
UTILISATION_KINDS: dict[str, tuple[str, ...]] = {
    "prior_emergency_admissions": ("emergency_admission",),
    "prior_elective_admissions": ("elective_admission",),
    "prior_ae_attendances": ("ae",),
    "prior_outpatient_attendances": ("outpatient",),
    "prior_gp_contacts": ("gp",),
    "prior_other_contacts": ("community", "mental_health", "other"),
}
_ADMISSIONS = ("emergency_admission", "elective_admission")

#: Columns :func:`make_features` always writes first, in this order.
BASE_FEATURES: tuple[str, ...] = (
    "age", "male", "imd_decile", *UTILISATION_KINDS, "prior_bed_days", "prior_cost",
)


def make_features(register: pd.DataFrame, flags: pd.DataFrame | None, activity: pd.DataFrame,
                  *, index_date, lookback_days: int = 365) -> pd.DataFrame:
    """Build the documented risk-model feature table.

    Parameters
    ----------
    register : DataFrame
        One row per patient: ``patient_id``, ``sex`` and ``age`` (or ``date_of_birth``);
        ``imd_decile`` optional (1 = most deprived).
    flags : DataFrame or None
        Per-patient condition flags and index scores, indexed by ``patient_id`` (any
        order, a superset of the register is fine), typically
        ``score_patients(...).join(flag_conditions(...))``. Bool columns become 0/1
        features and numeric columns are used as they are (missing stays NaN).
        Non-numeric columns (e.g. ``hfrs_band``, ``efi_band``: binnings of scores that
        are already numeric features) are left out. ``None`` gives base features only.
    activity : DataFrame
        Contacts with ``patient_id``, ``date``, ``kind`` and ``cost``
        (``length_of_stay`` optional). Rows for patients not on the register are ignored.
    index_date : date-like
        Features use activity with ``index_date - lookback_days < date <= index_date``.
        Tz-aware activity dates (numpy or Arrow) and a tz-aware ``index_date`` are
        compared on the local wall-clock time of their own zone, and ages from
        ``date_of_birth`` use local dates (the one convention of
        :mod:`pophealth.contracts.schema`).
    lookback_days : int, default 365

    Returns
    -------
    DataFrame
        float64, indexed by ``patient_id`` in register order. Columns, in order:

        * ``age`` - completed years at index (from ``age``, else ``date_of_birth``);
        * ``male`` - 1 for sex ``M``, 0 for ``F``, NaN otherwise (I, U, missing);
        * ``imd_decile`` - 1 (most deprived) to 10, NaN when missing or absent;
        * ``prior_emergency_admissions``, ``prior_elective_admissions``,
          ``prior_ae_attendances``, ``prior_outpatient_attendances``,
          ``prior_gp_contacts``, ``prior_other_contacts`` (community, mental health,
          other) - contact counts in the look-back (see :data:`UTILISATION_KINDS`);
        * ``prior_bed_days`` - summed ``length_of_stay`` of admissions (0 without it);
        * ``prior_cost`` - summed cost of all contacts;
        * then the numeric/bool columns of ``flags`` in their order.

    Raises
    ------
    SchemaError
        One line naming each broken rule's table, column, row count and positions (never
        values), checked before anything is computed (see
        :mod:`~pophealth.risk.feature_inputs`): text in ``age``, ``imd_decile``, ``cost``
        or ``length_of_stay`` (even digits: nothing is coerced to NaN or 0); ages outside
        0-120; a ``date_of_birth`` that is not a datetime or is after ``index_date``;
        activity breaking :func:`~pophealth.contracts.schema.validate_activity` (e.g. a
        missing cost is an error, not a zero). Also: missing register/activity columns,
        register patients absent from ``flags`` (with the count), or ``flags`` columns
        that clash with base feature names.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.risk.features import make_features
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "sex": ["F", "M"], "age": [80, 30],
    ...                     "imd_decile": [1, 9]})
    >>> flags = pd.DataFrame({"heart_failure": [True, False], "charlson_quan2011": [2, 0]},
    ...                      index=pd.Index([1, 2], name="patient_id"))
    >>> act = pd.DataFrame({"patient_id": [1, 1, 2], "kind": ["ae", "emergency_admission", "gp"],
    ...                     "cost": [150.0, 2000.0, 40.0], "length_of_stay": [0, 4, 0],
    ...                     "date": pd.to_datetime(["2025-01-01", "2025-02-01", "2023-01-01"])})
    >>> X = make_features(reg, flags, act, index_date="2025-04-01")
    >>> X[["age", "male", "prior_bed_days", "prior_cost", "heart_failure"]]
                 age  male  prior_bed_days  prior_cost  heart_failure
    patient_id
    1           80.0   0.0             4.0      2150.0            1.0
    2           30.0   1.0             0.0         0.0            0.0
    >>> int(X["prior_emergency_admissions"].sum()), X.shape
    (1, (2, 13))
    """
    act = check_feature_inputs(register, activity, index_date)
    ids = register_ids(register)
    n = len(ids)
    flag_cols, flag_pos = _flag_layout(flags, ids) if flags is not None else ([], None)
    names = [*BASE_FEATURES, *(str(c) for c in flag_cols)] if flags is not None else list(
        BASE_FEATURES)
    # one Fortran-ordered float64 block, filled column by column: the DataFrame wraps it
    # without a copy and RiskModel reads it as a view (no per-column blocks to stack)
    values = np.empty((n, len(names)), dtype=np.float64, order="F")
    values[:, 0] = _age(register, index_date)  # plain int/float ages cast while copied
    _sex(register, n, out=values[:, 1])
    values[:, 2] = (_values(register["imd_decile"]) if "imd_decile" in register.columns
                    else np.nan)
    _utilisation(act, ids, index_date, lookback_days, values[:, 3:len(BASE_FEATURES)])
    for j, c in enumerate(flag_cols, start=len(BASE_FEATURES)):
        s = flags[c]
        # numpy bool/int/float: converted while copied into the block (no float temporary);
        # nullable/Arrow dtypes: missing -> NaN first
        col = (s.to_numpy() if isinstance(s.dtype, np.dtype)
               else s.to_numpy(dtype=float, na_value=np.nan))
        if flag_pos is None:
            values[:, j] = col
        else:
            values[:, j] = col[flag_pos]
    table = pd.DataFrame(values, index=ids, columns=names, copy=False)
    if flags is not None:
        table.columns = pd.Index(list(BASE_FEATURES) + list(flag_cols))
    return table


def _age(register: pd.DataFrame, index_date) -> np.ndarray:
    if "age" in register.columns:
        return _values(register["age"])
    if "date_of_birth" in register.columns:
        return age_at(register["date_of_birth"], index_date).to_numpy(dtype=float,
                                                                      na_value=np.nan)
    raise SchemaError("register: needs column 'age' or 'date_of_birth' (rule 'missing_column')",
                      [{"column": "age", "rule": "missing_column", "count": 0, "positions": []}])


def _sex(register: pd.DataFrame, n: int, out: np.ndarray | None = None) -> np.ndarray:
    if "sex" not in register.columns:
        raise SchemaError("register: missing column 'sex' (rule 'missing_column')",
                          [{"column": "sex", "rule": "missing_column", "count": 0,
                            "positions": []}])
    # normalise the few distinct values once, then map every row through its integer code
    # (per-row string ops were 1.35 s of 2.2 s at 1M patients)
    codes, uniques = pd.factorize(register["sex"], use_na_sentinel=True)
    norm = pd.Series(uniques, dtype=object).astype("string").str.strip().str.upper()
    value = np.select([(norm == "M").to_numpy(dtype=bool, na_value=False),
                       (norm == "F").to_numpy(dtype=bool, na_value=False)], [1.0, 0.0], np.nan)
    # code -1 (missing) wraps to the trailing NaN; written straight into ``out`` if given
    # (mode "wrap": an unbuffered take, and codes are never below -1)
    return np.take(np.append(value, np.nan), codes, out=out, mode="wrap")


#: Activity rows handled per block: every per-row temporary (a few arrays of this many
#: int64) stays in a core's cache instead of being a fresh ~40 MB array per step at 5M rows.
_BLOCK_ROWS = 1 << 16


def _position_map(ids: pd.Index, id_dtype: np.dtype):
    """A function from a block of activity patient ids to register positions.

    Each position is in ``[0, len(ids))`` or, for a patient not on the register, some
    value outside it (the caller keeps only ``0 <= pos < n``; all ``int64``). Integer ids
    that are sorted and consecutive (every id from the first to the last) are an
    offset; integer ids spanning a range at most 8x the register's size go through a
    dense lookup table (one gather per row); other ids through the Index's hash table.
    """
    n = len(ids)
    values = ids.to_numpy()
    if values.dtype.kind in "iu" and id_dtype.kind in "iu" and n:
        lo, hi = int(values.min()), int(values.max())
        # bounds keep every difference below in int64; an unsigned activity id above
        # int64's range wraps to a negative one, which must not meet a negative register id
        if (hi - lo < 8 * n + 1024 and -(2**62) < lo and hi < 2**62
                and (lo >= 0 or id_dtype.kind == "i")):
            if hi - lo == n - 1 and ids.is_monotonic_increasing:
                # unique (register_ids) n ids in a range of n, ascending: id - lo
                return lambda pid: np.subtract(pid, lo, dtype=np.int64, casting="unsafe")
            table = np.full(hi - lo + 2, n, dtype=np.int64)  # last slot: off the range
            table[values.astype(np.int64) - lo] = np.arange(n)
            span = np.uint64(hi - lo)

            def dense(pid: np.ndarray) -> np.ndarray:
                off = np.subtract(pid, lo, dtype=np.int64, casting="unsafe")
                np.copyto(off, hi - lo + 1, where=off.view(np.uint64) > span)
                return table[off]
            return dense
    return lambda pid: ids.get_indexer(pid)  # -1 off the register


_FLOAT64 = np.dtype(np.float64)


def _float64(values: np.ndarray) -> np.ndarray:
    """``values`` as float64 with numpy's own float64 dtype object.

    An equal but distinct dtype object (every array unpickled, e.g. a frame read back
    with ``pd.read_pickle``) sends ``np.add.at`` down its buffered general path, about
    9x slower than the direct loop it takes for the builtin dtype (numpy 2.4).
    """
    values = values.astype(_FLOAT64, copy=False)
    return values if values.dtype is _FLOAT64 else values.view(_FLOAT64)


def _utilisation(act, ids: pd.Index, index_date, lookback_days: int, out: np.ndarray) -> None:
    """Write the counts, bed days and cost (``BASE_FEATURES[3:]``) into ``out`` (n x 8).

    ``out`` must be Fortran-ordered (each column contiguous). The activity is read in
    blocks of :data:`_BLOCK_ROWS` rows and accumulated with ``np.add.at`` in row order,
    which adds each row's value to its patient's running sum exactly as a
    ``np.bincount`` over all rows would (the same float sums, bit for bit).
    """
    n = len(ids)
    k = len(UTILISATION_KINDS)
    out[:] = 0.0  # also the bed days of a patient without a recorded stay
    if n == 0 or len(act.patient_id) == 0:
        return
    # one date convention (contracts.schema): tz-aware dates and index_date on local
    # wall-clock time (converted by check_feature_inputs); naive ns/us used in their unit
    unit = np.datetime_data(act.date.dtype)[0]
    idx = np.datetime64(naive_timestamp(index_date), "us").astype(f"M8[{unit}]")
    since = idx - pd.Timedelta(days=lookback_days).to_timedelta64().astype(f"m8[{unit}]")
    # since < date <= idx  <=>  (date - since - 1) mod 2**64 < idx - since (no NaT here)
    first = np.uint64((int(since.astype(np.int64)) + 1) % 2**64)
    width = np.uint64(max(int(idx.astype(np.int64)) - int(since.astype(np.int64)), 0))
    dates = act.date.view(np.int64).view(np.uint64)
    position = _position_map(ids, act.patient_id.dtype)
    # the few distinct kinds are matched once: each kind's code gives the flat offset of
    # its count column in ``out`` (F order: column j starts at j * n), or -1 for no count
    slot_of = {kind: i for i, kinds in enumerate(UTILISATION_KINDS.values()) for kind in kinds}
    slots = [slot_of.get(u, k) if isinstance(u, str) else k for u in act.kinds]
    # (a trailing -1 / False for code -1, a missing kind, which the checks never let by)
    base = np.array([s * n if s < k else -1 for s in slots] + [-1], dtype=np.int64)
    all_counted = all(s < k for s in slots)
    adm_codes = [c for c, u in enumerate(act.kinds) if isinstance(u, str) and u in _ADMISSIONS]
    stays = act.length_of_stay if adm_codes else None
    if not out.flags.f_contiguous:
        raise ValueError("_utilisation writes into a Fortran-ordered block")
    flat = out.ravel(order="F")  # a view, since out is Fortran-ordered
    bed, cost = out[:, k], out[:, k + 1]
    m = len(act.patient_id)
    for start in range(0, m, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, m)
        row = position(act.patient_id[start:stop])
        keep = row.view(np.uint64) < np.uint64(n)  # on the register (off it: < 0 or >= n)
        keep &= (dates[start:stop] - first) < width
        codes = act.kind_codes[start:stop]
        if stays is not None:  # admissions: a few % of rows, picked by their kind codes
            adm = codes == adm_codes[0]
            for code in adm_codes[1:]:
                adm |= codes == code
            adm &= keep
            at = np.flatnonzero(adm)
            los = _float64(stays[start:stop][at])
            np.add.at(bed, row[at], np.where(np.isnan(los), 0.0, los))
        row = row[keep]
        np.add.at(cost, row, _float64(act.cost[start:stop][keep]))
        offset = base[codes[keep].astype(np.intp)]
        if all_counted:  # every kind present is a count feature (the usual case)
            np.add.at(flat, offset + row, 1.0)
        else:
            counted = offset >= 0
            np.add.at(flat, offset[counted] + row[counted], 1.0)


def _flag_layout(flags: pd.DataFrame, ids: pd.Index) -> tuple[list, np.ndarray | None]:
    """The flag columns used as features and each register patient's row in ``flags``
    (None when ``flags`` is already in register order)."""
    clash = [c for c in flags.columns if c in BASE_FEATURES]
    if clash:
        raise SchemaError(f"flags: column(s) {clash} clash with base feature names "
                          "(rule 'reserved_name')",
                          [{"column": c, "rule": "reserved_name", "count": 0, "positions": []}
                           for c in clash])
    cols = [c for c in flags.columns
            if pd.api.types.is_bool_dtype(flags[c]) or pd.api.types.is_numeric_dtype(flags[c])]
    if flags.index.equals(ids):
        return cols, None  # same ids in the same order (hence unique, as the register's)
    if not flags.index.is_unique:
        dup = flags.index.duplicated(keep=False)
        raise SchemaError(f"flags: index breaks rule 'unique' in {int(dup.sum())} row(s)",
                          [{"column": "patient_id", "rule": "unique", "count": int(dup.sum()),
                            "positions": np.flatnonzero(dup)[:10].tolist()}])
    pos = flags.index.get_indexer(ids)
    absent = pos < 0
    if absent.any():
        raise SchemaError(
            f"flags: {int(absent.sum())} register patient(s) are not in the flags index "
            f"(rule 'covers_register'); first register positions {np.flatnonzero(absent)[:10].tolist()}",
            [{"column": "patient_id", "rule": "covers_register", "count": int(absent.sum()),
              "positions": np.flatnonzero(absent)[:10].tolist()}])
    return cols, pos
