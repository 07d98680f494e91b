"""Tests for RiskModel, CoxRiskModel, survival_target and model persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index
from sklearn.base import clone
from sklearn.utils.estimator_checks import estimator_checks_generator

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.risk.evaluation import evaluate_risk
from pophealth.risk.model_io import load_model, read_model_metadata, save_model
from pophealth.risk.models import CoxRiskModel, RiskModel, survival_target


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


#: sklearn's array-API check needs SCIPY_ARRAY_API=1 set before scipy is imported and the
#: array_api_strict package; without them sklearn *skips* it, and CI fails on any skip. RiskModel
#: takes pandas/numpy input only, so the check is left out here, by name, and counted below.
NOT_RUN = {"check_array_api_input"}
ESTIMATORS = [RiskModel(max_iter=20), RiskModel(method="logistic", calibration=None)]
CHECKS = [(est, chk) for e in ESTIMATORS
          for est, chk in estimator_checks_generator(e, legacy=True)
          if _check_name(chk) not in NOT_RUN]


def test_every_sklearn_check_but_the_array_api_one_is_run():
    all_checks = [_check_name(c) for e in ESTIMATORS
                  for _, c in estimator_checks_generator(e, legacy=True)]
    assert len(all_checks) - len(CHECKS) == len(ESTIMATORS)  # one left out per estimator
    assert len(CHECKS) >= 100


# max_iter=20 keeps the ~55 checks quick; they test the API, not the default's accuracy.
# No expected failures: every check passes for both configurations (sklearn 1.9.1).
@pytest.mark.parametrize(("estimator", "check"), CHECKS,
                         ids=[f"{type(e).__name__}-{i}-{_check_name(c)}"
                              for i, (e, c) in enumerate(CHECKS)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 3000
    X = pd.DataFrame({
        "age": rng.uniform(0, 100, n),
        "male": rng.integers(0, 2, n).astype(float),
        "imd_decile": np.where(rng.random(n) < 0.05, np.nan, rng.integers(1, 11, n)),
        "prior_emergency_admissions": rng.poisson(0.2, n).astype(float),
    }, index=pd.Index(np.arange(n) * 7 + 3, name="patient_id"))
    lp = -4 + 0.04 * X["age"] + 0.8 * X["prior_emergency_admissions"]
    p = 1 / (1 + np.exp(-lp))
    y = pd.Series(rng.random(n) < p, index=X.index, name="emergency_admission")
    # time to first admission within a year; censored at 365 or at an earlier "death"
    t_event = np.where(y, rng.integers(1, 366, n), np.inf)
    t_death = np.where(rng.random(n) < 0.02, rng.integers(1, 366, n), np.inf)
    outcomes = pd.DataFrame({
        "emergency_admission": y & (t_event <= t_death),
        "days_to_emergency_admission": np.where(y & (t_event <= t_death), t_event, np.nan),
        "end_of_follow_up_days": np.minimum(t_death, 365.0),
    }, index=X.index)
    return X, y, p, outcomes


def test_risk_model_series_named_and_indexed_like_x(data):
    X, y, p, _ = data
    before = X.copy()
    model = RiskModel().fit(X, y)
    risk = model.predict_risk(X)
    assert risk.name == "risk" and risk.index.equals(X.index)
    assert risk.between(0, 1).all()
    np.testing.assert_allclose(risk, model.predict_proba(X)[:, 1])
    pd.testing.assert_frame_equal(X, before)
    assert evaluate_risk(y, risk).loc[("all", "all"), "auroc"] > 0.75
    assert model.n_features_in_ == 4 and list(model.feature_names_in_) == list(X.columns)


def test_risk_model_deterministic_and_clonable(data):
    X, y, _, _ = data
    a = RiskModel(max_iter=30).fit(X, y).predict_risk(X)
    b = clone(RiskModel(max_iter=30)).fit(X, y).predict_risk(X)
    pd.testing.assert_series_equal(a, b)


@pytest.mark.parametrize("params", [{"method": "logistic"}, {"calibration": "isotonic"},
                                    {"calibration": None}])
def test_risk_model_variants(data, params):
    X, y, _, _ = data
    risk = RiskModel(**params).fit(X, y).predict_risk(X)
    assert evaluate_risk(y, risk).loc[("all", "all"), "auroc"] > 0.75


def test_risk_model_refuses_mismatched_features(data):
    X, y, _, _ = data
    model = RiskModel(method="logistic").fit(X, y)
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['imd_decile'\]"):
        model.predict_risk(X.drop(columns="imd_decile"))
    with pytest.raises(SchemaError, match=r"unexpected column\(s\) \['extra'\]"):
        model.predict_risk(X.assign(extra=1.0))
    with pytest.raises(SchemaError, match="different order"):
        model.predict_risk(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="Only binary classification"):
        RiskModel().fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ConfigError, match="'method'"):
        RiskModel(method="forest").fit(X, y)
    with pytest.raises(ConfigError, match="'calibration'"):
        RiskModel(calibration="platt").fit(X, y)


def test_survival_target_censors_at_death_or_end(data):
    _, _, _, outcomes = data
    t = survival_target(outcomes)
    ev = outcomes["emergency_admission"].to_numpy()
    np.testing.assert_array_equal(t["event"], ev)
    np.testing.assert_array_equal(t["duration"][ev], outcomes["days_to_emergency_admission"][ev])
    np.testing.assert_array_equal(t["duration"][~ev], outcomes["end_of_follow_up_days"][~ev])
    with pytest.raises(SchemaError, match=r"\['end_of_follow_up_days'\]"):
        survival_target(outcomes.drop(columns="end_of_follow_up_days"))
    bad = outcomes.assign(end_of_follow_up_days=0.0)
    with pytest.raises(SchemaError, match=r"\d+ row\(s\) have a missing"):
        survival_target(bad)


@pytest.fixture(scope="module")
def cox(data):
    X, _, _, outcomes = data
    return CoxRiskModel().fit(X, survival_target(outcomes))


def test_cox_risk_matches_lifelines_survival_function(data, cox):
    X, _, _, _ = data
    before = X.copy()
    risk = cox.predict_risk(X, horizon_days=200)
    pd.testing.assert_frame_equal(X, before)
    assert risk.name == "risk" and risk.index.equals(X.index)
    design = cox._design(X)[cox.columns_].fillna(cox.fill_values_[cox.columns_])
    surv = cox.fitter_.predict_survival_function(design, times=[200]).iloc[0].to_numpy()
    np.testing.assert_allclose(risk.to_numpy(), 1 - surv, rtol=1e-9, atol=1e-12)
    assert (cox.predict_risk(X, horizon_days=365) >= risk).all()  # monotone in the horizon


def test_cox_concordance_sign(data, cox):
    X, _, _, outcomes = data
    y = survival_target(outcomes)
    c = cox.score(X, y)
    hazard = cox.fitter_.predict_partial_hazard(
        cox._design(X)[cox.columns_].fillna(cox.fill_values_[cox.columns_]))
    naive = concordance_index(y["duration"], hazard, y["event"])  # the pitfall: wrong sign
    assert c > 0.7 and naive < 0.3
    assert c == pytest.approx(1 - naive, abs=1e-9)
    assert c == pytest.approx(cox.fitter_.concordance_index_, abs=1e-9)


def test_cox_errors(data, cox):
    X, _, _, outcomes = data
    with pytest.raises(ConfigError, match="horizon_days"):
        cox.predict_risk(X, horizon_days=400)
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['male'\]"):
        cox.predict_risk(X.drop(columns="male"))
    with pytest.raises(SchemaError, match="'duration' and 'event'"):
        CoxRiskModel().fit(X, outcomes)


def test_save_load_round_trip(tmp_path, data):
    X, y, _, _ = data
    model = RiskModel(method="logistic").fit(X, y)
    perf = evaluate_risk(y, model.predict_risk(X))
    path = save_model(model, tmp_path / "m.zip", training_period=("2023-04-02", "2025-04-01"),
                      performance=perf, description="test model")
    meta = read_model_metadata(path)
    assert meta["features"] == list(X.columns)
    assert meta["training_period"] == ["2023-04-02", "2025-04-01"]
    assert meta["performance"]["auroc"] == pytest.approx(perf["auroc"].iloc[0])
    assert meta["model_class"] == "pophealth.risk.models.RiskModel"
    assert set(meta["versions"]) == {"pophealth", "scikit-learn", "lifelines", "numpy", "pandas"}
    assert meta["params"]["method"] == "'logistic'"
    loaded = load_model(path)
    pd.testing.assert_series_equal(loaded.predict_risk(X), model.predict_risk(X))
    assert loaded.metadata_ == meta
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['age'\]"):
        loaded.predict_risk(X.drop(columns="age"))
    with pytest.raises(SchemaError, match=r"unexpected column\(s\) \['bmi'\]"):
        load_model(path, features=[*X.columns, "bmi"])
    again = save_model(model, tmp_path / "m2.zip", training_period=("2023-04-02", "2025-04-01"),
                       performance=perf, description="test model")
    assert again.read_bytes() == path.read_bytes()  # deterministic bytes


def test_save_load_cox(tmp_path, data, cox):
    X, _, _, _ = data
    path = save_model(cox, tmp_path / "cox.zip", training_period=("2024-01-01", "2025-12-31"))
    pd.testing.assert_series_equal(load_model(path).predict_risk(X), cox.predict_risk(X))


def test_persistence_errors(tmp_path, data):
    X, y, _, _ = data
    no_names = RiskModel(method="logistic").fit(X.to_numpy(), y)
    with pytest.raises(ConfigError, match="feature_names_in_"):
        save_model(no_names, tmp_path / "x.zip", training_period=("2024-01-01", "2024-12-31"))
    model = RiskModel(method="logistic").fit(X, y)
    with pytest.raises(ConfigError, match="start is after its end"):
        save_model(model, tmp_path / "x.zip", training_period=("2025-01-01", "2024-12-31"))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a pophealth model file"):
        load_model(tmp_path / "junk.zip")


def test_single_model_calibration_scores_with_one_model():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"age": rng.uniform(20, 90, 600), "prior": rng.poisson(0.3, 600)})
    y = rng.random(600) < 1 / (1 + np.exp(-(X["age"] - 70) / 10 - X["prior"]))
    one = RiskModel(method="logistic").fit(X, y)  # the default since issue 14
    many = RiskModel(method="logistic", ensemble=True).fit(X, y)
    assert RiskModel().ensemble is False
    assert len(one.estimator_.calibrated_classifiers_) == 1
    assert len(many.estimator_.calibrated_classifiers_) == 3
    risk = one.predict_risk(X)
    assert risk.between(0, 1).all() and risk.index.equals(X.index)
