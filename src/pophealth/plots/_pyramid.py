"""Population pyramid drawing shared by the age-sex and segment pyramids (private)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.plots._style import _abs_formatter, _floats, _legend_outside


def _pyramid(ax, age: pd.Series, sex: pd.Series, group_codes: np.ndarray,
             group_names: Sequence[str], colours: Sequence, *, band_width: int, top_band: int,
             male: Sequence, female: Sequence, legend_title: str | None) -> int:
    """Draw males left (negative) and females right, stacked by group; return the count left out.

    Patients with another or missing sex, a missing age or no group (code -1) are left
    out; the caller reports the count. Tick labels on the count axis carry no sign.
    """
    a = _floats(age)
    sx = pd.Series(sex.astype(object).to_numpy())
    is_m = sx.isin(list(male)).to_numpy()
    is_f = sx.isin(list(female)).to_numpy()
    keep = (is_m | is_f) & ~np.isnan(a) & (a >= 0) & (group_codes >= 0)
    n_bands = top_band // band_width + 1
    band = np.minimum(np.nan_to_num(a) // band_width, n_bands - 1).astype(np.int64)
    counts = np.zeros((2, n_bands, len(group_names)))
    np.add.at(counts, (is_f[keep].astype(np.int64), band[keep], group_codes[keep]), 1)
    pos = np.arange(n_bands)
    left_m = np.zeros(n_bands)
    left_f = np.zeros(n_bands)
    for j, name in enumerate(group_names):
        ax.barh(pos, -counts[0, :, j], left=-left_m, color=colours[j], height=0.9,
                label=str(name), edgecolor="white", linewidth=0.3)
        ax.barh(pos, counts[1, :, j], left=left_f, color=colours[j], height=0.9,
                edgecolor="white", linewidth=0.3)
        left_m += counts[0, :, j]
        left_f += counts[1, :, j]
    labels = [f"{i * band_width}-{i * band_width + band_width - 1}" for i in range(n_bands - 1)]
    ax.set_yticks(pos)
    ax.set_yticklabels(labels + [f"{top_band}+"], fontsize=7)
    widest = max(float(left_m.max(initial=0)), float(left_f.max(initial=0)), 1.0)
    ax.set_xlim(-widest * 1.08, widest * 1.08)
    ax.axvline(0, color="black", lw=0.8)
    ax.xaxis.set_major_formatter(_abs_formatter())
    ax.set_xlabel("patients (males left, females right)")
    ax.set_ylabel("age band (years)")
    if len(group_names) > 1:
        _legend_outside(ax, title=legend_title, reverse=True)
    return int((~keep).sum())
