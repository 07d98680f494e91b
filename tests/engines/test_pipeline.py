"""score_batch: the whole patient table, the same however the patients are split."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pophealth.contracts.exceptions import CodelistError, DataQualityWarning
from pophealth.core.batch import merge_reports
from pophealth.engines.pipeline import (
    check_unrecognised,
    global_tiers,
    score_batch,
    score_batch_parts,
)
from pophealth.risk.models import RiskModel
from pophealth.synthetic import make_population

IDX = "2025-04-01"
LISTS = {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"}


@pytest.fixture(scope="module")
def fitted():
    pop = make_population(1_500, random_state=4, index_date=IDX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _, X, _ = score_batch_parts(pop.register, pop.events, pop.activity, index_date=IDX,
                                    codelists=LISTS, features=True, segments=False)
    y = pop.outcomes["emergency_admission"].reindex(X.index).to_numpy(dtype=bool)
    model = RiskModel(method="logistic", calibration=None, random_state=0).fit(X, y)
    return pop, model


def _batch(pop, model, patients):
    reg = pop.register[pop.register["patient_id"].isin(patients)]
    ev = pop.events[pop.events["patient_id"].isin(patients)]
    act = pop.activity[pop.activity["patient_id"].isin(patients)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return score_batch(reg, ev, act, index_date=IDX, codelists=LISTS, model=model,
                           max_unrecognised=1.0, on_no_match="ignore")


@pytest.fixture(scope="module")
def whole(fitted):
    pop, model = fitted
    return _batch(pop, model, pop.register["patient_id"])


def test_the_table_is_the_whole_pipeline(whole):
    for col in ("charlson_quan2011", "efi", "cms_general", "prior_cost", "frailty_band",
                "risk", "segment", "segment_rule"):
        assert col in whole.columns
    assert "tier" not in whole.columns  # a global cut: global_tiers after the batches
    assert whole["risk"].between(0, 1).all() and whole["segment"].notna().all()


@given(cuts=st.lists(st.integers(0, 1_500), max_size=3), seed=st.integers(0, 10_000))
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_split_gives_the_one_batch_table(fitted, whole, cuts, seed):
    pop, model = fitted
    ids = pop.register["patient_id"].to_numpy()
    order = np.random.default_rng(seed).permutation(len(ids))
    bounds = sorted({0, len(ids), *cuts})
    parts = [_batch(pop, model, ids[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:],
                                                                 strict=True) if b > a]
    got = pd.concat(parts).loc[whole.index]
    pd.testing.assert_frame_equal(got, whole)


def test_global_tiers_are_a_population_cut_not_a_batch_cut():
    # 10 patients, risks 1..10 (10 highest); cuts 10 %, 30 %, 60 % -> k = 1, 3, 6
    risk = pd.Series(np.arange(1, 11) / 10, index=range(100, 110))
    tiers = global_tiers(risk, cuts=(0.1, 0.3, 0.6))
    assert tiers.tolist() == (["low"] * 4 + ["moderate"] * 3 + ["high"] * 2 + ["very high"])
    # a batch of the 5 lowest alone would put 0.5 in "very high": the global cut does not
    assert tiers.loc[104] == "moderate"  # risk 0.5: 5 higher, so h = 5 < k(60 %) = 6
    excluded = global_tiers(risk, cuts=(0.1, 0.3, 0.6), include=risk.index != 109)
    assert pd.isna(excluded.loc[109]) and excluded.loc[108] == "very high"


def _unrec_events(rows):
    """rows: (patient_id, code); all ICD-10, dated inside the window."""
    return pd.DataFrame({"patient_id": [p for p, _ in rows], "code": [c for _, c in rows],
                         "code_system": "icd10",
                         "date": pd.to_datetime(["2024-06-01"] * len(rows))})


def test_unrecognised_threshold_is_decided_on_the_sum():
    # batch 1: 1 unrecognised ("ZZZ99") of 10 ICD-10 rows = 10 % > 5 %: alone an error;
    # batch 2: 90 good rows. Sum: 1 of 100 = 1 % <= 5 %: the population passes
    reg = pd.DataFrame({"patient_id": [1, 2], "age": [80, 80]})
    ev1 = _unrec_events([(1, "ZZZ99")] + [(1, "I21")] * 9)
    ev2 = _unrec_events([(2, "I50")] * 90)
    with pytest.raises(CodelistError):
        score_batch(reg.iloc[[0]], ev1, index_date=IDX, segments=False)
    reps = []
    for r, e in ((reg.iloc[[0]], ev1), (reg.iloc[[1]], ev2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            reps.append(score_batch(r, e, index_date=IDX, segments=False, max_unrecognised=1.0,
                                    on_no_match="ignore").attrs["pophealth_reports"])
    merged = merge_reports(reps)
    assert merged["charlson"]["n_unrecognised"] == 1
    check_unrecognised(merged, 0.05)  # 1 % passes
    with pytest.raises(CodelistError, match=r"in 1 of 100 row\(s\).*\(1\.0% > "
                                            r"max_unrecognised=0\.5%\)") as info:
        check_unrecognised(merged, 0.005)
    assert "ZZZ99" not in str(info.value)
