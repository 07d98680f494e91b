"""Building blocks of disclosure control: controlled rounding, complementary
suppression, and standardised statistics from rounded counts (hand-computed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.areas.complementary import complementary_suppression
from pophealth.areas.disclosure import controlled_round, suppress
from pophealth.areas.rates import crude_rate
from pophealth.areas.standardised import dsr, isr
from pophealth.contracts.exceptions import ConfigError

PROPS = settings(deadline=None, max_examples=60)


@PROPS
@given(st.lists(st.lists(st.integers(0, 30), min_size=19, max_size=19), min_size=1,
                max_size=6))
def test_property_controlled_rounding_keeps_published_total(rows):
    x = np.asarray(rows, dtype=float)
    totals = np.floor(x.sum(axis=1) / 5 + 0.5) * 5  # the published (rounded) totals
    out = controlled_round(x, totals)
    np.testing.assert_array_equal(out.sum(axis=1), totals)
    assert (out % 5 == 0).all()
    assert (np.abs(out - x) < 5).all()
    assert (out >= 0).all()


@PROPS
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 25)),
                min_size=2, max_size=40, unique_by=lambda r: (r[0], r[1])))
def test_property_no_margin_hides_exactly_one_cell(cells):
    t = pd.DataFrame(cells, columns=["area", "sex", "numerator"])
    out = suppress(t, margins=[["area"], ["sex"], []])
    hidden = out["numerator"].isna()
    primary = t["numerator"].between(1, 7)
    assert hidden[primary].all()
    for margin in (["area"], ["sex"]):
        grouped = hidden.groupby([t[c] for c in margin])
        # a one-cell margin is the cell itself: its total is suppressed by the same rule
        assert not ((grouped.sum() == 1) & (grouped.size() >= 2)).any()
    assert hidden.sum() != 1
    secondary = out["suppressed"].fillna("").str.contains("secondary")
    assert (secondary == (hidden & ~primary)).all()


def test_complementary_picks_next_smallest_published_cell_and_cascades():
    # 2 x 2 table: A-F hidden; A's margin takes A-M (smaller than nothing else);
    # then the M column has one hidden cell and takes B-M, then B's row takes B-F.
    keys = pd.DataFrame({"area": ["A", "A", "B", "B"], "sex": ["F", "M", "F", "M"]})
    counts = np.array([3.0, 40.0, 100.0, 20.0])
    second = complementary_suppression(keys, [True, False, False, False],
                                       [["area"], ["sex"]], [counts])
    assert second.tolist() == [False, True, True, True]


def test_dsr_from_rounded_counts_hand_calculation():
    # bands A (x=20, n=1000) and B (x=32, n=498), weights 60/40; O = 52 -> 50 published.
    # Controlled rounding: floors 20 + 30 = 50 = published total -> (20, 30);
    # populations -> (1000, 500). DSR = (20*0.06 + 30*0.08)/100*1e5 = 3600,
    # var = 2.64e-5, Byar(50) = 37.10810, 65.92016 (test_areas.py::test_byar_golden):
    # 3600 + sqrt(2.64e-5/50)*(37.10810-50)*1e5 = 2663.228; upper 4756.816.
    std = pd.DataFrame({"age_band": ["A", "B"], "weight": [60, 40]})
    t = pd.DataFrame({"area": "X", "age_band": ["A", "B"], "numerator": [20, 32],
                      "denominator": [1000, 498]})
    out = dsr(t, by="area", standard=std, margins=None)
    assert (out["numerator"][0], out["denominator"][0]) == (50, 1500)
    assert (out["value"][0], out["lower_ci"][0], out["upper_ci"][0]) == (3600.0, 2663.2,
                                                                          4756.8)
    assert out["method"][0].startswith("Dobson; computed from age-band counts rounded to 5")


def test_dsr_not_given_unless_published_total_guarantees_ten():
    std = pd.DataFrame({"age_band": ["A"], "weight": [1]})
    t = pd.DataFrame({"area": ["P", "Q", "R"], "age_band": "A", "numerator": [12, 13, 9],
                      "denominator": 1000})
    out = dsr(t, by="area", standard=std, margins=None)
    # 12 -> 10 (could be 8-12), 13 -> 15 (13-17), 9 -> 10 (8-12)
    assert out["value"].isna().tolist() == [True, False, True]
    assert out["statistic"][0] == "dsr NA for published total count < 15"


def test_isr_from_rounded_counts_hand_calculation():
    # A: bands (30, 12) / (1000, 1003); B: (10, 10) / (1000, 1000). O_A = 42 -> 40.
    # Pooled events (40, 22), total 62 -> 60: controlled (40, 20). Rounded populations
    # A (1000, 1005), B (1000, 1000); pooled (2000, 2005): rates 0.02, 20/2005.
    # E_A = 20 + 1005*20/2005 = 30.02494; E_B = 20 + 1000*20/2005 = 29.97506 (sum 60).
    t = pd.DataFrame({"area": ["A", "A", "B", "B"], "age_band": ["0-4", "5-9"] * 2,
                      "numerator": [30, 12, 10, 10], "denominator": [1000, 1003, 1000, 1000]})
    out = isr(t, by="area", margins=None)
    assert out["expected"].tolist() == [30.025, 29.975]
    assert out["value"].tolist() == [round(40 / 30.02494, 3), round(20 / 29.97506, 3)]
    assert out["numerator"].tolist() == [40, 20]


def test_decimals_and_margins_options():
    t = pd.DataFrame({"area_type": "x", "area": ["A", "B"], "numerator": [48, 120],
                      "denominator": [5678, 2100]})
    out = crude_rate(t, decimals=3)
    assert out["value"].tolist() == [round(50 / 5680 * 1e5, 3), round(120 / 2100 * 1e5, 3)]
    assert out.attrs["disclosure_control"]["decimals"] == 3
    with pytest.raises(ConfigError, match="decimals must be a non-negative integer"):
        crude_rate(t, decimals=-1)
    with pytest.raises(ConfigError, match=r"margins: column\(s\) \['sex'\] are not grouping"):
        crude_rate(t, margins=[["sex"]])
