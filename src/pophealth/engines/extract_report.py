"""What an extract reader could not map: counts and row positions, never values.

Every reader in :mod:`~pophealth.engines.sus` and :mod:`~pophealth.engines.gp` returns an
:class:`Extract` (the contract frames plus an :class:`ExtractReport`) and warns with a
:class:`~pophealth.contracts.exceptions.DataQualityWarning` naming each count. The shared
column helpers here (source loading, ISO 8601 date columns, code cleaning) work on unique
values, never in a Python loop over rows.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import DataQualityWarning, SchemaError, user_stacklevel
from pophealth.contracts.schema import MAX_POSITIONS, as_datetime64, is_datetimelike

__all__ = ["Extract", "ExtractReport"]

#: Counts that are expected in normal data (reported, not warned about).
_INFORMATIONAL = frozenset({"empty_diagnosis_cells", "empty_procedure_cells"})


@dataclass
class ExtractReport:
    """Counts (and up to ten zero-based input row positions) of what a reader could not map.

    Attributes
    ----------
    reader : str
        The reader's name, e.g. ``"read_sus_apc"``.
    rows : int
        Input rows read.
    counts : dict
        Rule -> number of rows (or cells) affected; only non-zero counts are kept.
    positions : dict
        Rule -> first input row positions (never values).
    """

    reader: str
    rows: int
    counts: dict[str, int] = field(default_factory=dict)
    positions: dict[str, list[int]] = field(default_factory=dict)

    def add(self, rule: str, mask: np.ndarray) -> None:
        """Record the rows where ``mask`` is true under ``rule``."""
        mask = np.asarray(mask, dtype=bool)
        n = int(mask.sum())
        if n:
            self.counts[rule] = self.counts.get(rule, 0) + n
            pos = self.positions.setdefault(rule, [])
            room = MAX_POSITIONS - len(pos)
            if room > 0:
                pos.extend(int(i) for i in np.flatnonzero(mask)[:room])

    def add_count(self, rule: str, n: int) -> None:
        """Record a count without positions (e.g. cells summed over columns)."""
        if n:
            self.counts[rule] = self.counts.get(rule, 0) + int(n)

    def problems(self) -> dict[str, int]:
        """The counts that are data-quality problems (not the informational ones)."""
        return {k: v for k, v in self.counts.items() if k not in _INFORMATIONAL}

    def warn(self) -> None:
        """Warn once with every problem count (rule names, counts, positions; no values)."""
        probs = self.problems()
        if not probs:
            return
        parts = []
        for rule, n in probs.items():
            where = f" (first positions {self.positions[rule]})" if rule in self.positions else ""
            parts.append(f"{rule}: {n}{where}")
        warnings.warn(f"{self.reader}: of {self.rows} input row(s), not mapped - "
                      + "; ".join(parts), DataQualityWarning, stacklevel=user_stacklevel())


class Extract(NamedTuple):
    """A reader's result: contract frames plus the report of what was not mapped."""

    events: pd.DataFrame | None
    activity: pd.DataFrame | None
    report: ExtractReport


# ----------------------------------------------------------------------------- helpers

_ISO_CELL = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")


def load_source(source, reader: str) -> pd.DataFrame:
    """A DataFrame as given, or a CSV path read with every column as text (codes such as
    ``ADMIMETH`` ``2A`` or sex ``0`` keep their form; empty cells are missing)."""
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, Path)):
        return pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
    raise SchemaError(f"{reader}: expected a DataFrame or a CSV path, got {type(source).__name__}")


def require_columns(frame: pd.DataFrame, names: dict[str, str | None], reader: str) -> None:
    """One-line error naming every mapped column that is absent (role -> column)."""
    missing = [f"{role}={col!r}" for role, col in names.items()
               if col is not None and col not in frame.columns]
    if missing:
        raise SchemaError(f"{reader}: mapped column(s) not in the extract ({', '.join(missing)}); "
                          "pass columns={...} to map your extract's names",
                          [{"column": m, "rule": "missing_column", "count": 0, "positions": []}
                           for m in missing])


def text(s: pd.Series) -> pd.Series:
    """Cells as stripped upper-case ``object`` strings; missing and blank become ``None``.

    Integer-valued floats (``21.0`` from a numeric CSV read) lose the ``.0``."""
    codes, uniques = pd.factorize(s.astype(object) if not isinstance(s.dtype, pd.CategoricalDtype)
                                  else s.astype(object))
    u = pd.Series(uniques, dtype=object).astype(str).str.strip().str.upper()
    u = u.str.replace(r"^(\d+)\.0$", r"\1", regex=True)
    u = u.where(u != "", None)
    out = np.append(u.to_numpy(dtype=object), None)[codes]
    return pd.Series(out, index=s.index, dtype=object)


def iso_dates(frame: pd.DataFrame, column: str, reader: str) -> np.ndarray:
    """A date column as ``datetime64[us]`` (NaT for missing); strings must be ISO 8601.

    Datetime columns are used as they are (wall-clock rule of
    :mod:`pophealth.contracts.schema`). A string in any other layout (``01/04/2025``)
    is a :class:`SchemaError` naming the column, the rule, the count and positions."""
    s = frame[column]
    if is_datetimelike(s):
        return as_datetime64(s, unit="us")
    t = text(s)
    codes, uniques = pd.factorize(t)
    ok_unique = np.array([bool(_ISO_CELL.fullmatch(u)) for u in uniques], dtype=bool)
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object).where(ok_unique, None),
                            format="ISO8601", errors="coerce")
    bad_layout = (codes >= 0) & ~np.append(ok_unique, True)[codes]
    impossible = (codes >= 0) & ~bad_layout & np.append(parsed.isna().to_numpy(), False)[codes]
    problems = []
    for rule, mask, detail in (("iso_8601_date", bad_layout, "write dates as YYYY-MM-DD"),
                               ("valid_date", impossible, "not a calendar date")):
        n = int(mask.sum())
        if n:
            pos = [int(i) for i in np.flatnonzero(mask)[:MAX_POSITIONS]]
            problems.append({"column": column, "rule": rule, "count": n, "positions": pos,
                             "detail": detail})
    if problems:
        lines = [f"column '{p['column']}' breaks rule '{p['rule']}' ({p['detail']}) in "
                 f"{p['count']} row(s); first positions {p['positions']}" for p in problems]
        raise SchemaError(f"{reader}: " + "; ".join(lines), problems)
    values = np.append(parsed.to_numpy(dtype="datetime64[us]"), np.datetime64("NaT", "us"))
    return values[codes]


#: Validity of cleaned codes by system (ICD-10 4th/5th characters, OPCS-4, SNOMED CT ids).
PATTERNS = {"icd10": r"[A-Z][0-9]{2}[0-9]{0,2}", "opcs4": r"[A-Z][0-9]{2}[0-9]?",
            "snomed": r"[1-9][0-9]{5,17}"}


def clean_codes(t: pd.Series, system: str) -> tuple[pd.Series, np.ndarray]:
    """Cleaned codes (``None`` where empty) and a mask of non-empty invalid ones.

    Every system: upper case, every character that is not a letter or digit removed
    (``I21.0`` -> ``I210``, ``K40.1`` -> ``K401``, HES fillers ``-``/``&`` -> empty).
    ICD-10 also drops a dagger/asterisk marker (``D``/``A``) after four characters
    (``G309D`` -> ``G309``) and a filler ``X`` on a three-character code (``I21X`` ->
    ``I21``)."""
    codes, uniques = pd.factorize(t)
    u = pd.Series(uniques, dtype=object).str.replace(r"[^0-9A-Z]", "", regex=True)
    if system == "icd10":
        u = u.str.replace(r"^([A-Z][0-9]{2}[0-9X][0-9]?)[AD]$", r"\1", regex=True)
        u = u.str.replace(r"^([A-Z][0-9]{2})X$", r"\1", regex=True)
    u = u.where(u != "", None)
    valid = u.isna() | u.fillna("").str.fullmatch(PATTERNS[system])
    cleaned = np.append(u.to_numpy(dtype=object), None)[codes]
    invalid = (codes >= 0) & ~np.append(valid.to_numpy(dtype=bool), True)[codes]
    return pd.Series(cleaned, index=t.index, dtype=object), invalid
