"""Readers for GP (primary care) extracts: coded events and the registered list.

Column names are mapping arguments (``id=``, ``code=``, ``date=``, ``system=``), so an
extract's own names need no renaming by hand. Code-system names are normalised
(``"SNOMED CT"``, ``"SCT"`` -> ``snomed``; ``"ICD-10"`` -> ``icd10``; ``"Read v2"`` ->
``read2``). Sex codes may be the contract's ``F``/``M``/``I``/``U`` or the NHS Data
Dictionary's ``1``/``2``/``9``/``0``. Dates must be ISO 8601 (``YYYY-MM-DD``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import normalise_sex
from pophealth.engines.extract_report import (
    PATTERNS,
    Extract,
    ExtractReport,
    iso_dates,
    load_source,
    require_columns,
    text,
)

__all__ = ["SYSTEM_ALIASES", "read_gp_events", "read_gp_register"]

#: Normalised (lower-case, letters and digits only) system name -> pophealth's name.
SYSTEM_ALIASES = {"snomedct": "snomed", "sct": "snomed", "snomed": "snomed",
                  "icd10": "icd10", "icd10uk": "icd10", "opcs4": "opcs4", "opcs": "opcs4",
                  "readv2": "read2", "read2": "read2", "ctv3": "ctv3", "readv3": "ctv3"}


def _systems(values: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(values)
    u = pd.Series(uniques, dtype=object).str.lower().str.replace(r"[^0-9a-z]", "", regex=True)
    u = u.map(SYSTEM_ALIASES).fillna(u).where(u != "", None)
    return pd.Series(np.append(u.to_numpy(dtype=object), None)[codes], index=values.index,
                     dtype=object)


def read_gp_events(source, *, id: str = "patient_id", code: str = "code",
                   date: str | None = "date", system: str | None = None,
                   code_system: str | None = None, setting: str = "primary") -> Extract:
    """Read a GP coded-events extract into the ``events`` contract.

    Parameters
    ----------
    source : DataFrame or path
        One row per coded entry; a CSV path is read with every column as text.
    id, code, date : str
        The extract's columns for the patient identifier, the code and the entry date
        (``date=None`` if it has none).
    system : str, optional
        The extract's column naming each row's code system.
    code_system : str, optional
        One code system for every row (e.g. ``"snomed"``), when there is no ``system``
        column. Exactly one of ``system`` and ``code_system`` is required.
    setting : str, default "primary"

    Returns
    -------
    Extract
        ``events`` (``patient_id``, ``code``, ``code_system``, ``date``, ``setting``),
        ``activity`` ``None``, and ``report`` counting rows without a patient id,
        without a code, with an invalid code for their system (SNOMED CT: 6-18 digits,
        no leading zero), without a system and without a date. Such rows (except the
        undated) are excluded.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.gp import read_gp_events
    >>> gp = pd.DataFrame({"id": ["9990000018", "9990000018"],
    ...                    "snomed_code": ["52448006", "44054006"],
    ...                    "entry_date": ["2020-05-01", "2019-11-30"]})
    >>> out = read_gp_events(gp, id="id", code="snomed_code", date="entry_date",
    ...                      code_system="SNOMED CT")
    >>> out.events[["code", "code_system", "setting"]].to_numpy().tolist()
    [['52448006', 'snomed', 'primary'], ['44054006', 'snomed', 'primary']]
    """
    reader = "read_gp_events"
    if (system is None) == (code_system is None):
        raise SchemaError(f"{reader}: pass exactly one of system= (a column) or "
                          "code_system= (one system for every row)")
    frame = load_source(source, reader)
    require_columns(frame, {"id": id, "code": code, "date": date, "system": system}, reader)
    n = len(frame)
    report = ExtractReport(reader, n)
    missing_id = text(frame[id]).isna().to_numpy()
    report.add("missing_patient_id", missing_id)
    sys_raw = (text(frame[system]) if system is not None
               else pd.Series([code_system] * n, dtype=object))
    sysname = _systems(sys_raw)
    no_sys = ~missing_id & sysname.isna().to_numpy()
    report.add("missing_code_system", no_sys)
    raw = text(frame[code])
    cleaned = raw.str.replace(r"[^0-9A-Z]", "", regex=True)
    cleaned = cleaned.where(cleaned != "", None)
    no_code = ~missing_id & ~no_sys & cleaned.isna().to_numpy()
    report.add("missing_code", no_code)
    invalid = np.zeros(n, dtype=bool)
    for name, pattern in PATTERNS.items():  # a handful of systems, vectorised within each
        rows = (sysname == name).to_numpy() & cleaned.notna().to_numpy()
        invalid[rows] = ~cleaned[rows].str.fullmatch(pattern).to_numpy(dtype=bool)
    invalid &= ~missing_id & ~no_sys
    report.add("invalid_code", invalid)
    keep = ~(missing_id | no_sys | no_code | invalid)
    when = (iso_dates(frame, date, reader) if date is not None
            else np.full(n, np.datetime64("NaT", "us")))
    report.add("missing_date", keep & np.isnat(when))
    events = pd.DataFrame({"patient_id": frame[id].to_numpy()[keep],
                           "code": cleaned.to_numpy(dtype=object)[keep],
                           "code_system": sysname.to_numpy(dtype=object)[keep],
                           "date": when[keep], "setting": setting})
    report.warn()
    return Extract(events, None, report)


def read_gp_register(source, *, id: str = "patient_id", sex: str = "sex",
                     date_of_birth: str | None = "date_of_birth", age: str | None = None,
                     lsoa: str = "lsoa", practice: str = "practice",
                     other: Mapping[str, str] | None = None) -> tuple[pd.DataFrame,
                                                                       ExtractReport]:
    """Read a GP registered-list extract into the ``register`` contract.

    Parameters
    ----------
    source : DataFrame or path
    id, sex, date_of_birth, age, lsoa, practice : str
        The extract's column for each contract column (``date_of_birth=None`` with
        ``age=`` for an age column instead).
    other : mapping, optional
        Further contract column -> extract column (``pcn``, ``imd_decile``,
        ``ethnicity``, ``date_of_death``, ``registered_from``, ``registered_to``).

    Returns
    -------
    register : DataFrame
        Contract column names; sex as ``F``/``M``/``I``/``U`` (NHS Data Dictionary
        1 male, 2 female, 9 indeterminate, 0 not known accepted); ISO dates parsed.
        Rows without a patient id are excluded.
    report : ExtractReport
        ``missing_patient_id`` and ``unmapped_sex_code`` (set to ``U``, not known).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.gp import read_gp_register
    >>> gp = pd.DataFrame({"NHSNo": ["9990000018", "9990000026"], "Gender": ["2", "1"],
    ...                    "DOB": ["1940-02-29", "1980-07-01"], "LSOA11": ["E01000001"] * 2,
    ...                    "ODS": ["A81001"] * 2})
    >>> reg, report = read_gp_register(gp, id="NHSNo", sex="Gender", date_of_birth="DOB",
    ...                                lsoa="LSOA11", practice="ODS")
    >>> reg["sex"].tolist(), str(reg["date_of_birth"].iloc[0].date()), report.counts
    (['F', 'M'], '1940-02-29', {})
    """
    reader = "read_gp_register"
    mapping = {"patient_id": id, "sex": sex, "lsoa": lsoa, "practice": practice,
               "date_of_birth": date_of_birth, "age": age, **dict(other or {})}
    frame = load_source(source, reader)
    require_columns(frame, mapping, reader)
    report = ExtractReport(reader, len(frame))
    missing_id = text(frame[id]).isna().to_numpy()
    report.add("missing_patient_id", missing_id)
    keep = ~missing_id
    out = {}
    for role, col in mapping.items():
        if col is None:
            continue
        if role == "sex":
            s = normalise_sex(frame[col], col, errors="coerce")
            report.add("unmapped_sex_code", keep & s.isna().to_numpy())
            out[role] = s.fillna("U").to_numpy(dtype=object)[keep]
        elif role in {"date_of_birth", "date_of_death", "registered_from", "registered_to"}:
            out[role] = iso_dates(frame, col, reader)[keep]
        elif role in {"age", "imd_decile"}:
            raw = text(frame[col])
            num = pd.to_numeric(raw, errors="coerce")
            report.add(f"invalid_{role}", keep & raw.notna().to_numpy() & num.isna().to_numpy())
            out[role] = num.to_numpy(dtype=float)[keep]
        else:
            out[role] = frame[col].to_numpy()[keep]
    report.warn()
    return pd.DataFrame(out), report
