"""Disclosure control (small-number suppression) for published area tables.

The default rule is NHS Digital's for sub-national counts (HES/ECDS, from September
2018; also SRHAD): a true zero stays zero, counts 1-7 are suppressed, every other
count is rounded to the nearest 5 with ``floor(n / 5 + 0.5) * 5``. Statistics derived
from a suppressed count (rates, percentages, their confidence limits) are suppressed
too. Standardised rates and model outputs need no rounding (NHS Digital), so only
count columns are rounded.

Suppressed cells are ``<NA>`` in a nullable column and the row's ``suppressed`` column
says why (e.g. ``"numerator 1-7"``); a suppressed count is never shown as 0, which
would be indistinguishable from a true zero. National rows can be exempted with
``exempt=``. Thresholds are configurable (``threshold=``, ``base=``) for other regimes
(OpenSAFELY uses the same defaults). Rounded totals are rounded from the unrounded
totals, so published cells need not add up to published totals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, SchemaError

__all__ = ["suppress", "control_counts", "DEFAULT_THRESHOLD", "DEFAULT_BASE", "note_off"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 7
DEFAULT_BASE = 5
_COUNT_DEFAULTS = ("numerator", "denominator")


def control_counts(
    counts, *, threshold: int = DEFAULT_THRESHOLD, base: int = DEFAULT_BASE
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the suppress-then-round rule to an array of non-negative counts.

    Parameters
    ----------
    counts : array-like of numbers
        Missing values stay missing (and are not marked suppressed).
    threshold : int, default 7
        Counts with ``0 < n < threshold + 1`` are suppressed (1-7 for whole counts).
    base : int, default 5
        Other positive counts are rounded to the nearest multiple of ``base``; a
        positive count is never rounded down to 0.

    Returns
    -------
    published : ndarray of float
        NaN where suppressed or missing.
    suppressed : ndarray of bool

    Examples
    --------
    >>> from pophealth.areas.disclosure import control_counts
    >>> pub, sup = control_counts([0, 1, 7, 8, 12, 13, 22, 23])
    >>> pub.tolist()
    [0.0, nan, nan, 10.0, 10.0, 15.0, 20.0, 25.0]
    >>> sup.tolist()
    [False, True, True, False, False, False, False, False]
    """
    _check_rule(threshold, base)
    n = np.asarray(counts, dtype="float64")
    suppressed = (n > 0) & (n < threshold + 1)
    rounded = np.floor(n / base + 0.5) * base
    rounded = np.where((n > 0) & (rounded == 0), base, rounded)
    published = np.where(suppressed, np.nan, np.where(n == 0, 0.0, rounded))
    return published, suppressed


def suppress(
    table: pd.DataFrame,
    columns: str | Sequence[str] | None = None,
    *,
    derived: str | Sequence[str] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    base: int = DEFAULT_BASE,
    exempt=None,
) -> pd.DataFrame:
    """Apply disclosure control to the count columns of an aggregate table.

    Parameters
    ----------
    table : DataFrame
        An area table (any frame with count columns).
    columns : str or sequence of str, optional
        Count columns to control. Default: whichever of ``numerator`` and
        ``denominator`` are present.
    derived : str or sequence of str, optional
        Columns computed from the counts, set to ``<NA>`` in any row where a count
        was suppressed. Default: ``value`` and every ``lower_ci*`` / ``upper_ci*``
        column present.
    threshold, base : int
        Suppress ``0 < n < threshold + 1`` (1-7 by default), round the rest to the
        nearest ``base`` (5 by default). Zero stays zero.
    exempt : str or array-like of bool, optional
        Rows left uncontrolled (e.g. a national total): a boolean column name or mask.

    Returns
    -------
    DataFrame
        A copy: count columns become nullable (``Int64`` when whole numbers),
        ``derived`` columns ``Float64``, and the ``suppressed`` column (string,
        ``<NA>`` when nothing was suppressed) names the reason; reasons already in
        ``suppressed`` are kept. ``attrs["disclosure_control"]`` records the rule.

    Raises
    ------
    SchemaError
        A named column is missing, non-numeric or has negative counts.
    ConfigError
        ``threshold`` / ``base`` are invalid or no count column is found.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas.disclosure import suppress
    >>> t = pd.DataFrame({"area": ["A", "B", "C", "D"], "numerator": [0, 3, 12, 8],
    ...                   "denominator": [40, 52, 96, 101], "value": [0.0, 5.8, 12.5, 7.9]})
    >>> suppress(t)
      area  numerator  denominator  value     suppressed
    0    A          0           40    0.0           <NA>
    1    B       <NA>           50   <NA>  numerator 1-7
    2    C         10           95   12.5           <NA>
    3    D         10          100    7.9           <NA>
    """
    if not isinstance(table, pd.DataFrame):
        raise SchemaError(f"suppress: expected a pandas DataFrame, got {type(table).__name__}")
    _check_rule(threshold, base)
    cols = _names(columns) if columns is not None else [
        c for c in _COUNT_DEFAULTS if c in table.columns
    ]
    if not cols:
        raise ConfigError("suppress: no count columns given and none of 'numerator', "
                          "'denominator' found")
    if derived is None:
        drv = [c for c in table.columns if c == "value" or str(c).startswith(("lower_ci",
                                                                             "upper_ci"))]
    else:
        drv = _names(derived)
    missing = [c for c in cols + drv if c not in table.columns]
    if missing:
        raise SchemaError(f"suppress: missing column(s) {missing}")
    n_rows = len(table)
    keep = _exempt_mask(table, exempt)
    out = table.copy()
    any_suppressed = np.zeros(n_rows, dtype=bool)
    reasons = np.full(n_rows, "", dtype=object)
    for col in cols:
        values = _counts(table, col)
        published, sup = control_counts(values, threshold=threshold, base=base)
        published = np.where(keep, values, published)
        sup &= ~keep
        any_suppressed |= sup
        label = f"{col} 1-{threshold}" if threshold >= 1 else f"{col} below {threshold + 1}"
        reasons = np.where(sup, np.where(reasons == "", label, reasons + "; " + label), reasons)
        out[col] = _nullable(published)
    for col in drv:
        vals = pd.to_numeric(out[col], errors="coerce").astype("Float64")
        vals[any_suppressed] = pd.NA
        out[col] = vals
    out["suppressed"] = _merge_reasons(out.get("suppressed"), reasons)
    out.attrs = dict(table.attrs)
    out.attrs["disclosure_control"] = {"threshold": int(threshold), "base": int(base),
                                       "columns": list(cols)}
    return out


def note_off(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """Record (in ``attrs`` and the log) that disclosure control was turned off."""
    logger.warning("%s: disclosure control turned off (disclosure_control=False); "
                   "do not publish these counts below national level", where)
    table.attrs["disclosure_control"] = False
    if "suppressed" not in table.columns:
        table["suppressed"] = pd.Series(pd.NA, index=table.index, dtype="string")
    return table


# ----------------------------------------------------------------------------- helpers


def _check_rule(threshold, base) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int | np.integer) or threshold < 0:
        raise ConfigError(f"threshold must be a non-negative integer; got {threshold!r}")
    if isinstance(base, bool) or not isinstance(base, int | np.integer) or base < 1:
        raise ConfigError(f"base must be a positive integer; got {base!r}")


def _names(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _counts(table: pd.DataFrame, col: str) -> np.ndarray:
    s = table[col]
    if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
        raise SchemaError(f"suppress: column '{col}' breaks rule 'dtype' (expected counts, "
                          f"got {s.dtype})")
    values = pd.to_numeric(s).astype("float64").to_numpy(na_value=np.nan)
    bad = values < 0
    if bad.any():
        pos = np.flatnonzero(bad)[:10].tolist()
        raise SchemaError(f"suppress: column '{col}' breaks rule 'non_negative' in "
                          f"{int(bad.sum())} row(s); first positions {pos}")
    return values


def _exempt_mask(table: pd.DataFrame, exempt) -> np.ndarray:
    if exempt is None:
        return np.zeros(len(table), dtype=bool)
    if isinstance(exempt, str):
        if exempt not in table.columns:
            raise SchemaError(f"suppress: missing column(s) ['{exempt}']")
        exempt = table[exempt]
    mask = np.asarray(pd.Series(exempt).fillna(False), dtype=bool)
    if mask.shape != (len(table),):
        raise ConfigError("suppress: exempt must have one boolean per row")
    return mask


def _nullable(values: np.ndarray) -> pd.Series:
    arr = pd.array(values, dtype="Float64")  # NaN becomes <NA>
    finite = values[~np.isnan(values)]
    if np.all(finite == np.round(finite)):
        return arr.astype("Int64")
    return arr


def _merge_reasons(existing, reasons: np.ndarray) -> pd.Series:
    new = pd.Series(reasons, dtype="string").replace("", pd.NA)
    if existing is None:
        return new.values
    old = pd.Series(existing).astype("string").reset_index(drop=True)
    both = old.notna() & new.notna()
    merged = old.fillna(new)
    merged[both] = old[both] + "; " + new[both]
    return merged.values
