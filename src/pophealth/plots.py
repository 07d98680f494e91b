"""Matplotlib helpers for area tables.

Every function takes ``ax=None`` (a new figure is made when omitted), returns the
Axes and never calls ``plt.show()``. matplotlib is imported lazily, so pophealth does
not need it unless you plot (``pip install pophealth[plot]``).

* :func:`plot_rates_by_imd` - value with confidence limits by IMD decile/quintile.
* :func:`plot_funnel` - funnel plot of area values against population with exact
  Poisson/Byar (rates) or Wilson (proportions) control limits around a target.
* :func:`plot_area_ranking` - areas ranked by value with confidence limits, coloured
  by comparison with a target (Fingertips-style "better/similar/worse" league).

Suppressed rows (``<NA>`` values) are left out and counted in the legend/title.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.rates import funnel_limits

__all__ = ["plot_rates_by_imd", "plot_funnel", "plot_area_ranking"]

_COLOURS = {"higher": "#d7191c", "similar": "#fdae61", "lower": "#2b83ba", "none": "#7f7f7f"}


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _stat_label(table: pd.DataFrame, value: str) -> str:
    """The table's ``statistic`` (e.g. "dsr per 100,000") if it has one, else the column name."""
    if "statistic" in table.columns:
        stats = table["statistic"].dropna()
        stats = stats[~stats.astype(str).str.contains(" NA ")]
        if len(stats):
            return str(stats.iloc[0])
    return value


def _floats(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def plot_rates_by_imd(
    table: pd.DataFrame,
    *,
    quantile: str = "area",
    value: str = "value",
    lower_ci: str = "lower_ci",
    upper_ci: str = "upper_ci",
    sii: pd.DataFrame | None = None,
    label: str | None = None,
    ax=None,
):
    """Plot values with confidence limits across deprivation quantiles.

    Parameters
    ----------
    table : DataFrame
        One row per quantile (e.g. ``crude_rate`` or ``dsr`` by ``imd_decile``);
        non-numeric quantiles such as ``"unknown"`` are skipped.
    sii : DataFrame, optional
        Output of :func:`pophealth.inequality.sii` (one group); SII and RII are shown
        in the legend label.
    label : str, optional
        Legend label of the series.
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
    >>> ax = plot_rates_by_imd(t)
    >>> ax.get_xlabel()
    'IMD quantile (1 = most deprived)'
    """
    ax = _axes(ax)
    q = _floats(table[quantile].astype("string") if not pd.api.types.is_numeric_dtype(
        table[quantile].dtype) else table[quantile])
    y, lo, hi = _floats(table[value]), _floats(table[lower_ci]), _floats(table[upper_ci])
    keep = ~np.isnan(q) & ~np.isnan(y)
    order = np.argsort(q[keep], kind="stable")
    q, y, lo, hi = q[keep][order], y[keep][order], lo[keep][order], hi[keep][order]
    text = label or ""
    if sii is not None and {"statistic", "value"} <= set(sii.columns):
        stats = sii.set_index("statistic")["value"]
        parts = [f"{k.upper()} {float(stats[k]):.3g}" for k in ("sii", "rii") if k in stats]
        text = (text + " " if text else "") + "(" + ", ".join(parts) + ")"
    ax.errorbar(q, y, yerr=[y - lo, hi - y], fmt="o-", capsize=3, label=text or None)
    ax.set_xlabel("IMD quantile (1 = most deprived)")
    ax.set_ylabel(_stat_label(table, value))
    if len(q):
        ax.set_xticks(q)
    if text:
        ax.legend()
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
    ax=None,
):
    """Funnel plot: area values against their population with control limits.

    Parameters
    ----------
    table : DataFrame
        Area table (e.g. from ``crude_rate`` or ``proportion``); suppressed rows skipped.
    target : float, optional
        Centre line on the ``multiplier`` scale. Default: population-weighted mean of
        the plotted values.
    kind : {"rate", "proportion"}
        Poisson (exact below 10 expected, Byar's otherwise) or Wilson limits.
    multiplier : float
        The scale of ``value`` (100,000 for rates per 100,000; 1 or 100 for proportions).
    confidence : float or sequence of float, default (0.95, 0.998)
    label : str, optional
        Column naming the areas, used with ``annotate``.
    annotate : int, default 0
        Label the ``annotate`` points furthest outside the outermost limits.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

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
        ax.axhline(target, color="grey", lw=1, label=f"target {target:.4g}")
        styles = ["--", ":", "-."]
        cols = [c for c in limits.columns if c.startswith("lower_")]
        for i, col in enumerate(cols):
            suffix = col[len("lower_"):]
            ls = styles[i % len(styles)]
            ax.plot(grid, limits[col], ls=ls, color="C0",
                    label=f"{suffix.replace('_', '.')} % limits")
            ax.plot(grid, limits[f"upper_{suffix}"], ls=ls, color="C0")
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
                                xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
    ax.set_xlabel(denominator)
    ax.set_ylabel(_stat_label(table, value))
    ax.legend(fontsize=7)
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
    ax=None,
):
    """Rank areas by value with confidence limits (league chart).

    Areas whose interval lies wholly above ``target`` are coloured "higher", wholly
    below "lower", otherwise "similar" (all grey without a target).

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
        ax.axvline(target, color="black", lw=1)
    pos = np.arange(len(y))
    for group, colour in _COLOURS.items():
        m = groups == group
        if m.any():
            ax.errorbar(y[m], pos[m], xerr=[y[m] - lo[m], hi[m] - y[m]], fmt="o", ms=4,
                        capsize=2, color=colour, label=None if group == "none" else group)
    ax.set_yticks(pos)
    ax.set_yticklabels(names)
    ax.set_xlabel(_stat_label(table, value))
    title = f"Areas ranked by {value}" + (f" ({n_sup} suppressed, not shown)" if n_sup else "")
    ax.set_title(title)
    if target is not None:
        ax.legend(fontsize=7)
    return ax


# --- segments (pophealth.segments) -----------------------------------------------------------

__all__ += ["plot_segment_pyramid", "plot_segment_cost"]


def _segment_colours(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.95, 0.05, n)] if n > 1 else [cmap(0.5)]


def plot_segment_pyramid(
    patients: pd.DataFrame,
    *,
    segment: str = "segment",
    age: str = "age",
    sex: str = "sex",
    band_width: int = 5,
    top_band: int = 90,
    male: Sequence = ("M", "Male", "male", 1, "1"),
    female: Sequence = ("F", "Female", "female", 2, "2"),
    ax=None,
):
    """Population pyramid (males left, females right) stacked by segment.

    Ages are grouped in ``band_width``-year bands up to ``top_band``+; patients with
    another or missing sex or age are left out and counted in the title. Segments are
    stacked in category order (e.g. Bridges to Health 1 -> 8 outwards).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pophealth.plots import plot_segment_pyramid
    >>> seg = pd.Categorical(["Healthy", "Frail", "Healthy"],
    ...                      categories=["Healthy", "Frail"], ordered=True)
    >>> p = pd.DataFrame({"segment": seg, "age": [30, 85, 3], "sex": ["F", "M", "X"]})
    >>> ax = plot_segment_pyramid(p)
    >>> ax.get_title()
    'Population by age, sex and segment (1 with other/missing sex or age not shown)'
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['Healthy', 'Frail']
    """
    ax = _axes(ax)
    seg = patients[segment]
    cats = list(seg.cat.categories) if isinstance(seg.dtype, pd.CategoricalDtype) \
        else sorted(pd.unique(seg.dropna()))
    a = _floats(patients[age])
    sx = patients[sex].astype(object).to_numpy()
    is_m = pd.Series(sx).isin(list(male)).to_numpy()
    is_f = pd.Series(sx).isin(list(female)).to_numpy()
    scode = pd.Categorical(seg.to_numpy(), categories=cats).codes
    keep = (is_m | is_f) & ~np.isnan(a) & (scode >= 0)
    n_bands = top_band // band_width + 1
    band = np.minimum(np.nan_to_num(a) // band_width, n_bands - 1).astype(np.int64)
    counts = np.zeros((2, n_bands, len(cats)))
    np.add.at(counts, (is_f[keep].astype(np.int64), band[keep], scode[keep]), 1)
    pos = np.arange(n_bands)
    colours = _segment_colours(len(cats))
    left_m = np.zeros(n_bands)
    left_f = np.zeros(n_bands)
    for j, name in enumerate(cats):
        ax.barh(pos, -counts[0, :, j], left=-left_m, color=colours[j], height=0.9,
                label=str(name))
        ax.barh(pos, counts[1, :, j], left=left_f, color=colours[j], height=0.9)
        left_m += counts[0, :, j]
        left_f += counts[1, :, j]
    labels = [f"{i * band_width}-{i * band_width + band_width - 1}" for i in range(n_bands - 1)]
    ax.set_yticks(pos)
    ax.set_yticklabels(labels + [f"{top_band}+"], fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    ax.xaxis.set_major_formatter(_abs_formatter())
    ax.set_xlabel("patients (males left, females right)")
    n_out = int((~keep).sum())
    ax.set_title("Population by age, sex and segment"
                 + (f" ({n_out} with other/missing sex or age not shown)" if n_out else ""))
    ax.legend(fontsize=7, loc="lower right")
    return ax


def _abs_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: f"{abs(x):,.0f}")


def plot_segment_cost(summary: pd.DataFrame, *, share: str = "share",
                      cost_share: str = "cost_share", ax=None):
    """Share of patients vs share of cost per segment (grouped horizontal bars).

    Takes the output of :func:`pophealth.segments.segment_summary` (index = segment).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pophealth.plots import plot_segment_cost
    >>> s = pd.DataFrame({"share": [0.9, 0.1], "cost_share": [0.4, 0.6]},
    ...                  index=pd.Index(["Healthy", "Frail"], name="segment"))
    >>> ax = plot_segment_cost(s)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['Healthy', 'Frail']
    """
    ax = _axes(ax)
    names = [str(x) if not isinstance(x, tuple) else " / ".join(map(str, x))
             for x in summary.index]
    pos = np.arange(len(names))
    p = 100 * _floats(summary[share])
    c = 100 * _floats(summary[cost_share])
    ax.barh(pos - 0.2, p, height=0.4, color="#2b83ba", label="% of patients")
    ax.barh(pos + 0.2, c, height=0.4, color="#d7191c", label="% of cost")
    for y, v in zip(pos + 0.2, c, strict=True):
        if not np.isnan(v):
            ax.text(v, y, f" {v:.1f}%", va="center", fontsize=7)
    ax.set_yticks(pos)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("%")
    ax.set_title("Share of patients and of cost by segment")
    ax.legend(fontsize=7, loc="lower right")
    return ax


__all__ += ["lorenz"]


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


# ----------------------------------------------------------------------------- risk models

__all__ += ["plot_calibration", "plot_risk_pyramid"]


def plot_calibration(y_true, risk, *, n_bins: int = 10, strategy: str = "quantile", ax=None,
                     label: str | None = None):
    """Calibration plot: observed rate (Wilson 95 % CI) against mean predicted risk per bin.

    Bins come from :func:`pophealth.evaluation.calibration_table`; the legend gives the
    calibration intercept and slope of :func:`~pophealth.evaluation.calibration_intercept_slope`.
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
    from pophealth.evaluation import calibration_intercept_slope, calibration_table

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
    >>> from pophealth.tiers import risk_tiers
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
