"""Plots for cost: Lorenz curve of cost concentration, distribution of cost in pounds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.plots._style import (
    OKABE_ITO,
    _axes,
    _count_formatter,
    _floats,
    _patients,
    _percent_formatter,
    _pounds_formatter,
    add_caption,
)

__all__ = ["lorenz", "plot_cost_distribution"]

_MARKERS = ("o", "s", "^", "D", "v", "P")


def lorenz(concentration, *, ax=None, label: str | None = None, shares=(0.01, 0.05, 0.2),
           population: str | None = None, period: str | None = None,
           source: str | None = None):
    """Lorenz curve of cost with the line of equality and the top-share points marked.

    Parameters
    ----------
    concentration : CostConcentration or array-like
        From :func:`pophealth.cohorts.cost_concentration`, or raw costs (computed here).
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label of the curve (default shows the Gini coefficient).
    shares : sequence of float
        Top fractions to mark ("top 5 %: 48 % of cost"), one marker shape each, named in
        the legend (upper left, where a Lorenz curve never runs); they must be among the
        ``top`` fractions of ``concentration`` when it is given precomputed.
    population, period, source : str, optional
        Caption line under the axes; the population defaults to the people counted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from pophealth.plots import lorenz
    >>> ax = lorenz([0, 1, 2, 3, 10, 50], shares=(0.2,))  # top 1.2 people: (50 + 0.2 x 10) / 66
    >>> ax.get_xlabel(), len(ax.lines)  # equality line, curve, one marked share
    ('people, lowest cost first (cumulative %)', 3)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['Gini 0.70', 'top 20%: 79% of cost']
    """
    from pophealth.cohorts import CostConcentration, cost_concentration

    cc = (concentration if isinstance(concentration, CostConcentration)
          else cost_concentration(concentration, top=tuple(shares)))
    ax = _axes(ax, figsize=(5.5, 5))
    curve = cc.lorenz
    if len(curve) > 2001:  # thin to ~2,000 points for drawing; the curve is piecewise linear
        grid = np.linspace(0.0, 1.0, 2001)
        x = grid
        y = np.interp(grid, curve["population_share"], curve["cost_share"])
    else:
        x, y = curve["population_share"].to_numpy(), curve["cost_share"].to_numpy()
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="_equality")
    ax.plot(x, y, lw=2, color=OKABE_ITO["blue"], label=label or f"Gini {cc.gini:.2f}")
    for i, p in enumerate(shares):
        share = cc.top_shares[float(p)]
        ax.plot([1 - p], [1 - share], _MARKERS[i % len(_MARKERS)], color=OKABE_ITO["vermillion"],
                ms=6, label=f"top {100 * p:g}%: {100 * share:.0f}% of cost")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(_percent_formatter(1.0, 0))
    ax.yaxis.set_major_formatter(_percent_formatter(1.0, 0))
    ax.set_xlabel("people, lowest cost first (cumulative %)")
    ax.set_ylabel("cost (cumulative %)")
    ax.set_title(f"Cost concentration (n = {cc.n:,})")
    ax.legend(loc="upper left", fontsize=8)
    add_caption(ax, population or _patients(int(cc.n)), period, source)
    return ax


def plot_cost_distribution(cost, *, bins: int = 50, cost_label: str = "cost",
                           population: str | None = None, period: str | None = None,
                           source: str | None = None, ax=None):
    """Histogram of cost per person on a logarithmic pounds axis (£10, £100, £1k ...).

    Bins are equal on the log scale. People with no cost cannot sit on a log axis: they
    are counted in the title, never dropped silently; missing costs likewise. Negative
    costs raise ``ValueError`` (count and positions, never values).

    Parameters
    ----------
    cost : array-like
        Cost per person in GBP (>= 0), e.g. :func:`pophealth.cohorts.period_cost`.
    bins : int, default 50
    cost_label : str, default "cost"
        What the cost is, e.g. "cost in the 12 months before 2025-04-01".
    population, period, source : str, optional
        Caption line under the axes; the population defaults to all people given.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from pophealth.plots import plot_cost_distribution
    >>> ax = plot_cost_distribution([0, 0, 40, 400, 4000, float("nan")])
    >>> ax.get_title()
    'Distribution of cost (2 with no cost and 1 missing not shown)'
    >>> ax.get_xscale(), ax.xaxis.get_major_formatter()(1000, 0)
    ('log', '£1k')
    """
    c = _floats(cost if isinstance(cost, pd.Series) else pd.Series(np.asarray(cost, dtype=float)))
    missing = np.isnan(c)
    negative = np.flatnonzero(~missing & (c < 0))
    if len(negative):
        raise ValueError(f"plot_cost_distribution: 'cost' must be >= 0; {len(negative)} rows are "
                         f"negative (positions {negative[:5].tolist()}"
                         + (", ..." if len(negative) > 5 else "") + ")")
    zero = ~missing & (c == 0)
    pos = c[~missing & ~zero]
    ax = _axes(ax, figsize=(7, 4.5))
    if len(pos):
        lo, hi = float(pos.min()), float(pos.max())
        edges = np.geomspace(lo, hi if hi > lo else lo * 1.01, bins + 1)
        ax.hist(pos, bins=edges, color=OKABE_ITO["bluish_green"], edgecolor="white",
                linewidth=0.3)
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_pounds_formatter())
    ax.yaxis.set_major_formatter(_count_formatter())
    ax.set_xlabel(f"{cost_label} per person (£, log scale)")
    ax.set_ylabel("patients")
    out = []
    if zero.any():
        out.append(f"{int(zero.sum()):,} with no cost")
    if missing.any():
        out.append(f"{int(missing.sum()):,} missing")
    ax.set_title(f"Distribution of {cost_label}"
                 + (f" ({' and '.join(out)} not shown)" if out else ""))
    add_caption(ax, population or _patients(len(c)), period, source)
    return ax
