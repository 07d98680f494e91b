"""Plots for cost concentration and high-cost cohorts (Lorenz curve)."""

from __future__ import annotations

import numpy as np

from pophealth.plots._style import _axes

__all__ = ["lorenz"]


def lorenz(concentration, *, ax=None, label: str | None = None, shares=(0.01, 0.05, 0.2)):
    """Lorenz curve of cost with the line of equality and the top-share points marked.

    Parameters
    ----------
    concentration : CostConcentration or array-like
        From :func:`pophealth.cohorts.cost_concentration`, or raw costs (computed here).
    ax : matplotlib Axes, optional
    label : str, optional
        Legend label (default shows the Gini coefficient).
    shares : sequence of float
        Top fractions to mark ("top 5 %: 48 % of cost"); they must be among the
        ``top`` fractions of ``concentration`` when it is given precomputed.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from pophealth.plots import lorenz
    >>> ax = lorenz([0, 1, 2, 3, 10, 50], shares=(0.2,))
    >>> ax.get_xlabel(), len(ax.lines)  # equality line, curve, one marked share
    ('share of people (lowest cost first)', 3)
    """
    from pophealth.cohorts import CostConcentration, cost_concentration

    cc = (concentration if isinstance(concentration, CostConcentration)
          else cost_concentration(concentration, top=tuple(shares)))
    ax = _axes(ax)
    curve = cc.lorenz
    if len(curve) > 2001:  # thin to ~2,000 points for drawing; the curve is piecewise linear
        grid = np.linspace(0.0, 1.0, 2001)
        x = grid
        y = np.interp(grid, curve["population_share"], curve["cost_share"])
    else:
        x, y = curve["population_share"].to_numpy(), curve["cost_share"].to_numpy()
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.plot(x, y, lw=2, label=label or f"Gini {cc.gini:.2f}")
    for p in shares:
        share = cc.top_shares[float(p)]
        ax.plot([1 - p], [1 - share], "o", color="black", ms=4)
        ax.annotate(f"top {100 * p:g}%: {100 * share:.0f}% of cost", (1 - p, 1 - share),
                    textcoords="offset points", xytext=(-8, 6), ha="right", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("share of people (lowest cost first)")
    ax.set_ylabel("share of cost")
    ax.set_title(f"Cost concentration (n = {cc.n:,})")
    ax.legend(loc="upper left", fontsize=8)
    return ax
