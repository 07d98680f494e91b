"""Caseload conditions compare bands in band order; cohort periods are local days (issue 13)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from pophealth.cohorts import Condition, period_cost, select_caseload
from pophealth.contracts.exceptions import ConfigError, SchemaError

HFRS = ["low", "intermediate", "high"]
BAND_DTYPES = {
    "ordered_categorical": pd.CategoricalDtype(HFRS, ordered=True),
    "unordered_categorical": "category",
    "object": object,
    "string_pyarrow": "string[pyarrow]",
    "arrow_string": pd.ArrowDtype(pa.string()),
}


@pytest.mark.parametrize("kind", sorted(BAND_DTYPES))
def test_band_condition_uses_the_band_order_in_every_dtype(kind):
    t = pd.DataFrame({"hfrs_band": pd.Series(["high", "low", None, "intermediate"],
                                             dtype=BAND_DTYPES[kind])})
    # by hand: low < intermediate < high; missing never matches
    assert Condition("hfrs_band", ">=", "intermediate").mask(t).tolist() == \
        [True, False, False, True]
    assert Condition("hfrs_band", "<", "intermediate").mask(t).tolist() == \
        [False, True, False, False]
    assert Condition("hfrs_band", "==", "low").mask(t).tolist() == [False, True, False, False]


def test_caseload_rule_on_a_text_band_selects_by_band_order():
    p = pd.DataFrame({"pcn": "N1", "risk": [0.1, 0.2, 0.3],
                      "hfrs_band": pd.array(["high", "low", "intermediate"],
                                            dtype="string[pyarrow]")},
                     index=pd.Index([1, 2, 3], name="patient_id"))
    out = select_caseload(p, [{"name": "frail", "where": [["hfrs_band", ">=", "intermediate"]]}],
                          factors=None)
    # by hand in band order: high and intermediate (ids 1, 3); a text compare would give
    # low and intermediate (ids 2, 3)
    assert sorted(out.index.tolist()) == [1, 3]


def test_band_condition_refuses_unknown_labels_and_unordered_columns():
    t = pd.DataFrame({"hfrs_band": pd.Series(["low", "LOW-SENTINEL"], dtype=object),
                      "grade": pd.Series(["a", "b"], dtype="string[pyarrow]")})
    with pytest.raises(SchemaError) as info:
        Condition("hfrs_band", ">", "low").mask(t)
    assert [(p["column"], p["rule"], p["count"], p["positions"])
            for p in info.value.problems] == [("hfrs_band", "known_label", 1, [1])]
    assert "SENTINEL" not in str(info.value)
    with pytest.raises(ConfigError, match="'grade', which has no known order"):
        Condition("grade", ">", "a").mask(t)
    with pytest.raises(ConfigError, match="not one of its categories"):
        Condition("hfrs_band", ">=", "medium").mask(t)
    with pytest.raises(ConfigError, match="not one of the column's categories"):
        Condition("hfrs_band", "in", ["hi"]).mask(t)


# By hand, period 2024-04-01 .. 2025-03-31 as whole days on the wall clock of each
# column's own zone (BST = UTC+1 on all four dates):
#                          local day     London column   UTC column (the same instants)
#   00:30 BST  1 Apr 2024  1 Apr 2024    in  (100)       23:30 31 Mar 2024 -> out
#   01:30 BST  1 Apr 2024  1 Apr 2024    in  (10)        00:30  1 Apr 2024 -> in
#   00:30 BST  1 Apr 2025  1 Apr 2025    out (1)         23:30 31 Mar 2025 -> in
#   23:30 BST 31 Mar 2025 31 Mar 2025    in  (1000)      22:30 31 Mar 2025 -> in
# so a London column totals 100 + 10 + 1000 = 1110 and a UTC column (which keeps UTC
# dates) 10 + 1 + 1000 = 1011. The UTC rule would give 1011 for the London column too.
_LONDON = pd.Series(pd.to_datetime(["2024-04-01 00:30", "2024-04-01 01:30",
                                    "2025-04-01 00:30", "2025-03-31 23:30"])
                    ).dt.tz_localize("Europe/London")
_COSTS = [100.0, 10.0, 1.0, 1000.0]


@pytest.mark.parametrize(("dates", "total"), [
    (_LONDON, 1110.0),
    (_LONDON.astype(pd.ArrowDtype(pa.timestamp("us", tz="Europe/London"))), 1110.0),
    (_LONDON.dt.tz_localize(None), 1110.0),
    (_LONDON.dt.tz_convert("UTC"), 1011.0),
    (_LONDON.astype(pd.ArrowDtype(pa.timestamp("ms", tz="UTC"))), 1011.0),
    (_LONDON.dt.tz_convert("UTC").dt.tz_localize(None), 1011.0),
], ids=["numpy_london", "arrow_london", "naive_wall_clock", "numpy_utc", "arrow_utc",
        "naive_utc"])
def test_period_cost_counts_local_days_for_tz_aware_dates(dates, total):
    act = pd.DataFrame({"patient_id": [1, 1, 1, 1], "date": dates, "cost": _COSTS})
    out = period_cost(act, register=pd.Index([1, 2], name="patient_id"),
                      start="2024-04-01", end="2025-03-31")
    assert out.tolist() == [total, 0.0]


def test_period_cost_tz_aware_start_and_end_are_local_days():
    # start 00:30 BST on 1 April 2024 and end 00:30 BST on 31 March 2025 are the local
    # days 1 April 2024 and 31 March 2025: the same period as above, 1110 for naive
    # wall-clock dates. (The UTC rule would start on 31 March 2024 and end on 30 March
    # 2025, dropping the 1000 and giving 110.)
    act = pd.DataFrame({"patient_id": [1, 1, 1, 1], "date": _LONDON.dt.tz_localize(None),
                        "cost": _COSTS})
    out = period_cost(act, register=pd.Index([1], name="patient_id"),
                      start=pd.Timestamp("2024-04-01 00:30", tz="Europe/London"),
                      end=pd.Timestamp("2025-03-31 00:30", tz="Europe/London"))
    assert out.tolist() == [1110.0]
