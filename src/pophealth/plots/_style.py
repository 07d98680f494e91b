"""Shared style for pophealth's plots (private): palette, axes, number formats, legends.

The palette is Okabe & Ito's eight colours ("Color Universal Design", 2008), which stay
distinguishable under the common colour-vision deficiencies; the eight Bridges to Health
segments get one each, in segment order.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

#: Okabe-Ito colour-blind-safe palette (Okabe & Ito 2008), as hex strings.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: One Okabe-Ito colour per Bridges to Health segment, in segment order (Healthy ... Frailty):
#: light colours for the large low-need segments, strong ones for the small high-need segments.
SEGMENT_COLOURS = (
    OKABE_ITO["sky_blue"],        # Healthy
    OKABE_ITO["yellow"],          # Maternal and infant health
    OKABE_ITO["bluish_green"],    # Acutely ill, likely to recover
    OKABE_ITO["blue"],            # Long-term conditions (stable)
    OKABE_ITO["orange"],          # Disability
    OKABE_ITO["reddish_purple"],  # Incurable cancer (short decline)
    OKABE_ITO["vermillion"],      # Organ failure (limited reserve)
    OKABE_ITO["black"],           # Frailty and dementia (long decline)
)

#: Two-series comparisons (e.g. % of patients vs % of cost; male vs female).
PAIR_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["vermillion"])

#: Better / similar / worse than a comparator (area ranking), colour-blind safe.
COMPARISON_COLOURS = {"higher": OKABE_ITO["vermillion"], "similar": "#999999",
                      "lower": OKABE_ITO["blue"], "none": "#555555"}

_CAPTION_GID = "pophealth-caption"


def _axes(ax, figsize=None):
    """Return ``ax``, or the Axes of a new figure when ``ax`` is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _floats(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def _count(x: float) -> str:
    """A count with thousands separators and no sign (pyramid halves are drawn negative)."""
    return f"{abs(x):,.0f}"


def _abs_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: _count(x))


def _count_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: f"{x:,.0f}")


def _pounds(x: float) -> str:
    """Pounds for a cost axis: £0, £50, £1k, £2.5k, £1m."""
    if x >= 1e6:
        return f"£{x / 1e6:g}m"
    if x >= 1e3:
        return f"£{x / 1e3:g}k"
    return f"£{x:g}"


def _pounds_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: _pounds(x))


def _percent_formatter(xmax: float = 1.0, decimals: int | None = None):
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=xmax, decimals=decimals)


def _legend_outside(ax, **kwargs):
    """A legend to the right of the axes, outside the data area."""
    kwargs.setdefault("fontsize", 8)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     frameon=False, **kwargs)


def caption_text(population: str | None = None, period: str | None = None,
                 source: str | None = None) -> str:
    """The caption line: ``"Population: ...; period: ...; source: ..."``.

    Missing parts read "not stated", so a figure never claims a period or source it
    was not given.

    Examples
    --------
    >>> caption_text("20,000 patients", "12 months to 2025-04-01", "synthetic")
    'Population: 20,000 patients; period: 12 months to 2025-04-01; source: synthetic'
    >>> caption_text()
    'Population: not stated; period: not stated; source: not stated'
    """
    return (f"Population: {population or 'not stated'}; period: {period or 'not stated'}; "
            f"source: {source or 'not stated'}")


def add_caption(ax, population: str | None = None, period: str | None = None,
                source: str | None = None):
    """Write the caption line under ``ax``'s x-axis label (replacing an earlier one).

    Parameters
    ----------
    ax : matplotlib Axes
    population, period, source : str, optional
        E.g. ``"20,000 patients"``, ``"12 months to 2025-04-01"``, ``"synthetic"``
        (or the name of your data set); missing parts read "not stated".

    Returns
    -------
    matplotlib.text.Annotation
        The caption (``gid`` "pophealth-caption").

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from pophealth.plots import add_caption
    >>> fig, ax = plt.subplots()
    >>> add_caption(ax, "20 patients", "2024", "synthetic").get_text()
    'Population: 20 patients; period: 2024; source: synthetic'
    >>> plt.close(fig)
    """
    for text in [t for t in ax.texts if t.get_gid() in (_CAPTION_GID, _CAPTION_GID + "-room")]:
        text.remove()
    # wrap to the axes' width (about 17 characters per inch at 7 pt)
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    text = textwrap.fill(caption_text(population, period, source),
                         max(40, int(width_in * 17)), break_long_words=False)
    where = {"xy": (0.0, 0.0), "xycoords": ("axes fraction", ax.xaxis.label), "xytext": (0, -4),
             "textcoords": "offset points", "ha": "left", "va": "top", "fontsize": 7,
             "annotation_clip": False}
    # x at the axes' left edge, y just under the x-axis label. The caption itself stays out
    # of tight/constrained layout (a long line would squeeze the axes); an invisible one-letter
    # copy with the same number of lines reserves its height.
    room = ax.annotate("\n".join(["P"] * (text.count("\n") + 1)), color="none",
                       gid=_CAPTION_GID + "-room", **where)
    room.set_in_layout(True)
    caption = ax.annotate(text, color="#333333", gid=_CAPTION_GID, **where)
    caption.set_in_layout(False)
    return caption


def _patients(n: int) -> str:
    return f"{n:,} patient" + ("" if n == 1 else "s")
