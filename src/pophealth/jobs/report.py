"""The job's board report (``[report]`` in the config, and ``pophealth report``).

:func:`write_job_report` writes ``<output.dir>/reports/<run_id>-report.html`` (and
``.xlsx`` with ``xlsx = true``) from the job's patient table: aggregate,
disclosure-controlled figures and MDT caseload *counts* per PCN - never a pseudo id or
any other patient-level value (:mod:`pophealth.reports`). It is written after the run is
published, beside the run (a completed run directory is never rewritten).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pophealth.jobs.config import JobConfig

__all__ = ["caseload_counts", "job_codelists", "write_job_report", "build_job_report"]


def job_codelists(config: JobConfig) -> list[str]:
    """The code lists a job scores with: the defaults overridden by ``[codelists]``, plus
    the segment conditions' list."""
    from pophealth.core.batch import DEFAULT_CODELISTS

    lists = dict(DEFAULT_CODELISTS)
    lists.update(config.codelists)
    names = [v for _, v in sorted(lists.items()) if v and v.lower() != "none"]
    return names + (["b2h_icd10"] if config.segments else [])


def caseload_counts(config: JobConfig, patients: pd.DataFrame) -> dict:
    """Caseload size per PCN code (``""`` for no PCN) as the job's rules select it."""
    from pophealth.cohorts.caseload import select_caseload
    from pophealth.jobs.filenames import normalise_codes

    keyed = patients.assign(_pcn_key=normalise_codes(patients["pcn"].to_numpy()))
    selected = select_caseload(keyed, config.rules, rank_by=config.rank_by,
                               group_by="_pcn_key")
    return {str(k): int(v) for k, v in selected["_pcn_key"].value_counts().sort_index().items()}


def build_job_report(config: JobConfig, patients: pd.DataFrame, counts: dict, notes: list, *,
                     by_pcn: dict | None = None, source: str = ""):
    """The :class:`~pophealth.reports.Report` of a job's patient table."""
    from pophealth.reports import build_report

    exclusions = {f"register: {k.replace('_', ' ')}": int(v)
                  for k, v in counts.get("excluded", {}).items()}
    if "activity_rows_unknown_patient" in counts:
        exclusions["activity rows for patients not on the register"] = int(
            counts["activity_rows_unknown_patient"])
    for index, r in counts.get("events", {}).items():
        for key in ("n_unrecognised", "n_unknown_patient", "n_after_index_date"):
            if r.get(key):
                exclusions[f"events ({index}): {key[2:].replace('_', ' ')}"] = int(r[key])
    public = patients.drop(columns=[c for c in patients.columns if c.startswith("_")])
    return build_report(
        public, index_date=config.index_date, title=config.report["title"]
        if config.report else "Population health report",
        caseload_by_pcn=by_pcn if by_pcn is not None else caseload_counts(config, patients),
        codelists=job_codelists(config), exclusions=exclusions, warnings=notes,
        source=source or f"job '{config.name}'")


def write_job_report(config: JobConfig, patients: pd.DataFrame, counts: dict, notes: list,
                     *, run_id: str, by_pcn: dict) -> Path:
    """Write the run's report (and workbook) under ``output.dir/reports/``; returns the
    HTML path."""
    report = build_job_report(config, patients, counts, notes, by_pcn=by_pcn,
                              source=f"job '{config.name}', run {run_id}")
    path = report.write_html(report_path(config.output_dir, run_id))
    if config.report and config.report["xlsx"]:
        report.write_xlsx(path.with_suffix(".xlsx"))
    return path


def report_path(output_dir, run_id: str) -> Path:
    """Where a run's report is written."""
    return Path(output_dir) / "reports" / f"{run_id}-report.html"


def report_from_config(config: JobConfig, out, *, xlsx: bool = False) -> list[Path]:
    """Build a job's patient table from its inputs and write the report (``pophealth
    report``); no key is needed, as nothing patient-level is written.

    Returns the paths written (the HTML, then the workbook when ``xlsx``).
    """
    from pophealth.jobs.inputs import _build_patients

    patients, counts, notes = _build_patients(config)
    report = build_job_report(config, patients, counts, notes)
    paths = [report.write_html(out)]
    if xlsx:
        paths.append(report.write_xlsx(Path(out).with_suffix(".xlsx")))
    return paths
