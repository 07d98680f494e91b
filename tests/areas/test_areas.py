"""Area statistics: golden values from the published formulas, properties and errors.

Golden-value provenance
-----------------------
=================  ==========================================================  ==============
method             case                                                        source
=================  ==========================================================  ==============
Byar               O = 100 and O = 50 at 95 % (hand arithmetic below)           Breslow & Day 1987
exact Poisson      O = 0, 1, 5, 10 at 95 %                                      Garwood 1936 tables
                                                                                (as in Daly 1992,
                                                                                Sahai & Khurshid 1993)
Byar vs exact      within 0.2 % for O >= 10 at 95 %                             PHE Technical Guide:
                                                                                Confidence Intervals
                                                                                (2018), p. 3
Wilson             81/263, 15/148, 0/20, 1/29                                   Newcombe 1998,
                                                                                Stat Med 17:857, Table II
Dobson DSR         two-band standard, hand arithmetic below                     Dobson et al. 1991 as in
                                                                                PHEindicatormethods
ISR                two bands, pooled reference, hand arithmetic below           Breslow & Day 1987
ESP2013            19 weights, sum 100,000                                      Eurostat 2013
=================  ==========================================================  ==============

z = Phi^-1(0.975) = 1.959963984540054.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import count_lists

from pophealth.areas import aggregate_by_area
from pophealth.areas.agebands import ESP2013_BANDS, age_band, esp2013
from pophealth.areas.disclosure import control_counts, suppress
from pophealth.areas.inequality import sii
from pophealth.areas.intervals import (
    byar_limits,
    ci_long,
    exact_poisson_limits,
    parse_confidence,
    poisson_limits,
    wilson_limits,
)
from pophealth.areas.rates import crude_rate, proportion
from pophealth.areas.standardised import dsr, isr
from pophealth.contracts.exceptions import ConfigError, DataQualityWarning, SchemaError
from pophealth.core.ages import age_at

Z = 1.959963984540054
PROPS = settings(deadline=None, max_examples=40)


# ----------------------------------------------------------------------------- golden values


def test_esp2013_weights_match_reference():
    esp = esp2013()
    assert esp["age_band"].astype(str).tolist() == list(ESP2013_BANDS)
    assert esp["weight"].tolist() == [5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000,
                                      7000, 7000, 6500, 6000, 5500, 5000, 4000, 2500, 1500,
                                      1000]
    assert esp["weight"].sum() == 100_000
    assert esp["lower_age"].tolist() == list(range(0, 91, 5))


def test_byar_golden():
    # O = 100: lower = 100 (1 - 1/900 - z/30)^3 = 100 * 0.9335568^3 = 81.3621
    #          upper = 101 (1 - 1/909 + z/(3 sqrt 101))^3 = 101 * 1.0639078^3 = 121.6279
    # O = 50:  lower = 50 (1 - 1/450 - z/(3 sqrt 50))^3 = 50 * 0.9053846^3 = 37.1081
    #          upper = 51 (1 - 1/459 + z/(3 sqrt 51))^3 = 65.9202
    lo, hi = byar_limits([100, 50])
    np.testing.assert_allclose(lo, [81.3621, 37.1081], atol=5e-5)
    np.testing.assert_allclose(hi, [121.6279, 65.9202], atol=5e-5)


def test_exact_poisson_golden():
    # Garwood 95 % limits for a Poisson count (standard tables)
    lo, hi = exact_poisson_limits([0, 1, 5, 10])
    np.testing.assert_allclose(lo, [0.0, 0.0253, 1.6235, 4.7954], atol=1e-4)
    np.testing.assert_allclose(hi, [3.6889, 5.5716, 11.6683, 18.3904], atol=1e-4)


def test_byar_within_two_per_mille_of_exact_from_ten():
    o = np.arange(10, 1000)
    blo, bhi = byar_limits(o)
    elo, ehi = exact_poisson_limits(o)
    assert np.max(np.abs(blo / elo - 1)) < 0.002
    assert np.max(np.abs(bhi / ehi - 1)) < 0.002


def test_poisson_switch_at_ten():
    lo, hi, method = poisson_limits([9, 10])
    assert method.tolist() == ["exact Poisson", "Byar"]
    assert lo[0] == pytest.approx(exact_poisson_limits([9])[0][0])
    assert lo[1] == pytest.approx(byar_limits([10])[0][0])


def test_wilson_golden_newcombe_1998():
    lo, hi = wilson_limits([81, 15, 0, 1], [263, 148, 20, 29])
    np.testing.assert_allclose(lo, [0.2553, 0.0624, 0.0, 0.0061], atol=5e-5)
    np.testing.assert_allclose(hi, [0.3662, 0.1605, 0.1611, 0.1718], atol=5e-5)


def test_crude_rate_golden_and_both_levels():
    t = pd.DataFrame({"area_type": "lsoa", "area": ["E01", "E02"],
                      "numerator": [5, 120], "denominator": [1500, 2100]})
    out = crude_rate(t, multiplier=1000, confidence=(95, 99.8), disclosure_control=False)
    # E01: O = 5 < 10 -> exact: chi2(0.025, 10)/2 = 1.6235, chi2(0.975, 12)/2 = 11.6683
    np.testing.assert_allclose(out["value"], [5 / 1.5, 120 / 2.1])
    np.testing.assert_allclose(out["lower_ci"][0], 1.6235 / 1.5, atol=1e-4)
    np.testing.assert_allclose(out["upper_ci"][0], 11.6683 / 1.5, atol=1e-4)
    # E02: O = 120 -> Byar
    lo = 120 * (1 - 1 / 1080 - Z / (3 * math.sqrt(120))) ** 3
    hi = 121 * (1 - 1 / 1089 + Z / (3 * math.sqrt(121))) ** 3
    np.testing.assert_allclose([out["lower_ci"][1], out["upper_ci"][1]],
                               [lo / 2.1, hi / 2.1], rtol=1e-12)
    assert out["method"].tolist() == ["exact Poisson", "Byar"]
    assert out["statistic"].tolist() == ["crude rate per 1,000"] * 2
    assert out["confidence"].tolist() == [0.95, 0.95]
    assert (out["lower_ci_99_8"] < out["lower_ci"]).all()
    assert (out["upper_ci_99_8"] > out["upper_ci"]).all()
    long = ci_long(out)
    assert long["confidence"].tolist() == [0.95, 0.998, 0.95, 0.998]
    assert long["area"].tolist() == ["E01", "E01", "E02", "E02"]
    assert not any(c.endswith("99_8") for c in long.columns)


def test_proportion_percentage():
    t = pd.DataFrame({"area": ["A"], "numerator": [81], "denominator": [263]})
    out = proportion(t, by="area", multiplier=100, disclosure_control=False)
    assert out["statistic"][0] == "percentage"
    assert out["method"][0] == "Wilson"
    np.testing.assert_allclose([out["lower_ci"][0], out["upper_ci"][0]], [25.53, 36.62],
                               atol=5e-3)


def test_dsr_dobson_hand_calculation():
    # Standard weights 60/40. Band A: x=20, n=1000; band B: x=30, n=500.
    # DSR = (20*60/1000 + 30*40/500) / 100 * 1e5 = (1.2 + 2.4)/100 * 1e5 = 3600
    # var = (20*0.06^2 + 30*0.08^2) / 100^2 = (0.072 + 0.192)/1e4 = 2.64e-5; O = 50
    # Byar(50) = 37.10810, 65.92016 (see test_byar_golden)
    # lower = 3600 + sqrt(2.64e-5/50) * (37.10810 - 50) * 1e5 = 2663.228
    # upper = 3600 + sqrt(2.64e-5/50) * (65.92016 - 50) * 1e5 = 4756.816
    std = pd.DataFrame({"age_band": ["A", "B"], "weight": [60, 40]})
    t = pd.DataFrame({"area": "X", "age_band": ["A", "B"], "numerator": [20, 30],
                      "denominator": [1000, 500]})
    out = dsr(t, by="area", standard=std, disclosure_control=False)
    assert out["value"][0] == pytest.approx(3600)
    assert out["lower_ci"][0] == pytest.approx(2663.228, abs=1e-3)
    assert out["upper_ci"][0] == pytest.approx(4756.816, abs=1e-3)
    assert (out["numerator"][0], out["denominator"][0]) == (50, 1500)
    assert out["method"][0] == "Dobson"
    assert out["statistic"][0] == "dsr per 100,000"


def test_dsr_suppressed_below_ten_and_sums_strata():
    t = pd.DataFrame({"area": ["X", "X", "Y", "Y"], "sex": ["F", "M", "F", "M"],
                      "age_band": ["70-74"] * 4, "numerator": [4, 5, 6, 6],
                      "denominator": [100, 100, 100, 100]})
    with pytest.warns(DataQualityWarning, match="no population"):
        out = dsr(t, by="area", disclosure_control=False)
    assert out["numerator"].tolist() == [9, 12]
    assert pd.isna(out["value"][0]) and pd.isna(out["lower_ci"][0])
    assert out["statistic"].tolist() == ["dsr NA for total count < 10", "dsr per 100,000"]
    assert out["suppressed"][0] == "total count < 10"
    # only the 70-74 band has people: DSR = 12/200 * 5000/100000 * 1e5
    assert out["value"][1] == pytest.approx(12 / 200 * 5000)


def test_isr_hand_calculation():
    # reference (pooled): band 0-4 40/2000 = 0.02, band 5-9 20/2000 = 0.01
    # A: E = 1000*0.02 + 1000*0.01 = 30, O = 40 -> ISR 1.3333, Byar(40)/30
    t = pd.DataFrame({"area": ["A", "A", "B", "B"], "age_band": ["0-4", "5-9"] * 2,
                      "numerator": [30, 10, 10, 10], "denominator": [1000, 1000] * 2})
    out = isr(t, by="area", disclosure_control=False)
    assert out["expected"].tolist() == [30.0, 30.0]
    np.testing.assert_allclose(out["value"], [40 / 30, 20 / 30])
    lo = 40 * (1 - 1 / 360 - Z / (3 * math.sqrt(40))) ** 3
    assert out["lower_ci"][0] == pytest.approx(lo / 30, rel=1e-12)
    ref = pd.DataFrame({"age_band": ["0-4", "5-9"], "numerator": [10, 10],
                        "denominator": [1000, 1000]})
    out2 = isr(t, by="area", reference=ref, multiplier=100, disclosure_control=False)
    np.testing.assert_allclose(out2["value"], [200.0, 100.0])
    assert out2["statistic"][0] == "indirectly standardised ratio x 100"


# ----------------------------------------------------------------------------- disclosure


def test_rounding_examples_from_engineering_reference():
    pub, sup = control_counts([8, 12, 13, 22, 23, 0, 1, 7])
    assert pub[:6].tolist() == [10, 10, 15, 20, 25, 0]
    assert sup.tolist() == [False] * 6 + [True, True]


def test_suppress_marks_reason_and_derived_values():
    t = pd.DataFrame({"area": ["A", "B", "C"], "numerator": [0, 40, 12],
                      "denominator": [500, 5, 900], "value": [0.0, 8.0, 1.3],
                      "lower_ci": [0.0, 5.7, 0.7], "upper_ci": [0.7, 10.9, 2.3]})
    out = suppress(t, recomputed=True)
    assert out["numerator"].tolist() == [0, 40, 10]
    assert out["denominator"].isna().tolist() == [False, True, False]
    assert out["value"].isna().tolist() == [False, True, False]
    assert out["upper_ci"].isna().tolist() == [False, True, False]
    assert out["suppressed"].fillna("").tolist() == ["", "denominator 1-7", ""]
    assert str(out["numerator"].dtype) == "Int64"
    assert out.attrs["disclosure_control"]["threshold"] == 7


def test_suppress_blanks_statistics_it_cannot_vouch_for(caplog):
    # value 1.3 with published denominator 900 would give 12 back (the true count)
    t = pd.DataFrame({"area": ["A", "C"], "numerator": [0, 12], "denominator": [500, 900],
                      "value": [0.0, 12 / 900 * 100]})
    with caplog.at_level("WARNING", logger="pophealth.areas.disclosure"):
        out = suppress(t)
    assert out["value"].isna().all()
    assert out.attrs["disclosure_control"]["derived_blanked"] == ["value"]
    assert "1 derived column(s) ['value'] blanked" in caplog.text


def test_suppress_configurable_and_exempt():
    t = pd.DataFrame({"numerator": [3, 9, 3], "national": [False, False, True]})
    out = suppress(t, threshold=2, base=10, exempt="national")
    assert out["numerator"].tolist() == [10, 10, 3]
    assert out["suppressed"].isna().all()


def test_rate_functions_control_counts_by_default():
    t = pd.DataFrame({"area_type": "pcn", "area": ["P1", "P2"], "numerator": [3, 48],
                      "denominator": [1234, 5678]})
    out = crude_rate(t, margins=None)
    assert pd.isna(out["numerator"][0]) and out["numerator"][1] == 50
    assert out["denominator"].tolist() == [1235, 5680]
    # from the published counts: 50 / 5680 * 1e5 = 880.28; Byar(50) = 37.10810, 65.92016
    assert pd.isna(out["value"][0]) and out["value"][1] == 880.3
    assert (out["lower_ci"][1], out["upper_ci"][1]) == (653.3, 1160.6)
    assert out["suppressed"][0] == "numerator 1-7"
    assert out["method"][1].startswith("Byar; computed from published counts")
    # with the default margins the other PCN goes too (else: national total - P2 = P1)
    auto = crude_rate(t)
    assert auto["numerator"].isna().all() and auto["value"].isna().all()
    assert auto["suppressed"][1] == "numerator secondary suppression"


def test_turning_off_is_explicit_and_logged(caplog):
    t = pd.DataFrame({"area_type": "pcn", "area": ["P1"], "numerator": [3],
                      "denominator": [1234]})
    with caplog.at_level("WARNING", logger="pophealth.areas.disclosure"):
        out = crude_rate(t, disclosure_control=False)
    assert out["numerator"].tolist() == [3]
    assert "disclosure control turned off" in caplog.text
    assert out.attrs["disclosure_control"] is False


@PROPS
@given(count_lists())  # every count 0-20, threshold +-1 and rounding edges (tests/strategies.py)
def test_property_suppression_never_publishes_1_to_7(counts):
    out = suppress(pd.DataFrame({"numerator": counts}))
    published = out["numerator"].dropna().astype(int)
    assert not published.between(1, 7).any()
    assert (published % 5 == 0).all()
    zero = np.asarray(counts) == 0
    assert (out["numerator"][zero] == 0).all()
    # nothing positive becomes a misleading zero
    assert not ((np.asarray(counts) > 0) & (out["numerator"].fillna(-1) == 0)).any()


# ----------------------------------------------------------------------------- aggregate


def _register(n=200, seed=0):
    rng = np.random.default_rng(seed)
    lsoa = rng.choice(["E01", "E02", "E03", None], size=n, p=[0.4, 0.3, 0.25, 0.05])
    return pd.DataFrame({
        "patient_id": np.arange(n),
        "sex": rng.choice(["F", "M"], size=n),
        "age": rng.integers(0, 100, size=n),
        "lsoa": lsoa,
        "imd_decile": rng.integers(1, 11, size=n),
        "admitted": rng.random(n) < 0.2,
    })


def test_aggregate_unknown_area_is_kept_and_reported():
    reg = _register()
    n_unknown = int(reg["lsoa"].isna().sum())
    assert n_unknown > 0
    with pytest.warns(DataQualityWarning, match=f"{n_unknown} patient"):
        out = aggregate_by_area(reg, numerator="admitted")
    assert out.attrs["unknown_area"] == n_unknown
    assert out.loc[out["area"] == "unknown", "denominator"].sum() == n_unknown
    assert out["denominator"].sum() == len(reg)
    assert out["numerator"].sum() == reg["admitted"].sum()
    assert list(out.columns) == ["area_type", "area", "age_band", "sex", "numerator",
                                 "denominator"]
    assert out["area"].iloc[-1] == "unknown"


def test_aggregate_numeric_area_order_and_multiple_measures():
    reg = _register().assign(deaths=lambda d: d["age"] > 90)
    out = aggregate_by_area(reg, by="imd_decile", numerator=["admitted", "deaths"], strata=())
    assert out["area"].tolist()[:10] == [str(i) for i in range(1, 11)]
    assert set(out["measure"]) == {"admitted", "deaths"}
    assert out.groupby("measure")["denominator"].sum().tolist() == [200, 200]


def test_aggregate_derives_age_band_from_date_of_birth():
    reg = pd.DataFrame({"patient_id": [1, 2], "sex": ["F", "M"], "lsoa": ["A", "A"],
                        "date_of_birth": pd.to_datetime(["2020-06-01", "1930-01-01"])})
    with pytest.raises(ConfigError, match="index_date"):
        aggregate_by_area(reg)
    out = aggregate_by_area(reg, index_date="2025-05-31")
    assert out["age_band"].tolist() == ["0-4", "90+"]
    assert age_at(reg["date_of_birth"], "2025-05-31").tolist() == [4.0, 95.0]


@PROPS
@given(st.integers(0, 10_000), st.integers(20, 150))
def test_property_numerators_sum_to_total_and_row_order_invariance(seed, n):
    reg = _register(n, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        out = aggregate_by_area(reg, numerator="admitted")
        shuffled = aggregate_by_area(reg.sample(frac=1, random_state=seed), numerator="admitted")
    assert out["numerator"].sum() == reg["admitted"].sum()
    assert out["denominator"].sum() == n
    pd.testing.assert_frame_equal(out, shuffled)
    rates = crude_rate(out, disclosure_control=False)
    rates2 = crude_rate(out.sample(frac=1, random_state=1), disclosure_control=False)
    pd.testing.assert_frame_equal(rates, rates2)
    assert rates["numerator"].sum() == reg["admitted"].sum()


# ----------------------------------------------------------------------------- DSR properties


@PROPS
@given(st.lists(st.integers(1, 50), min_size=19, max_size=19), st.integers(2, 500),
       st.sampled_from([1000, 100_000]))
def test_property_constant_rate_gives_that_dsr(k, m, multiplier):
    # x_i = k_i events in n_i = k_i * m people: rate 1/m in every band
    t = pd.DataFrame({"area": "X", "age_band": ESP2013_BANDS, "numerator": k,
                      "denominator": [ki * m for ki in k]})
    out = dsr(t, by="area", multiplier=multiplier, confidence=(0.95, 0.998),
              disclosure_control=False)
    rate = multiplier / m
    assert out["value"][0] == pytest.approx(rate)
    assert out["lower_ci"][0] <= rate <= out["upper_ci"][0]
    assert out["lower_ci_99_8"][0] <= out["lower_ci"][0]
    shuffled = dsr(t.sample(frac=1, random_state=0), by="area", multiplier=multiplier,
                   confidence=(0.95, 0.998), disclosure_control=False)
    pd.testing.assert_frame_equal(out, shuffled)


# ----------------------------------------------------------------------------- SII


@PROPS
@given(st.lists(st.integers(100, 100_000), min_size=5, max_size=20),
       st.floats(50, 500), st.floats(-40, 40))
def test_property_sii_recovers_exact_linear_gradient(pops, intercept, slope):
    pops = np.asarray(pops, dtype=float)
    a = pops / pops.sum()
    rank = np.cumsum(a) - a / 2
    value = intercept + slope * rank
    t = pd.DataFrame({"area": np.arange(1, len(pops) + 1), "denominator": pops,
                      "value": value, "lower_ci": value * 0.95, "upper_ci": value * 1.05})
    out = sii(t, random_state=0, repetitions=1000).set_index("statistic")
    assert out.loc["sii", "value"] == pytest.approx(slope, abs=1e-8)
    assert out.loc["rii", "value"] == pytest.approx((intercept + slope) / intercept, rel=1e-9)
    assert out.loc["sii", "lower_ci"] <= out.loc["sii", "upper_ci"]


def test_sii_reproducible_transform_and_groups():
    t = pd.DataFrame({"sex": np.repeat(["F", "M"], 10), "area": np.tile(np.arange(1, 11), 2),
                      "denominator": 1000.0,
                      "value": np.tile(np.exp(np.log(50) - 0.08 * np.arange(10)), 2)})
    t["lower_ci"], t["upper_ci"] = t["value"] * 0.8, t["value"] * 1.25
    one = sii(t, by="sex", random_state=7, repetitions=2000, transform=True,
              confidence=(0.95, 0.998))
    two = sii(t, by="sex", random_state=7, repetitions=2000, transform=True,
              confidence=(0.95, 0.998))
    pd.testing.assert_frame_equal(one, two)
    rii = one.query("statistic == 'rii'")["value"]
    # log-linear in decile: log-rate slope -0.08 per decile = -0.8 per unit rank
    np.testing.assert_allclose(rii, np.exp(-0.8), rtol=1e-9)
    assert one["method"][0] == "simulation, 2000 repetitions; log-transformed"
    assert (one["lower_ci_99_8"] <= one["lower_ci"]).all()


def test_sii_excludes_unknown_quantile_with_warning():
    t = pd.DataFrame({"area": [str(i) for i in range(1, 11)] + ["unknown"],
                      "denominator": 100.0, "value": 10.0, "lower_ci": 8.0, "upper_ci": 12.0})
    with pytest.warns(DataQualityWarning, match="1 row"):
        out = sii(t, random_state=0, repetitions=1000)
    assert out["quantiles"].tolist() == [10, 10]
    assert out["value"][0] == pytest.approx(0, abs=1e-9)


def test_sii_errors():
    t = pd.DataFrame({"area": [1, 2, 3], "denominator": 100.0, "value": 10.0,
                      "lower_ci": 8.0, "upper_ci": 12.0})
    with pytest.raises(ConfigError, match="between 5 and 100; got 3"):
        sii(t, random_state=0)
    with pytest.raises(ConfigError, match="repetitions must be an integer of at least 1000"):
        sii(t, random_state=0, repetitions=10)


# ----------------------------------------------------------------------------- errors


def test_negative_numerator_error_message_has_no_values():
    t = pd.DataFrame({"area_type": "lsoa", "area": ["A", "B"], "numerator": [4, -987654],
                      "denominator": [100, 200]})
    with pytest.raises(SchemaError) as err:
        crude_rate(t)
    assert str(err.value) == (
        "crude_rate failed validation (1 problem(s)):\n"
        "  crude_rate: column 'numerator' breaks rule 'non_negative' in 1 row(s); "
        "first positions [1]")
    assert "987654" not in str(err.value)
    assert err.value.problems == [{"table": "crude_rate", "column": "numerator",
                                   "rule": "non_negative", "count": 1, "positions": [1]}]


def test_zero_denominator_error_message():
    t = pd.DataFrame({"area_type": "lsoa", "area": ["A", "B", "C"], "numerator": [0, 1, 2],
                      "denominator": [0, 200, 0]})
    with pytest.raises(SchemaError, match=re.escape(
            "crude_rate: column 'denominator' breaks rule 'positive' in 2 row(s); "
            "first positions [0, 2]")):
        crude_rate(t)


def test_proportion_numerator_above_denominator():
    t = pd.DataFrame({"area": ["A"], "numerator": [5], "denominator": [4]})
    with pytest.raises(SchemaError, match="rule 'numerator_le_denominator' in 1 row"):
        proportion(t, by="area")


def test_missing_column_and_bad_confidence_and_multiplier():
    t = pd.DataFrame({"area": ["A"], "numerator": [5], "denominator": [40]})
    with pytest.raises(SchemaError, match="column 'area_type' breaks rule 'missing_column'"):
        crude_rate(t)
    with pytest.raises(ConfigError) as err:
        crude_rate(t, by="area", confidence=0.5)
    assert str(err.value) == ("confidence must be between 0.9 and 1 (exclusive of 1) or "
                              "between 90 and 100 (exclusive of 100); got 0.5")
    with pytest.raises(ConfigError, match="multiplier must be greater than 0; got 0"):
        crude_rate(t, by="area", multiplier=0)
    assert parse_confidence([0.95, 99.8]) == (0.95, 0.998)
    with pytest.raises(ConfigError, match="distinct"):
        parse_confidence([0.95, 95])


def test_dsr_events_without_population_is_an_error():
    t = pd.DataFrame({"area": ["A"] * 2, "age_band": ["0-4", "5-9"], "numerator": [12, 3],
                      "denominator": [100, 0]})
    with pytest.raises(SchemaError, match="'events_need_population' in 1 group x age band"):
        dsr(t, by="area")
    bad = t.assign(age_band=["0-4", "5 to 9"], denominator=[100, 10])
    with pytest.raises(SchemaError, match="'age_band_in_standard'.*first positions \\[1\\]"):
        dsr(bad, by="area")


def test_age_band_labels_and_negative_age():
    assert age_band([0, 4, 5, 89, 90, 120, np.nan]).astype(str).tolist() == [
        "0-4", "0-4", "5-9", "85-89", "90+", "90+", "unknown"]
    with pytest.raises(SchemaError, match="'non_negative' in 1 row"):
        age_band([3, -1])


def test_outputs_sorted_in_natural_order():
    t = pd.DataFrame({"area_type": "imd_decile", "area": [str(i) for i in range(10, 0, -1)]
                      + ["unknown"], "numerator": 50, "denominator": 1000})
    out = crude_rate(t, disclosure_control=False)
    assert out["area"].tolist() == [str(i) for i in range(1, 11)] + ["unknown"]
    bands = pd.DataFrame({"area_type": "x", "area": "A", "age_band": ["10-14", "5-9", "0-4"],
                          "numerator": 5, "denominator": 100})
    out = crude_rate(bands, by=("area", "age_band"), disclosure_control=False)
    assert out["age_band"].tolist() == ["0-4", "5-9", "10-14"]


def test_sii_on_suppressed_quantile_explains_itself():
    t = pd.DataFrame({"area_type": "imd_decile", "area": [str(i) for i in range(1, 11)],
                      "numerator": [3] + [50] * 9, "denominator": 1000})
    with pytest.raises(SchemaError, match="column 'value' breaks rule 'not_null' \\(suppressed"):
        sii(crude_rate(t), random_state=0)
    ok = sii(crude_rate(t, disclosure_control=False), random_state=0, repetitions=1000)
    assert ok["statistic"].tolist() == ["sii", "rii"]


def test_sii_with_standard_errors_for_proportions():
    t = pd.DataFrame({"area": range(1, 11), "denominator": 1000.0,
                      "value": np.linspace(0.3, 0.1, 10), "se": 0.05})
    out = sii(t, se="se", value_type="proportion", multiplier=100, random_state=0,
              repetitions=1000).set_index("statistic")
    # exactly linear in decile: 0.2 fall over ranks 0.05..0.95 -> -0.2/0.9 per unit rank
    assert out.loc["sii", "value"] == pytest.approx(-100 * 0.2 / 0.9)
    assert out.loc["sii", "lower_ci"] < out.loc["sii", "value"] < out.loc["sii", "upper_ci"]
