"""Segment strata and per-segment summary tables (see :mod:`pophealth.segments.bridges`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.numeric import numeric_values, validate_numeric
from pophealth.contracts.ordinal import column_order, ordinal_codes
from pophealth.core.ages import age_at
from pophealth.core.patients import BAND_ORDERS

__all__ = ["strata", "segment_summary", "AGE_STRATA", "MULTIMORBIDITY_STRATA"]

AGE_STRATA = ("0-17", "18-44", "45-64", "65-74", "75-84", "85+")
MULTIMORBIDITY_STRATA = ("0", "1", "2-3", "4+")


def _ages(table: pd.DataFrame, index_date) -> np.ndarray:
    if "age" in table.columns:
        return numeric_values(table["age"], table="patients", column="age")
    if "date_of_birth" in table.columns:
        return age_at(table["date_of_birth"], index_date).to_numpy(dtype=float)
    raise SchemaError("patients: age gates need column 'age' or 'date_of_birth'")


# --- strata -----------------------------------------------------------------------------------


def _ordered(codes: np.ndarray, labels: Sequence) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)


def strata(patients: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Age-band, IMD-quintile, multimorbidity and frailty strata as ordered categoricals.

    Each stratum is made when its input column is present: ``age`` (or
    ``date_of_birth`` with ``index_date``) -> ``age_stratum`` (0-17, 18-44, 45-64,
    65-74, 75-84, 85+); ``imd_decile`` (1 = most deprived) -> ``imd_quintile`` 1-5
    (deciles 1-2 -> 1); ``n_conditions`` -> ``multimorbidity_stratum`` (0, 1, 2-3, 4+);
    ``efi_band`` (else ``hfrs_band``) -> ``frailty_stratum`` with ``under 65`` first
    (both scores are meant for people aged 65+), then every band in band order whatever
    the column's dtype (a label outside the band is a SchemaError ``known_label``).
    Missing inputs give missing strata; number columns are checked first (rule
    ``numeric``).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments import strata
    >>> p = pd.DataFrame({"age": [5, 70, 90], "imd_decile": [1, 4, 10],
    ...                   "n_conditions": [0, 2, 5]})
    >>> strata(p)
      age_stratum  imd_quintile multimorbidity_stratum
    0        0-17             1                      0
    1       65-74             2                    2-3
    2         85+             5                     4+
    """
    validate_numeric(patients, [], table="patients", optional=("age", "imd_decile",
                                                               "n_conditions"))
    out = pd.DataFrame(index=patients.index)
    if "age" in patients.columns or ("date_of_birth" in patients.columns
                                     and index_date is not None):
        age = _ages(patients, index_date)
        codes = np.searchsorted(np.array([18, 45, 65, 75, 85]), age, side="right")
        out["age_stratum"] = _ordered(np.where(np.isnan(age), -1, codes), AGE_STRATA)
    if "imd_decile" in patients.columns:
        dec = pd.to_numeric(patients["imd_decile"], errors="coerce").to_numpy(dtype=float,
                                                                              na_value=np.nan)
        ok = np.isin(dec, np.arange(1, 11))
        q = np.where(ok, (np.nan_to_num(dec) + 1) // 2 - 1, -1).astype(np.int64)
        out["imd_quintile"] = _ordered(q, [1, 2, 3, 4, 5])
    if "n_conditions" in patients.columns:
        k = pd.to_numeric(patients["n_conditions"], errors="coerce").to_numpy(dtype=float,
                                                                              na_value=np.nan)
        codes = np.searchsorted(np.array([1, 2, 4]), k, side="right")
        out["multimorbidity_stratum"] = _ordered(np.where(np.isnan(k) | (k < 0), -1, codes),
                                                 MULTIMORBIDITY_STRATA)
    band_col = "efi_band" if "efi_band" in patients.columns else (
        "hfrs_band" if "hfrs_band" in patients.columns else None)
    if band_col is not None:
        band = patients[band_col]
        order = column_order(band, band_col, BAND_ORDERS, context="strata")
        labels = ["under 65"] + [str(c) for c in order]
        codes = ordinal_codes(band, order, column=band_col) + 1  # band order, never alphabetical
        codes[codes == 0] = -1
        if "age" in patients.columns or ("date_of_birth" in patients.columns
                                         and index_date is not None):
            age = _ages(patients, index_date)
            codes[age < 65] = 0
        out["frailty_stratum"] = _ordered(codes, labels)
    return out


# --- summaries --------------------------------------------------------------------------------


def segment_summary(patients: pd.DataFrame, by="segment", *, cost: str | None = "prior_cost",
                    emergency: str | None = "prior_emergency_admissions",
                    risk: str | None = None) -> pd.DataFrame:
    """Per-segment count, share, cost share, emergency admissions per 1,000 and mean risk.

    Parameters
    ----------
    patients : DataFrame
        One row per patient with the segment column (e.g. a patient table joined with
        :func:`bridges_to_health` output).
    by : str or list of str
        The segment column, or area columns followed by it (``["pcn", "segment"]``):
        shares are then within each area. Every segment category is listed (count 0
        where empty) in category order.
    cost, emergency, risk : str or None
        Columns for total cost, emergency-admission counts and a risk score (mean).

    Returns
    -------
    DataFrame
        One row per (area..., segment): ``n``, ``share``, and when the columns are
        given ``cost``, ``cost_share``, ``mean_cost``, ``emergency_admissions``,
        ``emergency_admissions_per_1000``, ``mean_risk``. Small counts are not
        suppressed: apply :func:`pophealth.suppress` before publishing.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments import segment_summary
    >>> seg = pd.Categorical(["Healthy", "Frail", "Healthy", "Healthy"],
    ...                      categories=["Healthy", "LTC", "Frail"], ordered=True)
    >>> p = pd.DataFrame({"segment": seg, "prior_cost": [100.0, 700.0, 0.0, 200.0],
    ...                   "prior_emergency_admissions": [0, 2, 0, 1]})
    >>> segment_summary(p)[["n", "share", "cost_share", "emergency_admissions_per_1000"]]
             n  share  cost_share  emergency_admissions_per_1000
    segment
    Healthy  3   0.75         0.3                          333.333333
    LTC      0   0.00         0.0                                 NaN
    Frail    1   0.25         0.7                         2000.000000
    """
    keys = [by] if isinstance(by, str) else list(by)
    needed = keys + [c for c in (cost, emergency, risk) if c is not None]
    missing = [c for c in needed if c not in patients.columns]
    if missing:
        raise SchemaError(f"patients: missing column(s) {missing}")
    validate_numeric(patients, [c for c in (cost, emergency, risk) if c is not None],
                     table="patients")
    seg_col, areas = keys[-1], keys[:-1]
    seg = patients[seg_col]
    cats = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) \
        else sorted(pd.unique(seg.dropna()))
    df = pd.DataFrame({k: patients[k].to_numpy() for k in areas})
    df[seg_col] = pd.Categorical(seg.to_numpy(), categories=cats,
                                 ordered=isinstance(seg.dtype, pd.CategoricalDtype)
                                 and seg.dtype.ordered)
    df["n"] = 1
    sums = {"n": "sum"}
    for name, col in (("cost", cost), ("emergency_admissions", emergency), ("risk_sum", risk)):
        if col is not None:
            df[name] = pd.to_numeric(patients[col], errors="coerce").to_numpy(dtype=float)
            sums[name] = "sum"
    if risk is not None:
        df["risk_n"] = df["risk_sum"].notna().astype(np.int64)
        sums["risk_n"] = "sum"
    g = df.groupby(keys, observed=True, sort=False).agg(sums)
    if areas:
        area_keys = df[areas].drop_duplicates().sort_values(areas)
        full = pd.MultiIndex.from_tuples(
            [(*a, s) for a in area_keys.itertuples(index=False, name=None) for s in cats],
            names=keys)
    else:
        full = pd.CategoricalIndex(cats, categories=cats, ordered=df[seg_col].cat.ordered,
                                   name=seg_col)
    g = g.reindex(full, fill_value=0)
    g["n"] = g["n"].astype(np.int64)

    def within(col):
        tot = g.groupby(level=areas, sort=False)[col].transform("sum") if areas else g[col].sum()
        return g[col] / tot

    out = pd.DataFrame({"n": g["n"], "share": within("n")}, index=g.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        nz = g["n"].where(g["n"] > 0)
        if cost is not None:
            out["cost"] = g["cost"]
            out["cost_share"] = within("cost")
            out["mean_cost"] = g["cost"] / nz
        if emergency is not None:
            out["emergency_admissions"] = g["emergency_admissions"]
            out["emergency_admissions_per_1000"] = 1000 * g["emergency_admissions"] / nz
        if risk is not None:
            out["mean_risk"] = g["risk_sum"] / g["risk_n"].where(g["risk_n"] > 0)
    return out
