"""Window and age edges in the core, with boundary-aware draws (issue 16, item 2).

Each property compares the library with a plain computation written here: a window of
``L`` days keeps ``index_date - L < date <= index_date`` (the documented contract of
``flag_conditions``, ``hfrs`` and ``patient_table``), and the HFRS age precondition
counts patients with ``age < 75``.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from strategies import LOOKBACKS, age_lists, edge_offsets, offset_lists

import pophealth as ph
from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.core.patients import patient_table

INDEX = pd.Timestamp("2025-04-01")
# two conditions by prefix; J06 matches neither
CODELIST = ph.load_codelist(pd.DataFrame({
    "condition": ["diabetes", "heart_failure"], "code": ["E11", "I50"],
    "code_system": "icd10", "match": "prefix"}), name="edges")
PREFIX = {"diabetes": "E11", "heart_failure": "I50"}


def _in_window(offset: int, lookback: int | None) -> bool:
    """The contract, by hand: ``index - L < date <= index`` (no lower edge without L)."""
    return offset <= 0 and (lookback is None or offset > -lookback)


@st.composite
def coded_events(draw, lookback):
    n_pat = draw(st.integers(1, 6))
    offsets = draw(offset_lists([lookback] if lookback else LOOKBACKS))
    n_ev = len(offsets)
    events = pd.DataFrame({
        "patient_id": draw(st.lists(st.integers(1, n_pat), min_size=n_ev, max_size=n_ev)),
        "code": draw(st.lists(st.sampled_from(["E11", "E112", "I50", "J06"]),
                              min_size=n_ev, max_size=n_ev)),
        "code_system": "icd10",
        "date": pd.to_datetime([INDEX + pd.Timedelta(days=d) for d in offsets]),
    })
    return pd.DataFrame({"patient_id": range(1, n_pat + 1)}), events, offsets


@given(data=st.data(),
       lookback=st.one_of(st.sampled_from([None, *LOOKBACKS]), st.integers(1, 900)))
def test_flag_conditions_window_is_left_open_right_closed(data, lookback):
    register, events, offsets = data.draw(coded_events(lookback))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        got = ph.flag_conditions(events, CODELIST, register=register, index_date=INDEX,
                                 lookback_days=lookback, max_unrecognised=1.0)
    for cond, prefix in PREFIX.items():
        want = [any(p == pid and c.startswith(prefix) and _in_window(o, lookback)
                    for p, c, o in zip(events.patient_id, events.code, offsets, strict=True))
                for pid in register.patient_id]
        assert got[cond].tolist() == want, cond


def test_flag_conditions_every_edge_day_by_hand():
    # one patient per edge offset of a 365-day window, each with one E11 event
    offsets = edge_offsets(365)  # -366, -365, -364, -1, 0, 1
    events = pd.DataFrame({"patient_id": range(len(offsets)), "code": "E11",
                           "code_system": "icd10",
                           "date": [INDEX + pd.Timedelta(days=d) for d in offsets]})
    got = ph.flag_conditions(events, CODELIST, register=pd.DataFrame(
        {"patient_id": range(len(offsets))}), index_date=INDEX, lookback_days=365)
    assert got["diabetes"].tolist() == [False, False, True, True, True, False]
    report = got.attrs["pophealth_report"]
    assert (report["n_before_lookback"], report["n_after_index_date"]) == (2, 1)


@given(lookback=st.sampled_from(LOOKBACKS), data=st.data())
def test_hfrs_window_edges_count_the_r26_code(lookback, data):
    # R26 (abnormalities of gait) is 2.6 HFRS points (Gilbert 2018, Table 2)
    offsets = data.draw(st.lists(st.sampled_from(edge_offsets(lookback)), min_size=1,
                                 max_size=6))
    events = pd.DataFrame({"patient_id": range(len(offsets)), "code": "R26",
                           "code_system": "icd10",
                           "date": [INDEX + pd.Timedelta(days=d) for d in offsets]})
    register = pd.DataFrame({"patient_id": range(len(offsets)), "age": 80})
    got = ph.hfrs(events, register=register, index_date=INDEX, lookback_days=lookback)
    want = [2.6 if _in_window(o, lookback) else 0.0 for o in offsets]
    assert got["hfrs"].tolist() == want


@given(data=st.data())
def test_patient_table_utilisation_counts_the_365_days_up_to_and_including_index(data):
    offsets = data.draw(offset_lists([365]))
    n = len(offsets)
    pids = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    kinds = data.draw(st.lists(st.sampled_from(["emergency_admission", "ae", "gp"]),
                               min_size=n, max_size=n))
    costs = data.draw(st.lists(st.integers(0, 500), min_size=n, max_size=n))
    activity = pd.DataFrame({"patient_id": pids, "kind": kinds, "cost": np.array(costs, float),
                             "date": [INDEX + pd.Timedelta(days=d) for d in offsets]})
    register = pd.DataFrame({"patient_id": [1, 2, 3, 4]})
    scores = pd.DataFrame(index=pd.Index([1, 2, 3, 4], name="patient_id"))
    out = patient_table(register, scores, activity, index_date=INDEX)
    for pid in (1, 2, 3, 4):
        rows = [(k, c) for p, k, c, o in zip(pids, kinds, costs, offsets, strict=True)
                if p == pid and _in_window(o, 365)]
        assert out.loc[pid, "prior_cost"] == sum(c for _, c in rows)
        assert out.loc[pid, "prior_emergency_admissions"] == sum(
            k == "emergency_admission" for k, _ in rows)
        assert out.loc[pid, "prior_ae_attendances"] == sum(k == "ae" for k, _ in rows)


@given(age_lists())
def test_hfrs_warns_with_the_count_under_75(age_list):
    n = len(age_list)
    register = pd.DataFrame({"patient_id": range(n), "age": age_list})
    events = pd.DataFrame({"patient_id": [0], "code": ["R26"], "code_system": "icd10",
                           "date": [INDEX]})
    young = sum(a < 75 for a in age_list)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        ph.hfrs(events, register=register, index_date=INDEX)
    under = [str(w.message) for w in caught if "are under 75" in str(w.message)]
    assert under == ([f"hfrs: {young} of {n} patient(s) are under 75; the score was developed "
                      "and validated on people aged 75+ and is less valid for them"]
                     if young else [])
    assert not any(re.search(r"\b\d+ years\b", m) for m in under)  # no ages in the message
