"""Coded events -> per-patient condition flags: the vectorised core.

Algorithm (no Python loop over patients or events):

1. factorize the code column once (categorical/Arrow dictionaries are reused as is),
   so normalisation, validity checks and code-list matching run on *unique* codes,
   and likewise the code-system column; each row gets a small integer key;
2. classify every key (other system / unrecognised / not in the list / matched) and
   count rows per key with one ``bincount``;
3. for matched rows only, map the patient to a register row position (run-length
   compressed when events are grouped by patient; a dense lookup table for compact
   integer ids; a hash index otherwise);
4. keep rows inside ``(index_date - lookback_days, index_date]``;
5. scatter (patient position, condition) pairs into a dense boolean matrix.

The function is pure and row-order/batch-split invariant: flags of a concatenation of
patient batches equal the concatenation of the batches' flags.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pophealth._arrays import datetimes, factorize, id_array, is_constant_object, positions
from pophealth.codelists import Codelist, load_codelist
from pophealth.codes import is_valid_code, normalise_codes, normalise_system
from pophealth.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    SchemaError,
    user_stacklevel,
)

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
        Events after it never count.
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
    index_ns = int(np.datetime64(pd.Timestamp(index_date).tz_localize(None), "ns").view(np.int64))

    # 1-2. unique codes and systems; each row gets a key = (system, unique code)
    code_idx, uniq_codes = factorize(events["code"])
    sys_col = events["code_system"]
    if sys_col.dtype == object and n and is_constant_object(sys_col.to_numpy()):
        sys_idx, uniq_sys = None, np.array([sys_col.iloc[0]], dtype=object)
    else:
        sys_idx, uniq_sys = factorize(sys_col)
    systems = cl.code_systems
    norm_sys = normalise_system(uniq_sys).to_numpy(dtype=object)
    sys_of = np.array([systems.index(x) if x in systems else -1 for x in norm_sys], np.int64)
    n_u, n_su = len(uniq_codes), len(uniq_sys)
    width = n_u + 1  # column n_u stands for a missing code
    # per key: 0 other system, 1 unrecognised, 2 not in list, 3 matched; conditions (CSR)
    klass = np.zeros((n_su + 1) * width, dtype=np.int8)  # last block: missing system
    pair_keys, pair_conds = [], []
    for su, system_pos in enumerate(sys_of):
        if system_pos < 0:
            continue
        system = systems[system_pos]
        norm = normalise_codes(uniq_codes, system)
        valid = is_valid_code(norm, system)
        block = np.full(width, 1, dtype=np.int8)
        block[:n_u] = np.where(valid, 2, 1)
        ci, ki = cl.match(norm, system)
        ci, ki = ci[valid[ci]], ki[valid[ci]]  # an invalid code never counts, even on a prefix
        block[ci] = 3
        klass[su * width:(su + 1) * width] = block
        pair_keys.append(ci + su * width)
        pair_conds.append(ki)
    codes_col = np.where(code_idx < 0, n_u, code_idx)
    if sys_idx is None:
        key = codes_col
    else:
        key = np.where(sys_idx < 0, n_su, sys_idx) * width + codes_col
    key_counts = np.bincount(key, minlength=len(klass))
    class_counts = np.bincount(klass, weights=key_counts, minlength=4).astype(np.int64)
    sel = np.flatnonzero(klass[key] == 3)  # rows whose code is in the list

    # 3. patients (matched rows only)
    pos = positions(id_array(events["patient_id"], "events")[sel], reg_ids)
    known = pos >= 0

    # 4. date window (matched rows only)
    if "date" in events.columns:
        d = datetimes(events["date"])[sel]
        missing_date = d == np.iinfo(np.int64).min
        after = d > index_ns
        if lookback_days is not None:
            before = ~missing_date & (d <= index_ns - int(lookback_days) * _NS_PER_DAY)
        else:
            before = np.zeros(len(sel), dtype=bool)
    else:
        if lookback_days is not None:
            raise SchemaError(
                f"events: missing column 'date' needed for lookback_days={lookback_days} "
                "(pass lookback_days=None to count every event)"
            )
        missing_date = after = before = np.zeros(len(sel), dtype=bool)

    use = known & ~after & ~before & ~missing_date
    # 5. scatter (patient position, condition) into the dense flag matrix
    # condition-major storage: each condition's column is contiguous for the scorers
    flags_t = np.zeros((n_cond, n_pat), dtype=bool)
    k_used, p_used = key[sel[use]], pos[use]
    if len(k_used):
        pk_key = np.concatenate(pair_keys)
        pk_cond = np.concatenate(pair_conds)
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

    n_in_sys = int(class_counts[1:].sum())
    unknown = ~known
    report = FlagReport(
        codelist=cl.name, n_patients=n_pat, n_events=n,
        n_other_system=int(class_counts[0]), n_unrecognised=int(class_counts[1]),
        n_unrecognised_unique=int(np.count_nonzero(key_counts[klass == 1])),
        n_not_in_list=int(class_counts[2]), n_unknown_patient=int(unknown.sum()),
        n_after_index_date=int((known & after).sum()),
        n_before_lookback=int((known & ~after & before).sum()),
        n_missing_date=int((known & missing_date).sum()), n_used=int(use.sum()),
        unrecognised_fraction=(int(class_counts[1]) / n_in_sys) if n_in_sys else 0.0,
    )
    _warn_and_check(report, max_unrecognised)
    out = pd.DataFrame(flags_t.T, index=ids.copy(), columns=list(cl.conditions), copy=False)
    out.columns.name = None
    out.attrs["pophealth_report"] = report.as_dict()
    return out


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
