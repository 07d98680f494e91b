"""Shared plumbing for area-table functions: validation, grouping and output assembly.

Private: the public functions live in :mod:`pophealth.areas.rates`,
:mod:`pophealth.areas.standardised`, :mod:`pophealth.areas.inequality` and :mod:`pophealth.areas.aggregate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pophealth.areas.complementary import auto_margins
from pophealth.areas.disclosure import control_counts, note_off, suppress
from pophealth.areas.intervals import ci_suffix, parse_confidence
from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.contracts.schema import Problem

MAX_POSITIONS = 10
META = ("confidence", "statistic", "method", "suppressed")


class Checks:
    """Collect every broken rule of one call, then raise a single SchemaError."""

    def __init__(self, where: str, table: pd.DataFrame) -> None:
        if not isinstance(table, pd.DataFrame):
            raise SchemaError(f"{where}: expected a pandas DataFrame, got {type(table).__name__}")
        self.where = where
        self.table = table
        self.problems: list[Problem] = []

    def require(self, columns: Sequence[str]) -> bool:
        missing = [c for c in dict.fromkeys(columns) if c not in self.table.columns]
        for c in missing:
            self.problems.append(Problem(self.where, c, "missing_column", 0, ()))
        return not missing

    def add(self, column: str, rule: str, mask, detail: str = "") -> None:
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        if count:
            pos = tuple(int(p) for p in np.flatnonzero(mask)[:MAX_POSITIONS])
            self.problems.append(Problem(self.where, column, rule, count, pos, detail))

    def numeric(self, column: str, *, allow_missing: bool = False) -> np.ndarray:
        """Float array of a numeric column (NaN kept), or zeros after recording a dtype problem."""
        s = self.table[column]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            self.problems.append(Problem(self.where, column, "dtype", len(s), (),
                                         f"expected numbers, got {s.dtype}"))
            return np.zeros(len(s))
        values = pd.to_numeric(s).astype("float64").to_numpy(na_value=np.nan)
        if not allow_missing:
            self.add(column, "not_null", np.isnan(values))
        return values

    def finish(self) -> None:
        if self.problems:
            lines = [p.message() for p in self.problems]
            raise SchemaError(
                f"{self.where} failed validation ({len(lines)} problem(s)):\n  "
                + "\n  ".join(lines),
                [p.as_dict() for p in self.problems],
            )


def as_by(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def check_multiplier(multiplier) -> float:
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float | np.number):
        raise ConfigError(f"multiplier must be a number; got {type(multiplier).__name__}")
    if not np.isfinite(multiplier) or multiplier <= 0:
        raise ConfigError(f"multiplier must be greater than 0; got {multiplier!r}")
    return float(multiplier)


def group_sum(table: pd.DataFrame, by: list[str], values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sum ``values`` (name -> array aligned with ``table``) within ``by`` groups.

    With no ``by`` the rows are kept as they are (other columns preserved).
    Groups are sorted by their keys, so the result does not depend on row order.
    """
    if not by:
        out = table.reset_index(drop=True).copy()
        for name, arr in values.items():
            out[name] = arr
        return out
    frame = table[by].reset_index(drop=True).copy()
    for name, arr in values.items():
        frame[name] = arr
    out = frame.groupby(by, sort=True, observed=True, dropna=False)[list(values)].sum()
    return out.reset_index()


def label_multiplier(multiplier: float) -> str:
    return f"{multiplier:,.10g}"


def add_intervals(
    out: pd.DataFrame,
    levels: tuple[float, ...],
    limits: Callable[[float], tuple[np.ndarray, np.ndarray]],
) -> None:
    """Write ``lower_ci``/``upper_ci`` for the first level and suffixed columns for the rest."""
    for i, level in enumerate(levels):
        lo, hi = limits(level)
        suffix = "" if i == 0 else "_" + ci_suffix(level)
        out["lower_ci" + suffix] = lo
        out["upper_ci" + suffix] = hi
    out["confidence"] = levels[0]


def statistic_counts(values, *, control: bool, threshold: int, base: int) -> np.ndarray:
    """The counts a statistic is computed from: the published ones when control is on.

    With disclosure control the published count (rounded; NaN where suppressed) is
    used, so the statistic reveals nothing the published count does not.
    """
    values = np.asarray(values, dtype="float64")
    if not control:
        return values
    return control_counts(values, threshold=threshold, base=base)[0]


def default_decimals(multiplier: float) -> int:
    """Stated precision of published values: 1 dp per 100 or more, else 3 dp."""
    return 1 if multiplier >= 100 else 3


def resolve_margins(margins, by: list[str]) -> list[list[str]]:
    """``"auto"`` -> every one-dimensional margin of ``by``; ``None``/``()`` -> none."""
    if margins is None:
        return []
    if isinstance(margins, str):
        if margins != "auto":
            raise ConfigError(f"margins must be 'auto', None or a list of column lists; "
                              f"got {margins!r}")
        return auto_margins(by)
    out = [[m] if isinstance(m, str) else list(m) for m in margins]
    unknown = sorted({c for m in out for c in m} - set(by))
    if unknown:
        raise ConfigError(f"margins: column(s) {unknown} are not grouping columns (by)")
    return out


def finish(
    out: pd.DataFrame,
    *,
    where: str,
    by: list[str],
    counts: Sequence[str],
    disclosure_control: bool,
    threshold: int,
    base: int,
    margins="auto",
    decimals: int | None = None,
    multiplier: float = 1.0,
    basis: str | None = None,
) -> pd.DataFrame:
    """Order columns, then apply disclosure control (or record that it is off).

    With control on, the statistics in ``out`` must already have been computed from
    the published counts (:func:`statistic_counts`); here the counts are rounded and
    suppressed, complementary suppression is applied over ``margins``, the derived
    columns are rounded to ``decimals`` and ``method`` says so.
    """
    ci_cols = [c for c in out.columns if c.startswith(("lower_ci", "upper_ci"))]
    first = [c for c in by if c in out.columns]
    middle = [c for c in out.columns if c not in first and c not in ci_cols and c not in META
              and c != "value"]
    if "suppressed" not in out.columns:
        out["suppressed"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out = natural_sort(out[first + middle + ["value"] + ci_cols + list(META)], first)
    for col in counts:
        values = out[col].to_numpy(dtype="float64", na_value=np.nan)
        finite = values[~np.isnan(values)]
        if np.all(finite == np.round(finite)):
            out[col] = pd.array(values, dtype="Float64").astype("Int64")
    if not disclosure_control:
        return note_off(out, where)
    if isinstance(decimals, bool) or (decimals is not None and (
            not isinstance(decimals, int | np.integer) or decimals < 0)):
        raise ConfigError(f"decimals must be a non-negative integer; got {decimals!r}")
    dp = default_decimals(multiplier) if decimals is None else int(decimals)
    derived = [c for c in out.columns if c in ("value", "expected") or c in ci_cols]
    out = suppress(out, list(counts), derived=derived, threshold=threshold, base=base,
                   margins=resolve_margins(margins, by), recomputed=True)
    for col in derived:
        out[col] = out[col].round(dp)
    if basis is None:
        basis = f"published counts (1-{threshold} suppressed, others rounded to {base})"
    out["method"] = out["method"].astype(str) + f"; computed from {basis}; {dp} dp"
    out.attrs["disclosure_control"].update(statistics_from=basis, decimals=dp)
    return out


def _rank(col: pd.Series) -> np.ndarray:
    """Integer sort rank in natural order: categories, ESP2013 bands, numbers, then text.

    Missing values and ``"unknown"`` rank last.
    """
    from pophealth.areas.agebands import ESP2013_BANDS, UNKNOWN

    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int64)
        return np.where(codes < 0, len(col.cat.categories) + 1, codes)
    text = col.astype("string")
    unknown = (text.isna() | (text == UNKNOWN)).to_numpy()
    known = text[~unknown]
    if known.isin(ESP2013_BANDS).all():
        rank = pd.Index(ESP2013_BANDS).get_indexer(text.fillna(UNKNOWN))
    else:
        num = pd.to_numeric(col if pd.api.types.is_numeric_dtype(col.dtype) else text,
                            errors="coerce")
        basis = num if num[~unknown].notna().all() else text
        rank, _ = pd.factorize(basis, sort=True)
    rank = np.asarray(rank, dtype=np.int64)
    return np.where(unknown | (rank < 0), len(col) + 1, rank)


def natural_sort(out: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows sorted by ``by`` in natural order (``"2"`` before ``"10"``, ``"unknown"`` last)."""
    if not by or out.empty:
        return out.reset_index(drop=True)
    order = np.lexsort([_rank(out[c]) for c in reversed(by)])
    return out.iloc[order].reset_index(drop=True)


def parse_levels(confidence) -> tuple[float, ...]:
    return parse_confidence(confidence)
