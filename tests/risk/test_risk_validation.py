"""Validation of the risk models against the synthetic population's true probabilities.

The generator returns each patient's true 12-month emergency-admission probability
(``p_emergency_admission``), so the oracle AUROC is the ceiling any model can reach.
Tolerances are set from measured runs (see the issue note) with room for seed-to-seed
variation at this size: 40,000 training and 40,000 held-out patients.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pophealth.core.batch import score_patients
from pophealth.core.conditions import flag_conditions
from pophealth.risk.evaluation import evaluate_risk, risk_groups
from pophealth.risk.features import make_features
from pophealth.risk.models import CoxRiskModel, RiskModel, survival_target
from pophealth.risk.tiers import risk_tiers
from pophealth.synthetic import make_population

N = 80_000


@pytest.fixture(scope="module")
def validation():
    pop = make_population(N, random_state=2025)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # synthetic junk codes: DataQualityWarning by design
        scores = score_patients(pop.register, pop.events, index_date=pop.index_date,
                                codelists={"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"})
        flags = flag_conditions(pop.events, "cms_snomed_synthetic", register=pop.register,
                                index_date=pop.index_date)
    X = make_features(pop.register, scores.join(flags), pop.activity, index_date=pop.index_date)
    train = np.arange(N) % 2 == 0
    test = ~train
    o = pop.outcomes
    y = o["emergency_admission"]
    risk = {
        # default since issue 14: one model refitted on all rows, calibrator out of fold
        "RiskModel": RiskModel().fit(X[train], y[train]).predict_risk(X[test]),
        "RiskModel_ensemble": RiskModel(ensemble=True).fit(X[train], y[train]).predict_risk(
            X[test]),
        # the default before issue 14: 100 trees of at most 31 leaves at rate 0.1
        "RiskModel_31x100": RiskModel(max_leaf_nodes=31, max_iter=100, learning_rate=0.1).fit(
            X[train], y[train]).predict_risk(X[test]),
        "CoxRiskModel": CoxRiskModel().fit(X[train], survival_target(o[train])).predict_risk(
            X[test], horizon_days=365),
        "oracle": o.loc[test, "p_emergency_admission"],
    }
    groups = risk_groups(pop.register).loc[X.index[test]]
    ev = {k: evaluate_risk(y[test], r, top=(0.01, 0.05), groups=groups) for k, r in risk.items()}
    return ev, risk, y[test]


@pytest.mark.slow
@pytest.mark.parametrize("model, auroc_gap", [("RiskModel", 0.035), ("RiskModel_ensemble", 0.035),
                                              ("CoxRiskModel", 0.04)])
def test_discrimination_and_calibration_near_oracle(validation, model, auroc_gap):
    ev, _, _ = validation
    got, oracle = ev[model].loc[("all", "all")], ev["oracle"].loc[("all", "all")]
    assert oracle["auroc"] > 0.79  # the generator's signal is as strong as published models
    assert got["auroc"] >= oracle["auroc"] - auroc_gap
    assert got["auroc"] <= oracle["auroc"] + 0.01  # cannot beat the truth beyond noise
    assert 0.85 <= got["calibration_slope"] <= 1.15
    assert abs(got["calibration_intercept"]) <= 0.1
    assert got["ppv_top_1%"] >= 0.9 * oracle["ppv_top_1%"]
    assert got["sensitivity_top_5%"] >= 0.85 * oracle["sensitivity_top_5%"]


@pytest.mark.slow
def test_default_single_model_meets_issue_14_bounds(validation):
    # issue 14: the fast default (one refitted model of 50 trees of at most 7 leaves,
    # out-of-fold calibrator) keeps the calibration slope in 0.9-1.1 and gives up at most
    # 0.005 held-out AUROC against the 100-tree, 31-leaf model it replaced and against
    # the 3-model ensemble (ensemble=True) of its own trees. The issue's "AUROC within 0.02
    # of the oracle" is measured with 200k training rows (benchmarks/results/risk_speed.md:
    # 0.7786 vs 0.7969, gap 0.018); with the 40k training rows here the gap is 0.022
    # (0.7807 vs 0.8026, measured), hence the looser bound. About 0.016 of the gap is out
    # of any model's reach: the outcome depends on a latent frailty the inputs explain a
    # third of (benchmarks/results/risk_ceiling.md). The bound is relative to the oracle,
    # so it follows a change of generator.
    ev, risk, _ = validation
    got, oracle = ev["RiskModel"].loc[("all", "all")], ev["oracle"].loc[("all", "all")]
    assert got["auroc"] >= oracle["auroc"] - 0.03
    assert 0.9 <= got["calibration_slope"] <= 1.1
    for old in ("RiskModel_31x100", "RiskModel_ensemble"):
        assert got["auroc"] >= ev[old].loc[("all", "all"), "auroc"] - 0.005, old
    assert not np.allclose(risk["RiskModel"], risk["RiskModel_31x100"])  # two real fits


@pytest.mark.slow
def test_subgroup_audit_and_tiers(validation):
    ev, risk, y = validation
    table = ev["RiskModel"]
    assert set(table.index.get_level_values("group")) == {
        "all", "imd_quintile", "sex", "age_band", "ethnicity"}
    imd = table.xs("imd_quintile")
    assert imd["n"].sum() == table.loc[("all", "all"), "n"]  # every patient has an IMD decile
    assert (imd["auroc"] > 0.72).all()
    # deprivation gradient: the most deprived quintile has the highest observed and predicted risk
    assert imd["observed_rate"].idxmax() == "1" and imd["mean_risk"].idxmax() == "1"
    tiers = risk_tiers(risk["RiskModel"])
    rate = y.groupby(tiers, observed=False).mean()
    assert rate["very high"] > rate["high"] > rate["moderate"] > rate["low"]
