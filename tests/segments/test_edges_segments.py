"""Bridges to Health windows and age gates on their edges (issue 16, item 2).

Plain computations written here from the shipped rule file's documented meaning:
``24m`` = 730 days and ``12m`` = 365 days, each keeping ``index - L < date <= index``;
``min_age``/``max_age`` are inclusive gates in completed years (frailty 65+, pregnancy
10-55); ``utilisation_features`` counts ``(index - 365, index]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from strategies import age_lists, offset_lists

from pophealth.segments import bridges_to_health, segment_flags
from pophealth.segments.clusters import utilisation_features

INDEX = pd.Timestamp("2025-04-01")
EFI = pd.CategoricalDtype(["fit", "mild", "moderate", "severe"], ordered=True)
HFRS = pd.CategoricalDtype(["low", "intermediate", "high"], ordered=True)
# ICD-10 codes and the windowed flag each one sets (data/segments, data/codelists)
WINDOWED = {"C78.7": "metastatic_cancer@730d", "O80": "pregnancy@365d"}
DAYS = {"metastatic_cancer@730d": 730, "pregnancy@365d": 365}


def _in_window(offset: int, days: int) -> bool:
    return -days < offset <= 0


@given(data=st.data())
def test_windowed_flags_keep_exactly_the_last_365_and_730_days(data):
    offsets = data.draw(offset_lists((365, 730)))
    n = len(offsets)
    codes = data.draw(st.lists(st.sampled_from(sorted(WINDOWED)), min_size=n, max_size=n))
    pids = data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    events = pd.DataFrame({"patient_id": pids, "code": codes, "code_system": "icd10",
                           "date": pd.to_datetime([INDEX + pd.Timedelta(days=d)
                                                   for d in offsets])})
    register = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5]})
    got = segment_flags(events, register=register, index_date=INDEX)
    for code, col in WINDOWED.items():
        want = [any(p == pid and c == code and _in_window(o, DAYS[col])
                    for p, c, o in zip(pids, codes, offsets, strict=True))
                for pid in register.patient_id]
        assert got[col].tolist() == want, col


def _people(age_list, **cols):
    n = len(age_list)
    return pd.DataFrame({
        "age": age_list, "prior_emergency_admissions": 0,
        "efi_band": pd.Categorical([cols.get("efi", "fit")] * n, dtype=EFI),
        "hfrs_band": pd.Categorical([cols.get("hfrs", "low")] * n, dtype=HFRS),
    }, index=pd.Index(range(n), name="patient_id"))


@given(age_lists(),
       st.sampled_from([{"efi": "moderate"}, {"efi": "severe"}, {"hfrs": "intermediate"},
                        {"hfrs": "high"}]))
def test_frailty_rules_gate_at_65_inclusive(age_list, band):
    people = _people(age_list, **band)
    no_events = pd.DataFrame({"patient_id": [], "code": [], "code_system": [],
                              "date": pd.to_datetime([])})
    out = bridges_to_health(people, no_events, index_date=INDEX)
    rule = "frailty_efi" if "efi" in band else "frailty_hfrs"
    want = [rule if a >= 65 else ("infant" if a == 0 else "healthy") for a in age_list]
    assert out["rule"].tolist() == want


@given(age_lists())
def test_pregnancy_rule_gates_at_10_and_55_inclusive(age_list):
    people = _people(age_list)
    events = pd.DataFrame({"patient_id": range(len(age_list)), "code": "O80",
                           "code_system": "icd10", "date": INDEX - pd.Timedelta(days=30)})
    out = bridges_to_health(people, events, index_date=INDEX)
    want = ["pregnancy" if 10 <= a <= 55 else ("infant" if a == 0 else "healthy")
            for a in age_list]
    assert out["rule"].tolist() == want


@given(data=st.data())
def test_utilisation_features_window_edges(data):
    offsets = data.draw(offset_lists((365,)))
    n = len(offsets)
    pids = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    kinds = data.draw(st.lists(st.sampled_from(["ae", "gp"]), min_size=n, max_size=n))
    costs = data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    activity = pd.DataFrame({"patient_id": pids, "kind": pd.Categorical(kinds, ["ae", "gp"]),
                             "cost": np.array(costs, dtype=float),
                             "date": pd.to_datetime([INDEX + pd.Timedelta(days=d)
                                                     for d in offsets])})
    out = utilisation_features(activity, pd.DataFrame({"patient_id": [1, 2, 3]}),
                               index_date=INDEX)
    for pid in (1, 2, 3):
        rows = [(k, c) for p, k, c, o in zip(pids, kinds, costs, offsets, strict=True)
                if p == pid and _in_window(o, 365)]
        assert out.loc[pid].tolist() == [sum(k == "ae" for k, _ in rows),
                                         sum(k == "gp" for k, _ in rows),
                                         float(sum(c for _, c in rows))]
