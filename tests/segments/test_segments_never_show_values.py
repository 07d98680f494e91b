"""Every segments (and core scoring) entry point checks number columns first (issue 13, item 8).

A distinctive value is put in a number column; the error names the column, rule
``numeric``, count and positions (set by hand below), and the value appears in no
message, repr, traceback, warning or log record. ``score_patients`` and ``patient_table``
are here too: they build the patient table these functions read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numeric_sentinels import CELL, leaked, refusal_and_text

from pophealth.core.batch import score_patients
from pophealth.core.patients import patient_table
from pophealth.segments import (
    assign_segments,
    bridges_to_health,
    cluster_segments,
    load_rules,
    rule_matches,
    segment_summary,
    strata,
    utilisation_features,
)
from pophealth.segments.rules import flag_column

INDEX = "2025-04-01"
EFI = pd.CategoricalDtype(["fit", "mild", "moderate", "severe"], ordered=True)
HFRS = pd.CategoricalDtype(["low", "intermediate", "high"], ordered=True)


def _patients(**change) -> pd.DataFrame:
    p = pd.DataFrame({"patient_id": [1, 2, 3], "age": [80, 40, 0],
                      "prior_emergency_admissions": [0, 1, 0],
                      "efi_band": pd.Series(["fit"] * 3, dtype=EFI),
                      "hfrs_band": pd.Series(["low"] * 3, dtype=HFRS),
                      "imd_decile": [1, 5, 10], "n_conditions": [0, 2, 5],
                      "prior_cost": [10.0, 20.0, 30.0],
                      "segment": pd.Categorical(["A", "B", "A"])})
    for col, pos in change.items():
        p[col] = p[col].astype(object)
        p.iloc[pos, p.columns.get_loc(col)] = CELL
    return p


def _flags() -> pd.DataFrame:
    cols = {flag_column(c, d): np.zeros(3, dtype=bool) for c, d in load_rules().flag_columns()}
    return pd.DataFrame(cols, index=pd.Index([1, 2, 3], name="patient_id"))


EVENTS = pd.DataFrame({"patient_id": [2], "code": ["I50.0"], "code_system": "icd10",
                       "date": pd.to_datetime(["2024-05-01"])})
ACTIVITY = pd.DataFrame({"patient_id": [1, 2, 2], "kind": ["gp", "ae", "emergency_admission"],
                         "date": pd.to_datetime(["2025-01-01"] * 3),
                         "cost": pd.Series([40.0, CELL, 900.0], dtype=object)})
FEATURES = pd.DataFrame({"n_gp": [1, 2, 3, 4], "n_ae": [0, 0, 1, 3]})


def _register_with_age(pos):
    reg = pd.DataFrame({"patient_id": [1, 2, 3], "age": pd.Series([70, 80, 90], dtype=object)})
    reg.iloc[pos, 1] = CELL
    return reg


CASES = {
    "assign_segments_age": (lambda: assign_segments(_flags(), _patients(age=[1]),
                                                    index_date=INDEX),
                            ("patients", "age", 1, [1])),
    "assign_segments_admissions": (lambda: assign_segments(
        _flags(), _patients(prior_emergency_admissions=[0, 2]), index_date=INDEX),
        ("patients", "prior_emergency_admissions", 2, [0, 2])),
    "rule_matches": (lambda: rule_matches(_flags(), _patients(age=[2]), index_date=INDEX),
                     ("patients", "age", 1, [2])),
    "bridges_to_health": (lambda: bridges_to_health(
        _patients(prior_emergency_admissions=[1]).set_index("patient_id"), EVENTS,
        index_date=INDEX), ("patients", "prior_emergency_admissions", 1, [1])),
    "strata_age": (lambda: strata(_patients(age=[0])), ("patients", "age", 1, [0])),
    "strata_imd": (lambda: strata(_patients(imd_decile=[2])),
                   ("patients", "imd_decile", 1, [2])),
    "strata_n_conditions": (lambda: strata(_patients(n_conditions=[1])),
                            ("patients", "n_conditions", 1, [1])),
    "segment_summary": (lambda: segment_summary(_patients(prior_cost=[1]), emergency=None),
                        ("patients", "prior_cost", 1, [1])),
    "utilisation_features": (lambda: utilisation_features(
        ACTIVITY, pd.DataFrame({"patient_id": [1, 2, 3]}), index_date=INDEX),
        ("activity", "cost", 1, [1])),
    "cluster_segments_cost": (lambda: cluster_segments(
        FEATURES, n_segments=2, random_state=0,
        cost=pd.Series([1.0, CELL, 3.0, 4.0], dtype=object)), ("features", "cost", 1, [1])),
    "cluster_segments_age": (lambda: cluster_segments(
        FEATURES, n_segments=2, random_state=0, cost=pd.Series([1.0, 2.0, 3.0, 4.0]),
        age=pd.Series([CELL, 1, 2, 3], dtype=object)), ("features", "age", 1, [0])),
    "score_patients": (lambda: score_patients(_register_with_age(1), EVENTS, index_date=INDEX),
                       ("register", "age", 1, [1])),
    "patient_table_cost": (lambda: patient_table(
        pd.DataFrame({"patient_id": [1, 2, 3]}),
        pd.DataFrame(index=pd.Index([1, 2, 3], name="patient_id")), ACTIVITY,
        index_date=INDEX), ("activity", "cost", 1, [1])),
    "patient_table_age": (lambda: patient_table(
        _register_with_age(0), pd.DataFrame(index=pd.Index([1, 2, 3], name="patient_id")),
        ACTIVITY.assign(cost=[1.0, 2.0, 3.0]), index_date=INDEX),
        ("register", "age", 1, [0])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sentinel_value_never_appears_and_the_problem_is_named(name, caplog):
    call, (table, column, count, positions) = CASES[name]
    exc, text = refusal_and_text(call, caplog)
    assert [(p["table"], p["column"], p["rule"], p["count"], p["positions"])
            for p in exc.problems] == [(table, column, "numeric", count, positions)]
    assert f"column '{column}' breaks rule 'numeric' in {count} row(s)" in str(exc)
    assert leaked(text) == []
