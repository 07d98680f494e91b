"""Disclosure control on its edges and on by default; ESP2013 band edges (issue 16, item 2).

Plain rule written here (NHS Digital, sub-national counts): a true zero stays 0, counts
1-7 are suppressed, every other count is rounded to the nearest 5 half up, which for
whole counts is ``(n + 2) // 5 * 5``. Every count list drawn contains 0-20, so the
threshold 7/8 and the rounding edges 12/13 and 17/18 are decided in every example.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from hypothesis import given
from strategies import age_lists, count_lists

from pophealth.areas import crude_rate, dsr, isr, proportion, suppress
from pophealth.areas.agebands import age_band, esp2013


def _published(n: int):
    """The NHS Digital rule by hand: None where suppressed."""
    if n == 0:
        return 0
    if 1 <= n <= 7:
        return None
    return (n + 2) // 5 * 5


@given(count_lists())
def test_suppress_follows_the_rule_on_every_count_0_to_20_and_edges(counts):
    out = suppress(pd.DataFrame({"numerator": counts}))
    got = [None if pd.isna(v) else int(v) for v in out["numerator"]]
    assert got == [_published(n) for n in counts]
    assert out["suppressed"].isna().tolist() == [_published(n) is not None for n in counts]


@given(count_lists())
def test_crude_rate_by_default_publishes_the_rule_and_rates_from_published_counts(counts):
    n = len(counts)
    table = pd.DataFrame({"area_type": "lsoa", "area": [f"A{i:03d}" for i in range(n)],
                          "numerator": counts, "denominator": 100_000})
    out = crude_rate(table, margins=None)  # disclosure control left at its default
    want = [_published(c) for c in counts]
    assert [None if pd.isna(v) else int(v) for v in out["numerator"]] == want
    # per 100,000 of a (published) population of 100,000: the rate is the published count
    assert [None if pd.isna(v) else float(v) for v in out["value"]] == [
        None if w is None else float(w) for w in want]


# -------------------------------------------------------- defaults: every statistic controls

def _two_areas(num_a=3, num_b=13, den=1000, bands=None):
    rows = {"area_type": "lsoa", "area": ["A", "B"], "numerator": [num_a, num_b],
            "denominator": den}
    if bands is None:
        return pd.DataFrame(rows)
    # band "young" carries the events, band "old" has population and no events
    young = pd.DataFrame(rows).assign(age_band="young")
    old = pd.DataFrame(rows).assign(age_band="old", numerator=0)
    return pd.concat([young, old], ignore_index=True)


STANDARD = pd.DataFrame({"age_band": ["young", "old"], "weight": [1, 1]})


@pytest.mark.parametrize(
    ("stat", "call", "value_b"),
    [
        # 15 / 1000 * 100,000
        ("crude_rate", lambda: crude_rate(_two_areas(), margins=None), 1500.0),
        # 15 / 1000, 3 dp
        ("proportion", lambda: proportion(_two_areas(), margins=None), 0.015),
        # band cells [13, 0] rounded to the published 15 -> [15, 0]; populations 1000:
        # (15/1000 * 1 + 0) / 2 * 100,000
        ("dsr", lambda: dsr(_two_areas(bands=True), standard=STANDARD, margins=None), 750.0),
        # reference pooled: events [16, 0] rounded to 15 -> [15, 0]; population [2000, 2000]
        # -> rates [0.0075, 0]; expected(B) = 1000 * 0.0075 = 7.5; 15 / 7.5
        ("isr", lambda: isr(_two_areas(bands=True), margins=None), 2.0),
    ],
)
def test_every_statistic_controls_by_default_3_suppressed_13_rounded(stat, call, value_b):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "turned off" warning either
        out = call()
    assert out["area"].tolist() == ["A", "B"]
    assert pd.isna(out["numerator"][0]) and out["numerator"][1] == 15
    assert out["suppressed"][0] == "numerator 1-7"
    assert pd.isna(out["value"][0]) and out["value"][1] == value_b
    assert out.attrs["disclosure_control"] is not False


# ------------------------------------------------------------------ ESP2013 band edges


@given(age_lists())
def test_age_band_on_every_esp2013_edge(age_list):
    esp = esp2013()
    want = []
    for a in age_list:  # the band whose [lower, upper] holds the age (90+ has no upper)
        hit = esp[(esp.lower_age <= a) & (esp.upper_age.isna() | (esp.upper_age >= a))]
        want.append(str(hit.age_band.iloc[0]))
    assert age_band(age_list).astype(str).tolist() == want
