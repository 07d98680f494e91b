"""NHS number Modulus 11 validation and synthetic 999-range numbers."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pophealth.contracts.nhs_number import (
    TEST_RANGE_CAPACITY,
    is_valid_nhs_number,
    make_nhs_numbers,
    nhs_check_digit,
    test_range_numbers,
)

# (value, valid?) -- NHS Data Dictionary Modulus 11 rules
SPEC_TABLE = [
    ("9434765919", True),  # published valid test vector
    ("943 476 5919", True),  # spaces are ignored
    (" 9434765919 ", True),
    ("9434765918", False),  # wrong check digit
    ("9434765910", False),
    ("9434765960", False),  # stem 943476596: 11 - (sum mod 11) = 10 -> no valid number
    ("9434765969", False),
    ("9990000000", False),  # stem 999000000 also gives 10
    ("9990000018", True),  # 999 test range, check digit 8
    ("9990000050", True),  # check digit 11 -> 0
    ("943476591", False),  # nine digits
    ("94347659190", False),  # eleven digits
    ("943476591X", False),
    ("943-476-5919", False),  # only spaces are allowed as separators
    ("", False),
    (None, False),
    (np.nan, False),
]


@pytest.mark.parametrize(("value", "valid"), SPEC_TABLE)
def test_modulus11_spec_table(value, valid):
    assert is_valid_nhs_number([value]).tolist() == [valid]


def test_vectorised_over_mixed_input():
    values = [v for v, _ in SPEC_TABLE]
    expected = [ok for _, ok in SPEC_TABLE]
    assert is_valid_nhs_number(values).tolist() == expected
    assert is_valid_nhs_number(np.array(["9434765919", "9434765918"])).tolist() == [True, False]
    assert is_valid_nhs_number([9434765919, 9434765918]).tolist() == [True, False]
    assert is_valid_nhs_number([]).shape == (0,)


def test_check_digit_function():
    assert nhs_check_digit([943476591, 943476596, 999000005]).tolist() == [9, -1, 0]


@given(st.integers(min_value=100_000_000, max_value=999_999_999), st.integers(0, 9))
def test_only_the_check_digit_validates(stem, last):
    check = int(nhs_check_digit([stem])[0])
    assert is_valid_nhs_number([f"{stem}{last}"])[0] == (check == last)


def test_test_range_has_expected_capacity():
    nums = test_range_numbers()
    # 1,000,000 stems 999000000-999999999; a stem whose modulus-11 check value is 10 has
    # no valid number (90,909 of them: one stem in 11), leaving 909,091
    assert len(nums) == TEST_RANGE_CAPACITY == 909_091
    assert np.all(np.diff(nums) > 0)
    assert np.all(nums // 10_000_000 == 999)
    assert is_valid_nhs_number(nums.astype(str)).all()


def test_make_nhs_numbers_unique_valid_999_range():
    nums = make_nhs_numbers(50_000, rng=np.random.default_rng(0))
    assert nums.dtype.kind == "U"
    assert len(np.unique(nums)) == 50_000
    assert np.char.startswith(nums, "999").all()
    assert is_valid_nhs_number(nums).all()


def test_make_nhs_numbers_deterministic_and_seed_dependent():
    a = make_nhs_numbers(100, rng=np.random.default_rng(42))
    b = make_nhs_numbers(100, rng=np.random.default_rng(42))
    c = make_nhs_numbers(100, rng=np.random.default_rng(43))
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_make_nhs_numbers_can_exhaust_but_not_exceed_the_range():
    assert len(set(make_nhs_numbers(TEST_RANGE_CAPACITY, rng=np.random.default_rng(1)))) == TEST_RANGE_CAPACITY
    with pytest.raises(ValueError, match="909091"):
        make_nhs_numbers(TEST_RANGE_CAPACITY + 1, rng=np.random.default_rng(1))
    with pytest.raises(ValueError):
        make_nhs_numbers(-1, rng=np.random.default_rng(1))
