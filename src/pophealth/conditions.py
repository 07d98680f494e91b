"""Coded events -> per-patient condition flags: the vectorised core.

Algorithm (no Python loop over patients or events):

1. factorize the code column once (categorical/Arrow dictionaries are reused as is),
   so normalisation, validity checks and code-list matching run on *unique* codes;
2. factorize the code-system column the same way and keep rows in the list's systems;
3. map each event's patient to a register row position (run-length compressed when
   events are grouped by patient; a dense lookup for compact integer ids);
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

from pophealth._arrays import datetimes, factorize, id_array, positions
from pophealth.codelists import Codelist, load_codelist
from pophealth.codes import is_valid_code, normalise_codes, normalise_system
from pophealth.exceptions import CodelistError, DataQualityWarning, SchemaError

__all__ = ["flag_conditions", "FlagReport", "register_ids"]

logger = logging.getLogger(__name__)

_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class FlagReport:
    """Counts of what :func:`flag_conditions` used and excluded (never values).

    ``n_events == n_other_system + n_unrecognised + n_unknown_patient
    + n_after_index_date + n_before_lookback + n_missing_date + n_not_in_list + n_used``,
    each row counted under the first reason that applies in that order.
    """

    codelist: str
    n_patients: int
    n_events: int
    n_other_system: int
    n_unrecognised: int
    n_unrecognised_unique: int
    n_unknown_patient: int
    n_after_index_date: int
    n_before_lookback: int
    n_missing_date: int
    n_not_in_list: int
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
    cl: Codelist = load_codelist(codelist)
    ids = register_ids(register)
    reg_ids = id_array(ids, "register")
    n_pat, n_cond = len(reg_ids), len(cl.conditions)
    for col in ("patient_id", "code", "code_system"):
        if col not in events.columns:
            raise SchemaError(f"events: missing column '{col}' (rule 'missing_column')")
    n = len(events)
    index_ns = int(np.datetime64(pd.Timestamp(index_date).tz_localize(None), "ns").view(np.int64))

    # 1-2. unique codes and systems; a row's key = (code, list-system) pair
    code_idx, uniq_codes = factorize(events["code"])
    sys_idx, uniq_sys = factorize(events["code_system"])
    systems = cl.code_systems
    norm_sys = normalise_system(uniq_sys).to_numpy(dtype=object)
    sys_map = np.array([systems.index(s) if s in systems else -1 for s in norm_sys] + [-1])
    row_sys = sys_map[sys_idx]  # -1 sentinel also catches missing systems (code -1)
    n_u = len(uniq_codes)
    n_s = len(systems)
    # per (system, unique code): validity and matched conditions
    valid = np.zeros((n_s, n_u + 1), dtype=bool)
    matched_any = np.zeros((n_s, n_u + 1), dtype=bool)
    pair_codes, pair_conds = [], []
    for s, system in enumerate(systems):
        norm = normalise_codes(uniq_codes, system)
        valid[s, :n_u] = is_valid_code(norm, system)
        ci, ki = cl.match(norm, system)
        matched_any[s, ci] = True
        pair_codes.append(ci + s * (n_u + 1))
        pair_conds.append(ki)
    # missing codes map to column n_u (invalid, unmatched)
    code_col = np.where(code_idx < 0, n_u, code_idx)
    in_sys = row_sys >= 0
    key = np.where(in_sys, row_sys, 0) * (n_u + 1) + code_col
    row_valid = in_sys & valid.reshape(-1)[key]
    row_match = row_valid & matched_any.reshape(-1)[key]

    # 3. patients
    pos = positions(id_array(events["patient_id"], "events"), reg_ids)
    known = pos >= 0

    # 4. date window
    if "date" in events.columns:
        d = datetimes(events["date"])
        missing_date = d == np.iinfo(np.int64).min
        after = ~missing_date & (d > index_ns)
        if lookback_days is not None:
            before = ~missing_date & (d <= index_ns - int(lookback_days) * _NS_PER_DAY)
        else:
            before = np.zeros(n, dtype=bool)
    else:
        if lookback_days is not None:
            raise SchemaError(
                f"events: missing column 'date' needed for lookback_days={lookback_days} "
                "(pass lookback_days=None to count every event)"
            )
        missing_date = after = before = np.zeros(n, dtype=bool)

    use = row_match & known & ~after & ~before & ~missing_date
    # 5. scatter
    flags = np.zeros((n_pat, n_cond), dtype=bool)
    if use.any():
        pc = np.concatenate(pair_codes) if pair_codes else np.zeros(0, np.int64)
        pk = np.concatenate(pair_conds) if pair_conds else np.zeros(0, np.int64)
        # CSR over keys: conditions per (system, code) key
        order = np.argsort(pc, kind="stable")
        pc, pk = pc[order], pk[order]
        counts = np.bincount(pc, minlength=n_s * (n_u + 1))
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        k_used, p_used = key[use], pos[use]
        single = counts[k_used] == 1
        flat = flags.reshape(-1)
        flat[p_used[single] * n_cond + pk[starts[k_used[single]]]] = True
        if not single.all():
            km, pm = k_used[~single], p_used[~single]
            reps = counts[km]
            rows = np.repeat(pm, reps)
            offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
            flat[rows * n_cond + pk[np.repeat(starts[km], reps) + offs]] = True

    report = _report(cl, n_pat, n, in_sys, row_valid, row_match, known, after, before,
                     missing_date, use, valid, code_idx, row_sys, n_u)
    _warn_and_check(report, max_unrecognised)
    out = pd.DataFrame(flags, index=ids.copy(), columns=list(cl.conditions))
    out.columns.name = None
    out.attrs["pophealth_report"] = report.as_dict()
    return out


def _report(cl, n_pat, n, in_sys, row_valid, row_match, known, after, before, missing_date,
            use, valid, code_idx, row_sys, n_u) -> FlagReport:
    other = int((~in_sys).sum())
    unrec_rows = in_sys & ~row_valid
    unrec = int(unrec_rows.sum())
    # unique unrecognised (system, code) pairs actually present
    if unrec:
        keys = np.where(row_sys[unrec_rows] >= 0, row_sys[unrec_rows], 0) * (n_u + 1) + np.where(
            code_idx[unrec_rows] < 0, n_u, code_idx[unrec_rows])
        unrec_unique = int(np.count_nonzero(np.bincount(keys)))
    else:
        unrec_unique = 0
    rest = row_valid
    unknown = int((rest & ~known).sum())
    rest = rest & known
    n_after = int((rest & after).sum())
    rest = rest & ~after
    n_before = int((rest & before).sum())
    rest = rest & ~before
    n_missing = int((rest & missing_date).sum())
    rest = rest & ~missing_date
    not_in_list = int((rest & ~row_match).sum())
    n_in_sys = int(in_sys.sum())
    return FlagReport(
        codelist=cl.name, n_patients=n_pat, n_events=n, n_other_system=other,
        n_unrecognised=unrec, n_unrecognised_unique=unrec_unique, n_unknown_patient=unknown,
        n_after_index_date=n_after, n_before_lookback=n_before, n_missing_date=n_missing,
        n_not_in_list=not_in_list, n_used=int(use.sum()),
        unrecognised_fraction=(unrec / n_in_sys) if n_in_sys else 0.0,
    )


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
            stacklevel=3,
        )
    logger.info("flag_conditions(%s): %s", r.codelist, r.as_dict())
