"""Recovery attacks on published area tables (issue 13, item 5).

An attacker holds only the published tables. Each attack below tries to work an
unpublished count back out; the promise is that no attack learns anything beyond the
published (rounded) count: the recovered count never equals the true, unrounded count
in a row where that count differs from the published one. Each attack is first shown
to work on tables published the old way (statistics from unrounded counts, counts
rounded afterwards), so a pass is not an attack that cannot succeed.

Attacks
-------
* value x published denominator / multiplier (and value x expected for the ISR);
* confidence-interval inversion: the ratio upper/value (crude rates, ISR) or
  (upper - value)/(value - lower) (Dobson DSR) depends on the count alone; the
  attacker picks the count in the published count's rounding window that fits best,
  using Byar's / exact Poisson formulas written out here with scipy.stats;
* total minus the other cells, for a margin that hides exactly one cell;
* the ISR's ``expected`` column summed over areas, which used to equal the pooled
  (unpublished) event total.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pophealth import synthetic  # part of the library: a broken import must fail, not skip
from pophealth.areas import aggregate_by_area, crude_rate, dsr, isr, proportion, suppress
from pophealth.contracts.exceptions import DataQualityWarning

Z = stats.norm.ppf(0.975)
AREA = ["area_type", "area"]


# ----------------------------------------------------------------------------- attacker tools


def byar(o):
    o = np.asarray(o, dtype=float)
    lo = o * (1 - 1 / (9 * o) - Z / (3 * np.sqrt(o))) ** 3
    hi = (o + 1) * (1 - 1 / (9 * (o + 1)) + Z / (3 * np.sqrt(o + 1))) ** 3
    return lo, hi


def poisson_upper(o):
    o = np.asarray(o, dtype=float)
    return np.where(o < 10, stats.chi2.ppf(0.975, 2 * o + 2) / 2, byar(o)[1])


def candidates(published):
    """Counts the attacker cannot rule out from a published count (rounding window)."""
    return np.asarray(published, dtype=float)[:, None] + np.arange(-2, 3)[None, :]


def invert_ratio(lower, upper, published, ratio_of_count):
    """The count whose CI ratio is consistent with the published one, if only one is.

    ``lower``/``upper`` bound the true ratio given the rounding of the published
    value and limits; a candidate count is consistent when its predicted ratio lies
    within them. The attacker recovers a count only when exactly one candidate is
    consistent (NaN otherwise: several counts fit, nothing is learnt).
    """
    cand = candidates(published)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ratio_of_count(cand)
    lo = np.asarray(lower, dtype=float)[:, None] * (1 - 1e-9)
    hi = np.asarray(upper, dtype=float)[:, None] * (1 + 1e-9)
    fits = (r >= lo) & (r <= hi)
    one = fits.sum(axis=1) == 1
    return np.where(one, cand[np.arange(len(cand)), np.argmax(fits, axis=1)], np.nan)


def value_attack(value, scale, h):
    """value x scale, claimed only when the value's rounding (+/- h) spans < 1 count."""
    value, scale = np.asarray(value, dtype=float), np.asarray(scale, dtype=float)
    return np.where(2 * h * scale < 1, value * scale, np.nan)


def upper_over_value(upper, value, h):
    """Bounds of upper / value when both were rounded to within +/- h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (upper - h) / (value + h), (upper + h) / (value - h)


def leaks(recovered, true, published) -> int:
    """Rows where the attacker got the true count although it was not published."""
    recovered, true = np.asarray(recovered, dtype=float), np.asarray(true, dtype=float)
    published = np.asarray(published, dtype=float)
    return int(((np.round(recovered) == true) & (true != published)).sum())


def floats(s) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def old_style(stat, table, **kw):
    """How tables were published before the fix: full-precision statistics from the
    unrounded counts, with the counts rounded/suppressed afterwards."""
    out = stat(table, disclosure_control=False, **kw)
    return suppress(out, recomputed=True)


# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def counts():
    pop = synthetic.make_population(50_000, random_state=0)
    patients = pop.register.join(pop.outcomes, on="patient_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        lsoa = aggregate_by_area(patients, by="lsoa", numerator="emergency_admission")
    return lsoa[lsoa["area"] != "unknown"].reset_index(drop=True)


def _published_and_true(published, truth, by):
    keys = published[by].astype(str).agg("|".join, axis=1)
    true = truth.assign(_k=truth[by].astype(str).agg("|".join, axis=1)).set_index("_k")
    return true.loc[keys]


# ----------------------------------------------------------------------------- crude rates


@pytest.mark.parametrize(("by", "multiplier"), [
    (AREA, 100_000), (AREA, 1000), ([*AREA, "age_band", "sex"], 100_000),
    ([*AREA, "age_band", "sex"], 1000)])
def test_crude_rate_value_and_ci_inversion_recover_nothing(counts, by, multiplier):
    truth = crude_rate(counts, by=by, multiplier=multiplier, disclosure_control=False)
    for published, must_leak in ((old_style(crude_rate, counts, by=by,
                                            multiplier=multiplier), True),
                                 (crude_rate(counts, by=by, multiplier=multiplier), False)):
        h = 0.0 if must_leak else 0.05  # new values and limits are given to 1 dp
        t = _published_and_true(published, truth, by)
        true_x = floats(t["numerator"])
        pub_x, pub_n = floats(published["numerator"]), floats(published["denominator"])
        value, upper = floats(published["value"]), floats(published["upper_ci"])
        shown = ~np.isnan(value)
        assert shown.sum() >= 15
        by_value = value_attack(value, pub_n / multiplier, h)
        by_ci = invert_ratio(*upper_over_value(upper[shown], value[shown], h), pub_x[shown],
                             lambda c: poisson_upper(c) / c)
        n_value = leaks(by_value[shown], true_x[shown], pub_x[shown])
        n_ci = leaks(by_ci, true_x[shown], pub_x[shown])
        differs = int((true_x[shown] != pub_x[shown]).sum())
        if must_leak:  # the attacks work on the old tables ...
            assert n_ci >= 0.9 * differs
            if by == AREA:
                assert n_value >= 0.9 * differs
        else:  # ... and learn nothing from the new ones
            assert (n_value, n_ci) == (0, 0)


def test_proportion_value_recovers_nothing(counts):
    truth = proportion(counts, multiplier=100, disclosure_control=False)
    old = old_style(proportion, counts, multiplier=100)
    new = proportion(counts, multiplier=100)
    for published, expect_leak in ((old, True), (new, False)):
        t = _published_and_true(published, truth, AREA)
        true_x, pub_x = floats(t["numerator"]), floats(published["numerator"])
        recovered = value_attack(floats(published["value"]),
                                 floats(published["denominator"]) / 100,
                                 0.0 if expect_leak else 0.05)
        n = leaks(recovered, true_x, pub_x)
        assert (n > 0) is expect_leak
    assert (new["value"].dropna() == new["value"].dropna().round(1)).all()


# ----------------------------------------------------------------------------- DSR and ISR


def test_dsr_ci_inversion_recovers_nothing(counts):
    truth = dsr(counts, disclosure_control=False)
    lo_hi = lambda c: (byar(c)[1] - c) / (c - byar(c)[0])  # noqa: E731
    for published, expect_leak in ((old_style(dsr, counts), True), (dsr(counts), False)):
        h = 0.0 if expect_leak else 0.05
        t = _published_and_true(published, truth, AREA)
        value, lo, hi = (floats(published[c]) for c in ("value", "lower_ci", "upper_ci"))
        shown = ~np.isnan(value)
        assert shown.sum() >= 15
        true_x, pub_x = floats(t["numerator"])[shown], floats(published["numerator"])[shown]
        up, down = (hi - value)[shown], (value - lo)[shown]
        rec = invert_ratio((up - 2 * h) / (down + 2 * h), (up + 2 * h) / (down - 2 * h),
                           pub_x, lo_hi)
        n = leaks(rec, true_x, pub_x)
        differs = int((true_x != pub_x).sum())
        if expect_leak:
            assert n >= 0.9 * differs
        else:
            assert n == 0


def test_isr_expected_and_value_recover_nothing(counts):
    truth = isr(counts, disclosure_control=False)
    pooled_total = counts["numerator"].sum()
    for published, expect_leak in ((old_style(isr, counts), True), (isr(counts), False)):
        h = 0.0 if expect_leak else 0.0005  # new ratios and limits are given to 3 dp
        t = _published_and_true(published, truth, AREA)
        true_x, pub_x = floats(t["numerator"]), floats(published["numerator"])
        value, expected = floats(published["value"]), floats(published["expected"])
        upper = floats(published["upper_ci"])
        shown = ~np.isnan(value)
        by_value = leaks(value_attack(value, expected, h)[shown], true_x[shown], pub_x[shown])
        by_ci = leaks(invert_ratio(*upper_over_value(upper[shown], value[shown], h),
                                   pub_x[shown], lambda c: poisson_upper(c) / c),
                      true_x[shown], pub_x[shown])
        # the pooled event total (published only rounded) from the expected column
        total = float(np.round(floats(truth["expected"] if expect_leak
                                      else published["expected"]).sum()))
        assert pooled_total % 5 != 0  # so its rounded value differs from it
        if expect_leak:
            assert by_value > 0 and by_ci > 0 and total == pooled_total
        else:
            assert (by_value, by_ci) == (0, 0) and total != pooled_total
            assert total % 5 == 0  # the sum of controlled-rounded reference counts


# ----------------------------------------------------------------------------- margins


def _lone_hidden_recoveries(cells, totals, margin, truth):
    """Total minus the other published cells, for margins hiding exactly one cell."""
    hidden = cells["numerator"].isna().to_numpy()
    key = cells[margin].astype(str).agg("|".join, axis=1) if margin else pd.Series(
        "all", index=cells.index)
    n_hidden = pd.Series(hidden, index=cells.index).groupby(key).transform("sum").to_numpy()
    lone = hidden & (n_hidden == 1)
    others = cells["numerator"].astype("Float64").fillna(0).groupby(key).transform("sum")
    recovered = totals.reindex(key[lone]).to_numpy(dtype=float) - floats(others[lone])
    true = floats(truth.loc[lone, "numerator"])
    return int(lone.sum()), leaks(recovered, true, np.full(len(true), np.nan))


@pytest.fixture(scope="module")
def deaths():
    pop = synthetic.make_population(50_000, random_state=0)
    patients = pop.register.join(pop.outcomes, on="patient_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        t = aggregate_by_area(patients, by="lsoa", numerator="death", strata=("sex",))
    return t[t["area"] != "unknown"].reset_index(drop=True)


def test_total_minus_other_cells_recovers_nothing(deaths):
    by = [*AREA, "sex"]
    truth = crude_rate(deaths, by=by, disclosure_control=False)
    area_totals = crude_rate(deaths, by=AREA).assign(
        k=lambda d: d[AREA].astype(str).agg("|".join, axis=1)).set_index("k")["numerator"]
    sex_totals = crude_rate(deaths, by=["area_type", "sex"]).assign(
        k=lambda d: d[["area_type", "sex"]].astype(str).agg("|".join, axis=1)
    ).set_index("k")["numerator"]
    no_margins = crude_rate(deaths, by=by, margins=None)
    with_margins = crude_rate(deaths, by=by)
    for cells, expect_targets in ((no_margins, True), (with_margins, False)):
        t = _published_and_true(cells, truth, by).reset_index(drop=True)
        n_lone, n_leak = 0, 0
        for margin, totals in ((AREA, area_totals), (["area_type", "sex"], sex_totals)):
            lone, leak = _lone_hidden_recoveries(cells, totals.astype("Float64"), margin, t)
            n_lone, n_leak = n_lone + lone, n_leak + leak
        assert (n_lone > 0) is expect_targets
        if not expect_targets:
            assert n_leak == 0
            assert with_margins.attrs["disclosure_control"]["secondary_suppressed"] > 0


def test_total_minus_other_cells_crafted():
    # cells 5, 10, 10 with their total 25: 25 - 10 - 10 gives the hidden 5 back
    t = pd.DataFrame({"area_type": "lsoa", "area": "A", "sex": ["F", "M", "U"],
                      "numerator": [5, 10, 10], "denominator": [100, 100, 100]})
    total = crude_rate(t, by=AREA)["numerator"][0]
    assert total == 25
    naive = crude_rate(t, by=[*AREA, "sex"], margins=None)
    assert total - naive["numerator"].fillna(0).sum() == 5  # the attack works
    safe = crude_rate(t, by=[*AREA, "sex"])
    assert safe["numerator"].isna().sum() == 2  # now it only gives 5 + 10 together
    assert safe["suppressed"].tolist()[1] == "numerator secondary suppression"


# ----------------------------------------------------------------------------- property


THRESHOLD_COUNTS = st.one_of(st.integers(0, 20), st.integers(0, 400))


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(THRESHOLD_COUNTS, st.integers(21, 20_000)), min_size=2,
                max_size=25), st.sampled_from([1000, 100_000]))
def test_property_published_rates_reveal_only_published_counts(rows, multiplier):
    x = [r[0] for r in rows]
    n = [max(r[0], r[1]) for r in rows]
    t = pd.DataFrame({"area_type": "lsoa", "area": [f"A{i:03d}" for i in range(len(rows))],
                      "numerator": x, "denominator": n})
    out = crude_rate(t, multiplier=multiplier)
    pub_x, pub_n = floats(out["numerator"]), floats(out["denominator"])
    value, upper = floats(out["value"]), floats(out["upper_ci"])
    true = np.asarray(x, dtype=float)
    # 1-7 never published, in counts or in values; zero stays zero
    small = (true >= 1) & (true <= 7)
    assert np.isnan(pub_x[small]).all() and np.isnan(value[small]).all()
    assert (pub_x[true == 0][~np.isnan(pub_x[true == 0])] == 0).all()
    # no margin (the total over areas) hides exactly one cell
    assert np.isnan(pub_x).sum() != 1
    shown = ~np.isnan(value)
    if shown.any():
        recovered = value[shown] * pub_n[shown] / multiplier
        tol = 0.05 * pub_n[shown] / multiplier + 1e-9  # value is given to 1 dp
        assert (np.abs(recovered - pub_x[shown]) <= tol).all()
        exact = shown & (pub_x >= 1)
        by_ci = invert_ratio(*upper_over_value(upper[exact], value[exact], 0.05),
                             pub_x[exact], lambda c: poisson_upper(c) / c)
        assert leaks(by_ci, true[exact], pub_x[exact]) == 0
        assert leaks(value_attack(value[shown], pub_n[shown] / multiplier, 0.05), true[shown],
                     pub_x[shown]) == 0


def test_byar_attacker_tool_matches_published_formula():
    # Byar's limits for O = 100 (Breslow & Day 1987): 81.3621, 121.6279
    lo, hi = byar([100])
    assert (round(float(lo[0]), 4), round(float(hi[0]), 4)) == (81.3621, 121.6279)
    assert math.isclose(float(poisson_upper([5])[0]), 11.6683, abs_tol=1e-4)
