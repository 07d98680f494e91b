"""Every cohorts entry point checks its number columns before any arithmetic (issue 13, item 8).

A distinctive value is put in a number column; the error must name the column, rule
``numeric``, the count and positions (set by hand below) and the value must appear in no
message, repr, traceback, warning or log record.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numeric_sentinels import CELL, leaked, refusal_and_text

from pophealth.cohorts import (
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
from pophealth.contracts.exceptions import SchemaError

PERIOD = {"start": "2024-04-01", "end": "2025-03-31"}


def _activity():
    return pd.DataFrame({"patient_id": [1, 2, 3, 1],
                         "date": pd.to_datetime(["2024-06-01"] * 4),
                         "kind": ["ae"] * 4,
                         "cost": pd.Series([10.0, CELL, 5.0, CELL], dtype=object)})


REGISTER = pd.DataFrame({"patient_id": [1, 2, 3], "practice": ["A", "A", "B"]})


def _patients(**change):
    p = pd.DataFrame({"pcn": "N1", "practice": ["A", "A", "B"],
                      "risk": [0.9, 0.2, 0.1], "prior_cost": [10.0, 6000.0, 0.0],
                      "prior_emergency_admissions": [0, 2, 1], "age": [70, 90, 50]},
                     index=pd.Index([1, 2, 3], name="patient_id"))
    for col, pos in change.items():
        p[col] = p[col].astype(object)
        p.iloc[pos, p.columns.get_loc(col)] = CELL
    return p


def _series(values, index=(1, 2, 3)):
    return pd.Series(values, index=list(index), dtype=object)


CASES = {
    "period_cost": (lambda: period_cost(_activity(), register=REGISTER, **PERIOD),
                    ("activity", "cost", 2, [1, 3])),
    "high_cost_cohort": (lambda: high_cost_cohort(_activity(), register=REGISTER, **PERIOD),
                         ("activity", "cost", 2, [1, 3])),
    "persistent_high_cost": (lambda: persistent_high_cost(
        _activity(), register=REGISTER,
        periods=[("2023-04-01", "2024-03-31"), ("2024-04-01", "2025-03-31")]),
        ("activity", "cost", 2, [1, 3])),
    "predicted_high_cost": (lambda: predicted_high_cost(_series([0.2, CELL, 0.4]),
                                                        register=REGISTER),
                            ("prediction", "prediction", 1, [1])),
    "rising_risk_current": (lambda: rising_risk(_series([CELL, 0.1, 0.5]),
                                                _series([0.1, 0.1, 0.1])),
                            ("current", "current", 1, [0])),
    "rising_risk_previous": (lambda: rising_risk(_series([0.3, 0.1, 0.5]),
                                                 _series([0.1, 0.1, CELL])),
                             ("previous", "previous", 1, [2])),
    "next_period_prior": (lambda: next_period_comparison(
        _series([CELL, 1.0, 2.0]), _series([1.0, 1.0, 1.0]),
        cohort=_series([True, False, False])), ("prior_cost", "prior_cost", 1, [0])),
    "next_period_next": (lambda: next_period_comparison(
        _series([1.0, 1.0, 2.0]), _series([1.0, CELL, CELL]),
        cohort=_series([True, False, False])), ("next_cost", "next_cost", 2, [1, 2])),
    "cost_concentration": (lambda: cost_concentration([4.0, CELL, 1.0]),
                           ("costs", "cost", 1, [1])),
    "top_fraction_mask": (lambda: top_fraction_mask([CELL, 9.0], ids=[1, 2], fraction=0.5),
                          ("values", "values", 1, [0])),
    "select_caseload_rank_by": (lambda: select_caseload(
        _patients(risk=[1]), [{"name": "top", "top_fraction": 0.5}]),
        ("patients", "risk", 1, [1])),
    "select_caseload_rule_rank_column": (lambda: select_caseload(
        _patients(prior_cost=[0, 2]), [{"name": "cost", "top_fraction": 0.5,
                                        "rank_column": "prior_cost"}]),
        ("patients", "prior_cost", 2, [0, 2])),
    "select_caseload_where": (lambda: select_caseload(
        _patients(prior_emergency_admissions=[2]),
        [{"name": "adm", "where": [["prior_emergency_admissions", ">=", 2]]}], factors=None),
        ("patients", "prior_emergency_admissions", 1, [2])),
    "select_caseload_factor": (lambda: select_caseload(
        _patients(age=[0]), [{"name": "adm", "where": [["risk", ">=", 0.5]]}]),
        ("patients", "age", 1, [0])),
    "describe_reasons": (lambda: describe_reasons(_patients(prior_cost=[1])),
                         ("patients", "prior_cost", 1, [1])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sentinel_value_never_appears_and_the_problem_is_named(name, caplog):
    call, (table, column, count, positions) = CASES[name]
    exc, text = refusal_and_text(call, caplog)
    assert [(p["table"], p["column"], p["rule"], p["count"], p["positions"])
            for p in exc.problems] == [(table, column, "numeric", count, positions)]
    assert f"column '{column}' breaks rule 'numeric' in {count} row(s)" in str(exc)
    assert leaked(text) == []


def test_numeric_text_is_refused_not_parsed():
    # "12" in a cost column means a mis-typed extract: refused, not silently converted
    act = _activity().assign(cost=pd.Series([10.0, "12", 5.0, 1.0], dtype=object))
    with pytest.raises(SchemaError, match=r"'cost' breaks rule 'numeric' in 1 row\(s\); "
                                          r"first positions \[1\]"):
        period_cost(act, register=REGISTER, **PERIOD)


def test_object_column_of_numbers_still_works():
    act = _activity().assign(cost=pd.Series([10.0, 2, 5.0, 1.0], dtype=object))
    # by hand: patient 1 has 10 + 1, patient 2 has 2, patient 3 has 5
    assert period_cost(act, register=REGISTER, **PERIOD).tolist() == [11.0, 2.0, 5.0]
    assert np.isclose(cost_concentration(pd.Series([1, 3], dtype=object)).gini, 0.25)
