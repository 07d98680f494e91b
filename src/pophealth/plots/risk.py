"""Plots for risk models: calibration plot and risk pyramid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.plots._style import (
    _axes,
    _count_formatter,
    _legend_outside,
    _patients,
    _percent_formatter,
    add_caption,
)

__all__ = ["plot_calibration", "plot_risk_pyramid"]

#: Smallest drawn bar, as a fraction of the largest, so a small tier never vanishes.
MIN_BAR_FRACTION = 0.02


def plot_calibration(y_true, risk, *, n_bins: int = 10, strategy: str = "quantile", ax=None,
                     label: str | None = None, population: str | None = None,
                     period: str | None = None, source: str | None = None):
    """Calibration plot: observed rate (Wilson 95 % CI) against mean predicted risk per bin.

    Bins come from :func:`pophealth.risk.evaluation.calibration_table`; the legend (right
    of the axes, clear of the points) gives the calibration intercept and slope of
    :func:`~pophealth.risk.evaluation.calibration_intercept_slope`. Both axes are in %.
    Call again with the same ``ax`` to overlay models.

    Parameters
    ----------
    y_true : array-like of 0/1
    risk : array-like of float in [0, 1]
    n_bins : int, default 10
    strategy : {"quantile", "uniform"}
    label : str, optional
        Legend label of the model.
    population, period, source : str, optional
        Caption line under the axes; the population defaults to the patients scored.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_calibration([0, 1, 0, 1, 0, 0], [0.1, 0.8, 0.2, 0.6, 0.3, 0.1], n_bins=2)
    >>> ax = plot_calibration([0, 1, 0, 1, 0, 0], [0.2, 0.7, 0.2, 0.5, 0.3, 0.2], n_bins=2,
    ...                       ax=ax, label="second model")
    >>> ax.get_xlabel(), len(ax.containers)  # one error-bar container per model
    ('mean predicted risk (%)', 2)
    """
    from pophealth.risk.evaluation import calibration_intercept_slope, calibration_table

    t = calibration_table(y_true, risk, n_bins=n_bins, strategy=strategy)
    a, b = calibration_intercept_slope(np.asarray(y_true, dtype=float), np.asarray(risk, dtype=float))
    ax = _axes(ax, figsize=(7, 5))
    if not ax.lines:
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    x, y = t["mean_risk"].to_numpy(), t["observed_rate"].to_numpy()
    ax.errorbar(x, y, yerr=[y - t["lower_ci"].to_numpy(), t["upper_ci"].to_numpy() - y],
                marker="o", ms=4, capsize=2,
                label=f"{label or 'model'} (intercept {a:.2f}, slope {b:.2f})")
    hi = float(max(x.max(), t["upper_ci"].max())) * 1.05 if len(t) else 1.0
    # an overlay never shrinks the axes below an earlier model's points
    hi = max(hi, ax.get_xlim()[1]) if len(ax.containers) > 1 else hi
    ax.set_xlim(0, min(1.0, hi))
    ax.set_ylim(0, min(1.0, hi))
    ax.xaxis.set_major_formatter(_percent_formatter(1.0))
    ax.yaxis.set_major_formatter(_percent_formatter(1.0))
    ax.set_xlabel("mean predicted risk (%)")
    ax.set_ylabel("observed rate (%, Wilson 95% CI)")
    ax.set_title(f"Calibration ({len(t)} {strategy} bins)")
    _legend_outside(ax)
    add_caption(ax, population or _patients(len(np.asarray(y_true))), period, source)
    return ax


def plot_risk_pyramid(tiers, y_true=None, *, ax=None, population: str | None = None,
                      period: str | None = None, source: str | None = None):
    """Risk pyramid: one bar per tier (highest tier at the top), length = patients.

    Each bar is labelled, to its right, with its count and share of the population and,
    when ``y_true`` is given, the tier's observed event rate. A tier too small to see
    (under 2 % of the largest) is drawn at that minimum length, hatched, and its label
    says "(bar widened)"; the count axis has ticks in patients.

    Parameters
    ----------
    tiers : categorical Series
        From :func:`pophealth.risk.tiers.risk_tiers` (categories low -> very high).
    y_true : array-like of 0/1, optional
        Observed outcome, for the tier's observed rate.
    population, period, source : str, optional
        Caption line under the axes; the population defaults to the patients tiered.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from pophealth.risk.tiers import risk_tiers
    >>> tiers = risk_tiers(np.linspace(0, 1, 200))
    >>> ax = plot_risk_pyramid(tiers)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['low', 'moderate', 'high', 'very high']
    >>> ax.texts[3].get_text()
    ' 1 (0.5%) (bar widened)'
    """
    tiers = pd.Series(tiers)
    if not isinstance(tiers.dtype, pd.CategoricalDtype):
        raise ValueError("plot_risk_pyramid: 'tiers' must be categorical (see risk_tiers)")
    counts = tiers.value_counts(sort=False).reindex(tiers.cat.categories, fill_value=0)
    ax = _axes(ax, figsize=(7, 4))
    n = int(counts.sum())
    widths = counts.to_numpy(dtype=float)
    floor = MIN_BAR_FRACTION * max(float(widths.max(initial=0)), 1.0)
    widened = (widths > 0) & (widths < floor)
    drawn = np.where(widened, floor, widths)
    pos = np.arange(len(counts))
    import matplotlib

    cmap = matplotlib.colormaps["cividis_r"]  # colour-blind safe, light (low) -> dark (high)
    colours = [cmap(x) for x in np.linspace(0.1, 0.9, len(counts))]
    bars = ax.barh(pos, drawn, color=colours, edgecolor="black", linewidth=0.5)
    for bar, wide in zip(bars, widened, strict=True):
        if wide:
            bar.set_hatch("////")
    if y_true is not None:
        rate = pd.Series(np.asarray(y_true, dtype=float), index=tiers.index).groupby(
            tiers, observed=False).mean().reindex(counts.index)
    for i, (tier, k) in enumerate(counts.items()):
        text = f" {k:,} ({100 * k / max(n, 1):.1f}%)"
        if y_true is not None and k:
            text += f"; observed {100 * rate[tier]:.1f}%"
        if widened[i]:
            text += " (bar widened)"
        ax.annotate(text, (drawn[i], i), ha="left", va="center", fontsize=8)
    ax.set_xlim(0, max(float(drawn.max(initial=0)), 1.0) * 1.8)  # room for the labels
    ax.set_yticks(pos, [str(c) for c in counts.index])
    ax.xaxis.set_major_formatter(_count_formatter())
    ax.set_xlabel("patients")
    ax.set_ylabel("risk tier")
    ax.set_title(f"Risk tiers (n = {n:,})")
    add_caption(ax, population or _patients(n), period, source)
    return ax
