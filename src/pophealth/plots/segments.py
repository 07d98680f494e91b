"""Plots for segmentation: segment pyramid by age and sex, patient vs cost shares."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.plots._pyramid import _pyramid
from pophealth.plots._style import (
    PAIR_COLOURS,
    SEGMENT_COLOURS,
    _axes,
    _floats,
    _legend_outside,
    _patients,
    _percent_formatter,
    add_caption,
)

__all__ = ["plot_segment_pyramid", "plot_segment_cost", "segment_colours"]


def segment_colours(n: int) -> list[str]:
    """Colours for ``n`` segments in order: the Okabe-Ito palette for up to 8.

    Up to eight segments (e.g. Bridges to Health) get distinct colour-blind-safe
    colours from :data:`pophealth.plots.SEGMENT_COLOURS`; more than eight fall back to
    matplotlib's ``tab20`` (distinct, but not colour-blind safe).

    Examples
    --------
    >>> segment_colours(2)
    ['#56B4E9', '#F0E442']
    """
    if n <= len(SEGMENT_COLOURS):
        return list(SEGMENT_COLOURS[:n])
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps["tab20"]
    return [to_hex(cmap(i % 20)) for i in range(n)]


def _categories(seg: pd.Series) -> list:
    if isinstance(seg.dtype, pd.CategoricalDtype):
        return list(seg.cat.categories)
    return sorted(pd.unique(seg.dropna()))


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
    population: str | None = None,
    period: str | None = None,
    source: str | None = None,
    ax=None,
):
    """Population pyramid (males left, females right) stacked by segment.

    Ages are grouped in ``band_width``-year bands up to ``top_band``+; patients with
    another or missing sex or age are left out and counted in the title. Segments are
    stacked in category order (e.g. Bridges to Health 1 -> 8 outwards), one colour-blind-safe
    colour each (:func:`segment_colours`); the legend sits right of the axes, outside
    the bars, and the count axis reads without signs on both sides.

    Parameters
    ----------
    patients : DataFrame
        One row per patient with ``segment``, ``age`` and ``sex`` columns.
    population, period, source : str, optional
        Caption line under the axes; the population defaults to the patients shown.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from pophealth.plots import plot_segment_pyramid
    >>> seg = pd.Categorical(["Healthy", "Frail", "Healthy"],
    ...                      categories=["Healthy", "Frail"], ordered=True)
    >>> p = pd.DataFrame({"segment": seg, "age": [30, 85, 3], "sex": ["F", "M", "X"]})
    >>> ax = plot_segment_pyramid(p, source="synthetic")
    >>> ax.get_title()
    'Population by age, sex and segment (1 with other/missing sex or age not shown)'
    >>> [t.get_text() for t in ax.get_legend().get_texts()]  # outermost segment first
    ['Frail', 'Healthy']
    """
    ax = _axes(ax, figsize=(8, 5))
    seg = patients[segment]
    cats = _categories(seg)
    scode = pd.Categorical(seg.to_numpy(), categories=cats).codes.astype(np.int64)
    n_out = _pyramid(ax, patients[age], patients[sex], scode, [str(c) for c in cats],
                     segment_colours(len(cats)), band_width=band_width, top_band=top_band,
                     male=male, female=female, legend_title=segment)
    ax.set_title("Population by age, sex and segment"
                 + (f" ({n_out} with other/missing sex or age not shown)" if n_out else ""))
    add_caption(ax, population or _patients(len(patients) - n_out), period, source)
    return ax


def plot_segment_cost(summary: pd.DataFrame, *, share: str = "share",
                      cost_share: str = "cost_share", cost_label: str = "cost",
                      population: str | None = None, period: str | None = None,
                      source: str | None = None, ax=None):
    """Share of patients vs share of cost per segment (grouped horizontal bars, in %).

    Takes the output of :func:`pophealth.segments.segment_summary` (index = segment).
    Both bars of every segment are labelled with their percentage, so small segments
    read even when their bars are too short to see.

    Parameters
    ----------
    summary : DataFrame
        Index = segment, with ``share`` and ``cost_share`` as fractions (0-1) and,
        optionally, ``n`` (used for the caption's population).
    cost_label : str, default "cost"
        What the cost is, e.g. "prior-year cost" (legend: "% of <cost_label>").
    population, period, source : str, optional
        Caption line under the axes.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

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
    >>> ax.get_xlabel()
    'share of all patients / of all cost (%)'
    """
    ax = _axes(ax, figsize=(8, 5))
    names = [str(x) if not isinstance(x, tuple) else " / ".join(map(str, x))
             for x in summary.index]
    pos = np.arange(len(names))
    p = 100 * _floats(summary[share])
    c = 100 * _floats(summary[cost_share])
    ax.barh(pos - 0.2, p, height=0.4, color=PAIR_COLOURS[0], label="% of patients")
    ax.barh(pos + 0.2, c, height=0.4, color=PAIR_COLOURS[1], label=f"% of {cost_label}")
    for offset, values in ((-0.2, p), (0.2, c)):
        for y, v in zip(pos + offset, values, strict=True):
            if not np.isnan(v):
                ax.text(v, y, f" {v:.1f}%", va="center", fontsize=7)
    top = np.nanmax(np.concatenate([p, c, [1.0]]))
    ax.set_xlim(0, top * 1.15)  # room for the value labels
    ax.set_yticks(pos)
    ax.set_yticklabels([textwrap.fill(n, 24) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_percent_formatter(100, 0))
    ax.set_xlabel(f"share of all patients / of all {cost_label} (%)")
    ax.set_title("Share of patients and of cost by segment")
    _legend_outside(ax)
    n = int(_floats(summary["n"]).sum()) if "n" in summary.columns else None
    add_caption(ax, population or (_patients(n) if n is not None else None), period, source)
    return ax
