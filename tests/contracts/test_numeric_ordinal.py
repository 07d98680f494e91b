"""The ``numeric`` rule and ordered label comparisons (issue 13, items 4 and 8)."""

from __future__ import annotations

import decimal
import traceback

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.contracts.numeric import numeric_mask, numeric_values, validate_numeric
from pophealth.contracts.ordinal import column_order, ordinal_codes

SENTINEL = "£1,200-SENTINEL-9990000018"
HFRS = ("low", "intermediate", "high")
EFI = ("fit", "mild", "moderate", "severe")
KNOWN = {"hfrs_band": HFRS, "efi_band": EFI}


def _problems(exc):
    return [(p["table"], p["column"], p["rule"], p["count"], tuple(p["positions"]))
            for p in exc.problems]


def _assert_no_sentinel(exc):
    text = str(exc) + repr(exc) + "".join(traceback.format_exception(exc)) + repr(exc.problems)
    assert "SENTINEL" not in text and "9990000018" not in text and "1,200" not in text


# ----------------------------------------------------------------------------- numeric


@pytest.mark.parametrize("values", [
    pd.Series([1.0, np.nan, 2.5]),
    pd.Series([1.0, None, 2.5], dtype="Float64"),
    pd.Series([1.0, None, 2.5], dtype=pd.ArrowDtype(pa.float64())),
    pd.Series([1.0, None, 2.5], dtype=object),
    pd.Series(pa.array([decimal.Decimal("1.0"), None, decimal.Decimal("2.5")],
                       pa.decimal128(5, 2)), dtype=pd.ArrowDtype(pa.decimal128(5, 2))),
    pd.Series(pd.Categorical([1.0, None, 2.5])),
], ids=["float64", "Float64", "arrow_double", "object", "arrow_decimal", "categorical"])
def test_numeric_backends_accepted_with_their_values(values):
    frame = pd.DataFrame({"cost": values})
    assert validate_numeric(frame, ["cost"], table="activity") is frame
    np.testing.assert_array_equal(numeric_values(values, table="activity", column="cost"),
                                  np.array([1.0, np.nan, 2.5]))


def test_numeric_rule_counts_every_non_number_and_never_shows_values():
    cost = pd.Series([10.0, SENTINEL, None, "12", True, pd.Timestamp("2024-01-01"), 3],
                     dtype=object)
    np.testing.assert_array_equal(numeric_mask(cost),
                                  [False, True, False, True, True, True, False])
    with pytest.raises(SchemaError) as info:
        validate_numeric(pd.DataFrame({"cost": cost}), ["cost"], table="activity")
    assert str(info.value) == ("activity failed validation (1 problem(s)):\n  activity: column "
                               "'cost' breaks rule 'numeric' in 4 row(s); first positions "
                               "[1, 3, 4, 5]")
    assert _problems(info.value) == [("activity", "cost", "numeric", 4, (1, 3, 4, 5))]
    _assert_no_sentinel(info.value)


@pytest.mark.parametrize("dtype", ["string[pyarrow]", pd.ArrowDtype(pa.string()), "category",
                                   "string[python]", object])
def test_text_columns_break_the_rule_in_every_present_row(dtype):
    age = pd.Series([SENTINEL, None, "70"] + ["71"] * 12, dtype=dtype)
    with pytest.raises(SchemaError) as info:
        numeric_values(age, table="register", column="age")
    # 14 present rows; positions are the first ten of them
    assert _problems(info.value) == [("register", "age", "numeric", 14,
                                      (0, 2, 3, 4, 5, 6, 7, 8, 9, 10))]
    _assert_no_sentinel(info.value)


def test_bool_column_is_not_numeric():
    with pytest.raises(SchemaError, match="'risk' breaks rule 'numeric' in 2 row"):
        numeric_values(pd.Series([True, False]), table="t", column="risk")


def test_missing_required_column_reported_optional_skipped():
    frame = pd.DataFrame({"age": ["x"]})
    with pytest.raises(SchemaError) as info:
        validate_numeric(frame, ["cost"], table="activity", optional=["age", "risk"])
    assert _problems(info.value) == [("activity", "cost", "missing_column", 0, ()),
                                     ("activity", "age", "numeric", 1, (0,))]


# ----------------------------------------------------------------------------- ordinal

LABEL_DTYPES = {
    "object": object,
    "string_pyarrow": "string[pyarrow]",
    "arrow_string": pd.ArrowDtype(pa.string()),
    "unordered_category": "category",
    "ordered_category": pd.CategoricalDtype(list(HFRS), ordered=True),
}


@pytest.mark.parametrize("dtype", sorted(LABEL_DTYPES))
def test_known_band_codes_follow_the_band_order_in_every_dtype(dtype):
    s = pd.Series(["high", "low", None, "intermediate"], dtype=LABEL_DTYPES[dtype])
    order = column_order(s, "hfrs_band", KNOWN)
    assert order == HFRS
    assert ordinal_codes(s, order).tolist() == [2, 0, -1, 1]


def test_arrow_dictionary_column_is_coded_without_decoding_errors():
    arr = pa.array(["severe", None, "fit", "mild"]).dictionary_encode()
    s = pd.Series(arr, dtype=pd.ArrowDtype(arr.type))
    assert ordinal_codes(s, column_order(s, "efi_band", KNOWN)).tolist() == [3, -1, 0, 1]


def test_unknown_label_refused_with_count_and_positions_not_the_label():
    s = pd.Series(["low", SENTINEL, "HIGH", None, SENTINEL], dtype="string[pyarrow]")
    with pytest.raises(SchemaError) as info:
        ordinal_codes(s, HFRS, column="hfrs_band")
    assert _problems(info.value) == [("patients", "hfrs_band", "known_label", 3, (1, 2, 4))]
    _assert_no_sentinel(info.value)


def test_alphabetically_ordered_category_of_a_band_is_refused():
    s = pd.Series(pd.Categorical(["high", "low"], ordered=True))  # high < intermediate < low
    with pytest.raises(SchemaError, match="'hfrs_band' breaks rule 'band_order'"):
        column_order(s, "hfrs_band", KNOWN)


def test_ordered_category_with_a_subset_of_the_band_in_order_is_fine():
    s = pd.Series(pd.Categorical(["severe"], categories=["mild", "severe"], ordered=True))
    assert column_order(s, "efi_band", KNOWN) == EFI


def test_column_without_known_order_is_refused_unless_ordered_categorical():
    for dtype in (object, "string[pyarrow]", "category"):
        with pytest.raises(ConfigError, match="'grade', which has no known order"):
            column_order(pd.Series(["b", "a"], dtype=dtype), "grade", KNOWN)
    s = pd.Series(pd.Categorical(["b", "a"], categories=["b", "a"], ordered=True))
    assert column_order(s, "grade", KNOWN) == ("b", "a")
