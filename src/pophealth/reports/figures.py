"""The report's figures: :mod:`pophealth.plots` drawn from aggregate inputs, as PNG data URIs.

Each function draws one figure on a fresh :class:`matplotlib.figure.Figure` (no pyplot
state, no global backend switch) and returns a ``data:image/png;base64,...`` URI for an
``<img>`` in a self-contained page. The inputs are published (disclosure-controlled)
counts: the pyramids are drawn from counts expanded back into one row per counted
person of a *rounded* count, never from patient rows.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

__all__ = ["png_data_uri", "segment_pyramid_figure", "segment_cost_figure",
           "risk_pyramid_figure", "lorenz_figure", "funnel_figure", "imd_figure",
           "pcn_ranking_figure"]


def _figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.subplots()


def png_data_uri(fig) -> str:
    """A figure as a ``data:image/png;base64,`` URI (PNG, 100 dpi, tight layout).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from pophealth.reports.figures import png_data_uri
    >>> fig = Figure(figsize=(1, 1))
    >>> _ = fig.subplots().plot([0, 1])
    >>> png_data_uri(fig)[:30]
    'data:image/png;base64,iVBORw0K'
    """
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def segment_pyramid_figure(pyramid: pd.DataFrame, **caption) -> str:
    """Age-sex pyramid by segment from published counts (see ``ReportTables.pyramid``)."""
    from pophealth.plots import plot_segment_pyramid

    n = pyramid["patients"].fillna(0).to_numpy(dtype=np.int64)
    cats = pyramid.attrs.get("categories") or sorted(pyramid["segment"].unique())
    rows = pd.DataFrame({
        "segment": pd.Categorical(np.repeat(pyramid["segment"].to_numpy(), n),
                                  categories=cats, ordered=True),
        "age": np.repeat(pyramid["band"].to_numpy(), n),
        "sex": np.repeat(pyramid["sex"].to_numpy(), n)})
    fig, ax = _figure(7.5, 5.0)
    plot_segment_pyramid(rows, ax=ax, **caption)
    ax.set_title("Population by age, sex and segment\n(counts rounded to 5; 1-7 not shown)")
    return png_data_uri(fig)


def segment_cost_figure(segments: pd.DataFrame, **caption) -> str:
    """Share of patients and of cost by segment (published percentages)."""
    from pophealth.plots import plot_segment_cost

    summary = pd.DataFrame({
        "share": segments["pct_of_patients"].astype("Float64").to_numpy(
            dtype=float, na_value=np.nan) / 100,
        "cost_share": segments["pct_of_cost"].astype("Float64").to_numpy(
            dtype=float, na_value=np.nan) / 100},
        index=pd.Index(segments["segment"], name="segment"))
    fig, ax = _figure()
    plot_segment_cost(summary, ax=ax, **caption)
    return png_data_uri(fig)


def risk_pyramid_figure(tiers: pd.DataFrame, **caption) -> str:
    """Risk pyramid from published tier counts."""
    from pophealth.plots import plot_risk_pyramid

    n = tiers["patients"].fillna(0).to_numpy(dtype=np.int64)
    cats = tiers["tier"].tolist()
    series = pd.Series(pd.Categorical.from_codes(np.repeat(np.arange(len(cats)), n),
                                                 categories=cats, ordered=True))
    fig, ax = _figure(7.0, 3.6)
    plot_risk_pyramid(series, ax=ax, **caption)
    ax.set_title(f"Risk tiers (n = {int(n.sum()):,}; counts rounded to 5; 1-7 not shown)")
    return png_data_uri(fig)


def lorenz_figure(concentration, **caption) -> str:
    """Lorenz curve of cost (101 points; ``n`` is the rounded population)."""
    from pophealth.plots import lorenz

    fig, ax = _figure(5.5, 4.5)
    lorenz(concentration, ax=ax, shares=(0.01, 0.05, 0.2), **caption)
    ax.set_title(f"Cost concentration (n = {concentration.n:,}, rounded to 5)")
    return png_data_uri(fig)


def funnel_figure(rates: pd.DataFrame, *, multiplier: float, **caption) -> str:
    """Funnel plot of published area rates (suppressed areas left out and counted)."""
    from pophealth.plots import plot_funnel

    fig, ax = _figure()
    plot_funnel(rates, kind="rate", multiplier=multiplier, annotate=0, ax=ax,
                **caption)
    return png_data_uri(fig)


def imd_figure(rates: pd.DataFrame, sii_table: pd.DataFrame | None, **caption) -> str:
    """Rates by IMD decile with the SII/RII in the legend."""
    from pophealth.plots import plot_rates_by_imd

    fig, ax = _figure()
    plot_rates_by_imd(rates, sii=sii_table, label="rate", ax=ax, **caption)
    return png_data_uri(fig)


def pcn_ranking_figure(rates: pd.DataFrame, **caption) -> str:
    """PCN rates ranked, against the population-weighted mean of the published rates."""
    from pophealth.plots import plot_area_ranking

    v = rates["value"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    d = rates["denominator"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(v) & ~np.isnan(d)
    target = float(np.sum(v[ok] * d[ok]) / np.sum(d[ok])) if ok.any() and d[ok].sum() else None
    fig, ax = _figure(7.0, max(2.5, 0.35 * len(rates) + 1.2))
    plot_area_ranking(rates, target=target, ax=ax, **caption)
    return png_data_uri(fig)
