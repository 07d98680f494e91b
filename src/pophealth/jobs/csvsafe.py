"""Formula-safe CSV cells (OWASP "CSV injection"): escape on write, restore on read.

Spreadsheets (Excel, LibreOffice Calc, Google Sheets) run a cell as a formula when its
first character is ``=``, ``+``, ``-`` or ``@``, and also treat a leading tab, carriage
return or NUL specially. MDT staff open caseload CSVs in Excel, so every *text* cell
that starts with one of those characters is written with a single quote ``'`` in front
(OWASP CSV Injection; OWASP ASVS 1.2.10). Excel reads the quote as "this is text" and
does not display it.

To make the escape reversible, a text cell that already starts with ``'`` is prefixed
too, so every escaped cell is exactly one ``'`` followed by the original text and
:func:`restore_formulas` (used by :func:`pophealth.jobs.read_caseload`) strips exactly
one leading quote. Numeric, boolean and date columns are never touched: a negative
number stays a number. Parquet outputs are not escaped (they are not opened in
spreadsheets).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FORMULA_TRIGGERS", "neutralise_formulas", "restore_formulas"]

#: First characters that make a spreadsheet treat a cell as a formula or control text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_ESCAPED_FIRST = "".join(FORMULA_TRIGGERS) + "'"


def _text_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(frame[c].dtype)
            or pd.api.types.is_string_dtype(frame[c].dtype)]


def _starts(s: pd.Series, first: str) -> np.ndarray:
    """Boolean mask of the string cells whose first character is one of ``first``.

    All-text columns (missing cells allowed) are checked in Arrow, without a Python object
    per cell; a column mixing strings with other objects (numbers) is checked cell by
    cell, and only its strings can match. (Not via ``pd.factorize``: it merges ``""``
    and ``"\\0"``.)
    """
    values = s.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        # mixed cells (numbers, bytes ...): only the strings can match
        return np.array([isinstance(v, str) and v[:1] != "" and v[0] in first
                         for v in values], dtype=bool)
    text = pa.array(values, type=pa.string(), from_pandas=True)
    lead = pc.utf8_slice_codeunits(text, 0, 1)
    return pc.fill_null(pc.is_in(lead, value_set=pa.array(list(first))), False).to_numpy(
        zero_copy_only=False)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that start with a formula trigger or a quote.

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    DataFrame
        A copy where needed (the input is not modified); numeric columns unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.jobs.csvsafe import neutralise_formulas
    >>> t = pd.DataFrame({"pcn": ["=1+1", "-PCN", "'quoted", "U123"], "n": [-5, 1, 2, 3]})
    >>> neutralise_formulas(t)
            pcn  n
    0     '=1+1 -5
    1     '-PCN  1
    2  ''quoted  2
    3      U123  3
    """
    return _edit_text_cells(frame, _ESCAPED_FIRST, lambda s: "'" + s)


def restore_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`neutralise_formulas`: strip one leading ``'`` from text cells.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.jobs.csvsafe import neutralise_formulas, restore_formulas
    >>> t = pd.DataFrame({"pcn": ["=1+1", "'quoted", "U123"]})
    >>> restore_formulas(neutralise_formulas(t))["pcn"].tolist()
    ['=1+1', "'quoted", 'U123']
    """
    return _edit_text_cells(frame, "'", lambda s: s.str.slice(1))


def _edit_text_cells(frame: pd.DataFrame, first: str, edit) -> pd.DataFrame:
    """Apply ``edit`` (Series of str -> Series of str) to the text cells starting with one
    of the characters ``first``; a copy is made only when a cell changes, and numeric
    columns are never touched."""
    out = frame
    for col in _text_columns(frame):
        s = frame[col].astype(object)
        mask = _starts(s, first)
        if not mask.any():
            continue
        if out is frame:
            out = frame.copy()
        values = s.to_numpy(copy=True)
        values[mask] = edit(s[mask].astype(str)).to_numpy()
        out[col] = values
    return out
