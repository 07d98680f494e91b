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

import pandas as pd

__all__ = ["FORMULA_TRIGGERS", "neutralise_formulas", "restore_formulas"]

#: First characters that make a spreadsheet treat a cell as a formula or control text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
_ESCAPED_FIRST = "".join(FORMULA_TRIGGERS) + "'"
_PATTERN = "^[" + "".join(f"\\x{ord(c):02x}" for c in _ESCAPED_FIRST) + "]"


def _text_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(frame[c].dtype)
            or pd.api.types.is_string_dtype(frame[c].dtype)]


def _starts(s: pd.Series, pattern: str) -> pd.Series | None:
    """Boolean mask of string cells matching ``pattern``; ``None`` if no cell is text."""
    try:
        hit = s.str.contains(pattern, regex=True)
    except AttributeError:  # an object column holding no strings at all
        return None
    return hit.eq(True)  # NaN (non-string cells) -> False, without object downcasting


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
    return _edit_text_cells(frame, _PATTERN, lambda s: "'" + s)


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
    return _edit_text_cells(frame, "^'", lambda s: s.str.slice(1))


def _edit_text_cells(frame: pd.DataFrame, pattern: str, edit) -> pd.DataFrame:
    """Apply ``edit`` (Series of str -> Series of str) to the text cells matching ``pattern``;
    a copy is made only when a cell changes, and numeric columns are never touched."""
    out = frame
    for col in _text_columns(frame):
        s = frame[col].astype(object)
        hit = _starts(s, pattern)
        if hit is None or not hit.any():
            continue
        if out is frame:
            out = frame.copy()
        values = s.to_numpy(copy=True)
        mask = hit.to_numpy()
        values[mask] = edit(s[mask].astype(str)).to_numpy()
        out[col] = values
    return out
