"""Plots for risk models: calibration plot and risk pyramid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.plots._style import _axes

__all__ = ["plot_calibration", "plot_risk_pyramid"]


def plot_calibration(y_true, risk, *, n_bins: int = 10, strategy: str = "quantile", ax=None,
                     label: str | None = None):
    """Calibration plot: observed rate (Wilson 95 % CI) against mean predicted risk per bin.

    Bins come from :func:`pophealth.risk.evaluation.calibration_table`; the legend gives the
    calibration intercept and slope of :func:`~pophealth.risk.evaluation.calibration_intercept_slope`.
    Call again with the same ``ax`` to overlay models.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_calibration([0, 1, 0, 1, 0, 0], [0.1, 0.8, 0.2, 0.6, 0.3, 0.1], n_bins=2)
    >>> ax = plot_calibration([0, 1, 0, 1, 0, 0], [0.2, 0.7, 0.2, 0.5, 0.3, 0.2], n_bins=2,
    ...                       ax=ax, label="second model")
    >>> ax.get_xlabel(), len(ax.containers)  # one error-bar container per model
    ('mean predicted risk', 2)
    """
    from pophealth.risk.evaluation import calibration_intercept_slope, calibration_table

    t = calibration_table(y_true, risk, n_bins=n_bins, strategy=strategy)
    a, b = calibration_intercept_slope(np.asarray(y_true, dtype=float), np.asarray(risk, dtype=float))
    ax = _axes(ax)
    if not ax.lines:
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    x, y = t["mean_risk"].to_numpy(), t["observed_rate"].to_numpy()
    ax.errorbar(x, y, yerr=[y - t["lower_ci"].to_numpy(), t["upper_ci"].to_numpy() - y],
                marker="o", ms=4, capsize=2,
                label=f"{label or 'model'} (intercept {a:.2f}, slope {b:.2f})")
    hi = float(max(x.max(), t["upper_ci"].max())) * 1.05 if len(t) else 1.0
    ax.set_xlim(0, min(1.0, hi))
    ax.set_ylim(0, min(1.0, hi))
    ax.set_xlabel("mean predicted risk")
    ax.set_ylabel("observed rate")
    ax.set_title(f"Calibration ({len(t)} {strategy} bins)")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_risk_pyramid(tiers, y_true=None, *, ax=None):
    """Risk pyramid: one centred bar per tier (highest tier at the top), width = patients.

    Each bar is labelled with its count and share of the population and, when
    ``y_true`` is given, the tier's observed event rate.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from pophealth.risk.tiers import risk_tiers
    >>> tiers = risk_tiers(np.linspace(0, 1, 200))
    >>> ax = plot_risk_pyramid(tiers)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['low', 'moderate', 'high', 'very high']
    """
    tiers = pd.Series(tiers)
    if not isinstance(tiers.dtype, pd.CategoricalDtype):
        raise ValueError("plot_risk_pyramid: 'tiers' must be categorical (see risk_tiers)")
    counts = tiers.value_counts(sort=False).reindex(tiers.cat.categories, fill_value=0)
    ax = _axes(ax)
    n = int(counts.sum())
    widths = counts.to_numpy(dtype=float)
    pos = np.arange(len(counts))
    import matplotlib

    cmap = matplotlib.colormaps["RdYlGn_r"]
    colours = [cmap(x) for x in np.linspace(0.15, 0.9, len(counts))]  # low green .. top red
    ax.barh(pos, widths, left=-widths / 2, color=colours, edgecolor="white")
    if y_true is not None:
        rate = pd.Series(np.asarray(y_true, dtype=float), index=tiers.index).groupby(
            tiers, observed=False).mean().reindex(counts.index)
    for i, (tier, k) in enumerate(counts.items()):
        text = f"{k:,} ({100 * k / max(n, 1):.1f}%)"
        if y_true is not None and k:
            text += f"; observed {100 * rate[tier]:.1f}%"
        ax.annotate(text, (0, i), ha="center", va="center", fontsize=8)
    ax.set_yticks(pos, [str(c) for c in counts.index])
    ax.set_xticks([])
    ax.set_xlabel("patients")
    ax.set_title(f"Risk tiers (n = {n:,})")
    return ax
