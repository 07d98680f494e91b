"""Shared helpers for pophealth's plots (private): axes creation and number formats."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _axes(ax):
    """Return ``ax``, or the Axes of a new figure when ``ax`` is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _floats(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def _abs_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: f"{abs(x):,.0f}")
