"""Plot of a register's age-sex structure (population pyramid)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.plots._pyramid import _pyramid
from pophealth.plots._style import PAIR_COLOURS, _axes, _legend_outside, _patients, add_caption

__all__ = ["plot_age_sex_pyramid"]


def plot_age_sex_pyramid(
    register: pd.DataFrame,
    *,
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
    """Age-sex pyramid of a register: males left, females right, counts without signs.

    Ages are grouped in ``band_width``-year bands up to ``top_band``+; patients with
    another or missing sex or age are left out and counted in the title.

    Parameters
    ----------
    register : DataFrame
        One row per patient with ``age`` and ``sex`` columns.
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
    >>> from pophealth.plots import plot_age_sex_pyramid
    >>> r = pd.DataFrame({"age": [3, 40, 41, 95, None], "sex": ["F", "M", "M", "F", "F"]})
    >>> ax = plot_age_sex_pyramid(r, source="synthetic")
    >>> ax.get_title()
    'Age-sex structure (1 with other/missing sex or age not shown)'
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['males', 'females']
    """
    ax = _axes(ax, figsize=(7, 5))
    codes = np.zeros(len(register), dtype=np.int64)
    n_out = _pyramid(ax, register[age], register[sex], codes, ["patients"], ["#999999"],
                     band_width=band_width, top_band=top_band, male=male, female=female,
                     legend_title=None)
    # recolour: males / females rather than one group
    bars = ax.containers
    for container, colour, name in zip(bars, PAIR_COLOURS, ("males", "females"), strict=True):
        for patch in container:
            patch.set_facecolor(colour)
        container.set_label(name)
    _legend_outside(ax)
    ax.set_title("Age-sex structure"
                 + (f" ({n_out} with other/missing sex or age not shown)" if n_out else ""))
    add_caption(ax, population or _patients(len(register) - n_out), period, source)
    return ax
