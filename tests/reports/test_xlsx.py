"""Spreadsheet output: values, sheet names and notes read back; formula safety."""

from __future__ import annotations

import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pophealth.contracts.exceptions import ConfigError
from pophealth.reports import write_xlsx

TRIGGERS = ["=1+1", "+SUM(A1:A2)", "-2+3", "@cmd", "=HYPERLINK(\"x\",\"y\")"]


def _book(tmp_path, tables, **kw):
    return openpyxl.load_workbook(write_xlsx(tables, tmp_path / "t.xlsx", **kw))


def test_values_sheet_names_and_notes_read_back(tmp_path):
    t = pd.DataFrame({"area": ["L1", "L2", "L3"], "numerator": pd.array([10, None, 0], "Int64"),
                      "value": [12.5, np.nan, 0.0], "flag": [True, False, True]})
    wb = _book(tmp_path, {"lsoa_rates": t, "pcn": t.iloc[:1]},
               notes={"method": "crude rate", "suppression": "1-7 suppressed",
                      "source": "job x", "period": "2024-04-01 to 2025-03-31"})
    assert wb.sheetnames == ["lsoa_rates", "pcn", "notes"]
    rows = [[c.value for c in r] for r in wb["lsoa_rates"].iter_rows()]
    assert rows == [["area", "numerator", "value", "flag"], ["L1", 10, 12.5, True],
                    ["L2", None, None, False], ["L3", 0, 0, True]]
    notes = {r[0].value: r[1].value for r in wb["notes"].iter_rows(min_row=2)}
    assert notes == {"method": "crude rate", "suppression": "1-7 suppressed",
                     "source": "job x", "period": "2024-04-01 to 2025-03-31",
                     "cells with control characters replaced": "0"}


def test_text_cells_starting_with_formula_characters_are_text_not_formulas(tmp_path):
    t = pd.DataFrame({"area": TRIGGERS, "n": [-1, -2, -3, -4, -5]})
    path = write_xlsx({"t": t}, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(path)["t"]
    cells = [ws.cell(row=r, column=1) for r in range(2, 7)]
    assert [c.value for c in cells] == TRIGGERS
    assert [c.data_type for c in cells] == ["s"] * 5
    assert all(c.quotePrefix for c in cells)
    assert [ws.cell(row=r, column=2).value for r in range(2, 7)] == [-1, -2, -3, -4, -5]
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet  # no formula element anywhere


def test_the_report_workbook_has_its_tables_and_notes(report, tmp_path):
    wb = openpyxl.load_workbook(report.write_xlsx(tmp_path / "r.xlsx"))
    assert wb.sheetnames == [*report.tables, "notes"]
    seg = [[c.value for c in r] for r in wb["segments"].iter_rows(max_col=2)]
    assert seg[:4] == [["segment", "patients"], ["Healthy", 2020],
                       ["Long-term conditions", 600], ["Frailty", 300]]
    assert seg[4:] == [["Cancer", None], ["Disability", None]]  # suppressed: empty, not 0
    notes = {r[0].value: r[1].value for r in wb["notes"].iter_rows(min_row=2)}
    assert {"method", "suppression", "source", "period", "code lists", "warnings"} <= set(notes)
    assert "1-7 are suppressed" in notes["suppression"]
    assert notes["period"].startswith("index date 2025-04-01")


def test_control_characters_are_replaced_and_counted_not_dropped(tmp_path):
    t = pd.DataFrame({"area": ["ok", "bad\x07bell", "also\x00bad"]})
    wb = _book(tmp_path, {"t": t})
    assert [c.value for c in wb["t"]["A"]] == ["area", "ok", "bad\ufffdbell", "also\ufffdbad"]
    notes = {r[0].value: r[1].value for r in wb["notes"].iter_rows(min_row=2)}
    assert notes["cells with control characters replaced"] == "2"


@pytest.mark.parametrize("name", ["notes", "a/b", "x" * 32, "", "t"])
def test_bad_sheet_names_are_one_line_errors_naming_the_rule(tmp_path, name):
    tables = {name: pd.DataFrame({"a": [1]})}
    if name == "t":
        tables = {"t": pd.DataFrame({"a": [1]}), "T": pd.DataFrame({"a": [1]})}
    with pytest.raises(ConfigError, match=r"rule 'sheet_name'") as exc:
        write_xlsx(tables, tmp_path / "t.xlsx")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "t.xlsx").exists()
