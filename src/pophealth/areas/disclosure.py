"""Disclosure control (small-number suppression) for published area tables.

The default rule is NHS Digital's for sub-national counts (HES/ECDS, from September
2018; also SRHAD): a true zero stays zero, counts 1-7 are suppressed, every other
count is rounded to the nearest 5 with ``floor(n / 5 + 0.5) * 5``. As NHS Digital
does for percentages, the statistics functions compute every published value and
confidence limit *from the published (rounded) counts* and round them to a stated
precision, so ``value x denominator`` or inverting a confidence interval gives back
only the published count. Where a table's margins may be published (an area total
next to its age/sex cells, a total over areas), complementary suppression
(:mod:`pophealth.areas.complementary`) hides a second cell wherever a margin would
otherwise hide just one.

Suppressed cells are ``<NA>`` in a nullable column and the row's ``suppressed`` column
says why (e.g. ``"numerator 1-7"``, ``"secondary suppression"``); a suppressed count is
never shown as 0, which would be indistinguishable from a true zero. (A true zero
can be hidden as a *secondary* suppression: otherwise it would give away its
neighbour.) National rows can
be exempted with ``exempt=``. Thresholds are configurable (``threshold=``, ``base=``)
for other regimes (OpenSAFELY uses the same defaults). Rounded totals are rounded from
the unrounded totals, so published cells need not add up to published totals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas.complementary import complementary_suppression
from pophealth.contracts.exceptions import ConfigError, SchemaError

__all__ = ["suppress", "control_counts", "round_to_base", "controlled_round",
           "DEFAULT_THRESHOLD", "DEFAULT_BASE", "note_off"]

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


def round_to_base(counts, base: int = DEFAULT_BASE, *, keep_positive: bool = False) -> np.ndarray:
    """Round counts to the nearest multiple of ``base`` (half up), without suppression.

    Used for the unpublished age-band counts behind standardised statistics, which
    are computed from rounded counts so that nothing published recovers a band count.

    Parameters
    ----------
    counts : array-like of numbers
    base : int, default 5
    keep_positive : bool, default False
        Round a positive count up to ``base`` rather than down to 0 (populations,
        so that a band with people keeps a non-zero denominator).

    Examples
    --------
    >>> from pophealth.areas.disclosure import round_to_base
    >>> round_to_base([0, 1, 2, 3, 7, 8, 12, 13]).tolist()
    [0.0, 0.0, 0.0, 5.0, 5.0, 10.0, 10.0, 15.0]
    >>> round_to_base([0, 1, 2], keep_positive=True).tolist()
    [0.0, 5.0, 5.0]
    """
    _check_rule(0, base)
    n = np.asarray(counts, dtype="float64")
    rounded = np.floor(n / base + 0.5) * base
    if keep_positive:
        rounded = np.where((n > 0) & (rounded == 0), base, rounded)
    return rounded


def controlled_round(counts, totals, base: int = DEFAULT_BASE) -> np.ndarray:
    """Round each row of a count grid to multiples of ``base`` so it adds up to ``totals``.

    Controlled rounding of the unpublished age-band counts behind a standardised
    rate: every cell is rounded down to a multiple of ``base`` and the units of
    ``base`` still needed to reach the row's published total go, one each, to the
    cells with the largest remainders (ties: first cell first). Each rounded cell is
    within ``base - 1`` of the true cell, the row keeps its published total, and the
    result depends on the true cells only through their rounded values and the order
    of their remainders. Rows with a missing total (suppressed) are rounded down.

    Parameters
    ----------
    counts : 2-D array-like of non-negative whole numbers (rows x cells)
    totals : 1-D array-like
        Published row totals (multiples of ``base`` between the rounded-down sum and
        the true sum plus ``base``), NaN where suppressed.
    base : int, default 5

    Examples
    --------
    >>> from pophealth.areas.disclosure import controlled_round
    >>> controlled_round([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [12, 1, 4, 0, 0, 0,
    ...                   0, 0, 0, 0, 0, 0, 0]], [15, 15]).tolist()
    [[5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    _check_rule(0, base)
    x = np.atleast_2d(np.asarray(counts, dtype="float64"))
    total = np.asarray(totals, dtype="float64").reshape(-1)
    floor = np.floor(x / base) * base
    rem = x - floor
    units = np.nan_to_num((total - floor.sum(axis=1)) / base, nan=0.0)
    units = np.clip(np.round(units), 0, None)
    order = np.argsort(-rem, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(x.shape[1]), x.shape), axis=1)
    return floor + np.where((rank < units[:, None]) & (rem > 0), base, 0)


def suppress(
    table: pd.DataFrame,
    columns: str | Sequence[str] | None = None,
    *,
    derived: str | Sequence[str] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    base: int = DEFAULT_BASE,
    exempt=None,
    margins: Sequence[Sequence[str]] | None = None,
    recomputed: bool = False,
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
        Columns computed from the counts. Default: ``value``, ``expected`` and every
        ``lower_ci*`` / ``upper_ci*`` column present.
    threshold, base : int
        Suppress ``0 < n < threshold + 1`` (1-7 by default), round the rest to the
        nearest ``base`` (5 by default). Zero stays zero.
    exempt : str or array-like of bool, optional
        Rows left uncontrolled (e.g. a national total): a boolean column name or mask.
        Exempt rows are treated as totals: never chosen for, nor counted in,
        complementary suppression.
    margins : sequence of sequences of str, optional
        Margins whose totals may be published: each is a list of key columns held
        fixed (``[]`` for the grand total). Within every margin that would hide
        exactly one cell of a count column, that column's next-smallest cell is
        suppressed too (``"<column> secondary suppression"``), with the row's derived
        values. Default: none.
    recomputed : bool, default False
        Whether the ``derived`` columns were computed from the *published* counts
        (the statistics functions do this). ``False``: derived columns are blanked
        in every row, because a statistic computed from unrounded counts gives the
        count back (``value x denominator``); recompute them from the published
        counts instead. ``True``: they are kept, except in suppressed rows.

    Returns
    -------
    DataFrame
        A copy: count columns become nullable (``Int64`` when whole numbers),
        ``derived`` columns ``Float64``, and the ``suppressed`` column (string,
        ``<NA>`` when nothing was suppressed) names the reason; reasons already in
        ``suppressed`` are kept. ``attrs["disclosure_control"]`` records the rule,
        the number of secondary suppressions and any derived columns blanked.

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
    ...                   "denominator": [40, 52, 96, 101]})
    >>> suppress(t)
      area  numerator  denominator     suppressed
    0    A          0           40           <NA>
    1    B       <NA>           50  numerator 1-7
    2    C         10           95           <NA>
    3    D         10          100           <NA>

    If the total over areas is published, B (3) alone would be "total minus the
    rest"; the next-smallest cell, A, is suppressed with it:

    >>> suppress(t, margins=[[]])[["area", "numerator", "suppressed"]]
      area  numerator                       suppressed
    0    A       <NA>  numerator secondary suppression
    1    B       <NA>                    numerator 1-7
    2    C         10                             <NA>
    3    D         10                             <NA>
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
        drv = [c for c in table.columns if c in ("value", "expected") or
               str(c).startswith(("lower_ci", "upper_ci"))]
    else:
        drv = _names(derived)
    margins = [] if margins is None else [_names(m) for m in margins]
    missing = [c for c in dict.fromkeys(cols + drv + [c for m in margins for c in m])
               if c not in table.columns]
    if missing:
        raise SchemaError(f"suppress: missing column(s) {missing}")
    n_rows = len(table)
    keep = _exempt_mask(table, exempt)
    out = table.copy()
    any_suppressed = np.zeros(n_rows, dtype=bool)
    reasons = np.full(n_rows, "", dtype=object)
    key_cols = list(dict.fromkeys(c for m in margins for c in m))
    n_secondary = 0
    for col in cols:
        values = _counts(table, col)
        pub, sup = control_counts(values, threshold=threshold, base=base)
        pub = np.where(keep, values, pub)
        sup &= ~keep
        label = f"{col} 1-{threshold}" if threshold >= 1 else f"{col} below {threshold + 1}"
        reasons = _add_reason(reasons, sup, label)
        if margins:  # per count column: each margin hides none or >= 2 of its cells
            second = complementary_suppression(table[key_cols], sup, margins, [pub],
                                               eligible=~keep)
            reasons = _add_reason(reasons, second, f"{col} secondary suppression")
            n_secondary += int(second.sum())
            sup |= second
        any_suppressed |= sup
        out[col] = _nullable(np.where(sup, np.nan, pub))
    blanked = [] if recomputed else list(drv)
    for col in drv:
        vals = pd.to_numeric(out[col], errors="coerce").astype("Float64")
        vals[any_suppressed if recomputed else np.ones(n_rows, dtype=bool)] = pd.NA
        out[col] = vals
    if blanked:
        logger.warning("suppress: %d derived column(s) %s blanked: they were computed from "
                       "unrounded counts (pass recomputed=True only for statistics computed "
                       "from the published counts)", len(blanked), blanked)
    out["suppressed"] = _merge_reasons(out.get("suppressed"), reasons)
    out.attrs = dict(table.attrs)
    out.attrs["disclosure_control"] = {"threshold": int(threshold), "base": int(base),
                                       "columns": list(cols),
                                       "margins": [list(m) for m in margins],
                                       "secondary_suppressed": n_secondary,
                                       "derived_blanked": blanked}
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


def _add_reason(reasons: np.ndarray, mask: np.ndarray, label: str) -> np.ndarray:
    return np.where(mask, np.where(reasons == "", label, reasons + "; " + label), reasons)


def _merge_reasons(existing, reasons: np.ndarray) -> pd.Series:
    new = pd.Series(reasons, dtype="string").replace("", pd.NA)
    if existing is None:
        return new.values
    old = pd.Series(existing).astype("string").reset_index(drop=True)
    both = old.notna() & new.notna()
    merged = old.fillna(new)
    merged[both] = old[both] + "; " + new[both]
    return merged.values
