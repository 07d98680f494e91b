"""ISO 8601 ``index_date`` everywhere and NHS Data Dictionary sex codes (issue 12, item 4)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import (
    NHS_SEX_CODES,
    naive_timestamp,
    normalise_sex,
    parse_index_date,
)

NON_ISO = ["01/04/2025", "1/4/2025", "04-01-2025", "1 April 2025", "20250401", "2025/04/01",
           "April 1, 2025", ""]


@pytest.mark.parametrize("text", NON_ISO)
def test_non_iso_index_date_is_an_error_naming_the_rule_not_the_value(text):
    with pytest.raises(SchemaError, match="iso_8601_date") as info:
        parse_index_date(text)
    message = str(info.value)
    assert "\n" not in message
    if text:
        assert text not in message


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-04-01", pd.Timestamp(2025, 4, 1)),
    ("2025-04-01T09:30", pd.Timestamp(2025, 4, 1, 9, 30)),
    ("2025-04-01 09:30:15.5", pd.Timestamp(2025, 4, 1, 9, 30, 15, 500000)),
    (dt.date(2025, 4, 1), pd.Timestamp(2025, 4, 1)),
    (dt.datetime(2025, 4, 1, 6), pd.Timestamp(2025, 4, 1, 6)),
    (np.datetime64("2025-04-01"), pd.Timestamp(2025, 4, 1)),
])
def test_iso_strings_and_date_objects_parse_to_the_written_day(text, expected):
    assert parse_index_date(text) == expected


def test_offset_is_kept_by_the_parser_and_dropped_on_wall_clock_by_naive_timestamp():
    # 00:30 BST on 1 July is 23:30 UTC on 30 June; the wall-clock rule keeps 1 July
    assert parse_index_date("2024-07-01T00:30+01:00") == pd.Timestamp("2024-06-30 23:30", tz="UTC")
    assert naive_timestamp("2024-07-01T00:30+01:00") == pd.Timestamp(2024, 7, 1, 0, 30)


@pytest.mark.parametrize("bad", ["2025-02-30", "2025-13-01"])
def test_impossible_iso_dates_are_errors(bad):
    with pytest.raises(SchemaError, match="valid_date"):
        parse_index_date(bad)


@pytest.mark.parametrize("bad", [None, 20250401, 1.5, True, pd.NaT])
def test_missing_and_numbers_are_errors(bad):
    with pytest.raises(SchemaError):
        parse_index_date(bad)


def _register():
    return pd.DataFrame({"patient_id": [1, 2], "sex": ["F", "M"], "age": [80, 40],
                         "lsoa": ["E01000001"] * 2, "practice": ["P1"] * 2})


def _events():
    return pd.DataFrame({"patient_id": [1], "code": ["I50.0"], "code_system": ["icd10"],
                         "date": pd.to_datetime(["2025-03-20"])})


@pytest.mark.parametrize("call", [
    lambda d: ph.validate_events(_events(), index_date=d),
    lambda d: ph.validate_register(_register(), index_date=d),
    lambda d: ph.flag_conditions(_events(), "charlson_quan2005_icd10", register=_register(),
                                 index_date=d),
    lambda d: ph.score_patients(_register(), _events(), index_date=d),
], ids=["validate_events", "validate_register", "flag_conditions", "score_patients"])
def test_entry_points_refuse_a_day_first_string_that_pandas_reads_month_first(call):
    # pd.Timestamp("01/04/2025") is 4 January: before the 20 March event, so the event
    # would be "after the index date"/excluded without a word. It must be an error.
    assert pd.Timestamp("01/04/2025") == pd.Timestamp(2025, 1, 4)
    with pytest.raises(SchemaError, match="iso_8601_date"):
        call("01/04/2025")


def test_entry_points_still_accept_the_iso_form():
    # heart failure (I50.0) weighs 2 in Quan et al. 2011 (Am J Epidemiol 173:676, table 3)
    with pytest.warns(ph.DataQualityWarning, match="under 75"):
        out = ph.score_patients(_register(), _events(), index_date="2025-04-01")
    assert out["charlson_quan2011"].tolist() == [2, 0]


def test_nhs_data_dictionary_sex_codes_map_to_the_contract_letters():
    # NHS Data Dictionary: 1 male, 2 female, 9 indeterminate, 0 not known
    assert NHS_SEX_CODES == {"1": "M", "2": "F", "9": "I", "0": "U"}
    got = normalise_sex(pd.Series(["1", "2", "9", "0", " 2 ", "m", "F", "U"]))
    assert got.tolist() == ["M", "F", "I", "U", "F", "M", "F", "U"]


@pytest.mark.parametrize("dtype", ["int64", "float64", "Int64", "string"])
def test_sex_codes_arriving_as_numbers_or_strings(dtype):
    s = pd.Series([1, 2, 9, 0]).astype(dtype)
    assert normalise_sex(s).tolist() == ["M", "F", "I", "U"]


def test_unknown_and_missing_sex_codes_are_counted_with_positions_not_values():
    with pytest.raises(SchemaError) as info:
        normalise_sex(pd.Series(["1", "X7Q", None, "3", "2"], dtype=object))
    msg = str(info.value)
    assert "'not_null' in 1 row(s); first positions [2]" in msg
    assert "'sex_code'" in msg and "in 2 row(s); first positions [1, 3]" in msg
    assert "X7Q" not in msg


def test_normalised_register_passes_validation():
    reg = _register().assign(sex=[2, 1])
    with pytest.raises(SchemaError, match="normalise_sex"):
        ph.validate_register(reg)
    fixed = reg.assign(sex=normalise_sex(reg["sex"]))
    assert ph.validate_register(fixed) is fixed
    assert fixed["sex"].tolist() == ["F", "M"]


def test_string_nhs_codes_in_a_register_get_a_hint():
    reg = _register().assign(sex=["2", "M"])
    with pytest.raises(SchemaError, match=r"sex_code.*normalise_sex.*first positions \[0\]"):
        ph.validate_register(reg)
