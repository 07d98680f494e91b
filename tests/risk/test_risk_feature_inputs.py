"""Issue 13 item 9: make_features refuses inputs it used to turn silently into wrong features.

Each row of the table is one attack: a column replaced by something that used to give
``prior_cost = 0``, ``age = NaN`` or a negative age. Expected counts and positions are
worked out by hand from the three-patient / four-contact tables below; the messages
must never contain the (sentinel) values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pophealth.contracts.exceptions import SchemaError
from pophealth.risk.features import make_features

INDEX = "2025-04-01"
SENTINEL = "98765"  # a value that must never appear in a message


def _reg(**cols):
    base = {"patient_id": [10, 20, 30], "sex": ["M", "F", "F"],
            "date_of_birth": pd.to_datetime(["1945-04-01", "1960-01-01", "2000-01-01"])}
    return pd.DataFrame({**base, **cols})


def _act(**cols):
    base = {"patient_id": [10, 10, 20, 30],
            "date": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-03-02"]),
            "kind": ["ae", "gp", "gp", "emergency_admission"],
            "cost": [150.0, 40.0, 40.0, 2000.0]}
    return pd.DataFrame({**base, **cols})


# (register, activity, column, rule, count, positions)
CASES = {
    "cost as text (even digits)": (
        _reg(), _act(cost=["150", "40", SENTINEL, "2000"]), "cost", "numeric_dtype", 4,
        [0, 1, 2, 3]),
    "cost text with a gap": (
        _reg(), _act(cost=["150", None, SENTINEL, None]), "cost", "numeric_dtype", 2, [0, 2]),
    "cost all missing": (
        _reg(), _act(cost=[np.nan] * 4), "cost", "not_null", 4, [0, 1, 2, 3]),
    "cost partly missing": (
        _reg(), _act(cost=[150.0, np.nan, 40.0, np.nan]), "cost", "not_null", 2, [1, 3]),
    "cost negative": (
        _reg(), _act(cost=[150.0, -40.0, 40.0, 2000.0]), "cost", "cost_non_negative", 1, [1]),
    "length_of_stay as text": (
        _reg(), _act(length_of_stay=["0", "0", "0", SENTINEL]), "length_of_stay",
        "numeric_dtype", 4, [0, 1, 2, 3]),
    "age as text (even digits)": (
        _reg(age=["80", SENTINEL, None]), _act(), "age", "numeric_dtype", 2, [0, 1]),
    "age out of range": (
        _reg(age=[80, -3, 121]), _act(), "age", "age_range", 2, [1, 2]),
    "date of birth after index date": (
        _reg(date_of_birth=pd.to_datetime(["2028-01-01", "1960-01-01", "2025-04-02"])), _act(),
        "date_of_birth", "not_after_index_date", 2, [0, 2]),
    "date of birth as text": (
        _reg(date_of_birth=["1945-04-01", None, "2000-01-01"]), _act(), "date_of_birth",
        "datetime_dtype", 2, [0, 2]),
    "imd decile as text": (
        _reg(imd_decile=["1", None, SENTINEL]), _act(), "imd_decile", "numeric_dtype", 2,
        [0, 2]),
    "imd decile out of range": (
        _reg(imd_decile=[0, 5, 11]), _act(), "imd_decile", "imd_decile_range", 2, [0, 2]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_make_features_refuses_bad_input(case):
    reg, act, column, rule, count, positions = CASES[case]
    with pytest.raises(SchemaError) as info:
        make_features(reg, None, act, index_date=INDEX)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"column '{column}' breaks rule '{rule}'" in msg
    assert f"in {count} row(s); first positions {positions}" in msg
    assert SENTINEL not in msg and "2028" not in msg
    assert {"column": column, "rule": rule, "count": count, "positions": positions} in [
        {k: p[k] for k in ("column", "rule", "count", "positions")} for p in info.value.problems]


def test_every_broken_rule_is_reported_at_once():
    reg = _reg(age=["80", "70", "60"], imd_decile=[1, 5, 12])
    with pytest.raises(SchemaError) as info:
        make_features(reg, None, _act(cost=["1", "2", "3", "4"]), index_date=INDEX)
    assert [(p["column"], p["rule"], p["count"]) for p in info.value.problems] == [
        ("age", "numeric_dtype", 3), ("imd_decile", "imd_decile_range", 1),
        ("cost", "numeric_dtype", 4)]


def test_valid_inputs_give_hand_computed_features():
    # the same tables, valid: ages at 2025-04-01 80 (birthday on the index date), 65, 25;
    # costs in (2024-04-01, 2025-04-01]: 10 -> 150 + 40, 20 -> 40, 30 -> 2000
    X = make_features(_reg(imd_decile=[1, None, 10]), None, _act(length_of_stay=[0, 0, 0, 3]),
                      index_date=INDEX)
    np.testing.assert_array_equal(X["age"], [80.0, 65.0, 25.0])
    np.testing.assert_array_equal(X["prior_cost"], [190.0, 40.0, 2000.0])
    np.testing.assert_array_equal(X["imd_decile"], [1.0, np.nan, 10.0])
    np.testing.assert_array_equal(X["prior_bed_days"], [0.0, 0.0, 3.0])
    # a date of birth on the index date is allowed: age 0
    X0 = make_features(_reg(date_of_birth=pd.to_datetime(["2025-04-01"] * 3)), None, _act(),
                       index_date=INDEX)
    np.testing.assert_array_equal(X0["age"], [0.0, 0.0, 0.0])
