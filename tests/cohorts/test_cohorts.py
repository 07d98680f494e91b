"""High-cost cohorts, cost concentration, regression to the mean, caseload selection, pseudonyms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pophealth.cohorts import (
    RTM_CAUTION,
    SelectionRule,
    cost_concentration,
    describe_reasons,
    high_cost_cohort,
    next_period_comparison,
    period_cost,
    persistent_high_cost,
    predicted_high_cost,
    rising_risk,
    select_caseload,
    top_fraction_mask,
)
from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.jobs.pseudonymise import key_fingerprint, load_key, pseudonymise


@pytest.fixture(scope="module")
def synthetic_population():
    from pophealth.synthetic import make_population

    return make_population(20_000, random_state=6, index_date="2025-04-01")


# ----------------------------------------------------------------- selection and ties


def test_top_fraction_takes_ceil_k_and_breaks_ties_by_lower_patient_id():
    values = [7.0, 7.0, 7.0, 1.0, 0.5]
    sel, rank, size = top_fraction_mask(values, ids=[30, 10, 20, 40, 50], fraction=0.4)
    # k = ceil(0.4 * 5) = 2: of the three tied at 7, ids 10 and 20 win
    assert sel.tolist() == [False, True, True, False, False]
    assert rank.tolist() == [3, 1, 2, 4, 5]
    assert size.tolist() == [5] * 5


def test_top_fraction_k_is_not_inflated_by_float_error():
    # 0.05 * 100 = 5.000000000000001 in floating point; k must be 5, not 6
    sel, _, _ = top_fraction_mask(np.arange(100, dtype=float), ids=np.arange(100),
                                  fraction=0.05)
    assert sel.sum() == 5
    assert np.flatnonzero(sel).tolist() == [95, 96, 97, 98, 99]


def test_top_fraction_is_independent_of_row_order():
    rng = np.random.default_rng(1)
    n = 500
    values = rng.integers(0, 20, n).astype(float)  # many ties
    ids = rng.permutation(10 * n)[:n]
    groups = rng.choice(["A", "B", "C"], n)
    sel, rank, _ = top_fraction_mask(values, ids=ids, fraction=0.1, groups=groups)
    perm = rng.permutation(n)
    sel2, rank2, _ = top_fraction_mask(values[perm], ids=ids[perm], fraction=0.1,
                                       groups=groups[perm])
    assert np.array_equal(sel[perm], sel2)
    assert np.array_equal(rank[perm], rank2)
    for g in "ABC":
        m = groups == g
        assert sel[m].sum() == int(np.ceil(0.1 * m.sum()))


def test_zero_and_missing_values_never_qualify():
    sel, rank, size = top_fraction_mask([0.0, np.nan, 0.0, 3.0], ids=[1, 2, 3, 4],
                                        fraction=1.0, positive_only=True)
    assert sel.tolist() == [False, False, False, True]
    assert rank.tolist() == [2, 0, 3, 1]  # missing value: not ranked, not counted
    assert size.tolist() == [3, 0, 3, 3]


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_bad_fraction_is_a_config_error(fraction):
    with pytest.raises(ConfigError, match="fraction"):
        top_fraction_mask([1.0], ids=[1], fraction=fraction)


def _activity(rows):
    return pd.DataFrame(rows, columns=["patient_id", "date", "cost"]).assign(
        date=lambda d: pd.to_datetime(d["date"], format="ISO8601"))


def test_period_cost_includes_both_end_days_and_ignores_unknown_patients():
    act = _activity([(1, "2024-04-01", 10.0), (1, "2025-03-31 23:59", 5.0),
                     (1, "2025-04-01", 100.0), (1, "2024-03-31", 100.0),
                     (2, "2024-06-01", 7.0), (99, "2024-06-01", 3.0)])
    cost = period_cost(act, register=pd.DataFrame({"patient_id": [2, 1, 3]}),
                       start="2024-04-01", end="2025-03-31")
    assert cost.index.tolist() == [2, 1, 3]
    assert cost.tolist() == [7.0, 15.0, 0.0]
    assert cost.attrs["n_rows_unknown_patient"] == 1


def test_high_cost_cohort_within_practice_with_caution():
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5, 6],
                        "practice": ["A", "A", "A", "B", "B", "B"]})
    act = _activity([(1, "2024-05-01", 100.0), (2, "2024-05-01", 300.0),
                     (3, "2024-05-01", 200.0), (4, "2024-05-01", 50.0),
                     (5, "2024-05-01", 50.0), (6, "2024-05-01", 0.0)])
    hc = high_cost_cohort(act, register=reg, start="2024-04-01", end="2025-03-31",
                          top_fraction=0.34, by="practice")
    # k = ceil(0.34 * 3) = 2 per practice; in B, 4 and 5 tie at 50 and 6 costs nothing
    assert hc.index[hc["high_cost"]].tolist() == [2, 3, 4, 5]
    assert hc["rank"].tolist() == [3, 1, 2, 1, 2, 3]
    assert hc.attrs["caution"] == RTM_CAUTION
    system = high_cost_cohort(act, register=reg, start="2024-04-01", end="2025-03-31",
                              top_fraction=0.34)
    assert system.index[system["high_cost"]].tolist() == [1, 2, 3]  # k = ceil(2.04) = 3


def test_persistent_high_cost_and_persistence_share():
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4]})
    act = _activity([(1, "2023-06-01", 90.0), (2, "2023-06-01", 80.0),
                     (1, "2024-06-01", 70.0), (3, "2024-06-01", 95.0)])
    p = persistent_high_cost(act, register=reg, top_fraction=0.5,
                             periods=[("2023-04-01", "2024-03-31"),
                                      ("2024-04-01", "2025-03-31")])
    assert p["high_cost_1"].tolist() == [True, True, False, False]
    assert p["high_cost_2"].tolist() == [True, False, True, False]
    assert p["persistent"].tolist() == [True, False, False, False]
    assert p["n_periods_high"].tolist() == [2, 1, 1, 0]
    assert p.attrs["persistence"] == [0.5]
    assert p.attrs["caution"] == RTM_CAUTION
    with pytest.raises(ConfigError, match="overlap"):
        persistent_high_cost(act, register=reg, periods=[("2023-04-01", "2024-06-30"),
                                                         ("2024-04-01", "2025-03-31")])


def test_predicted_high_cost_and_rising_risk():
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4]})
    pred = pd.Series([0.5, 0.5, 0.1], index=[4, 2, 1])  # 3 has no prediction
    out = predicted_high_cost(pred, register=reg, top_fraction=0.25)
    # k = ceil(0.25 * 3 scored) = 1; 2 and 4 tie, the lower id wins
    assert out["predicted_high_cost"].tolist() == [False, True, False, False]
    rr = rising_risk(pd.Series([0.3, 0.25, 0.5], index=["a", "b", "c"]),
                     pd.Series([0.2, 0.2], index=["a", "b"]), min_increase=0.1)
    assert rr["rising"].tolist() == [True, False, False]
    assert np.isnan(rr.loc["c", "previous"])


# ----------------------------------------------------------------- regression to the mean


def test_next_period_comparison_values_and_overlap_error():
    prior = pd.Series([100.0, 200.0, 10.0, 30.0], index=[1, 2, 3, 4])
    after = pd.Series([60.0, 100.0, 20.0, 30.0], index=[1, 2, 3, 4])
    t = next_period_comparison(prior, after, cohort=pd.Series([True, True, False, False],
                                                              index=[1, 2, 3, 4]))
    assert t.loc["cohort"].to_dict() == {"n": 2, "prior_mean": 150.0, "next_mean": 80.0,
                                         "change": -70.0,
                                         "change_pct": pytest.approx(-46.666666667)}
    assert t.loc["comparison", "change_pct"] == pytest.approx(25.0)
    assert t.attrs["difference_in_change_pct"] == pytest.approx(-71.666666667)
    assert "Regression to the mean" in t.attrs["caution"]
    with pytest.raises(ConfigError, match="overlap"):
        next_period_comparison(prior, after, cohort=prior > 0, comparison=prior > 50)


def test_synthetic_high_cost_cohort_regresses_to_the_mean_in_both_arms(synthetic_population):
    """Camden-style check: with no intervention at all, a cohort picked on this year's cost
    falls a lot next year, and a random half of it falls just as much as the other half."""
    pop = synthetic_population
    hc = high_cost_cohort(pop.activity, register=pop.register, start="2024-04-01",
                          end="2025-03-31", top_fraction=0.05)
    nxt = pop.outcomes["total_cost"].reindex(hc.index)
    rng = np.random.default_rng(0)
    arm = pd.Series(rng.random(len(hc)) < 0.5, index=hc.index)
    cohort = hc["high_cost"]
    t = next_period_comparison(hc["cost"], nxt, cohort=cohort & arm, comparison=cohort & ~arm)
    assert t.loc["cohort", "change_pct"] < -25  # a naive pre/post "impact"
    assert t.loc["comparison", "change_pct"] < -25
    assert abs(t.attrs["difference_in_change_pct"]) < 15


# ----------------------------------------------------------------- cost concentration


def test_cost_concentration_golden_values_1234():
    cc = cost_concentration([4.0, 1.0, 3.0, 2.0], top=(0.2, 0.25, 0.5), bottom=(0.5,))
    # Lorenz vertices: 0, 1/10, 3/10, 6/10, 10/10; area = (0.1 + 0.4 + 0.9 + 1.6) / 8
    assert cc.lorenz["population_share"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert cc.lorenz["cost_share"].tolist() == pytest.approx([0.0, 0.1, 0.3, 0.6, 1.0])
    assert cc.gini == pytest.approx(0.25)
    # top 20 % = 0.8 of the costliest person = 3.2 of 10
    assert cc.top_shares == {0.2: pytest.approx(0.32), 0.25: pytest.approx(0.4),
                             0.5: pytest.approx(0.7)}
    assert cc.bottom_shares == {0.5: pytest.approx(0.3)}
    assert cc.n == 4 and cc.total == 10.0


def test_cost_concentration_golden_one_person_holds_everything():
    cc = cost_concentration([0, 0, 0, 10])
    assert cc.gini == pytest.approx(0.75)  # (n - 1) / n without small-sample correction
    assert cc.top_shares[0.2] == pytest.approx(0.8)
    assert cc.top_shares[0.005] == pytest.approx(0.02)
    assert cc.bottom_shares[0.5] == 0.0


def test_cost_concentration_equal_costs_and_grid_points():
    cc = cost_concentration([5.0] * 10, points=3)
    assert cc.gini == pytest.approx(0.0)
    assert cc.lorenz["cost_share"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert cc.top_shares[0.2] == pytest.approx(0.2)
    frame = cc.to_frame().set_index("statistic")["value"]
    assert frame["gini"] == pytest.approx(0.0) and frame["top_20pct_share"] == pytest.approx(0.2)


def test_gini_matches_mean_absolute_difference_formula():
    x = np.random.default_rng(4).lognormal(5, 1.5, 300)
    reference = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert cost_concentration(x).gini == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("costs", [[1.0, -2.0], [1.0, np.nan], [0.0, 0.0], []])
def test_cost_concentration_rejects_bad_costs(costs):
    with pytest.raises((SchemaError, ConfigError)):
        cost_concentration(costs)


# ----------------------------------------------------------------- caseload selection


def _patients():
    return pd.DataFrame({
        "pcn": ["N1"] * 6 + ["N2"] * 2,
        "practice": ["A", "A", "A", "A", "B", "B", "C", "C"],
        "age": [80, 17, 50, 40, 70, 60, 90, 30],
        "risk": [0.9, 0.95, 0.2, 0.2, 0.4, 0.1, 0.3, 0.3],
        "segment": ["frail", "healthy", "organ", "healthy", "healthy", "frail", "organ", "x"],
        "prior_emergency_admissions": [0, 0, 3, 0, 0, 2, 1, 0],
    }, index=pd.Index([11, 12, 13, 14, 15, 16, 17, 18], name="patient_id"))


def test_select_caseload_rules_are_or_ed_first_rule_reported_and_ranked():
    rules = [
        {"name": "top 25% adults", "top_fraction": 0.25, "by": "practice",
         "where": [["age", ">=", 18]]},
        {"name": "frail/organ, 2+ admissions",
         "where": [{"column": "segment", "op": "in", "value": ["frail", "organ"]},
                   {"column": "prior_emergency_admissions", "op": ">=", "value": 2}]},
    ]
    out = select_caseload(_patients(), rules, factors=None)
    # practice A adults: 11, 13, 14 -> k = 1 -> 11 (12 is a child, excluded by where)
    # practice B: 15, 16 -> k = 1 -> 15; practice C: 17, 18 tie at 0.3 -> 17 (lower id)
    # rule 2: 13 (organ, 3) and 16 (frail, 2)
    assert out.index.tolist() == [11, 15, 13, 16, 17]
    assert out["pcn"].tolist() == ["N1", "N1", "N1", "N1", "N2"]
    assert out["rank"].tolist() == [1, 2, 3, 4, 1]
    assert out["rule"].tolist() == ["top 25% adults", "top 25% adults",
                                    "frail/organ, 2+ admissions",
                                    "frail/organ, 2+ admissions", "top 25% adults"]
    assert out.attrs["rule_counts"] == {"top 25% adults": 3, "frail/organ, 2+ admissions": 2}
    assert out.loc[13, "reasons"] == "selected by: frail/organ, 2+ admissions"


def test_select_caseload_records_every_rule_that_selected_someone():
    rules = [{"name": "r1", "where": [["age", ">=", 80]]},
             {"name": "r2", "where": [["risk", ">", 0.85]]}]
    out = select_caseload(_patients(), rules, factors=None)
    assert out.loc[11, "selected_by"] == "r1; r2"
    assert out.loc[11, "rule"] == "r1"
    assert out.loc[12, "selected_by"] == "r2"


def test_select_caseload_is_independent_of_row_order():
    p = _patients()
    rules = [{"name": "top half", "top_fraction": 0.5, "by": "pcn"}]
    a = select_caseload(p, rules)
    b = select_caseload(p.iloc[::-1], rules)
    pd.testing.assert_frame_equal(a, b)


def test_select_caseload_errors_name_the_column_not_values():
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['frailty'\]"):
        select_caseload(_patients(), [{"name": "x", "where": [["frailty", "==", 1]]}])
    with pytest.raises(ConfigError, match="unknown key"):
        SelectionRule.from_dict({"name": "x", "top": 0.1})
    with pytest.raises(ConfigError, match="unknown op"):
        SelectionRule.from_dict({"name": "x", "where": [["age", "~", 1]]})
    with pytest.raises(ConfigError, match="selects everyone"):
        SelectionRule.from_dict({"name": "x"})


def test_ordered_categorical_conditions():
    seg = pd.Categorical(["low", "high", "mid"], categories=["low", "mid", "high"],
                         ordered=True)
    p = pd.DataFrame({"tier": seg, "risk": [0.1, 0.2, 0.3], "pcn": "N"},
                     index=pd.Index([1, 2, 3], name="patient_id"))
    out = select_caseload(p, [{"name": "mid+", "where": [["tier", ">=", "mid"]]}])
    assert sorted(out.index) == [2, 3]


def test_describe_reasons_priority_order_and_limit():
    t = pd.DataFrame({"prior_emergency_admissions": [3, 0], "age": [90, 86],
                      "n_conditions": [5, 0], "prior_ae_attendances": [4, 0],
                      "prior_cost": [12000.4, 10.0]})
    out = describe_reasons(t, rule=pd.Series(["R", "S"]), max_factors=3).tolist()
    assert out[0] == ("selected by: R; factors: 3 emergency admission(s) in the last 12 "
                      "months; 5 long-term conditions; 4 A&E attendances in the last 12 months")
    assert out[1] == "selected by: S; factors: aged 86"


# ----------------------------------------------------------------- pseudonymisation


def test_pseudonymise_is_keyed_deterministic_and_normalised():
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    a = pseudonymise(["999 000 0018", "9990000018", 9990000018], k1)
    assert a[0] == a[1] == a[2] and len(a[0]) == 32
    assert pseudonymise(["9990000018"], k2)[0] != a[0]
    import hashlib
    import hmac

    assert a[0] == hmac.new(k1, b"9990000018", hashlib.sha256).hexdigest()[:32]
    assert key_fingerprint(k1) != key_fingerprint(k2)
    assert len(key_fingerprint(k1)) == 16


def test_load_key_errors_never_echo_the_value():
    secret = "zz" + "cd" * 40
    with pytest.raises(ConfigError) as exc:
        load_key("K", environ={"K": secret})
    assert secret not in str(exc.value) and "K" in str(exc.value)
    with pytest.raises(ConfigError, match="too short"):
        load_key("K", environ={"K": "ab" * 8})
    with pytest.raises(ConfigError, match="missing identifier"):
        pseudonymise(["1", None], bytes(32))


def test_lorenz_plot_draws_the_curve_and_marks_top_shares():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pophealth.plots import lorenz

    fig, ax = plt.subplots()
    cc = cost_concentration([4.0, 1.0, 3.0, 2.0], top=(0.2,))
    assert lorenz(cc, ax=ax, shares=(0.2,)) is ax
    curve = ax.lines[1]
    assert curve.get_ydata().tolist() == pytest.approx([0.0, 0.1, 0.3, 0.6, 1.0])
    marker = ax.lines[2]
    assert marker.get_xdata()[0] == pytest.approx(0.8)
    assert marker.get_ydata()[0] == pytest.approx(0.68)
    assert "Gini 0.25" in ax.get_legend().get_texts()[0].get_text()
    plt.close(fig)
