"""Area plots: take ax=, return it, never call plt.show()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pophealth.areas.inequality import sii  # noqa: E402
from pophealth.areas.rates import crude_rate  # noqa: E402
from pophealth.plots import plot_area_ranking, plot_funnel, plot_rates_by_imd  # noqa: E402


@pytest.fixture
def no_show(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", boom)
    yield
    plt.close("all")


def _table():
    rng = np.random.default_rng(3)
    pops = rng.integers(800, 3000, size=30)
    t = pd.DataFrame({"area_type": "lsoa", "area": [f"E{i:03d}" for i in range(30)],
                      "numerator": rng.poisson(pops * 0.05), "denominator": pops})
    return crude_rate(t)


def test_plots_use_and_return_given_axes(no_show):
    table = _table()
    fig, axes = plt.subplots(1, 3)
    assert plot_funnel(table, ax=axes[0], annotate=3) is axes[0]
    assert plot_area_ranking(table, target=5000.0, top=10, ax=axes[1]) is axes[1]
    imd = pd.DataFrame({"area": [str(i) for i in range(1, 11)], "denominator": 1000.0,
                        "value": np.linspace(80, 40, 10)})
    imd["lower_ci"], imd["upper_ci"] = imd["value"] * 0.9, imd["value"] * 1.1
    result = sii(imd, random_state=0, repetitions=1000)
    assert plot_rates_by_imd(imd, sii=result, ax=axes[2]) is axes[2]
    assert "SII" in axes[2].get_legend().get_texts()[0].get_text()
    assert len(axes[1].get_yticklabels()) == 10


def test_plots_make_their_own_axes(no_show):
    ax = plot_funnel(_table(), kind="rate")
    assert ax.get_xscale() == "log"
