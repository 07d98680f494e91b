"""Recorded frailty: the frailty a GP record states, as a band.

English GP records carry frailty in two ways besides the deficits an eFI is computed
from: a coded frailty category (the NHS England Primary Care Domain clusters
MILDFRAIL_COD, MODFRAIL_COD, SEVFRAIL_COD, shipped in the ``pcd_snomed`` code list as
``mildfrail_cod``, ``modfrail_cod``, ``sevfrail_cod``; Clinical Frailty Scale levels 4-5,
6 and 7-8 are in the same clusters) and a recorded eFI value. :func:`recorded_frailty`
turns them into ``frailty_recorded`` on the eFI band scale (``fit < mild < moderate <
severe``), so the patient table and segmentation use it like ``efi_band``.

Rules (pophealth choices, documented here and in the README):

* the band is that of the patient's *latest* frailty code on or before ``index_date``
  (a newer "mild" replaces an older "severe"); codes on the same day: the most severe;
* without a frailty code, a recorded eFI value (register column ``efi_recorded``, a
  fraction 0-1) is banded with the Clegg 2016 cut-points: <= 0.12 fit, <= 0.24 mild,
  <= 0.36 moderate, above severe;
* frailty codes without a date cannot be ordered: they are not used, and counted in a
  :class:`~pophealth.contracts.exceptions.DataQualityWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import DataQualityWarning, SchemaError, user_stacklevel
from pophealth.contracts.numeric import numeric_values, validate_numeric
from pophealth.contracts.schema import naive_timestamp
from pophealth.core.arrays import PatientLookup, datetimes, factorize, id_array
from pophealth.core.codelists import load_codelist
from pophealth.core.codes import normalise_codes, normalise_system
from pophealth.core.conditions import register_ids
from pophealth.core.indices import EFI_BANDS

__all__ = ["RECORDED_FRAILTY", "efi_value_band", "recorded_frailty"]

#: Condition of the frailty code list -> band it records (names of ``pcd_snomed``).
RECORDED_FRAILTY: dict[str, str] = {
    "mildfrail_cod": "mild", "modfrail_cod": "moderate", "sevfrail_cod": "severe"}

_BAND_DTYPE = pd.CategoricalDtype(list(EFI_BANDS), ordered=True)
_NAT = np.iinfo(np.int64).min


def efi_value_band(values) -> pd.Categorical:
    """Band recorded eFI values (fractions 0-1) with the Clegg 2016 cut-points.

    ``<= 0.12`` fit, ``<= 0.24`` mild, ``<= 0.36`` moderate, above severe; missing
    stays missing. Values outside 0-1 raise
    :class:`~pophealth.contracts.exceptions.SchemaError` (count and positions only).

    Examples
    --------
    >>> from pophealth.core.frailty import efi_value_band
    >>> list(efi_value_band([0.12, 0.13, 0.24, 0.25, 0.36, 0.37, None]))
    ['fit', 'mild', 'mild', 'moderate', 'moderate', 'severe', nan]
    """
    v = numeric_values(pd.Series(values, dtype=object), table="register",
                       column="efi_recorded")
    bad = ~np.isnan(v) & ((v < 0) | (v > 1))
    if bad.any():
        raise SchemaError(
            f"register: column 'efi_recorded' breaks rule 'fraction_0_1' in "
            f"{int(bad.sum())} row(s); first positions {np.flatnonzero(bad)[:10].tolist()}")
    codes = np.searchsorted(np.array([0.12, 0.24, 0.36]), v, side="left").astype(np.int64)
    codes[np.isnan(v)] = -1
    return pd.Categorical.from_codes(codes, dtype=_BAND_DTYPE)


def recorded_frailty(events: pd.DataFrame | None, *, register: pd.DataFrame, index_date,
                     codelist="pcd_snomed") -> pd.DataFrame:
    """Recorded frailty band per register patient (latest frailty code, else eFI value).

    Parameters
    ----------
    events : DataFrame or None
        Coded events (``patient_id, code, code_system, date``); ``None`` uses only
        the register's ``efi_recorded``.
    register : DataFrame
        The patients (``patient_id`` column or index); an optional numeric column
        ``efi_recorded`` holds a recorded eFI value (fraction 0-1).
    index_date : date-like
        Codes after it are ignored.
    codelist : str, path, DataFrame or Codelist, default "pcd_snomed"
        A list with conditions ``mildfrail_cod``, ``modfrail_cod`` and ``sevfrail_cod``
        (other conditions are ignored).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` in register order: ``frailty_recorded`` (ordered
        categorical fit < mild < moderate < severe, missing when nothing is recorded),
        ``frailty_recorded_date`` (date of the code used; NaT otherwise) and
        ``frailty_recorded_source`` (``"code"``, ``"efi_value"`` or missing).

    Examples
    --------
    Patient 1 was coded severe, then mild: the latest code counts. Patient 2 has only
    a recorded eFI of 0.30 (moderate). Patient 3 has nothing recorded.

    >>> import pandas as pd
    >>> from pophealth.core.frailty import recorded_frailty
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3], "efi_recorded": [None, 0.30, None]})
    >>> ev = pd.DataFrame({"patient_id": [1, 1], "code": ["925861000000102", "925791000000100"],
    ...                    "code_system": "snomed",
    ...                    "date": pd.to_datetime(["2023-01-01", "2024-06-01"])})
    >>> recorded_frailty(ev, register=reg, index_date="2025-04-01")
               frailty_recorded frailty_recorded_date frailty_recorded_source
    patient_id
    1                      mild            2024-06-01                    code
    2                  moderate                   NaT               efi_value
    3                       NaN                   NaT                     NaN
    """
    ids = register_ids(register)
    n = len(ids)
    rank = np.full(n, -1, dtype=np.int64)
    when = np.full(n, _NAT, dtype=np.int64)
    if events is not None:
        rank, when = _latest_code(events, ids, index_date, codelist)
    source = np.where(rank >= 0, 0, -1)  # codes of "code", "efi_value"
    if isinstance(register, pd.DataFrame) and "efi_recorded" in register.columns:
        validate_numeric(register, ["efi_recorded"], table="register")
        value_codes = np.asarray(efi_value_band(register["efi_recorded"].to_numpy()).codes,
                                 dtype=np.int64)
        use = (rank < 0) & (value_codes >= 0)
        rank = np.where(use, value_codes, rank)
        source[use] = 1
    dates = pd.to_datetime(np.where(when == _NAT, np.iinfo(np.int64).min, when)
                           .view("datetime64[ns]"))
    return pd.DataFrame({
        "frailty_recorded": pd.Categorical.from_codes(rank, dtype=_BAND_DTYPE),
        "frailty_recorded_date": dates,
        "frailty_recorded_source": pd.Categorical.from_codes(source,
                                                             categories=["code", "efi_value"]),
    }, index=ids)


def _latest_code(events: pd.DataFrame, ids: pd.Index, index_date, codelist):
    """(band code, date ns) of each patient's latest frailty code; -1 / NaT without one."""
    for col in ("patient_id", "code", "code_system", "date"):
        if col not in events.columns:
            raise SchemaError(f"events: missing column '{col}' (rule 'missing_column') "
                              "needed for recorded frailty")
    cl = load_codelist(codelist)
    t = cl.table[cl.table["condition"].isin(list(RECORDED_FRAILTY))]
    missing = [c for c in RECORDED_FRAILTY if c not in set(t["condition"])]
    if missing:
        raise SchemaError(f"code list '{cl.name}': missing condition(s) {missing} needed "
                          "for recorded frailty")
    band_of = t["condition"].map(RECORDED_FRAILTY).map(
        {b: i for i, b in enumerate(EFI_BANDS)}).to_numpy(dtype=np.int64)
    keys = pd.Index(t["code_system"].to_numpy(dtype=object) + "|"
                    + t["code"].to_numpy(dtype=object))
    listed = set(t["code_system"].tolist())
    # per code system of the events: its rows' distinct codes, normalised once and mapped
    # to bands, then gathered back to the rows through integer codes (a categorical's own
    # codes: no hashing of the rows). Only systems the list covers can match.
    sys_codes, sys_uniques = factorize(events["code_system"])
    code_codes, code_uniques = factorize(events["code"])
    norm_sys = normalise_system(np.asarray(sys_uniques, dtype=object)).to_numpy(dtype=object)
    cand = []  # (rows, band) per system of the list: rows with a frailty code
    for j in np.flatnonzero(np.isin(norm_sys, list(listed))).tolist():
        rows = np.flatnonzero(sys_codes == j)
        cc = code_codes[rows]
        present = np.flatnonzero(np.bincount(cc[cc >= 0], minlength=len(code_uniques)))
        codes = normalise_codes(np.asarray(code_uniques, dtype=object)[present], norm_sys[j])
        hit = keys.get_indexer(pd.Series(codes, dtype=object).radd(norm_sys[j] + "|"))
        table = np.full(len(code_uniques) + 1, -1, dtype=np.int64)  # slot 0: missing code
        table[present + 1] = np.where(hit >= 0, band_of[np.maximum(hit, 0)], -1)
        b = table[cc.astype(np.int64) + 1]
        cand.append((rows[b >= 0], b[b >= 0]))
    rows = np.concatenate([r for r, _ in cand]) if cand else np.zeros(0, np.int64)
    band = np.concatenate([b for _, b in cand]) if cand else np.zeros(0, np.int64)
    n = len(ids)
    pids = id_array(events["patient_id"])
    lookup = PatientLookup(id_array(ids, "register"))
    # positions of the rows holding a frailty code only (row order does not matter: the
    # latest code is found by sorting); one row at least, so that register and event ids
    # of different types are an error whether or not a frailty code occurs
    pos = lookup.positions(pids[rows] if len(rows) else pids[:1])[:len(rows)]
    dates = datetimes(events["date"])[rows]
    index_ns = int(np.datetime64(naive_timestamp(index_date), "ns").view(np.int64))
    undated = (pos >= 0) & (dates == _NAT)
    if undated.any():
        warnings.warn(f"events: {int(undated.sum())} frailty code row(s) without a 'date' "
                      "were not used for recorded frailty (cannot tell which is latest)",
                      DataQualityWarning, stacklevel=user_stacklevel())
    use = (pos >= 0) & (dates != _NAT) & (dates <= index_ns)
    p, d, b = pos[use], dates[use], band[use]
    order = np.lexsort((b, d, p))  # by patient, then date, then band: last = latest, worst
    p, d, b = p[order], d[order], b[order]
    last = np.flatnonzero(np.append(p[1:] != p[:-1], True)) if len(p) else np.zeros(0, int)
    rank = np.full(n, -1, dtype=np.int64)
    when = np.full(n, _NAT, dtype=np.int64)
    rank[p[last]] = b[last]
    when[p[last]] = d[last]
    return rank, when
