"""The board report: :func:`build_report` (tables, figures, one HTML page) and writers.

The report is one self-contained HTML file for a Local Care Partnership board: population
by segment, risk pyramid, cost concentration with the regression-to-the-mean caution,
PCN and LSOA rates with intervals and disclosure control, the slope index of inequality
with its interval, the funnel plot, MDT caseload counts per PCN (counts only) and a
methods and data-quality section (code lists and versions, exclusions, warnings). It
holds aggregate, disclosure-controlled figures only - no patient-level data - and
fetches nothing (images inline, CSS inline, a Content-Security-Policy that forbids any
load). Needs matplotlib (``pip install pophealth[plot]``); the spreadsheet needs
openpyxl (``pophealth[xlsx]``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from pophealth.cohorts import RTM_CAUTION
from pophealth.engines.io import atomic_file
from pophealth.reports import figures as fig
from pophealth.reports import html as h
from pophealth.reports.tables import ReportTables, report_tables
from pophealth.reports.xlsx import write_xlsx

__all__ = ["Report", "SECTIONS", "build_report", "codelist_versions"]

#: Section id -> heading, in page order. Every report has every section.
SECTIONS = {
    "overview": "Overview",
    "segments": "Population by segment",
    "risk": "Risk pyramid",
    "cost": "Cost concentration",
    "areas": "PCN and LSOA rates",
    "inequality": "Slope index of inequality",
    "funnel": "Funnel plot",
    "caseload": "MDT caseload counts per PCN",
    "methods": "Methods and data quality",
}
_RATE_COLUMNS = ["area", "numerator", "denominator", "value", "lower_ci", "upper_ci",
                 "suppressed"]
_DISCLOSURE = ("Disclosure control: counts 1-7 are suppressed, other counts rounded to the "
               "nearest 5 (zero stays zero), with a second cell suppressed wherever a "
               "published total would reveal a single suppressed one; percentages, rates "
               "and intervals are computed from the published counts.")


@dataclass(frozen=True)
class Report:
    """A built report: the HTML page, its tables and the notes for a spreadsheet.

    Attributes
    ----------
    html : str
    tables : dict of str to DataFrame
        Published (aggregate, disclosure-controlled) tables, sheet name -> table.
    notes : dict of str to str
        Method, suppression rule, source, period, exclusions and warnings.
    """

    html: str
    tables: dict
    notes: dict

    def write_html(self, path) -> Path:
        """Write the page atomically (UTF-8)."""
        path = Path(path)
        with atomic_file(path) as fh:
            fh.write(self.html.encode("utf-8"))
        return path

    def write_xlsx(self, path) -> Path:
        """Write the tables and notes as an ``.xlsx`` workbook (see :func:`write_xlsx`)."""
        return write_xlsx(self.tables, path, notes=self.notes)


def codelist_versions(names: Sequence[str]) -> pd.DataFrame:
    """Source and version of shipped code lists, from ``data/provenance.csv``.

    A name that is not a shipped list (e.g. a user's CSV) is listed as ``local file``.

    Examples
    --------
    >>> from pophealth.reports.build import codelist_versions
    >>> codelist_versions(["hfrs_gilbert2018_icd10"])[["codelist", "version"]]
                     codelist version
    0  hfrs_gilbert2018_icd10    2018
    """
    with (resources.files("pophealth") / "data" / "provenance.csv").open(
            encoding="utf-8", newline="") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    out = []
    for name in names:
        row = rows.get(f"codelists/{name}.csv")
        out.append({"codelist": Path(name).name if row is None else name,
                    "source": "local file" if row is None else row["source"],
                    "version": "" if row is None else row["version"]})
    return pd.DataFrame(out, columns=["codelist", "source", "version"])


def _missing(tables: ReportTables, key: str) -> str:
    return h.paragraph(f"Not available: {tables.missing.get(key, 'no data')}.", "missing")


def _sections(t: ReportTables, *, outcome_label: str, exclusions: Mapping,
              warnings: Sequence[str], codelists: pd.DataFrame, caption: Mapping) -> dict:
    tab = t.tables
    body: dict = {}
    body["overview"] = (h.paragraph(f"Registered population: {t.population:,} (rounded to 5).")
                        + h.paragraph(_DISCLOSURE)
                        + h.paragraph("This report holds aggregate figures only: no patient "
                                      "identifiers and no patient-level rows."))
    if "segments" in tab:
        seg = tab["segments"]
        body["segments"] = (h.table(seg) + h.figure(fig.segment_pyramid_figure(t.pyramid, **caption),
                                                    "population pyramid by segment")
                            + (h.figure(fig.segment_cost_figure(seg, **caption), "patients and cost by "
                                        "segment") if "pct_of_cost" in seg else ""))
    else:
        body["segments"] = _missing(t, "segments")
    if "risk_tiers" in tab:
        body["risk"] = (h.table(tab["risk_tiers"])
                        + h.figure(fig.risk_pyramid_figure(tab["risk_tiers"], **caption), "risk pyramid"))
    else:
        body["risk"] = _missing(t, "risk_tiers")
    if "cost_concentration" in tab:
        body["cost"] = (h.table(tab["cost_concentration"])
                        + h.figure(fig.lorenz_figure(t.concentration, **caption), "Lorenz curve of cost")
                        + h.paragraph("Caution - " + RTM_CAUTION, "caution"))
    else:
        body["cost"] = _missing(t, "cost_concentration") + h.paragraph(
            "Caution - " + RTM_CAUTION, "caution")
    pcn, lsoa = tab["pcn_rates"], tab["lsoa_rates"]
    body["areas"] = (h.paragraph(f"{outcome_label}: age-standardised rate per 1,000 by PCN "
                                 "(ESP2013, 95% and 99.8% limits) and crude rate per 1,000 "
                                 "by LSOA (95% limits).")
                     + h.table(pcn, columns=[*_RATE_COLUMNS[:-1], "lower_ci_99_8",
                                             "upper_ci_99_8", "suppressed"], caption="PCN")
                     + h.figure(fig.pcn_ranking_figure(pcn, **caption), "PCN rates ranked")
                     + h.table(lsoa, columns=_RATE_COLUMNS, caption="LSOA"))
    if "sii" in tab:
        body["inequality"] = (h.table(tab["sii"]) + h.figure(
            fig.imd_figure(tab["imd_rates"], tab["sii"], **caption), "rates by IMD decile")
            + h.paragraph("SII: the modelled absolute gap between the most and least deprived "
                          "ends of the IMD scale (negative = higher in deprived deciles); "
                          "95% interval by simulation."))
    else:
        body["inequality"] = _missing(t, "sii") + (h.table(
            tab["imd_rates"], columns=_RATE_COLUMNS) if "imd_rates" in tab else "")
    body["funnel"] = h.figure(fig.funnel_figure(lsoa, multiplier=1000, **caption),
                              "funnel plot of LSOA rates",
                              "LSOA crude rates against population with 95% and 99.8% "
                              "control limits; suppressed LSOAs are left out and counted.")
    body["caseload"] = (h.table(tab["caseload_by_pcn"]) if "caseload_by_pcn" in tab
                        else _missing(t, "caseload_by_pcn"))
    excl = [f"{k}: {v:,}" for k, v in exclusions.items()]
    body["methods"] = (
        "<h3>Code lists</h3>" + h.table(codelists)
        + "<h3>Exclusions</h3>" + (h.bullets(excl) if excl else h.paragraph("none recorded"))
        + f"<h3>Warnings ({len(warnings)})</h3>"
        + (h.bullets(warnings) if warnings else h.paragraph("none"))
        + "<h3>Disclosure control</h3>" + h.paragraph(_DISCLOSURE))
    return body


def build_report(patients: pd.DataFrame, *, index_date, title: str = "Population health "
                 "report", outcome: str = "prior_emergency_admissions",
                 outcome_label: str = "Emergency admissions in the 12 months before the "
                 "index date", cost: str | None = "prior_cost",
                 caseload_by_pcn: Mapping[str, int] | None = None,
                 codelists: Sequence[str] = (), exclusions: Mapping[str, int] | None = None,
                 warnings: Sequence[str] = (), source: str = "", random_state: int = 0
                 ) -> Report:
    """Build the board report from a patient table (the page holds aggregates only).

    Parameters
    ----------
    patients : DataFrame
        One row per patient (e.g. the job's patient table); see
        :func:`pophealth.reports.tables.report_tables` for the columns used.
    index_date : date-like
    title : str
    outcome, outcome_label : str
        Column counted for the area rates, and how the report names it.
    cost : str or None
        Cost column (cost concentration, segment cost shares).
    caseload_by_pcn : mapping, optional
        PCN -> caseload size (e.g. a job manifest's ``counts.by_pcn``).
    codelists : sequence of str
        Code lists used (shipped names or file paths); versions from ``provenance.csv``.
    exclusions : mapping, optional
        Reason -> number of records excluded.
    warnings : sequence of str
        Data-quality notes (counts and names only); the report adds its own.
    source : str
        Where the data came from (e.g. the job name and run id), for the notes.
    random_state : int
        Seed of the SII interval.

    Returns
    -------
    Report

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pophealth.reports import build_report
    >>> rng = np.random.default_rng(0)
    >>> p = pd.DataFrame({"age": rng.integers(0, 90, 400), "sex": rng.choice(["F", "M"], 400),
    ...                   "lsoa": rng.choice(["L1", "L2", "L3"], 400), "pcn": "P1",
    ...                   "practice": "GP1", "prior_emergency_admissions": rng.poisson(.2, 400),
    ...                   "prior_cost": rng.gamma(1.0, 500.0, 400)})
    >>> r = build_report(p, index_date="2025-04-01")
    >>> r.html.count("<section id="), sorted(r.tables)[:2]
    (9, ['cost_concentration', 'lsoa_rates'])
    """
    t = report_tables(patients, index_date=index_date, outcome=outcome, cost=cost,
                      caseload_by_pcn=caseload_by_pcn, random_state=random_state)
    all_warnings = [*warnings, *t.warnings]
    exclusions = dict(exclusions or {})
    lists = codelist_versions(list(codelists))
    period = str(pd.Timestamp(index_date).date())
    caption = {"period": f"index date {period}",
               "source": source or "pophealth patient table"}
    body = _sections(t, outcome_label=outcome_label, exclusions=exclusions, caption=caption,
                     warnings=all_warnings, codelists=lists)
    period = str(pd.Timestamp(index_date).date())
    html = h.page(title, f"Index date {period}. Aggregate, disclosure-controlled figures.",
                  [(sid, heading, body[sid]) for sid, heading in SECTIONS.items()])
    notes = {
        "title": title,
        "period": f"index date {period}; activity in the 12 months before it",
        "source": source or "pophealth patient table",
        "method": (f"{outcome_label}: PCN rates directly age-standardised to ESP2013 "
                   "(Dobson limits), LSOA and IMD-decile crude rates (Byar/exact Poisson "
                   "limits), SII by simulation; risk tiers by rank; segments by the "
                   "Bridges to Health rules."),
        "suppression": _DISCLOSURE,
        "code lists": "; ".join(f"{r.codelist} ({r.version or r.source})"
                                for r in lists.itertuples()) or "none given",
        "exclusions": "; ".join(f"{k}: {v}" for k, v in exclusions.items()) or "none recorded",
        "warnings": f"{len(all_warnings)}: " + " | ".join(all_warnings) if all_warnings
        else "0",
        "not available": "; ".join(f"{k}: {v}" for k, v in t.missing.items()) or "none",
        "caution": RTM_CAUTION,
    }
    return Report(html=html, tables=dict(t.tables), notes=notes)
