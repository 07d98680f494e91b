"""Matplotlib helpers for area tables.

Every function takes ``ax=None`` (a new figure is made when omitted), returns the
Axes and never calls ``plt.show()``. matplotlib is imported lazily, so pophealth does
not need it unless you plot (``pip install pophealth[plot]``).

* :func:`plot_rates_by_imd` - value with confidence limits by IMD decile/quintile.
* :func:`plot_funnel` - funnel plot of area values against population with PHE
  control limits (exact Poisson for rates, sigma-adjusted Wilson for proportions).
* :func:`plot_area_ranking` - areas ranked by value with confidence limits, coloured
  by comparison with a target (Fingertips-style "better/similar/worse" league).

Suppressed rows (``<NA>`` values) are left out and counted in the legend/title.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas.funnels import funnel_limits
from pophealth.plots._style import (
    COMPARISON_COLOURS,
    OKABE_ITO,
    _axes,
    _count_formatter,
    _floats,
    _legend_outside,
    add_caption,
)

__all__ = ["plot_rates_by_imd", "plot_funnel", "plot_area_ranking"]

_GROUP_LABELS = {"higher": "higher than comparator (95% CI)",
                 "similar": "similar to comparator (95% CI)",
                 "lower": "lower than comparator (95% CI)"}


def _stat_label(table: pd.DataFrame, value: str) -> str:
    """The table's ``statistic`` (e.g. "dsr per 100,000") if it has one, else the column name."""
    if "statistic" in table.columns:
        stats = table["statistic"].dropna()
        stats = stats[~stats.astype(str).str.contains(" NA ")]
        if len(stats):
            text = str(stats.iloc[0]).replace("dsr", "DSR")
            return text[:1].upper() + text[1:]
    return value


def _area_population(table: pd.DataFrame, keep: np.ndarray, what: str = "areas") -> str:
    """Caption population: areas shown and, with a denominator column, the people in them."""
    text = f"{int(keep.sum()):,} {what}"
    if "denominator" in table.columns:
        total = np.nansum(_floats(table["denominator"])[keep])
        text += f" ({total:,.0f} people)"
    return text


def _imd_name(table: pd.DataFrame, quantile: str, n_levels: int) -> str:
    """"decile"/"quintile" from the table's area type or column name, else from the count."""
    where = " ".join(str(x) for x in
                     ([quantile] + (list(pd.unique(table["area_type"].astype(str)))
                                    if "area_type" in table.columns else [])))
    for word in ("decile", "quintile"):
        if word in where:
            return word
    return {10: "decile", 5: "quintile"}.get(n_levels, "quantile")


def plot_rates_by_imd(
    table: pd.DataFrame,
    *,
    quantile: str = "area",
    value: str = "value",
    lower_ci: str = "lower_ci",
    upper_ci: str = "upper_ci",
    sii: pd.DataFrame | None = None,
    label: str | None = None,
    population: str | None = None,
    period: str | None = None,
    source: str | None = None,
    ax=None,
):
    """Plot values with confidence limits across deprivation deciles or quintiles.

    Parameters
    ----------
    table : DataFrame
        One row per quantile (e.g. ``crude_rate`` or ``dsr`` by ``imd_decile``);
        non-numeric quantiles such as ``"unknown"`` are skipped and counted in the title.
        The x label says "decile" or "quintile" from ``area_type`` (or the column name,
        or 10/5 levels).
    sii : DataFrame, optional
        Output of :func:`pophealth.areas.inequality.sii` (one group); SII and RII are shown
        with their confidence intervals in the legend.
    label : str, optional
        Legend label of the series.
    population, period, source : str, optional
        Caption line under the axes (see :func:`pophealth.plots.add_caption`); the
        population defaults to the quantiles and people shown.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pophealth.plots import plot_rates_by_imd
    >>> t = pd.DataFrame({"area": [str(i) for i in range(1, 11)] + ["unknown"],
    ...                   "value": range(11), "lower_ci": range(11), "upper_ci": range(1, 12)})
    >>> ax = plot_rates_by_imd(t, source="synthetic")
    >>> ax.get_xlabel()
    'IMD decile (1 = most deprived)'
    >>> ax.get_title()
    'value by IMD decile (1 not shown: no decile)'
    """
    ax = _axes(ax)
    q = _floats(table[quantile].astype("string") if not pd.api.types.is_numeric_dtype(
        table[quantile].dtype) else table[quantile])
    y, lo, hi = _floats(table[value]), _floats(table[lower_ci]), _floats(table[upper_ci])
    keep = ~np.isnan(q) & ~np.isnan(y)
    n_out = int((~keep).sum())
    order = np.argsort(q[keep], kind="stable")
    q, y, lo, hi = q[keep][order], y[keep][order], lo[keep][order], hi[keep][order]
    word = _imd_name(table, quantile, len(np.unique(q)))
    text = label or _stat_label(table, value)
    ax.errorbar(q, y, yerr=[y - lo, hi - y], fmt="o-", capsize=3, color=OKABE_ITO["blue"],
                label=f"{text} (95% CI)" if lower_ci == "lower_ci" else text)
    if sii is not None and {"statistic", "value"} <= set(sii.columns):
        stats = sii.set_index("statistic")
        for k in ("sii", "rii"):
            if k in stats.index:
                row = stats.loc[k]
                ci = ""
                if {"lower_ci", "upper_ci"} <= set(stats.columns):
                    ci = f" (95% CI {float(row['lower_ci']):.3g} to {float(row['upper_ci']):.3g})"
                # an empty handle: the statistic is written in the legend, not drawn
                ax.plot([], [], " ", label=f"{k.upper()} {float(row['value']):.3g}{ci}")
    ax.set_xlabel(f"IMD {word} (1 = most deprived)")
    ax.set_ylabel(_stat_label(table, value))
    if len(q):
        ax.set_xticks(q)
        ax.xaxis.set_major_formatter(_count_formatter())
    ax.set_title(f"{_stat_label(table, value)} by IMD {word}"
                 + (f" ({n_out} not shown: no {word})" if n_out else ""))
    _legend_outside(ax)
    add_caption(ax, population or _area_population(table, keep, f"IMD {word}s"), period,
                source)
    return ax


def plot_funnel(
    table: pd.DataFrame,
    *,
    denominator: str = "denominator",
    value: str = "value",
    target: float | None = None,
    kind: str = "rate",
    multiplier: float = 100_000,
    confidence: float | Sequence[float] = (0.95, 0.998),
    label: str | None = "area",
    annotate: int = 0,
    population: str | None = None,
    period: str | None = None,
    source: str | None = None,
    ax=None,
):
    """Funnel plot: area values against their population with control limits.

    Parameters
    ----------
    table : DataFrame
        Area table (e.g. from ``crude_rate`` or ``proportion``); suppressed rows are
        skipped and counted in the legend.
    target : float, optional
        Centre line on the ``multiplier`` scale. Default: population-weighted mean of
        the plotted values.
    kind : {"rate", "proportion"}
        Exact Poisson or sigma-adjusted (Wilson) control limits, see
        :func:`pophealth.areas.funnels.funnel_limits`.
    multiplier : float
        The scale of ``value`` (100,000 for rates per 100,000; 1 or 100 for proportions).
    confidence : float or sequence of float, default (0.95, 0.998)
    label : str, optional
        Column naming the areas, used with ``annotate``.
    annotate : int, default 0
        Label the ``annotate`` points furthest outside the outermost limits.
    population, period, source : str, optional
        Caption line under the axes; the population defaults to the areas and people shown.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        The legend sits outside the data area (right of the axes), so point labels
        cannot collide with it.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pophealth.plots import plot_funnel
    >>> t = pd.DataFrame({"area": list("ABCD"), "denominator": [500, 1500, 3000, 8000],
    ...                   "value": [900.0, 1300.0, 1000.0, 1050.0]})
    >>> ax = plot_funnel(t, target=1000.0)
    >>> len(ax.lines)  # target line + lower/upper limits at two levels
    5
    >>> ax.get_xlabel()
    'population (denominator, people; log scale)'
    """
    ax = _axes(ax)
    n, y = _floats(table[denominator]), _floats(table[value])
    keep = ~np.isnan(n) & ~np.isnan(y) & (n > 0)
    n_sup = int((~keep).sum())
    if target is None:
        target = float(np.sum(y[keep] * n[keep]) / np.sum(n[keep])) if keep.any() else 0.0
    ax.scatter(n[keep], y[keep], s=14, color="black", zorder=3,
               label="areas" + (f" ({n_sup} suppressed, not shown)" if n_sup else ""))
    if keep.any():
        lo_n, hi_n = max(np.min(n[keep]) * 0.8, 1.0), np.max(n[keep]) * 1.2
        grid = np.geomspace(lo_n, hi_n, 200)
        limits = funnel_limits(grid, target, kind=kind, multiplier=multiplier,
                               confidence=confidence)
        ax.axhline(target, color="grey", lw=1, label=f"target {target:,.4g}")
        styles = ["--", ":", "-."]
        cols = [c for c in limits.columns if c.startswith("lower_")]
        for i, col in enumerate(cols):
            suffix = col[len("lower_"):]
            ls = styles[i % len(styles)]
            ax.plot(grid, limits[col], ls=ls, color=OKABE_ITO["blue"],
                    label=f"{suffix.replace('_', '.')} % control limits")
            ax.plot(grid, limits[f"upper_{suffix}"], ls=ls, color=OKABE_ITO["blue"])
        if annotate and label and label in table.columns:
            outer = funnel_limits(n[keep], target, kind=kind, multiplier=multiplier,
                                  confidence=confidence)
            lo_col, hi_col = cols[-1], "upper_" + cols[-1][len("lower_"):]
            excess = np.maximum(outer[lo_col].to_numpy() - y[keep],
                                y[keep] - outer[hi_col].to_numpy())
            names = table.loc[keep, label].astype(str).to_numpy()
            for j in np.argsort(-excess)[:annotate]:
                if excess[j] > 0:
                    ax.annotate(names[j], (n[keep][j], y[keep][j]), fontsize=7,
                                xytext=(4, 0), textcoords="offset points", va="center")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_count_formatter())
        ax.xaxis.set_minor_formatter(_count_formatter())
        ax.tick_params(axis="x", which="both", labelsize=7)
    ax.set_xlabel(f"population ({denominator}, people; log scale)")
    ax.set_ylabel(_stat_label(table, value))
    ax.set_title(f"Funnel plot: {_stat_label(table, value)} by area")
    _legend_outside(ax)
    add_caption(ax, population or _area_population(table, keep), period, source)
    return ax


def plot_area_ranking(
    table: pd.DataFrame,
    *,
    label: str = "area",
    value: str = "value",
    lower_ci: str = "lower_ci",
    upper_ci: str = "upper_ci",
    target: float | None = None,
    top: int | None = None,
    population: str | None = None,
    period: str | None = None,
    source: str | None = None,
    ax=None,
):
    """Rank areas by value with confidence limits (league chart).

    Areas whose interval lies wholly above ``target`` are coloured "higher", wholly
    below "lower", otherwise "similar" (all grey without a target), in colour-blind-safe
    colours; the legend sits outside the data area.

    Parameters
    ----------
    table : DataFrame
        Area table; suppressed rows (``<NA>`` value) are left out and counted.
    label : str
        Column naming the areas.
    target : float, optional
        Comparator (e.g. the overall rate), drawn as a vertical line.
    top : int, optional
        Show only the ``top`` highest values.
    population, period, source : str, optional
        Caption line under the axes; the population defaults to the areas and people shown.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pophealth.plots import plot_area_ranking
    >>> t = pd.DataFrame({"area": list("ABC"), "value": [5.0, 9.0, None],
    ...                   "lower_ci": [4.0, 8.0, None], "upper_ci": [6.0, 10.0, None]})
    >>> ax = plot_area_ranking(t, target=7.0)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['A', 'B']
    >>> ax.get_title()
    'Areas ranked by value (1 suppressed, not shown)'
    """
    ax = _axes(ax)
    y, lo, hi = _floats(table[value]), _floats(table[lower_ci]), _floats(table[upper_ci])
    names = table[label].astype(str).to_numpy()
    keep = ~np.isnan(y)
    n_sup = int((~keep).sum())
    order = np.argsort(-y[keep], kind="stable")
    if top is not None:
        order = order[:top]
    order = order[::-1]  # highest at the top of the chart
    y, lo, hi, names = y[keep][order], lo[keep][order], hi[keep][order], names[keep][order]
    if target is None:
        groups = np.full(len(y), "none", dtype=object)
    else:
        groups = np.where(lo > target, "higher", np.where(hi < target, "lower", "similar"))
        ax.axvline(target, color="black", lw=1, label=f"comparator {target:,.4g}")
    pos = np.arange(len(y))
    for group, colour in COMPARISON_COLOURS.items():
        m = groups == group
        if m.any():
            ax.errorbar(y[m], pos[m], xerr=[y[m] - lo[m], hi[m] - y[m]], fmt="o", ms=4,
                        capsize=2, color=colour,
                        label=None if group == "none" else _GROUP_LABELS[group])
    ax.set_yticks(pos)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel(_stat_label(table, value))
    title = f"Areas ranked by {value}" + (f" ({n_sup} suppressed, not shown)" if n_sup else "")
    ax.set_title(title)
    if target is not None:
        _legend_outside(ax)
    shown = np.zeros(len(keep), dtype=bool)
    shown[np.flatnonzero(keep)[order]] = True
    add_caption(ax, population or _area_population(table, shown), period, source)
    return ax
