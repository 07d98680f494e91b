"""Reports: a board-ready HTML report and spreadsheet output, from aggregate tables only.

* :func:`build_report` -- one self-contained HTML page for a Local Care Partnership
  board (:mod:`~pophealth.reports.build`), from the disclosure-controlled tables of
  :mod:`~pophealth.reports.tables` and the figures of :mod:`pophealth.plots`
  (:mod:`~pophealth.reports.figures`, inline PNG).
* :func:`write_xlsx` -- tables to ``.xlsx`` with a notes sheet, formula-safe
  (:mod:`~pophealth.reports.xlsx`).

This part sits above ``plots`` and ``engines`` and below ``jobs``; matplotlib and
openpyxl are imported only when a report or workbook is made.
"""

from pophealth.reports.build import SECTIONS, Report, build_report, codelist_versions
from pophealth.reports.tables import ReportTables, report_tables
from pophealth.reports.xlsx import write_xlsx

__all__ = ["SECTIONS", "Report", "ReportTables", "build_report", "codelist_versions",
           "report_tables", "write_xlsx"]
