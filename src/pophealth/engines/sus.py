"""Readers for SUS+/HES hospital extracts: admitted patient care, outpatients, A&E (ECDS).

Wide extracts become the long ``events`` contract (one row per coded diagnosis or
procedure) and the ``activity`` contract (one row per spell or attendance). Column names
follow the NHS Data Dictionary / HES names by default and are a mapping argument, since
SUS+ extracts vary. Dates must be ISO 8601 (``YYYY-MM-DD``); ``01/04/2025`` is an error.

Admission method (``ADMIMETH``, NHS Data Dictionary "Admission Method"):

========================================= ===================
codes                                      activity ``kind``
========================================= ===================
11, 12, 13 (elective)                      elective_admission
21, 22, 23, 24, 25, 2A, 2B, 2C, 2D, 28     emergency_admission
31, 32 (maternity), 81, 82, 83 (other)     other
anything else (98, 99, blank, unknown)     other, and counted as ``unmapped_admission_method``
========================================= ===================

Spells: one activity row per hospital spell (the first episode's admission date and method;
length of stay = latest discharge date - admission date, in days). The spell key is
``SPELL_ID`` when mapped and present, else (patient, admission date, provider ``PROCODE``
when present). Diagnoses and procedures come from every episode. Costs: a mapped
``cost`` column is summed over a spell's episodes (map an episode-level tariff); with no
cost column every activity row has cost 0 and the report counts ``cost_not_mapped``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pophealth.engines.extract_report import (
    Extract,
    ExtractReport,
    clean_codes,
    iso_dates,
    load_source,
    require_columns,
    text,
)

__all__ = ["ADMISSION_METHODS", "APC_COLUMNS", "OP_COLUMNS", "ECDS_COLUMNS",
           "read_sus_apc", "read_sus_op", "read_ecds"]

#: NHS Data Dictionary admission method code -> activity kind.
ADMISSION_METHODS: dict[str, str] = {
    **dict.fromkeys(["11", "12", "13"], "elective_admission"),
    **dict.fromkeys(["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"],
                    "emergency_admission"),
    **dict.fromkeys(["31", "32", "81", "82", "83"], "other"),
}
#: Default APC column names (role -> extract column); roles marked optional may be absent.
APC_COLUMNS: dict[str, str | None] = {
    "patient_id": "NHS_NUMBER", "admission_date": "ADMIDATE", "admission_method": "ADMIMETH",
    "spell_id": "SPELL_ID", "provider": "PROCODE", "episode_order": "EPIORDER",
    "episode_start": "EPISTART", "discharge_date": "DISDATE", "cost": None,
}
_APC_REQUIRED = ("patient_id", "admission_date", "admission_method")
#: Default outpatient columns; ``attended`` is NHS DD "Attended or did not attend".
OP_COLUMNS: dict[str, str | None] = {"patient_id": "NHS_NUMBER", "date": "APPTDATE",
                                     "attended": "ATTENDED", "cost": None}
#: Default ECDS columns.
ECDS_COLUMNS: dict[str, str | None] = {"patient_id": "NHS_NUMBER", "date": "ARRIVAL_DATE",
                                       "cost": None}
_ATTENDED = frozenset({"5", "6"})  # attended on time / arrived late but seen
_NOT_ATTENDED = frozenset({"2", "3", "4", "7", "0"})
_DIAG = (r"^DIAG_4_(\d{2})$", r"^(?:PRIMARY_DIAGNOSIS|SECONDARY_DIAGNOSIS_(\d+))$")
_PROC = (r"^(?:PROC_OPCS|OPERTN_4)_(\d{2})$",)
_ECDS_DIAG = (r"^(?:EC_DIAGNOSIS|DIAGNOSIS_CODE)_(\d{2})$",)


def _numbered(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    """Columns matching the first pattern that matches any, in numeric order."""
    for pat in patterns:
        found = [(c, re.match(pat, str(c))) for c in frame.columns]
        found = [(int(m.group(1) or 0), str(c)) for c, m in found if m]
        if found:
            return [c for _, c in sorted(found)]
    return []


def _roles(frame, given, defaults, required, reader) -> dict[str, str | None]:
    """Role -> column: explicit mappings must exist; absent optional defaults are dropped."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        from pophealth.contracts.exceptions import SchemaError

        raise SchemaError(f"{reader}: unknown column role(s) {unknown}; "
                          f"roles are {sorted(defaults)}")
    roles = {}
    for role, default in defaults.items():
        if role in given:
            roles[role] = given[role]
        elif default is not None and (role in required or default in frame.columns):
            roles[role] = default
        else:
            roles[role] = None
    require_columns(frame, roles, reader)
    return roles


def _patient_ids(frame, column, report) -> tuple[pd.Series, np.ndarray]:
    pid = frame[column]
    missing = text(pid).isna().to_numpy()
    report.add("missing_patient_id", missing)
    return pid, ~missing


def _long_codes(frame, columns, system, setting, pid, keep, dates, report, what):
    """Wide code columns -> long events rows (row-major order), counting what is dropped."""
    rows, codes = [], []
    empty_total = 0
    invalid_any = np.zeros(len(frame), dtype=bool)
    for col in columns:
        cleaned, invalid = clean_codes(text(frame[col]), system)
        present = cleaned.notna().to_numpy()
        empty_total += int((keep & ~present & ~invalid).sum())
        invalid_any |= keep & invalid
        ok = keep & present & ~invalid
        rows.append(np.flatnonzero(ok))
        codes.append(cleaned.to_numpy(dtype=object)[ok])
    report.add_count(f"empty_{what}_cells", empty_total)
    report.add(f"invalid_{what}_code", invalid_any)
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.intp)
    code = np.concatenate(codes) if codes else np.empty(0, dtype=object)
    order = np.argsort(row, kind="stable")
    row, code = row[order], code[order]
    return pd.DataFrame({"patient_id": pid.to_numpy()[row], "code": code,
                         "code_system": system, "date": dates[row], "setting": setting})


def _costs(frame, column, report, n_out) -> np.ndarray:
    if column is None:
        report.add_count("cost_not_mapped", n_out)
        return np.zeros(len(frame))
    raw = text(frame[column])
    cost = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    report.add("missing_cost", raw.isna().to_numpy())
    bad = raw.notna().to_numpy() & (~np.isfinite(cost) | (cost < 0))
    report.add("invalid_cost", bad)
    return np.where(np.isfinite(cost) & ~bad, cost, 0.0)


def _diagnosis_columns(frame, given, patterns, reader):
    cols = list(given) if given is not None else _numbered(frame, patterns)
    require_columns(frame, {f"diagnosis[{i}]": c for i, c in enumerate(cols)}, reader)
    return cols


def _prepare(source, reader, columns, defaults, required, diagnosis_columns, diag_patterns,
             procedure_columns):
    """The steps every SUS/ECDS reader starts with: load, resolve the column roles and the
    diagnosis and procedure columns, open the report and take the patient ids."""
    frame = load_source(source, reader)
    roles = _roles(frame, columns, defaults, required, reader)
    diag = _diagnosis_columns(frame, diagnosis_columns, diag_patterns, reader)
    proc = (list(procedure_columns) if procedure_columns is not None
            else _numbered(frame, _PROC))
    require_columns(frame, {f"procedure[{i}]": c for i, c in enumerate(proc)}, reader)
    report = ExtractReport(reader, len(frame))
    pid, keep = _patient_ids(frame, roles["patient_id"], report)
    return frame, roles, diag, proc, report, pid, keep


def read_sus_apc(source, *, columns: Mapping[str, str] | None = None,
                 diagnosis_columns: Sequence[str] | None = None,
                 procedure_columns: Sequence[str] | None = None) -> Extract:
    """Read a SUS+/HES admitted patient care extract (one row per episode).

    Parameters
    ----------
    source : DataFrame or path
        Episodes; a CSV path is read with every column as text.
    columns : mapping, optional
        Role -> column name overrides of :data:`APC_COLUMNS` (``patient_id``,
        ``admission_date``, ``admission_method``, ``spell_id``, ``provider``,
        ``episode_order``, ``episode_start``, ``discharge_date``, ``cost``).
    diagnosis_columns, procedure_columns : sequence of str, optional
        Default: ``DIAG_4_01``... (or ``PRIMARY_DIAGNOSIS``, ``SECONDARY_DIAGNOSIS_1``...)
        and ``PROC_OPCS_01``... (or ``OPERTN_4_01``...), in numeric order.

    Returns
    -------
    Extract
        ``events`` (ICD-10 diagnoses and OPCS-4 procedures of every episode, dated by
        episode start, setting ``inpatient``), ``activity`` (one row per spell) and
        ``report``. A :class:`~pophealth.contracts.exceptions.DataQualityWarning` lists
        the problem counts.

    Raises
    ------
    SchemaError
        A mapped column is absent, or a date is not ISO 8601.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.sus import read_sus_apc
    >>> apc = pd.DataFrame({"NHS_NUMBER": ["9990000018", "9990000018"],
    ...     "ADMIDATE": ["2025-01-10", "2025-01-10"], "ADMIMETH": ["21", "21"],
    ...     "EPIORDER": [1, 2], "EPISTART": ["2025-01-10", "2025-01-12"],
    ...     "DISDATE": [None, "2025-01-15"], "DIAG_4_01": ["I21.0", "I50X"],
    ...     "DIAG_4_02": ["E119", None], "PROC_OPCS_01": ["K40.1", None],
    ...     "COST": ["2000", "500"]})
    >>> out = read_sus_apc(apc, columns={"cost": "COST"})
    >>> out.events[["code", "code_system"]].to_numpy().tolist()
    [['I210', 'icd10'], ['E119', 'icd10'], ['K401', 'opcs4'], ['I50', 'icd10']]
    >>> out.activity[["kind", "cost", "length_of_stay"]].to_numpy().tolist()
    [['emergency_admission', 2500.0, 5.0]]
    """
    reader = "read_sus_apc"
    frame, roles, diag, proc, report, pid, keep = _prepare(
        source, reader, columns, APC_COLUMNS, _APC_REQUIRED, diagnosis_columns, _DIAG,
        procedure_columns)
    n = len(frame)
    admitted = iso_dates(frame, roles["admission_date"], reader)
    start = (iso_dates(frame, roles["episode_start"], reader) if roles["episode_start"]
             else admitted)
    event_date = np.where(np.isnat(start), admitted, start)
    discharged = (iso_dates(frame, roles["discharge_date"], reader) if roles["discharge_date"]
                  else np.full(n, np.datetime64("NaT", "us")))

    # ---- events: diagnoses and procedures of every episode
    if diag:
        report.add("empty_primary_diagnosis", keep & text(frame[diag[0]]).isna().to_numpy())
    ev = [_long_codes(frame, diag, "icd10", "inpatient", pid, keep, event_date, report,
                      "diagnosis"),
          _long_codes(frame, proc, "opcs4", "inpatient", pid, keep, event_date, report,
                      "procedure")]
    rowpos = np.concatenate([_event_rows(frame, diag, "icd10", keep),
                             _event_rows(frame, proc, "opcs4", keep)])
    events = pd.concat(ev, ignore_index=True).iloc[np.argsort(rowpos, kind="stable")]
    events = events.reset_index(drop=True)

    # ---- spells: group episodes, first episode by EPIORDER then row order
    key = pd.DataFrame({"pid": text(pid)})
    if roles["spell_id"]:
        key["spell"] = text(frame[roles["spell_id"]])
        report.add("missing_spell_id", keep & key["spell"].isna().to_numpy())
    else:
        key["admitted"] = admitted
        if roles["provider"]:
            key["provider"] = text(frame[roles["provider"]])
    spell = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    order_col = (pd.to_numeric(text(frame[roles["episode_order"]]), errors="coerce")
                 .to_numpy(dtype=float) if roles["episode_order"] else np.zeros(n))
    order_col = np.where(np.isnan(order_col), np.inf, order_col)
    rows = np.flatnonzero(keep)
    srt = rows[np.lexsort((rows, order_col[rows], spell[rows]))]
    first_mask = np.r_[True, spell[srt][1:] != spell[srt][:-1]] if len(srt) else np.zeros(0, bool)
    first = srt[first_mask]                      # first episode row of each spell
    group = np.cumsum(first_mask) - 1            # spell number of every sorted row
    nsp = len(first)
    meth = text(frame[roles["admission_method"]]).to_numpy(dtype=object)[first]
    kind = pd.Series(meth, dtype=object).map(ADMISSION_METHODS)
    unmapped = np.zeros(n, dtype=bool)
    unmapped[first[kind.isna().to_numpy()]] = True
    report.add("unmapped_admission_method", unmapped)
    kind = kind.fillna("other").to_numpy(dtype=object)
    disc_ns = discharged[srt].astype("datetime64[us]").view(np.int64).astype(float)
    disc_ns[np.isnat(discharged[srt])] = -np.inf
    last = np.full(nsp, -np.inf)
    np.maximum.at(last, group, disc_ns)
    adm = admitted[first]
    los = (last - adm.view(np.int64)) / 86_400e6
    no_disc = ~np.isfinite(last)
    neg = np.isfinite(los) & (los < 0)
    flag = np.zeros(n, dtype=bool)
    flag[first[no_disc]] = True
    report.add("spell_without_discharge_date", flag)
    flag = np.zeros(n, dtype=bool)
    flag[first[neg]] = True
    report.add("discharge_before_admission", flag)
    los = np.where(np.isfinite(los) & ~neg, los, np.nan)
    no_adm = np.isnat(adm)
    flag = np.zeros(n, dtype=bool)
    flag[first[no_adm]] = True
    report.add("spell_without_admission_date", flag)
    cost_rows = _costs(frame, roles["cost"], report, int((~no_adm).sum()))
    cost = np.bincount(group, weights=cost_rows[srt], minlength=nsp)
    sel = ~no_adm
    activity = pd.DataFrame({"patient_id": pid.to_numpy()[first[sel]], "date": adm[sel],
                             "kind": kind[sel], "cost": cost[sel],
                             "length_of_stay": los[sel]})
    report.warn()
    return Extract(events, activity, report)


def _event_rows(frame, columns, system, keep) -> np.ndarray:
    """Input row of every event row of :func:`_long_codes` (same order, same filters)."""
    rows = []
    for col in columns:
        cleaned, invalid = clean_codes(text(frame[col]), system)
        rows.append(np.flatnonzero(keep & cleaned.notna().to_numpy() & ~invalid))
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.intp)
    return np.sort(row, kind="stable")


def _attendances(source, columns, defaults, diagnosis_columns, diag_patterns, diag_system,
                 procedure_columns, setting, kind, reader, attended_rule) -> Extract:
    frame, roles, diag, proc, report, pid, keep = _prepare(
        source, reader, columns, defaults, ("patient_id", "date"), diagnosis_columns,
        diag_patterns, procedure_columns)
    date = iso_dates(frame, roles["date"], reader)
    if attended_rule and roles.get("attended"):
        att = text(frame[roles["attended"]])
        seen = att.isin(_ATTENDED).to_numpy()
        known = seen | att.isin(_NOT_ATTENDED).to_numpy()
        report.add("not_attended", keep & known & ~seen)
        report.add("unmapped_attendance", keep & ~known)
        keep = keep & seen
    no_date = keep & np.isnat(date)
    report.add("missing_date", no_date)
    events = pd.concat(
        [_long_codes(frame, diag, diag_system, setting, pid, keep, date, report, "diagnosis"),
         _long_codes(frame, proc, "opcs4", setting, pid, keep, date, report, "procedure")],
        ignore_index=True)
    rowpos = np.concatenate([_event_rows(frame, diag, diag_system, keep),
                             _event_rows(frame, proc, "opcs4", keep)])
    events = events.iloc[np.argsort(rowpos, kind="stable")].reset_index(drop=True)
    sel = keep & ~no_date
    cost = _costs(frame, roles["cost"], report, int(sel.sum()))
    activity = pd.DataFrame({"patient_id": pid.to_numpy()[sel], "date": date[sel],
                             "kind": kind, "cost": cost[sel]})
    report.warn()
    return Extract(events, activity, report)


def read_sus_op(source, *, columns: Mapping[str, str] | None = None,
                diagnosis_columns: Sequence[str] | None = None,
                procedure_columns: Sequence[str] | None = None) -> Extract:
    """Read a SUS+/HES outpatient extract (one row per appointment).

    Appointments with ``ATTENDED`` 5 (attended) or 6 (arrived late, seen) become
    ``outpatient`` activity and ``outpatient`` events; 2, 3, 4, 7 and 0 (cancelled, did
    not attend, not seen, future) are counted as ``not_attended``; other codes as
    ``unmapped_attendance``. Without an ``attended`` column every row counts as attended.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.sus import read_sus_op
    >>> op = pd.DataFrame({"NHS_NUMBER": ["9990000018", "9990000026"],
    ...                    "APPTDATE": ["2025-02-01", "2025-02-02"], "ATTENDED": ["5", "3"],
    ...                    "DIAG_4_01": ["J44.9", None], "OPERTN_4_01": ["X62.2", None]})
    >>> out = read_sus_op(op)
    >>> out.activity["kind"].tolist(), out.events["code"].tolist(), out.report.counts
    (['outpatient'], ['J449', 'X622'], {'not_attended': 1, 'cost_not_mapped': 1})
    """
    return _attendances(source, columns, OP_COLUMNS, diagnosis_columns, _DIAG, "icd10",
                        procedure_columns, "outpatient", "outpatient", "read_sus_op", True)


def read_ecds(source, *, columns: Mapping[str, str] | None = None,
              diagnosis_columns: Sequence[str] | None = None,
              diagnosis_system: str = "snomed") -> Extract:
    """Read an Emergency Care Data Set (A&E) extract (one row per attendance).

    ECDS diagnoses are SNOMED CT (``EC_DIAGNOSIS_01``... by default); pass
    ``diagnosis_system="icd10"`` for an extract already mapped to ICD-10. Each attendance
    becomes one ``ae`` activity row and its diagnoses ``ae`` events.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.sus import read_ecds
    >>> ae = pd.DataFrame({"NHS_NUMBER": ["9990000018"], "ARRIVAL_DATE": ["2025-03-01"],
    ...                    "EC_DIAGNOSIS_01": ["195967001"], "TARIFF": ["180"]})
    >>> out = read_ecds(ae, columns={"cost": "TARIFF"})
    >>> out.events[["code", "code_system", "setting"]].to_numpy().tolist()
    [['195967001', 'snomed', 'ae']]
    >>> out.activity[["kind", "cost"]].to_numpy().tolist()
    [['ae', 180.0]]
    """
    return _attendances(source, columns, ECDS_COLUMNS, diagnosis_columns, _ECDS_DIAG,
                        diagnosis_system, [], "ae", "ae", "read_ecds", False)
