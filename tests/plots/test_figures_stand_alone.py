"""Every figure stands on its own (issue 15): title, labelled axes with units, readable ticks,
legends clear of the data, colour-blind-safe segment colours, and a caption line.

Each plot function is drawn on crafted data, rendered (``fig.canvas.draw()``) and then
inspected as a reader would see it: tick label texts, legend and artist extents in pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pophealth import plots  # noqa: E402
from pophealth.risk.tiers import risk_tiers  # noqa: E402

B2H = ["Healthy", "Maternal and infant health", "Acutely ill, likely to recover",
       "Long-term conditions (stable)", "Disability", "Incurable cancer (short decline)",
       "Organ failure (limited reserve)", "Frailty and dementia (long decline)"]
CAPTION = dict(population=None, period="12 months to 2025-04-01", source="synthetic")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# ---------------------------------------------------------------- crafted inputs
def _patients() -> pd.DataFrame:
    """8 B2H segments, both sexes, all ages; crowded young female bands (the old legend spot)."""
    rng = np.random.default_rng(0)
    n = 4_000
    seg = pd.Categorical(rng.choice(B2H, n, p=[.55, .02, .05, .25, .02, .01, .02, .08]),
                         categories=B2H, ordered=True)
    return pd.DataFrame({"segment": seg, "age": rng.integers(0, 100, n),
                         "sex": rng.choice(["M", "F"], n), "prior_cost": rng.gamma(0.5, 800, n)})


def _area_table(n_areas: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    den = rng.integers(800, 3000, n_areas).astype(float)
    # two far outside the funnel, the rest within 3 per 1,000 of the target (well inside)
    value = np.r_[[300.0, 10.0], np.linspace(97.0, 103.0, n_areas - 2)]
    return pd.DataFrame({"area_type": "lsoa", "area": [f"E{i:03d}" for i in range(n_areas)],
                         "denominator": den, "value": value, "lower_ci": value * 0.85,
                         "upper_ci": value * 1.15, "statistic": "crude rate per 1,000"})


def _imd_table(levels: int = 10, area_type: str | None = "imd_decile") -> pd.DataFrame:
    q = np.arange(1, levels + 1)
    t = pd.DataFrame({"area": q.astype(str), "denominator": 1000.0,
                      "value": np.linspace(140, 60, levels), "statistic": "dsr per 1,000"})
    t["lower_ci"], t["upper_ci"] = t["value"] - 10, t["value"] + 10
    if area_type:
        t.insert(0, "area_type", area_type)
    return t


def _all_figures():
    """(name, Axes) for every public plot function, each on its own figure, rendered."""
    p = _patients()
    summary = pd.DataFrame({"n": p.groupby("segment", observed=False).size()})
    summary["share"] = summary["n"] / summary["n"].sum()
    cost = p.groupby("segment", observed=False)["prior_cost"].sum()
    summary["cost_share"] = cost / cost.sum()
    rng = np.random.default_rng(2)
    risk = rng.beta(1, 12, 5_000)
    y = (rng.random(5_000) < risk).astype(int)
    sii = pd.DataFrame({"statistic": ["sii", "rii"], "value": [-80.0, 0.45],
                        "lower_ci": [-95.0, 0.38], "upper_ci": [-65.0, 0.52]})
    out = [
        ("age_sex_pyramid", plots.plot_age_sex_pyramid(p, **CAPTION)),
        ("segment_pyramid", plots.plot_segment_pyramid(p, **CAPTION)),
        ("segment_cost", plots.plot_segment_cost(summary, **CAPTION)),
        ("cost_distribution", plots.plot_cost_distribution(p["prior_cost"], **CAPTION)),
        ("lorenz", plots.lorenz(p["prior_cost"].to_numpy(), **CAPTION)),
        ("calibration", plots.plot_calibration(y, risk, **CAPTION)),
        ("risk_pyramid", plots.plot_risk_pyramid(risk_tiers(risk), y, **CAPTION)),
        ("rates_by_imd", plots.plot_rates_by_imd(_imd_table(), sii=sii, **CAPTION)),
        ("funnel", plots.plot_funnel(_area_table(), multiplier=1000, annotate=3, **CAPTION)),
        ("area_ranking", plots.plot_area_ranking(_area_table(), target=100.0, **CAPTION)),
    ]
    for _, ax in out:
        ax.figure.canvas.draw()
    return out


FIGURES = ["age_sex_pyramid", "segment_pyramid", "segment_cost", "cost_distribution", "lorenz",
           "calibration", "risk_pyramid", "rates_by_imd", "funnel", "area_ranking"]

#: The unit each figure's axis labels must state (hand-written from the issue's list).
UNITS = {
    "age_sex_pyramid": ("patients", "years"),
    "segment_pyramid": ("patients", "years"),
    "segment_cost": ("(%)",),
    "cost_distribution": ("£", "patients"),
    "lorenz": ("%", "%"),
    "calibration": ("%", "%"),
    "risk_pyramid": ("patients",),
    "rates_by_imd": ("per 1,000", "IMD decile"),
    "funnel": ("per 1,000", "people"),
    "area_ranking": ("per 1,000",),
}


@pytest.fixture(scope="module")
def figures():
    figs = dict(_all_figures())
    yield figs
    plt.close("all")


# ---------------------------------------------------------------- geometry helpers
def _densify(xy: np.ndarray, k: int = 20) -> np.ndarray:
    if len(xy) < 2:
        return xy
    t = np.linspace(0, 1, k)[:, None, None]
    seg = xy[:-1][None] * (1 - t) + xy[1:][None] * t
    return seg.reshape(-1, 2)


def _data_extents(ax):
    """Pixel boxes of bars and pixel points of markers, error bars and data lines."""
    boxes = [pch.get_window_extent() for pch in ax.patches
             if isinstance(pch, Rectangle) and pch.get_width() != 0 and pch.get_height() != 0]
    pts = []
    for line in ax.lines:
        xy = line.get_xydata()
        if len(xy) == 0 or line.get_label() == "_equality":
            continue
        pts.append(_densify(line.get_transform().transform(xy)))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(coll.get_offset_transform().transform(coll.get_offsets()))
        if isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                pts.append(_densify(coll.get_transform().transform(seg)))
    pts = np.vstack(pts) if pts else np.zeros((0, 2))
    return boxes, pts[np.isfinite(pts).all(axis=1)]


def _overlaps(legend_box, boxes, pts) -> int:
    """How many bars or data points fall inside the legend box."""
    hits = sum(legend_box.overlaps(b) for b in boxes)
    inside = ((pts[:, 0] > legend_box.x0) & (pts[:, 0] < legend_box.x1)
              & (pts[:, 1] > legend_box.y0) & (pts[:, 1] < legend_box.y1))
    return int(hits + inside.sum())


def _caption(ax) -> str:
    texts = [t.get_text() for t in ax.texts if t.get_gid() == "pophealth-caption"]
    assert len(texts) == 1, f"expected one caption, found {len(texts)}"
    return texts[0]


# ---------------------------------------------------------------- the promises
@pytest.mark.parametrize("name", FIGURES)
def test_title_and_axis_labels_with_units(figures, name):
    ax = figures[name]
    assert ax.get_title().strip(), f"{name}: no title"
    labels = ax.get_xlabel() + " | " + ax.get_ylabel()
    for unit in UNITS[name]:
        assert unit in labels, f"{name}: axis labels {labels!r} do not state {unit!r}"


@pytest.mark.parametrize("name", FIGURES)
def test_caption_line_names_population_period_source(figures, name):
    text = _caption(figures[name]).replace("\n", " ")
    assert text.startswith("Population: ")
    assert "period: 12 months to 2025-04-01" in text and "source: synthetic" in text
    assert "not stated" not in text  # the population is filled in from the data


@pytest.mark.parametrize("name", FIGURES)
def test_caption_sits_below_the_axes_and_inside_the_figure(figures, name):
    ax = figures[name]
    cap = next(t for t in ax.texts if t.get_gid() == "pophealth-caption")
    box = cap.get_window_extent()
    assert box.y1 <= ax.get_window_extent().y0, f"{name}: caption overlaps the axes"
    xlabel = ax.xaxis.label.get_window_extent()
    assert box.y1 <= xlabel.y0 + 1, f"{name}: caption overlaps the x label"
    fig_box = ax.figure.bbox
    assert box.y0 >= fig_box.y0 - 1, f"{name}: caption falls off the bottom of the figure"


@pytest.mark.parametrize("name", FIGURES)
def test_legend_does_not_cover_data(figures, name):
    ax = figures[name]
    legend = ax.get_legend()
    if name in ("cost_distribution", "risk_pyramid"):
        assert legend is None  # one series: nothing to explain
        return
    boxes, pts = _data_extents(ax)
    assert len(boxes) + len(pts) > 0, f"{name}: no data found to check against"
    hits = _overlaps(legend.get_window_extent(), boxes, pts)
    assert hits == 0, f"{name}: legend covers {hits} bars/points"


def test_overlap_check_catches_a_legend_on_the_bars():
    """The geometry check above can fail: a legend placed on the bars is caught."""
    ax = plots.plot_segment_pyramid(_patients())
    leg = ax.legend(loc="center")  # the middle of the pyramid is all bars
    ax.figure.canvas.draw()
    boxes, pts = _data_extents(ax)
    assert _overlaps(leg.get_window_extent(), boxes, pts) > 0


def test_funnel_point_labels_do_not_collide_with_the_legend(figures):
    ax = figures["funnel"]
    labels = [t for t in ax.texts if t.get_gid() is None]
    assert [t.get_text() for t in labels] == ["E000", "E001"]  # the two crafted outliers
    leg = ax.get_legend().get_window_extent()
    for t in labels:
        assert not leg.overlaps(t.get_window_extent()), f"label {t.get_text()} under the legend"


@pytest.mark.parametrize("name", ["age_sex_pyramid", "segment_pyramid"])
def test_pyramid_count_ticks_have_no_minus_sign(figures, name):
    ax = figures[name]
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3, f"{name}: too few count ticks {ticks}"
    assert not any(("−" in t) or ("-" in t) for t in ticks), f"{name}: signed ticks {ticks}"
    # the male half really is drawn on the negative side
    assert ax.get_xlim()[0] < 0 < ax.get_xlim()[1]


def test_age_sex_pyramid_counts_by_hand():
    r = pd.DataFrame({"age": [0, 4, 42, 43, 44, 95, 120, 30, np.nan],
                      "sex": ["M", "M", "F", "F", "M", "F", "F", "X", "M"]})
    ax = plots.plot_age_sex_pyramid(r)
    males, females = ax.containers
    widths_m = np.array([b.get_width() for b in males])
    widths_f = np.array([b.get_width() for b in females])
    # band 0 (0-4): two males; band 8 (40-44): one male, two females; 90+: two females
    assert widths_m[0] == -2 and widths_m[8] == -1 and widths_m.sum() == -3
    assert widths_f[8] == 2 and widths_f[-1] == 2 and widths_f.sum() == 4
    assert "(2 with other/missing sex or age not shown)" in ax.get_title()
    assert "Population: 7 patients" in _caption(ax)


def test_all_eight_segments_get_distinct_palette_colours_in_order(figures):
    ax = figures["segment_pyramid"]
    handles = ax.get_legend().legend_handles
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert names == B2H[::-1]  # outermost (last) segment listed first, like the stacking
    colours = [to_hex(h.get_facecolor()).upper() for h in handles][::-1]
    assert colours == [c.upper() for c in plots.SEGMENT_COLOURS]
    assert len(set(colours)) == 8
    okabe_ito = {c.upper() for c in plots.OKABE_ITO.values()}
    assert set(colours) == okabe_ito
    # every drawn bar carries its segment's colour
    drawn = {to_hex(pch.get_facecolor()).upper() for pch in ax.patches if pch.get_width() != 0}
    assert drawn <= okabe_ito


def test_segment_colours_published_okabe_ito_values():
    # Okabe & Ito (2008), "Color Universal Design": the eight colours' RGB values
    published = {(0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
                 (0, 114, 178), (213, 94, 0), (204, 121, 167)}
    rgb = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in plots.SEGMENT_COLOURS}
    assert rgb == published


def test_risk_pyramid_small_tier_is_visible_and_axis_has_ticks():
    # 10,000 patients: the very-high tier is 50 (0.5 %); drawn at >= 2 % of the largest bar
    tiers = risk_tiers(np.linspace(0, 1, 10_000))
    ax = plots.plot_risk_pyramid(tiers)
    ax.figure.canvas.draw()
    widths = [b.get_width() for b in ax.patches]
    assert widths[0] == 8_000 and widths[1] == 1_500 and widths[2] == 450
    assert widths[3] == pytest.approx(0.02 * 8_000)  # 50 patients widened to 160
    assert ax.patches[3].get_hatch() == "////" and ax.patches[2].get_hatch() is None
    assert ax.texts[3].get_text() == " 50 (0.5%) (bar widened)"
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "0" in ticks and "8,000" in ticks
    # count labels sit to the right of their bars, inside the axes
    for bar, text in zip(ax.patches, ax.texts[:4], strict=True):
        assert text.get_window_extent().x0 >= bar.get_window_extent().x1 - 1
        assert text.get_window_extent().x1 <= ax.get_window_extent().x1


@pytest.mark.parametrize(("levels", "area_type", "word"), [
    (10, "imd_decile", "decile"), (5, "imd_quintile", "quintile"),
    (5, None, "quintile"), (10, None, "decile"), (7, None, "quantile"),
    (10, "imd_quintile", "quintile"),  # the table's own area type wins over the count
])
def test_imd_axis_names_the_quantile_the_data_has(levels, area_type, word):
    ax = plots.plot_rates_by_imd(_imd_table(levels, area_type))
    assert ax.get_xlabel() == f"IMD {word} (1 = most deprived)"
    assert f"by IMD {word}" in ax.get_title()


def test_sii_and_rii_are_shown_with_their_intervals():
    sii = pd.DataFrame({"statistic": ["sii", "rii"], "value": [-80.0, 0.45],
                        "lower_ci": [-95.0, 0.38], "upper_ci": [-65.0, 0.52]})
    ax = plots.plot_rates_by_imd(_imd_table(), sii=sii, label="admissions")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "SII -80 (95% CI -95 to -65)" in texts
    assert "RII 0.45 (95% CI 0.38 to 0.52)" in texts
    assert "admissions (95% CI)" in texts
    assert ax.get_ylabel() == "DSR per 1,000"


def test_cost_axis_reads_in_pounds_and_zero_costs_are_counted():
    cost = pd.Series([0.0, 0.0, 0.0, 25.0, 250.0, 2_500.0, 25_000.0, np.nan])
    ax = plots.plot_cost_distribution(cost)
    ax.figure.canvas.draw()
    assert ax.get_xscale() == "log"
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.startswith("£") for t in ticks), ticks
    assert {"£100", "£1k", "£10k"} <= set(ticks)
    assert "(3 with no cost and 1 missing not shown)" in ax.get_title()
    assert sum(p.get_height() for p in ax.patches) == 4  # the four positive costs
    assert "Population: 8 patients" in _caption(ax)


def test_negative_cost_is_refused_with_positions_not_values():
    with pytest.raises(ValueError, match=r"2 rows are negative \(positions \[1, 3\]\)") as err:
        plots.plot_cost_distribution([10.0, -123456.75, 5.0, -98765.25])
    assert "123456" not in str(err.value) and "98765" not in str(err.value)


def test_caption_defaults_to_not_stated_and_is_replaced_not_stacked():
    ax = plots.plot_calibration([0, 1, 0, 1], [0.2, 0.7, 0.3, 0.6], n_bins=2)
    assert _caption(ax) == "Population: 4 patients; period: not stated; source: not stated"
    plots.plot_calibration([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6], n_bins=2, ax=ax,
                           source="my practice extract")
    assert _caption(ax).endswith("source: my practice extract")  # one caption, the latest


def test_overlaid_calibration_keeps_the_first_models_points_in_view():
    ax = plots.plot_calibration([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], n_bins=2)
    plots.plot_calibration([0, 1, 0, 1], [0.1, 0.3, 0.2, 0.25], n_bins=2, ax=ax)
    first_x = ax.containers[0].lines[0].get_xdata()
    assert ax.get_xlim()[1] >= max(first_x)


def test_segment_cost_labels_every_bar_in_percent(figures):
    ax = figures["segment_cost"]
    values = [t.get_text() for t in ax.texts if t.get_gid() is None]
    assert len(values) == 16 and all(v.strip().endswith("%") for v in values)
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert all(t.endswith("%") for t in ticks)
