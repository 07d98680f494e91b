"""Funnel-plot control limits against PHE/OHID's published method and outputs.

Golden values
-------------
* Issue 13: n = 1,000 at a target of 500 per 100,000 (E = 5 expected events) has
  95 % control limits of about 68-1030 per 100,000 (PHE funnel tool).
* ``DataS-DHSC/PHStatsMethods`` test data (outputs of the PHE funnel tool):
  ``testdata_funnel_rate_outputs_2.csv`` (baseline 114.8591735 per 100,000, three
  years of data, so person-years = 3 x the "population_1_year" column) and
  ``testdata_funnel_prop_outputs_with_axis_variation.csv`` (baseline 82.18033788 %).
* The defining equations, evaluated here with ``scipy.stats`` directly: a rate limit
  count ``c`` satisfies ``chi2.ppf(1 - a/2, 2c + 2) / 2 = E`` (lower) or
  ``chi2.ppf(a/2, 2c) / 2 = E`` (upper); a proportion limit is where the Wilson
  interval of the observed proportion touches the target; PHE's sigma_adjustment
  quadratic (``PHEindicatormethods`` R/Funnels.R) is transcribed below by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pophealth.areas import funnel_limits
from pophealth.contracts.exceptions import ConfigError


def test_issue_13_example_rate_limits():
    out = funnel_limits([1000], 500.0, confidence=0.95)
    assert round(out["lower_95"][0]) == 68
    assert round(out["upper_95"][0]) == 1030
    # the old (wrong) limits around the target were 162-1167: make sure they are gone
    assert out["lower_95"][0] < 100 and out["upper_95"][0] < 1100


# rows of testdata_funnel_rate_outputs_2.csv: (events, population_1_year, limit)
PHE_RATE_LOWER_2S = [(1, 1616.949526, 20.61494982), (5, 3386.272291, 49.21832987),
                     (20, 8964.13118, 74.37047197), (1344, 411466.9163, 108.8787415)]
PHE_RATE_UPPER_2S = [(2, 70.2917202, 948.4284419), (10, 1391.671639, 239.5201023),
                     (99, 23351.00812, 141.3215217)]
PHE_RATE_LOWER_3S = [(5, 4775.339014, 34.90153604), (84, 33768.79913, 82.91677738)]
PHE_RATE_UPPER_3S = [(5, 214.5734657, 776.7347474), (302, 72881.54556, 138.1236716)]
BASELINE = 114.8591735


@pytest.mark.parametrize(("rows", "column", "level"), [
    (PHE_RATE_LOWER_2S, "lower_95", 0.95), (PHE_RATE_UPPER_2S, "upper_95", 0.95),
    (PHE_RATE_LOWER_3S, "lower_99_8", 0.998), (PHE_RATE_UPPER_3S, "upper_99_8", 0.998)])
def test_rate_limits_match_phe_funnel_tool_outputs(rows, column, level):
    person_years = np.array([r[1] for r in rows]) * 3
    out = funnel_limits(person_years, BASELINE, confidence=level)
    np.testing.assert_allclose(out[column], [r[2] for r in rows], rtol=2e-6)
    # on the PHE grid the limit is events / person-years
    np.testing.assert_allclose(out[column], [r[0] / p * 1e5 for r, p in
                                             zip(rows, person_years, strict=True)], rtol=2e-6)


@settings(deadline=None, max_examples=60)
@given(st.floats(4.0, 1e5), st.sampled_from([0.95, 0.998]))
def test_rate_limits_solve_the_chi_square_equations(expected, level):
    # target 1,000 per 100,000 -> n = expected * 100
    n = expected * 100
    out = funnel_limits([n], 1000.0, confidence=level)
    s = "95" if level == 0.95 else "99_8"
    lo, hi = out[f"lower_{s}"][0] * n / 1e5, out[f"upper_{s}"][0] * n / 1e5
    alpha = 1 - level
    assert stats.chi2.ppf(alpha / 2, 2 * hi) / 2 == pytest.approx(expected, rel=1e-7)
    if lo > 0:
        assert stats.chi2.ppf(1 - alpha / 2, 2 * lo + 2) / 2 == pytest.approx(expected,
                                                                         rel=1e-7)
    else:  # no count is low enough: even 0 events has its upper limit at or above E
        assert stats.chi2.ppf(1 - alpha / 2, 2) / 2 >= expected * (1 - 1e-9)
    assert lo < expected < hi


def test_lower_rate_limit_is_zero_when_even_no_events_is_unremarkable():
    # exact 95 % upper limit of 0 events is chi2.ppf(0.975, 2)/2 = 3.689: E = 3 -> 0
    assert stats.chi2.ppf(0.975, 2) / 2 == pytest.approx(3.6889, abs=1e-4)
    out = funnel_limits([300], 1000.0, confidence=0.95)
    assert out["lower_95"][0] == 0.0
    assert out["upper_95"][0] > 0


# rows of testdata_funnel_prop_outputs_with_axis_variation.csv
PHE_PROP = [(10000, 81.43030244, 82.93037332, 80.99777342, 83.36290233),
            (15067, 81.56929964, 82.79137612, 81.21692726, 83.14374849),
            (33000, 81.76745696, 82.5932188, 81.52935757, 82.83131819)]


def test_proportion_limits_match_phe_funnel_tool_outputs():
    n = [r[0] for r in PHE_PROP]
    out = funnel_limits(n, 82.18033788, kind="proportion", multiplier=100)
    np.testing.assert_allclose(out["lower_95"], [r[1] for r in PHE_PROP], atol=2e-7)
    np.testing.assert_allclose(out["upper_95"], [r[2] for r in PHE_PROP], atol=2e-7)
    np.testing.assert_allclose(out["lower_99_8"], [r[3] for r in PHE_PROP], atol=2e-7)
    np.testing.assert_allclose(out["upper_99_8"], [r[4] for r in PHE_PROP], atol=2e-7)


def _phe_sigma_adjustment(p, population, average, side):
    """PHE's published quadratic (R/Funnels.R sigma_adjustment), written out by hand."""
    q = stats.norm.ppf(p) ** 2
    first = average * (population / q + 1)
    adj = math.sqrt((-8 * average * (population / q + 1)) ** 2 - 64 * (1 / q + 1 / population)
                    * average * (population * (average * (population / q + 2) - 1)
                                 + q * (average - 1)))
    last = 1 / q + 1 / population
    x = (first - adj / 8) / last if side == "low" else (first + adj / 8) / last
    return x / population


@settings(deadline=None, max_examples=60)
@given(st.floats(0.01, 0.99), st.integers(20, 1_000_000))
def test_proportion_limits_are_phe_sigma_adjustment_and_wilson_touches_target(p, n):
    out = funnel_limits([n], p, kind="proportion", multiplier=1)
    for s, tail in (("95", 0.975), ("99_8", 0.999)):
        lo, hi = out[f"lower_{s}"][0], out[f"upper_{s}"][0]
        exp_lo = max(0.0, _phe_sigma_adjustment(tail, n, p, "low"))
        exp_hi = min(1.0, _phe_sigma_adjustment(tail, n, p, "high"))
        assert lo == pytest.approx(exp_lo, abs=1e-9)
        assert hi == pytest.approx(exp_hi, abs=1e-9)
        z = stats.norm.ppf(tail)
        if 0 < hi < 1:  # Wilson lower bound of the upper limit is the target
            x = hi * n
            wl = (2 * x + z**2 - z * math.sqrt(z**2 + 4 * x * (1 - x / n))) / (2 * (n + z**2))
            assert wl == pytest.approx(p, abs=1e-9)
        if 0 < lo < 1:
            x = lo * n
            wu = (2 * x + z**2 + z * math.sqrt(z**2 + 4 * x * (1 - x / n))) / (2 * (n + z**2))
            assert wu == pytest.approx(p, abs=1e-9)


def test_funnel_narrows_with_denominator():
    out = funnel_limits(np.geomspace(100, 1e6, 50), 250.0)
    assert (np.diff(out["upper_95"]) < 0).all()
    assert (np.diff(out["lower_95"]) >= 0).all()
    assert (out["lower_99_8"] <= out["lower_95"]).all()
    assert (out["upper_99_8"] > out["upper_95"]).all()


def test_funnel_errors_name_positions_not_values():
    with pytest.raises(ConfigError) as err:
        funnel_limits([100, -31337, 0], 500.0)
    assert str(err.value) == ("funnel_limits: denominators must be finite and greater than 0; "
                              "2 are not (first positions [1, 2])")
    with pytest.raises(ConfigError, match="target must be a number greater than 0 and below"):
        funnel_limits([100], 100.0, kind="proportion", multiplier=100)
    with pytest.raises(ConfigError, match="target must be a number greater than 0"):
        funnel_limits([100], 0.0)
    with pytest.raises(ConfigError, match="kind must be"):
        funnel_limits([100], 1.0, kind="ratio")
