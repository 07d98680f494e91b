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
from pophealth.core.arrays import PatientLookup, datetimes, id_array
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
    source = np.where(rank >= 0, "code", None).astype(object)
    if isinstance(register, pd.DataFrame) and "efi_recorded" in register.columns:
        validate_numeric(register, ["efi_recorded"], table="register")
        value_codes = np.asarray(efi_value_band(register["efi_recorded"].to_numpy()).codes,
                                 dtype=np.int64)
        use = (rank < 0) & (value_codes >= 0)
        rank = np.where(use, value_codes, rank)
        source[use] = "efi_value"
    dates = pd.to_datetime(np.where(when == _NAT, np.iinfo(np.int64).min, when)
                           .view("datetime64[ns]"))
    return pd.DataFrame({
        "frailty_recorded": pd.Categorical.from_codes(rank, dtype=_BAND_DTYPE),
        "frailty_recorded_date": dates,
        "frailty_recorded_source": pd.Categorical(source, categories=["code", "efi_value"]),
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
    keys = pd.Series(t["code_system"].to_numpy(dtype=object) + "|"
                     + t["code"].to_numpy(dtype=object))
    # unique (system, code) pairs of the events, normalised once, then mapped to bands
    sys_codes, sys_uniques = pd.factorize(events["code_system"], use_na_sentinel=True)
    code_codes, code_uniques = pd.factorize(events["code"], use_na_sentinel=True)
    norm_sys = normalise_system(np.asarray(sys_uniques, dtype=object)).to_numpy(dtype=object)
    k = len(code_uniques) + 1  # shift by one so that missing (-1) becomes 0
    pair = (sys_codes.astype(np.int64) + 1) * k + (code_codes.astype(np.int64) + 1)
    pair_codes, pair_uniques = pd.factorize(pair)
    u_sys, u_code = pair_uniques // k - 1, pair_uniques % k - 1
    u_band = np.full(len(pair_uniques), -1, dtype=np.int64)
    ok = (u_sys >= 0) & (u_code >= 0)
    for system in pd.unique(norm_sys):  # a handful of code systems, not rows
        sel = ok & (norm_sys[np.where(ok, u_sys, 0)] == system)
        if not sel.any():
            continue
        codes = normalise_codes(np.asarray(code_uniques, dtype=object)[u_code[sel]], system)
        hit = pd.Index(keys).get_indexer(pd.Series(codes, dtype=object).radd(system + "|"))
        u_band[np.flatnonzero(sel)] = np.where(hit >= 0, band_of[np.maximum(hit, 0)], -1)
    band = u_band[pair_codes]
    n = len(ids)
    pos = PatientLookup(id_array(ids, "register")).positions(id_array(events["patient_id"]))
    dates = datetimes(events["date"])
    index_ns = int(np.datetime64(naive_timestamp(index_date), "ns").view(np.int64))
    undated = (band >= 0) & (pos >= 0) & (dates == _NAT)
    if undated.any():
        warnings.warn(f"events: {int(undated.sum())} frailty code row(s) without a 'date' "
                      "were not used for recorded frailty (cannot tell which is latest)",
                      DataQualityWarning, stacklevel=user_stacklevel())
    use = (band >= 0) & (pos >= 0) & (dates != _NAT) & (dates <= index_ns)
    p, d, b = pos[use], dates[use], band[use]
    order = np.lexsort((b, d, p))  # by patient, then date, then band: last = latest, worst
    p, d, b = p[order], d[order], b[order]
    last = np.flatnonzero(np.append(p[1:] != p[:-1], True)) if len(p) else np.zeros(0, int)
    rank = np.full(n, -1, dtype=np.int64)
    when = np.full(n, _NAT, dtype=np.int64)
    rank[p[last]] = b[last]
    when[p[last]] = d[last]
    return rank, when
