"""Code-set rules (setting, activity kind, sex) on categorical columns.

A categorical column (what a Parquet dictionary column reads as) is checked through its
own codes: a category no row uses must not count, a used one outside the set must, at
the positions of its rows, exactly as for the same values as plain strings.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import validate_activity, validate_events


def _problems(fn, frame) -> list:
    with pytest.raises(SchemaError) as info:
        fn(frame)
    return [(p["column"], p["rule"], p["count"], list(p["positions"]))
            for p in info.value.problems]


@pytest.mark.parametrize("as_category", [False, True])
def test_unused_bad_category_does_not_count_used_one_does(as_category):
    values = ["primary", "Primary", "ae", None, "Primary", "inpatient"]
    setting = pd.Series(values, dtype=object)
    if as_category:  # "icu" is a category no row uses
        setting = setting.astype(pd.CategoricalDtype(["ae", "icu", "inpatient", "primary",
                                                      "Primary"]))
    ev = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5, 6], "code": ["E11"] * 6,
                       "code_system": "icd10",
                       "date": pd.to_datetime(["2024-01-01"] * 6), "setting": setting})
    assert _problems(validate_events, ev) == [("setting", "setting_code", 2, [1, 4])]


def test_activity_kind_categorical_all_in_set_passes():
    act = pd.DataFrame({"patient_id": [1, 2, 3], "date": pd.to_datetime(["2024-01-01"] * 3),
                        "kind": pd.Categorical(["ae", "gp", "ae"],
                                               categories=["ae", "bogus", "gp"]),
                        "cost": [1.0, 2.0, 3.0]})
    assert validate_activity(act) is act
    act["kind"] = pd.Categorical(["ae", "bogus", "gp"], categories=["ae", "bogus", "gp"])
    assert _problems(validate_activity, act) == [("kind", "activity_kind", 1, [1])]
