"""Crude rates, proportions and funnel-plot limits (Fingertips / PHEindicatormethods methods).

* :func:`crude_rate` - events per ``multiplier`` population with exact Poisson limits
  below 10 events and Byar's limits otherwise (``phe_rate``).
* :func:`proportion` - Wilson score limits (``phe_proportion``).
* :func:`funnel_limits` - funnel-plot control limits (re-exported from
  :mod:`pophealth.areas.funnels`).

Every function returns a self-describing area table: the grouping columns, then
``numerator``, ``denominator``, ``value``, ``lower_ci``, ``upper_ci`` (first requested
confidence level), ``lower_ci_<level>``/``upper_ci_<level>`` for further levels
(e.g. ``lower_ci_99_8``), ``confidence`` (the level of ``lower_ci``/``upper_ci``),
``statistic``, ``method`` and ``suppressed``. Use :func:`pophealth.areas.intervals.ci_long`
for one row per level.

Disclosure control (:func:`pophealth.areas.disclosure.suppress`) is on by default: the
published ``numerator``/``denominator`` are rounded to 5 and counts 1-7 suppressed; the
value and limits are computed *from the published counts* (as NHS Digital does for
percentages) and rounded to ``decimals`` (1 dp for multipliers of 100 or more, else
3 dp), as ``method`` states; a rate is suppressed when a count it was derived from is;
and complementary suppression protects the table's margins (``margins="auto"``: every
total over one grouping column, e.g. an area's total over its age/sex cells).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas._table import (
    Checks,
    add_intervals,
    as_by,
    check_multiplier,
    finish,
    group_sum,
    label_multiplier,
    parse_levels,
    statistic_counts,
)
from pophealth.areas.disclosure import DEFAULT_BASE, DEFAULT_THRESHOLD
from pophealth.areas.funnels import funnel_limits
from pophealth.areas.intervals import poisson_limits, wilson_limits

__all__ = ["crude_rate", "proportion", "funnel_limits"]

AREA_KEYS = ("area_type", "area")


def _counts(where, table, by, numerator, denominator, *, positive_denominator=True):
    c = Checks(where, table)
    if not c.require([*by, numerator, denominator]):
        c.finish()
    x = c.numeric(numerator)
    n = c.numeric(denominator)
    c.add(numerator, "non_negative", x < 0)
    if positive_denominator:
        c.add(denominator, "positive", ~(n > 0) & ~np.isnan(n))
    c.finish()
    return x, n


def crude_rate(
    table: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = AREA_KEYS,
    numerator: str = "numerator",
    denominator: str = "denominator",
    multiplier: float = 100_000,
    confidence: float | Sequence[float] = 0.95,
    disclosure_control: bool = True,
    threshold: int = DEFAULT_THRESHOLD,
    base: int = DEFAULT_BASE,
    margins: str | Sequence[Sequence[str]] | None = "auto",
    decimals: int | None = None,
) -> pd.DataFrame:
    """Crude rate per ``multiplier`` with exact Poisson (O < 10) or Byar (O >= 10) limits.

    Parameters
    ----------
    table : DataFrame
        Counts, e.g. from :func:`pophealth.areas.aggregate_by_area`.
    by : str, sequence of str or None, default ("area_type", "area")
        Grouping columns; numerators and denominators are summed within groups (over
        strata such as age band and sex). ``None`` keeps one output row per input row.
    numerator, denominator : str
        Column names of the event count and the population (both >= 0, population > 0).
    multiplier : float, default 100,000
        Rate per this many people (e.g. 1,000 or 100,000).
    confidence : float or sequence of float, default 0.95
        Level(s) in [0.9, 1) or [90, 100); ``(0.95, 0.998)`` gives both Fingertips levels.
    disclosure_control : bool, default True
        Round/suppress the published counts, compute the value and limits from the
        published counts and round them to ``decimals``. ``False`` turns it off
        explicitly (and logs a warning): full precision from the true counts.
    threshold, base : int
        Disclosure-control rule (see :func:`pophealth.areas.disclosure.suppress`).
    margins : "auto", None or list of column lists, default "auto"
        Margins protected by complementary suppression (see
        :func:`pophealth.areas.disclosure.suppress`); ``"auto"`` drops each ``by``
        column in turn, ``None`` turns complementary suppression off.
    decimals : int, optional
        Decimal places of published values and limits (default 1 when
        ``multiplier >= 100``, else 3).

    Returns
    -------
    DataFrame
        Area table (see module docstring); ``method`` is ``"exact Poisson"`` or
        ``"Byar"`` per row and ``statistic`` e.g. ``"crude rate per 100,000"``.

    Raises
    ------
    SchemaError
        Missing/non-numeric columns, negative numerators, non-positive denominators.
    ConfigError
        Invalid ``confidence`` or ``multiplier``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas.rates import crude_rate
    >>> t = pd.DataFrame({"area_type": "lsoa", "area": ["E01", "E02"],
    ...                   "numerator": [5, 120], "denominator": [1500, 2100]})
    >>> out = crude_rate(t, multiplier=1000, disclosure_control=False)
    >>> out[["area", "value", "lower_ci", "upper_ci", "method"]].round(3)
      area   value  lower_ci  upper_ci         method
    0  E01   3.333     1.082     7.779  exact Poisson
    1  E02  57.143    47.376    68.329           Byar

    With disclosure control (the default) the value and limits come from the
    published counts and are rounded to 1 dp; E01's numerator (5) is suppressed, and
    E03's too so that a published total over the areas cannot give E01's back:

    >>> t3 = pd.concat([t, pd.DataFrame({"area_type": ["lsoa"], "area": ["E03"],
    ...                                  "numerator": [48], "denominator": [1234]})])
    >>> out = crude_rate(t3, multiplier=1000)
    >>> out[["area", "numerator", "denominator", "value", "upper_ci"]]
      area  numerator  denominator  value  upper_ci
    0  E01       <NA>         1500   <NA>      <NA>
    1  E02        120         2100   57.1      68.3
    2  E03       <NA>         1235   <NA>      <NA>
    >>> out["suppressed"].tolist()
    ['numerator 1-7', <NA>, 'numerator secondary suppression']
    >>> out["method"][1]
    'Byar; computed from published counts (1-7 suppressed, others rounded to 5); 1 dp'

    """
    by = as_by(by)
    levels = parse_levels(confidence)
    mult = check_multiplier(multiplier)
    x, n = _counts("crude_rate", table, by, numerator, denominator)
    out = group_sum(table, by, {"numerator": x, "denominator": n})
    if by:
        out = _drop_renamed(out, numerator, denominator)
    control = dict(control=disclosure_control, threshold=threshold, base=base)
    o = statistic_counts(out["numerator"], **control)
    pop = statistic_counts(out["denominator"], **control)
    out["value"] = o / pop * mult

    def limits(level):
        lo, hi, _ = poisson_limits(o, level)
        return lo / pop * mult, hi / pop * mult

    add_intervals(out, levels, limits)
    out["statistic"] = f"crude rate per {label_multiplier(mult)}"
    out["method"] = poisson_limits(o, levels[0])[2]
    if not by:
        out = _drop_renamed(out, numerator, denominator)
    return finish(out, where="crude_rate", by=by, counts=("numerator", "denominator"),
                  disclosure_control=disclosure_control, threshold=threshold, base=base,
                  margins=margins, decimals=decimals, multiplier=mult)


def proportion(
    table: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = AREA_KEYS,
    numerator: str = "numerator",
    denominator: str = "denominator",
    multiplier: float = 1,
    confidence: float | Sequence[float] = 0.95,
    disclosure_control: bool = True,
    threshold: int = DEFAULT_THRESHOLD,
    base: int = DEFAULT_BASE,
    margins: str | Sequence[Sequence[str]] | None = "auto",
    decimals: int | None = None,
) -> pd.DataFrame:
    """Proportion (or percentage with ``multiplier=100``) with Wilson score limits.

    Parameters are as for :func:`crude_rate`; the numerator must not exceed the
    denominator. With disclosure control the proportion and its limits come from the
    published (rounded) numerator and denominator and are given to 3 dp (1 dp for
    percentages).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas.rates import proportion
    >>> t = pd.DataFrame({"area": ["A", "B"], "numerator": [81, 15],
    ...                   "denominator": [263, 148]})
    >>> proportion(t, by="area", disclosure_control=False)[
    ...     ["area", "value", "lower_ci", "upper_ci", "statistic"]].round(4)
      area   value  lower_ci  upper_ci   statistic
    0    A  0.3080    0.2553    0.3662  proportion
    1    B  0.1014    0.0624    0.1605  proportion
    """
    by = as_by(by)
    levels = parse_levels(confidence)
    mult = check_multiplier(multiplier)
    x, n = _counts("proportion", table, by, numerator, denominator)
    c = Checks("proportion", table)
    c.add(numerator, "numerator_le_denominator", x > n)
    c.finish()
    out = group_sum(table, by, {"numerator": x, "denominator": n})
    out = _drop_renamed(out, numerator, denominator)
    control = dict(control=disclosure_control, threshold=threshold, base=base)
    k = statistic_counts(out["numerator"], **control)
    m = statistic_counts(out["denominator"], **control)
    out["value"] = k / m * mult

    def limits(level):
        lo, hi = wilson_limits(k, m, level)
        return lo * mult, hi * mult

    add_intervals(out, levels, limits)
    out["statistic"] = {1.0: "proportion", 100.0: "percentage"}.get(
        mult, f"proportion per {label_multiplier(mult)}")
    out["method"] = "Wilson"
    return finish(out, where="proportion", by=by, counts=("numerator", "denominator"),
                  disclosure_control=disclosure_control, threshold=threshold, base=base,
                  margins=margins, decimals=decimals, multiplier=mult)


def _drop_renamed(out: pd.DataFrame, numerator: str, denominator: str) -> pd.DataFrame:
    """Drop the original count columns when they were renamed to numerator/denominator."""
    drop = [c for c in (numerator, denominator)
            if c not in ("numerator", "denominator") and c in out.columns]
    return out.drop(columns=drop)
