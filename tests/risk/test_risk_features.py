"""Tests for make_features, risk_tiers and evaluate_risk (golden values, properties, errors)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.risk.evaluation import (
    calibration_intercept_slope,
    calibration_table,
    evaluate_risk,
    risk_groups,
)
from pophealth.risk.features import BASE_FEATURES, make_features
from pophealth.risk.tiers import risk_tiers, top_fraction

INDEX = "2025-04-01"


@pytest.fixture
def tables():
    reg = pd.DataFrame({
        "patient_id": [10, 20, 30],
        "sex": ["M", "F", "U"],
        "date_of_birth": pd.to_datetime(["1945-04-01", "1945-04-02", "2000-01-01"]),
        "imd_decile": [1, None, 10],
    })
    flags = pd.DataFrame({  # superset of the register, another order, a band column
        "heart_failure": [False, True, True, False],
        "charlson_quan2011": [0, 3, 1, 5],
        "efi": [np.nan, 0.2, 0.1, 0.3],
        "hfrs_band": pd.Categorical(["low", "high", "low", "low"]),
    }, index=pd.Index([30, 10, 20, 99], name="patient_id"))
    act = pd.DataFrame({
        "patient_id": [10, 10, 10, 10, 20, 20, 99, 30],
        "date": pd.to_datetime(["2025-04-01", "2024-04-02", "2024-04-01", "2025-04-02",
                                "2025-01-01", "2025-01-01", "2025-01-01", "2025-03-01"]),
        "kind": ["emergency_admission", "elective_admission", "ae", "ae",
                 "community", "gp", "ae", "mental_health"],
        "cost": [1000.0, 500.0, 150.0, 999.0, 80.0, 40.0, 7.0, 60.0],
        "length_of_stay": [3, 2, 0, 0, 0, 0, 0, 0],
    })
    return reg, flags, act


def test_make_features_golden(tables):
    reg, flags, act = tables
    before = [t.copy() for t in tables]
    X = make_features(reg, flags, act, index_date=INDEX)
    assert list(X.columns) == [*BASE_FEATURES, "heart_failure", "charlson_quan2011", "efi"]
    assert X.index.tolist() == [10, 20, 30] and X.index.name == "patient_id"
    assert (X.dtypes == "float64").all()
    np.testing.assert_array_equal(X["age"], [80.0, 79.0, 25.0])  # birthday on/after index
    np.testing.assert_array_equal(X["male"], [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(X["imd_decile"], [1.0, np.nan, 10.0])
    # window (index - 365 days, index]: 2025-04-01 and 2024-04-02 in; 2024-04-01 and 2025-04-02 out
    np.testing.assert_array_equal(X["prior_emergency_admissions"], [1, 0, 0])
    np.testing.assert_array_equal(X["prior_elective_admissions"], [1, 0, 0])
    np.testing.assert_array_equal(X["prior_ae_attendances"], [0, 0, 0])
    np.testing.assert_array_equal(X["prior_gp_contacts"], [0, 1, 0])
    np.testing.assert_array_equal(X["prior_other_contacts"], [0, 1, 1])
    np.testing.assert_array_equal(X["prior_bed_days"], [5.0, 0.0, 0.0])
    np.testing.assert_array_equal(X["prior_cost"], [1500.0, 120.0, 60.0])
    np.testing.assert_array_equal(X["heart_failure"], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(X["charlson_quan2011"], [3.0, 1.0, 0.0])
    np.testing.assert_array_equal(X["efi"], [0.2, 0.1, np.nan])
    for got, want in zip(tables, before, strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_make_features_without_flags_and_lookback(tables):
    reg, _, act = tables
    X = make_features(reg, None, act, index_date=INDEX, lookback_days=366)
    assert list(X.columns) == list(BASE_FEATURES)
    np.testing.assert_array_equal(X["prior_ae_attendances"], [1, 0, 0])  # 2024-04-01 now in


def test_make_features_age_column_wins_and_no_los(tables):
    reg, flags, act = tables
    X = make_features(reg.assign(age=[1, 2, 3]), flags, act.drop(columns="length_of_stay"),
                      index_date=INDEX)
    np.testing.assert_array_equal(X["age"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(X["prior_bed_days"], [0.0, 0.0, 0.0])


def test_make_features_errors_name_columns_and_counts(tables):
    reg, flags, act = tables
    with pytest.raises(SchemaError, match=r"2 register patient\(s\) are not in the flags"):
        make_features(reg, flags.loc[[10, 99]], act, index_date=INDEX)
    with pytest.raises(SchemaError, match=r"\['prior_cost'\] clash"):
        make_features(reg, flags.assign(prior_cost=1.0), act, index_date=INDEX)
    with pytest.raises(SchemaError, match="column 'kind' breaks rule 'missing_column'"):
        make_features(reg, flags, act.drop(columns="kind"), index_date=INDEX)
    with pytest.raises(SchemaError, match="'age' or 'date_of_birth'"):
        make_features(reg.drop(columns="date_of_birth"), flags, act, index_date=INDEX)
    with pytest.raises(SchemaError, match="rule 'unique' in 2 row"):
        make_features(reg, pd.concat([flags, flags.iloc[[0]]]), act, index_date=INDEX)


# ----------------------------------------------------------------------------- tiers


def test_risk_tiers_golden_and_ties_together():
    risk = pd.Series([0.1, 0.9, 0.5, 0.5, 0.2, np.nan], index=list("abcdef"))
    tiers = risk_tiers(risk, cuts=(0.2, 0.4, 0.8))
    # n = 5 non-missing; higher counts 4, 0, 1, 1, 3 -> fractions .8, 0, .2, .2, .6
    assert tiers.tolist()[:5] == ["low", "very high", "high", "high", "moderate"]
    assert pd.isna(tiers["f"])
    assert tiers.index.equals(risk.index) and tiers.name == "tier"
    assert tiers.cat.ordered
    assert list(tiers.cat.categories) == ["low", "moderate", "high", "very high"]
    assert tiers.sort_values(ascending=False).index.tolist()[:5] == ["b", "c", "d", "e", "a"]


def test_risk_tiers_default_sizes_exact_without_ties():
    risk = np.linspace(0, 1, 1000)[::-1]
    counts = risk_tiers(risk).value_counts()
    assert counts.to_dict() == {"very high": 5, "high": 45, "moderate": 150, "low": 800}


@given(st.lists(st.floats(0, 1), min_size=1, max_size=60, unique=True),
       st.randoms(use_true_random=False))
def test_risk_tiers_permutation_invariant_and_cumulative_sizes(values, rnd):
    risk = np.array(values)
    perm = list(range(len(risk)))
    rnd.shuffle(perm)
    cuts = (0.1, 0.3, 0.6)
    tiers = risk_tiers(risk, cuts=cuts)
    shuffled = risk_tiers(risk[perm], cuts=cuts)
    assert shuffled.tolist() == tiers.to_numpy()[perm].tolist()
    codes = tiers.cat.codes.to_numpy()  # 3 = very high
    for i, cut in enumerate(cuts):
        assert (codes >= 3 - i).sum() == math.ceil(cut * len(risk) - 1e-12)
    # top_fraction uses the same rule as the tiers
    np.testing.assert_array_equal(top_fraction(risk, 0.3), codes >= 2)


def test_risk_tiers_errors():
    with pytest.raises(ConfigError, match="strictly increasing"):
        risk_tiers([0.1, 0.2], cuts=(0.2, 0.1, 0.5))
    with pytest.raises(ConfigError, match="give 'labels'"):
        risk_tiers([0.1, 0.2], cuts=(0.5,))
    with pytest.raises(ConfigError, match="needs 2 distinct labels"):
        risk_tiers([0.1, 0.2], cuts=(0.5,), labels=["a"])
    assert risk_tiers([0.1, 0.2], cuts=(0.5,), labels=["top", "rest"]).tolist() == ["rest", "top"]


# ----------------------------------------------------------------------------- evaluation


@pytest.fixture
def scored():
    rng = np.random.default_rng(7)
    p = rng.beta(1, 8, 4000)
    y = rng.random(4000) < p
    risk = np.clip(p + rng.normal(0, 0.03, 4000), 0.001, 0.999)
    return y, risk


def test_evaluate_risk_matches_sklearn(scored):
    y, risk = scored
    row = evaluate_risk(y, risk).loc[("all", "all")]
    assert row["auroc"] == pytest.approx(roc_auc_score(y, risk), abs=1e-12)
    assert row["average_precision"] == pytest.approx(average_precision_score(y, risk), abs=1e-12)
    assert row["brier"] == pytest.approx(brier_score_loss(y, risk), abs=1e-12)
    assert row["n"] == 4000 and row["events"] == y.sum()
    order = np.argsort(-risk, kind="stable")
    top = np.zeros(4000, bool)
    top[order[:200]] = True  # 5 % of 4000, no ties
    assert row["flagged_5%"] == 200
    assert row["ppv_top_5%"] == pytest.approx(y[top].mean())
    assert row["sensitivity_top_5%"] == pytest.approx(y[top].sum() / y.sum())


def test_calibration_slope_matches_sklearn_and_intercept_solves_score_equation(scored):
    y, risk = scored
    a, b = calibration_intercept_slope(y, risk)
    lp = np.log(risk / (1 - risk))
    lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(lp[:, None], y)
    assert b == pytest.approx(lr.coef_[0, 0], rel=1e-5)
    assert np.sum(y - 1 / (1 + np.exp(-(a + lp)))) == pytest.approx(0, abs=1e-6)


def test_calibration_recovers_known_miscalibration():
    rng = np.random.default_rng(3)
    lp = rng.normal(-2, 1, 200_000)
    y = rng.random(len(lp)) < 1 / (1 + np.exp(-lp))
    a, b = calibration_intercept_slope(y, 1 / (1 + np.exp(-lp)))
    assert abs(a) < 0.02 and abs(b - 1) < 0.02
    _, b2 = calibration_intercept_slope(y, 1 / (1 + np.exp(-2 * lp)))  # over-confident
    assert b2 == pytest.approx(0.5, abs=0.02)
    a3, _ = calibration_intercept_slope(y, 1 / (1 + np.exp(-(lp - 0.5))))  # under-predicts
    assert a3 == pytest.approx(0.5, abs=0.03)


def test_evaluate_risk_golden_with_ties():
    y = np.array([1, 0, 1, 0, 0])
    risk = np.array([0.9, 0.5, 0.5, 0.2, 0.1])
    row = evaluate_risk(y, risk, top=(0.2, 0.4)).loc[("all", "all")]
    assert row["flagged_20%"] == 1 and row["ppv_top_20%"] == 1.0
    assert row["sensitivity_top_20%"] == 0.5
    assert row["flagged_40%"] == 3  # the two 0.5s are tied at the cut: both flagged
    assert row["ppv_top_40%"] == pytest.approx(2 / 3)
    assert row["auroc"] == pytest.approx(5.5 / 6)  # 6 pairs: 5 concordant, 1 tied


def test_evaluate_risk_groups(scored):
    y, risk = scored
    groups = pd.DataFrame({"sex": np.where(np.arange(4000) % 3 == 0, "M", "F"),
                           "band": pd.Categorical(np.where(risk > 0.3, "hi", "lo"),
                                                  categories=["lo", "hi", "empty"])})
    ev = evaluate_risk(y, risk, groups=groups)
    assert ev.index.names == ["group", "level"]
    assert ev.index.tolist() == [("all", "all"), ("sex", "F"), ("sex", "M"),
                                 ("band", "lo"), ("band", "hi")]
    m = groups["sex"].eq("M").to_numpy()
    assert ev.loc[("sex", "M"), "auroc"] == pytest.approx(roc_auc_score(y[m], risk[m]))
    for top in ("0.5%", "1%", "5%", "20%"):
        assert ev.xs("sex")[f"flagged_{top}"].sum() == ev.loc[("all", "all"), f"flagged_{top}"]
    assert np.isnan(ev.loc[("band", "hi"), "auroc"]) == (y[risk > 0.3].min() == y[risk > 0.3].max())


def test_single_class_gives_nan_not_error():
    row = evaluate_risk([0, 0, 0], [0.1, 0.2, 0.3]).loc[("all", "all")]
    assert np.isnan(row["auroc"]) and np.isnan(row["calibration_slope"])
    assert row["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)


def test_evaluate_risk_errors_give_counts():
    with pytest.raises(SchemaError, match="2 risk value"):
        evaluate_risk([0, 1, 0], [0.1, 1.5, np.nan])
    with pytest.raises(SchemaError, match="y_true has 2 values but risk has 3"):
        evaluate_risk([0, 1], [0.1, 0.2, 0.3])


def test_calibration_table_and_risk_groups():
    t = calibration_table([0, 0, 1, 1, 1, 0], [0.1, 0.1, 0.5, 0.6, 0.9, 0.9], n_bins=3)
    assert t["n"].tolist() == [2, 2, 2]
    assert t["observed_rate"].tolist() == [0.0, 1.0, 0.5]
    assert (t["lower_ci"] <= t["observed_rate"]).all() and (t["upper_ci"] >= t["observed_rate"]).all()
    reg = pd.DataFrame({"patient_id": [1, 2, 3], "sex": ["F", "M", "F"], "age": [17, 18, 90],
                        "imd_decile": [2, 3, None], "ethnicity": ["White", "Asian", None]})
    g = risk_groups(reg)
    assert g["age_band"].astype(str).tolist() == ["0-17", "18-44", "85+"]
    assert g["imd_quintile"].tolist()[:2] == [1, 2] and pd.isna(g["imd_quintile"].iloc[2])
    assert list(g.columns) == ["imd_quintile", "sex", "age_band", "ethnicity"]


# ------------------------------------------------- issue 13 item 15: counts and alignment


def test_top_fraction_float_trap_seven_percent_of_100():
    # the trap: 0.07 * 100 == 7.000000000000001 in floating point, so a bare ceil gives 8
    risk = np.arange(100, 0, -1) / 100.0  # 100 distinct risks, no ties
    assert int(top_fraction(risk, 0.07).sum()) == 7  # 7 % of 100, by hand
    tiers = risk_tiers(risk, cuts=(0.07, 0.5), labels=["top", "middle", "rest"])
    assert int((tiers == "top").sum()) == 7
    np.testing.assert_array_equal(top_fraction(risk, 0.07), (tiers == "top").to_numpy())


# n where float multiplication errs upwards (e.g. 0.29 * 100 = 29.000000000000004)
@example(7, 100)
@example(29, 1500)
@example(57, 1200)
@example(14, 50)
@given(st.sampled_from([7, 10, 30, 14, 29, 57, 35]),
       st.one_of(st.integers(1, 3000), st.sampled_from([50, 100, 200, 400, 700, 1200])))
def test_top_fraction_and_tiers_agree_on_integer_count(percent, n):
    fraction = percent / 100
    risk = np.arange(n, 0, -1, dtype=float)  # distinct: the count is exact
    expected = (percent * n + 99) // 100  # ceil(percent * n / 100) in integer arithmetic
    flagged = top_fraction(risk, fraction)
    assert int(flagged.sum()) == expected
    tiers = risk_tiers(risk, cuts=(fraction,), labels=["top", "rest"])
    np.testing.assert_array_equal(flagged, (tiers == "top").to_numpy())


def test_evaluate_risk_aligns_series_on_index():
    # hand-computed AUROC: events at risks .9, .7, .1; non-events .8, .3, .2;
    # pairs (event > non-event): .9 beats 3, .7 beats 2, .1 beats 0 -> 5 of 9
    y = pd.Series([1, 0, 1, 0, 0, 1], index=[11, 12, 13, 14, 15, 16])
    risk = pd.Series([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], index=y.index)
    shuffled = risk.iloc[[3, 0, 5, 1, 4, 2]]
    aligned = evaluate_risk(y, risk, top=(0.5,))
    got = evaluate_risk(y, shuffled, top=(0.5,))
    assert got.loc[("all", "all"), "auroc"] == pytest.approx(5 / 9)
    pd.testing.assert_frame_equal(got, aligned)
    # the fault being fixed: by position the shuffled Series gives another AUROC
    positional = evaluate_risk(y.to_numpy(), shuffled.to_numpy(), top=(0.5,))
    assert positional.loc[("all", "all"), "auroc"] != pytest.approx(5 / 9)
    # groups are aligned the same way
    groups = pd.Series(["a", "a", "a", "b", "b", "b"], index=y.index, name="g")
    by_group = evaluate_risk(y, shuffled, top=(0.5,), groups=groups.iloc[::-1])
    assert by_group.loc[("g", "a"), "n"] == 3 and by_group.loc[("g", "a"), "events"] == 2


def test_evaluate_risk_refuses_series_with_other_labels():
    y = pd.Series([1, 0, 1], index=[1, 2, 3])
    with pytest.raises(SchemaError, match=r"2 index label\(s\) only in y_true, 2 only in risk"):
        evaluate_risk(y, pd.Series([0.1, 0.2, 0.3], index=[1, 8, 9]))
    with pytest.raises(SchemaError, match=r"1 duplicated index label"):
        evaluate_risk(y, pd.Series([0.1, 0.2, 0.3], index=[1, 1, 2]))
    with pytest.raises(SchemaError, match=r"groups .*3 index label\(s\) only in y_true"):
        evaluate_risk(y, [0.1, 0.2, 0.3], groups=pd.Series(["a", "b", "c"], index=[7, 8, 9]))


# ----------------------------------------------------------------- tz-aware dates (issue 13)

# By hand, index date 2025-04-01, look-back (2024-04-01 00:00, 2025-04-01 00:00] on the wall
# clock of each column's own zone (BST = UTC+1 on all three dates):
#                              London column     UTC column (the same instants)
#   gp        00:30 BST 1 Apr 2024   in  (100)   23:30 31 Mar 2024 -> out
#   emergency 12:00 BST 1 Jun 2024   in  (10)    11:00  1 Jun 2024 -> in   (3 bed days)
#   ae        00:30 BST 1 Apr 2025   out         23:30 31 Mar 2025 -> in   (1)
# columns: prior_gp_contacts, prior_emergency_admissions, prior_ae_attendances,
# prior_bed_days, prior_cost
_TZ_LONDON = pd.Series(pd.to_datetime(["2024-04-01 00:30", "2024-06-01 12:00",
                                       "2025-04-01 00:30"])).dt.tz_localize("Europe/London")
_TZ_WALL = [1.0, 1.0, 0.0, 3.0, 110.0]
_TZ_UTC = [0.0, 1.0, 1.0, 3.0, 11.0]
_TZ_COLUMNS = ["prior_gp_contacts", "prior_emergency_admissions", "prior_ae_attendances",
               "prior_bed_days", "prior_cost"]


def _tz_activity(dates):
    return pd.DataFrame({"patient_id": [10, 10, 10], "date": dates,
                         "kind": ["gp", "emergency_admission", "ae"],
                         "cost": [100.0, 10.0, 1.0], "length_of_stay": [0, 3, 0]})


@pytest.mark.parametrize(("dates", "expected"), [
    (_TZ_LONDON, _TZ_WALL),
    (_TZ_LONDON.astype(pd.ArrowDtype(pa.timestamp("us", tz="Europe/London"))), _TZ_WALL),
    (_TZ_LONDON.dt.tz_localize(None), _TZ_WALL),
    (_TZ_LONDON.dt.tz_convert("UTC"), _TZ_UTC),
    (_TZ_LONDON.astype(pd.ArrowDtype(pa.timestamp("ms", tz="UTC"))), _TZ_UTC),
], ids=["numpy_london", "arrow_london", "naive_wall_clock", "numpy_utc", "arrow_utc"])
def test_make_features_counts_tz_aware_activity_by_local_date(dates, expected):
    reg = pd.DataFrame({"patient_id": [10, 20], "sex": ["F", "M"], "age": [80, 30]})
    X = make_features(reg, None, _tz_activity(dates), index_date=INDEX)
    assert X.loc[10, _TZ_COLUMNS].tolist() == expected
    assert X.loc[20, _TZ_COLUMNS].tolist() == [0.0] * 5


def test_make_features_tz_aware_index_date_uses_its_wall_clock_time():
    # index 00:30 BST on 1 April 2025: look-back (2024-04-01 00:30, 2025-04-01 00:30] on the
    # naive clock readings drops the gp row and keeps the emergency and A&E rows
    reg = pd.DataFrame({"patient_id": [10], "sex": ["F"], "age": [80]})
    X = make_features(reg, None, _tz_activity(_TZ_LONDON.dt.tz_localize(None)),
                      index_date=pd.Timestamp("2025-04-01 00:30", tz="Europe/London"))
    assert X.loc[10, _TZ_COLUMNS].tolist() == [0.0, 1.0, 1.0, 3.0, 11.0]


@pytest.mark.parametrize("arrow", [False, True], ids=["numpy", "arrow"])
def test_make_features_age_from_summer_local_midnight_birth(arrow):
    # DOB 2000-07-01 00:00 BST (= 2000-06-30 23:00 UTC): 25 on 2025-07-01 (UTC rule: 24)
    dob = pd.Series(pd.to_datetime(["2000-07-01 00:00"])).dt.tz_localize("Europe/London")
    dob = dob.astype(pd.ArrowDtype(pa.timestamp("us", tz="Europe/London"))) if arrow else dob
    reg = pd.DataFrame({"patient_id": [10], "sex": ["M"], "date_of_birth": dob})
    act = _tz_activity(_TZ_LONDON)
    assert make_features(reg, None, act, index_date="2025-07-01").loc[10, "age"] == 25.0
    assert make_features(reg, None, act, index_date="2025-06-30").loc[10, "age"] == 24.0
