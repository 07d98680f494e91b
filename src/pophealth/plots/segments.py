"""Plots for segmentation: segment pyramid by age and sex, patient vs cost shares."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.plots._style import _abs_formatter, _axes, _floats

__all__ = ["plot_segment_pyramid", "plot_segment_cost"]


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
