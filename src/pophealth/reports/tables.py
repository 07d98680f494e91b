"""The report's tables: aggregate, disclosure-controlled counts from a patient table.

:func:`report_tables` turns a patient table into the tables a board report publishes -
population by segment, risk tiers, cost concentration, PCN and LSOA rates, rates by IMD
decile with the slope index of inequality, MDT caseload counts per PCN - and the
aggregate inputs of its figures. Every count goes through the house rule
(:func:`pophealth.areas.suppress`: 1-7 suppressed, others rounded to the nearest 5, zero
stays zero, complementary suppression against the published total); percentages are
computed from the published counts. No table or figure input has one row per patient.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pophealth.areas import aggregate_by_area, crude_rate, dsr, sii, suppress
from pophealth.areas.disclosure import control_counts
from pophealth.cohorts import CostConcentration, cost_concentration
from pophealth.contracts.exceptions import DataQualityWarning, SchemaError
from pophealth.contracts.numeric import numeric_values

__all__ = ["ReportTables", "report_tables", "MALE", "FEMALE", "BAND_WIDTH", "TOP_BAND"]

MALE = ("M", "Male", "male", 1, "1")
FEMALE = ("F", "Female", "female", 2, "2")
BAND_WIDTH, TOP_BAND = 5, 90
_RATE_MULTIPLIER = 1000


@dataclass(frozen=True)
class ReportTables:
    """Aggregate inputs of a report (see :func:`report_tables`).

    Attributes
    ----------
    tables : dict of str to DataFrame
        The published tables (sheet name -> table); only those the data allow.
    missing : dict of str to str
        Table name -> why it could not be made (e.g. a column the patient table lacks).
    population : int
        Patients in the table, rounded to the nearest 5.
    pyramid : DataFrame or None
        Published counts by ``sex`` (M/F), age ``band`` (lower age) and ``segment``.
    concentration : CostConcentration or None
        101-point Lorenz curve; ``n`` is the rounded population.
    warnings : list of str
        Data-quality warnings raised while aggregating (counts and names only).
    """

    tables: dict
    missing: dict
    population: int
    pyramid: pd.DataFrame | None = None
    concentration: CostConcentration | None = None
    warnings: list = field(default_factory=list)


def _controlled(labels, counts, key: str, population: int) -> pd.DataFrame:
    """Counts per label, disclosure-controlled against the published total."""
    t = pd.DataFrame({key: [str(x) for x in labels],
                      "patients": np.asarray(counts, dtype=np.int64)})
    t = suppress(t, "patients", margins=[[]])
    pub = t["patients"].astype("Float64")
    t["pct_of_patients"] = (100 * pub / population).round(1) if population else pub * np.nan
    return t


def _segment_tables(patients, population, cost):
    seg = patients["segment"]
    cats = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) \
        else sorted(pd.unique(seg.dropna()).tolist())
    codes = pd.Categorical(seg.to_numpy(), categories=cats).codes
    counts = np.bincount(codes[codes >= 0], minlength=len(cats))
    t = _controlled(cats, counts, "segment", population)
    if cost is not None:
        c = numeric_values(patients[cost], table="patients", column=cost)
        ok = (codes >= 0) & ~np.isnan(c)
        sums = np.bincount(codes[ok], weights=c[ok], minlength=len(cats))
        share = pd.array(np.round(100 * sums / sums.sum(), 1) if sums.sum() > 0
                         else np.full(len(cats), np.nan), dtype="Float64")
        t["pct_of_cost"] = share
        t.loc[t["patients"].isna(), "pct_of_cost"] = pd.NA
    n_missing = int((codes < 0).sum())
    t.attrs["not_segmented"] = n_missing
    return t


def _pyramid(patients) -> pd.DataFrame:
    seg = patients["segment"]
    cats = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) \
        else sorted(pd.unique(seg.dropna()).tolist())
    scode = pd.Categorical(seg.to_numpy(), categories=cats).codes
    sx = pd.Series(patients["sex"].astype(object).to_numpy())
    is_m, is_f = sx.isin(list(MALE)).to_numpy(), sx.isin(list(FEMALE)).to_numpy()
    age = numeric_values(patients["age"], table="patients", column="age")
    keep = (is_m | is_f) & ~np.isnan(age) & (scode >= 0)
    n_bands = TOP_BAND // BAND_WIDTH + 1
    band = np.minimum(np.nan_to_num(age) // BAND_WIDTH, n_bands - 1).astype(np.int64)
    grid = np.zeros((2, n_bands, len(cats)), dtype=np.int64)
    np.add.at(grid, (is_f[keep].astype(np.int64), band[keep], scode[keep]), 1)
    published, suppressed = control_counts(grid.ravel())
    s_idx, b_idx, c_idx = np.unravel_index(np.arange(grid.size), grid.shape)
    out = pd.DataFrame({"sex": np.array(["M", "F"])[s_idx], "band": b_idx * BAND_WIDTH,
                        "segment": np.array([str(c) for c in cats], dtype=object)[c_idx],
                        "patients": pd.array(published, dtype="Float64").astype("Int64"),
                        "suppressed": np.where(suppressed, "patients 1-7", None)})
    out.attrs.update(categories=[str(c) for c in cats], not_shown=int((~keep).sum()))
    return out


def _tier_table(patients, population, risk):
    tiers = patients["tier"]
    if not isinstance(tiers.dtype, pd.CategoricalDtype):
        raise SchemaError("patients: column 'tier' must be categorical (rule 'categorical'; "
                          "see risk_tiers)")
    cats = list(tiers.cat.categories)
    codes = tiers.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(cats))
    t = _controlled(cats, counts, "tier", population)
    if risk is not None:
        r = numeric_values(patients[risk], table="patients", column=risk)
        ok = (codes >= 0) & ~np.isnan(r)
        sums = np.bincount(codes[ok], weights=r[ok], minlength=len(cats))
        n = np.bincount(codes[ok], minlength=len(cats))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.round(100 * sums / n, 1)
        t["mean_risk_pct"] = pd.array(mean, dtype="Float64")
        t.loc[t["patients"].isna(), "mean_risk_pct"] = pd.NA
    t.attrs["no_tier"] = int((codes < 0).sum())
    return t


def _concentration(patients, cost, population):
    c = pd.Series(numeric_values(patients[cost], table="patients", column=cost))
    n_missing = int(c.isna().sum())
    cc = cost_concentration(c.dropna().to_numpy(dtype=float), top=(0.01, 0.05, 0.2),
                            points=101)
    cc = dataclasses.replace(cc, n=population, total=float("nan"))
    rows = [("gini", round(cc.gini, 3))]
    rows += [(f"top {100 * p:g}% share of cost (%)", round(100 * v, 1))
             for p, v in cc.top_shares.items()]
    t = pd.DataFrame(rows, columns=["statistic", "value"])
    t.attrs["cost_missing"] = n_missing
    return cc, t


def _area_tables(patients, outcome, index_date, random_state) -> dict:
    base = patients.reset_index()
    pcn = aggregate_by_area(base, by="pcn", numerator=outcome, index_date=index_date)
    lsoa = aggregate_by_area(base, by="lsoa", numerator=outcome, index_date=index_date)
    out = {"pcn_rates": dsr(pcn, multiplier=_RATE_MULTIPLIER, confidence=(0.95, 0.998)),
           "lsoa_rates": crude_rate(lsoa, multiplier=_RATE_MULTIPLIER)}
    if "imd_decile" in base.columns:
        imd = aggregate_by_area(base, by="imd_decile", numerator=outcome,
                                index_date=index_date)
        rates = crude_rate(imd, multiplier=_RATE_MULTIPLIER)
        out["imd_rates"] = rates
        n_deciles = int(rates.loc[rates["area"] != "unknown", "area"].nunique())
        n_sup = int(rates["suppressed"].notna().sum())
        if n_deciles < 5:
            out["sii"] = f"not computed: only {n_deciles} IMD decile(s) present (needs 5)"
        elif n_sup:
            out["sii"] = f"not computed: {n_sup} decile count(s) suppressed (1-7)"
        else:
            known = rates[rates["area"] != "unknown"]
            out["sii"] = sii(known, random_state=random_state, repetitions=2_000)
    return out


def report_tables(patients: pd.DataFrame, *, index_date, outcome: str =
                  "prior_emergency_admissions", cost: str | None = "prior_cost",
                  caseload_by_pcn: Mapping[str, int] | None = None,
                  random_state: int = 0) -> ReportTables:
    """Aggregate, disclosure-controlled tables of a patient table for the report.

    Parameters
    ----------
    patients : DataFrame
        One row per patient (e.g. the job's patient table): ``age``, ``sex``, ``lsoa``,
        ``pcn``, ``practice``; ``imd_decile``, ``segment``, ``tier``, ``risk`` and the
        ``cost`` column where available (a section whose column is missing says so).
    index_date : date-like
    outcome : str
        Column counted for the area rates (events per patient, or a boolean).
    cost : str or None
        Cost column for cost concentration and segment cost shares.
    caseload_by_pcn : mapping, optional
        PCN -> number of patients on its MDT caseload (counts only).
    random_state : int
        Seed of the SII's simulated confidence limits.

    Returns
    -------
    ReportTables

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.reports.tables import report_tables
    >>> seg = pd.Categorical(["Healthy"] * 40 + ["Frail"] * 3, categories=["Healthy", "Frail"])
    >>> p = pd.DataFrame({"segment": seg, "age": 50, "sex": "F", "lsoa": "L1", "pcn": "P1",
    ...                   "practice": "GP1", "prior_emergency_admissions": 0,
    ...                   "prior_cost": 10.0})
    >>> t = report_tables(p, index_date="2025-04-01", caseload_by_pcn={"P1": 3})
    >>> t.tables["segments"][["segment", "patients", "suppressed"]]
       segment  patients                        suppressed
    0  Healthy      <NA>  patients secondary suppression
    1    Frail      <NA>                    patients 1-7
    >>> t.population, t.tables["caseload_by_pcn"]["patients"].tolist()
    (45, [<NA>])
    """
    needed = [c for c in ("age", "sex", "lsoa", "pcn", outcome) if c not in patients.columns]
    if needed:
        raise SchemaError(f"patients: missing column(s) {needed} (rule 'missing_column')")
    population = int(control_counts([len(patients)])[0][0]) if len(patients) > 7 else 0
    tables: dict = {}
    missing: dict = {}
    pyramid = concentration = None
    if cost is not None and cost not in patients.columns:
        missing["cost_concentration"] = f"the patient table has no '{cost}' column"
        cost = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        if "segment" in patients.columns:
            tables["segments"] = _segment_tables(patients, population, cost)
            pyramid = _pyramid(patients)
            tables["segment_pyramid"] = pyramid
        else:
            missing["segments"] = "the patient table has no 'segment' column"
        if "tier" in patients.columns:
            risk = "risk" if "risk" in patients.columns else None
            tables["risk_tiers"] = _tier_table(patients, population, risk)
        else:
            missing["risk_tiers"] = "the patient table has no 'tier' column"
        if cost is not None:
            concentration, tables["cost_concentration"] = _concentration(
                patients, cost, population)
        areas = _area_tables(patients, outcome, index_date, random_state)
        sii_table = areas.pop("sii", "not computed: the patient table has no 'imd_decile'")
        tables.update(areas)
        if isinstance(sii_table, str):
            missing["sii"] = sii_table
        else:
            tables["sii"] = sii_table
        if caseload_by_pcn is not None:
            keys = sorted(caseload_by_pcn)
            t = _controlled([k or "unknown PCN" for k in keys],
                            [int(caseload_by_pcn[k]) for k in keys], "pcn", population)
            tables["caseload_by_pcn"] = t.drop(columns="pct_of_patients")
        else:
            missing["caseload_by_pcn"] = "no caseload counts were given"
    notes = sorted({str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)})
    return ReportTables(tables=tables, missing=missing, population=population,
                        pyramid=pyramid, concentration=concentration, warnings=notes)
