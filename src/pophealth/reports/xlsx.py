"""Spreadsheet output: aggregate tables to one ``.xlsx`` workbook with a ``notes`` sheet.

:func:`write_xlsx` writes one sheet per table and a ``notes`` sheet (method, suppression
rules, source, period, ...). Every text cell is stored as text with Excel's quote prefix,
so a cell starting with ``=``, ``+``, ``-`` or ``@`` is never a formula (not when the file
is opened, nor when the cell is edited). Characters that a workbook cannot hold (ASCII
control characters) are replaced by U+FFFD and counted on the notes sheet; nothing is
dropped silently. Needs openpyxl (``pip install pophealth[xlsx]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError
from pophealth.engines.io import atomic_file

__all__ = ["write_xlsx", "NOTES_SHEET"]

#: Name of the sheet that holds the notes.
NOTES_SHEET = "notes"
_BAD_SHEET = re.compile(r"[\[\]:*?/\\]")
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _check_sheets(names) -> None:
    seen = set()
    for i, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"write_xlsx: table #{i} needs a non-empty text name "
                              "(rule 'sheet_name')")
        if len(name) > 31 or _BAD_SHEET.search(name):
            raise ConfigError(f"write_xlsx: table #{i}: a sheet name has at most 31 characters "
                              "and none of []:*?/\\ (rule 'sheet_name')")
        key = name.lower()
        if key == NOTES_SHEET or key in seen:
            raise ConfigError(f"write_xlsx: table #{i}: sheet names must be unique and not "
                              f"'{NOTES_SHEET}' (rule 'sheet_name')")
        seen.add(key)


def _cell_values(frame: pd.DataFrame) -> list[list]:
    """Column-wise conversion to Python cell values (None for missing)."""
    columns = []
    for col in frame.columns:
        s = frame[col]
        missing = s.isna().to_numpy()
        if pd.api.types.is_bool_dtype(s.dtype):
            values = s.astype(object).to_numpy()
        elif pd.api.types.is_integer_dtype(s.dtype):
            values = s.astype("Int64").astype(object).to_numpy()
        elif pd.api.types.is_float_dtype(s.dtype):
            values = s.astype("float64").to_numpy(na_value=np.nan).astype(object)
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            values = s.dt.strftime("%Y-%m-%d").astype(object).to_numpy()
        else:
            values = s.astype(object).to_numpy()
        values = np.where(missing, None, values)
        columns.append([v.item() if isinstance(v, np.generic) else v for v in values])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _write_sheet(ws, header: list, rows: list[list]) -> int:
    """Write a header and rows; every text cell as quoted text. Returns cells cleaned."""
    cleaned = 0
    for r, row in enumerate([header, *rows], start=1):
        for c, value in enumerate(row, start=1):
            if value is None:
                continue
            if not isinstance(value, (str, int, float, bool)):
                value = str(value)
            if isinstance(value, float) and not np.isfinite(value):
                value = None if np.isnan(value) else str(value)
                if value is None:
                    continue
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                text, n = _ILLEGAL.subn("\ufffd", value)
                cleaned += n > 0
                cell.value = text
                cell.data_type = "s"  # never a formula, whatever the first character
                cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
            else:
                cell.value = value
    return cleaned


def write_xlsx(tables: Mapping[str, pd.DataFrame], path, *,
               notes: Mapping[str, str] | None = None) -> Path:
    """Write tables to an ``.xlsx`` workbook, one sheet each, plus a ``notes`` sheet.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Sheet name -> table (names: unique, at most 31 characters, none of ``[]:*?/\\``,
        not ``notes``). The index is not written: reset it first to keep it.
    path : str or Path
        The workbook, written atomically (a reader never sees a half-written file).
    notes : mapping of str to str, optional
        Item -> text for the ``notes`` sheet, e.g. method, suppression rules, source,
        period. A count of cells whose control characters were replaced is added.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        A bad sheet name (rule ``sheet_name``), or openpyxl is not installed.

    Examples
    --------
    >>> import tempfile, pandas as pd, openpyxl
    >>> from pathlib import Path
    >>> from pophealth.reports import write_xlsx
    >>> t = pd.DataFrame({"area": ["A", "=B"], "numerator": [10, None]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_xlsx({"rates": t}, Path(tmp) / "t.xlsx", notes={"period": "2024/25"})
    ...     wb = openpyxl.load_workbook(path)
    ...     wb.sheetnames, [c.value for c in wb["rates"]["A"]], wb["rates"]["A3"].data_type
    (['rates', 'notes'], ['area', 'A', '=B'], 's')
    """
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - the extra is installed in dev and CI
        raise ConfigError("write_xlsx needs openpyxl (pip install pophealth[xlsx])") from None
    _check_sheets(list(tables))
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    cleaned = 0
    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise ConfigError(f"write_xlsx: sheet '{name}' is not a DataFrame (rule 'table')")
        ws = wb.create_sheet(name)
        cleaned += _write_sheet(ws, [str(c) for c in frame.columns], _cell_values(frame))
        ws.freeze_panes = "A2"
    items = [[str(k), str(v)] for k, v in (notes or {}).items()]
    items.append(["cells with control characters replaced", str(cleaned)])
    ws = wb.create_sheet(NOTES_SHEET)
    _write_sheet(ws, ["item", "note"], items)
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 100
    path = Path(path)
    with atomic_file(path) as fh:
        wb.save(fh)
    return path
