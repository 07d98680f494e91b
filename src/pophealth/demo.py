"""The end-to-end demonstration run behind ``pophealth demo``.

Synthesises a population, validates it, flags conditions, computes every index,
builds the patient table and area statistics, writes them to a directory and
returns a small summary. Everything is synthetic; nothing identifies anyone.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.contracts.schema import validate_activity, validate_events, validate_register
from pophealth.core.batch import score_patients
from pophealth.core.patients import patient_table

__all__ = ["run_demo", "format_summary"]


def run_demo(out_dir=None, *, n_patients: int = 50_000, random_state: int = 0,
             index_date="2025-04-01") -> dict:
    """Run the whole pipeline on a synthetic population and write the outputs.

    Returns
    -------
    dict
        Summary figures and the paths written.
    """
    from pophealth.synthetic import SYNTHETIC_LISTS, make_population

    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="pophealth-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    pop = make_population(n_patients, random_state=random_state, index_date=index_date)
    validate_register(pop.register, index_date=pop.index_date)
    validate_events(pop.events, index_date=pop.index_date)
    validate_activity(pop.activity, index_date=pop.index_date)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        scores = score_patients(pop.register, pop.events, index_date=pop.index_date,
                                codelists=SYNTHETIC_LISTS)
    notes = sorted({str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)})
    patients = patient_table(pop.register, scores, pop.activity, index_date=pop.index_date)
    patients = patients.join(pop.outcomes[["emergency_admission"]].rename(
        columns={"emergency_admission": "emergency_admission_next_12m"}))
    patients.to_parquet(out / "patients.parquet")

    age = patients["age"]
    summary = {
        "output_dir": str(out),
        "patients": int(len(patients)),
        "events": int(len(pop.events)),
        "activity_rows": int(len(pop.activity)),
        "pcns": int(patients["pcn"].nunique()),
        "practices": int(patients["practice"].nunique()),
        "lsoas": int(patients["lsoa"].nunique()),
        "multimorbidity_pct": round(100 * float(patients["multimorbidity"].mean()), 1),
        "complex_multimorbidity_pct": round(
            100 * float(patients["complex_multimorbidity"].mean()), 1),
        "charlson_mean": round(float(patients["charlson_quan2011"].mean()), 3),
        "hfrs_bands_75_plus": patients.loc[age >= 75, "hfrs_band"].value_counts(
            normalize=True).round(3).to_dict(),
        "efi_bands_65_plus": patients.loc[age >= 65, "efi_band"].value_counts(
            normalize=True).round(3).to_dict(),
        "emergency_admission_next_12m_pct": round(
            100 * float(patients["emergency_admission_next_12m"].mean()), 1),
        "data_quality_notes": notes,
        "files": ["patients.parquet"],
    }
    summary.update(_area_outputs(patients, out, index_date=pop.index_date))
    summary["files"] += summary.pop("area_files")
    with open(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, default=str)
    return summary


def _area_outputs(patients: pd.DataFrame, out: Path, *, index_date) -> dict:
    """Area tables for next-year emergency admissions, disclosure-controlled for publication."""
    from pophealth import areas

    base = patients.reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # empty age bands in small areas
        pcn = areas.aggregate_by_area(base, by="pcn", numerator="emergency_admission_next_12m",
                                      index_date=index_date)
        pcn_dsr = areas.dsr(pcn, multiplier=1000, confidence=(0.95, 0.998))
        lsoa = areas.aggregate_by_area(base, by="lsoa",
                                       numerator="emergency_admission_next_12m",
                                       index_date=index_date)
        lsoa_rates = areas.crude_rate(lsoa, multiplier=1000)
        imd = areas.aggregate_by_area(base, by="imd_decile",
                                      numerator="emergency_admission_next_12m",
                                      index_date=index_date)
        # published-style rates: a decile whose count is suppressed (1-7) has no rate,
        # and then no SII is given rather than one from unpublishable numbers
        imd_rates = areas.crude_rate(imd, multiplier=1000)
        n_deciles = int(imd.loc[imd["area"] != "unknown", "area"].nunique())
        n_suppressed = int(imd_rates["suppressed"].notna().sum())
        sii = (areas.sii(imd_rates, random_state=0, repetitions=2_000)
               if n_deciles >= 5 and not n_suppressed else None)
    files = {"pcn_emergency_admission_dsr.csv": pcn_dsr,
             "lsoa_emergency_admission_rates.csv": lsoa_rates}
    for name, table in files.items():
        table.to_csv(out / name, index=False)
    if n_deciles < 5:
        text = f"not computed: only {n_deciles} IMD decile(s) present (needs at least 5)"
    elif sii is None:
        text = f"not computed: {n_suppressed} decile count(s) suppressed (1-7)"
    else:
        row = sii[sii["statistic"] == "sii"].iloc[0]
        text = (f"{row['value']:.1f} per 1,000 (95% CI {row['lower_ci']:.1f} to "
                f"{row['upper_ci']:.1f}; negative = higher in deprived deciles)")
    return {
        "sii_emergency_admissions": text,
        "lsoa_rows_suppressed": int(lsoa_rates["suppressed"].notna().sum()),
        "area_files": sorted(files),
    }


def format_summary(summary: dict) -> str:
    """Human-readable summary for the terminal."""
    lines = [
        f"pophealth demo: {summary['patients']:,} synthetic patients "
        f"({summary['pcns']} PCN(s), {summary['practices']} practices, {summary['lsoas']} LSOAs)",
        f"  coded events: {summary['events']:,}; activity rows: {summary['activity_rows']:,}",
        f"  multimorbidity (>=2 Charlson conditions): {summary['multimorbidity_pct']}%; "
        f"complex: {summary['complex_multimorbidity_pct']}%",
        f"  mean Charlson (Quan 2011): {summary['charlson_mean']}",
        f"  HFRS bands, age 75+: {summary['hfrs_bands_75_plus']}",
        f"  eFI bands, age 65+: {summary['efi_bands_65_plus']}",
        f"  emergency admission in next 12 months: {summary['emergency_admission_next_12m_pct']}%",
    ]
    lines.append(f"  slope index of inequality across IMD deciles, emergency admissions: "
                 f"{summary['sii_emergency_admissions']}")
    lines.append(f"  LSOA rate rows with suppressed counts (1-7): {summary['lsoa_rows_suppressed']}")
    for note in summary["data_quality_notes"]:
        lines.append(f"  note: {note}")
    lines.append(f"  outputs: {summary['output_dir']} ({', '.join(summary['files'])})")
    return "\n".join(lines)
