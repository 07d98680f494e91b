"""NHS number check-digit validation (Modulus 11) and synthetic NHS numbers.

The NHS Data Dictionary ("NHS NUMBER") defines the check digit: multiply digits 1-9 by the
weights 10, 9, ..., 2, sum, take the remainder modulo 11 and compute ``11 - remainder``.
A result of 11 means the check digit is 0; a result of 10 means the number is invalid;
otherwise the result must equal digit 10.

Synthetic registers must never carry numbers that could be real: the range
``999 000 0000``-``999 999 9999`` is reserved for testing and will never be issued, so
:func:`make_nhs_numbers` draws only from it. That range holds 1,000,000 nine-digit stems,
of which :data:`TEST_RANGE_CAPACITY` (909,091) give a valid number.

Everything is vectorised numpy: there is no Python loop per number.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = [
    "TEST_RANGE_CAPACITY",
    "is_valid_nhs_number",
    "make_nhs_numbers",
    "nhs_check_digit",
    "test_range_numbers",
]

_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # 10, 9, ..., 2
_TEST_PREFIX = 999


def nhs_check_digit(stems) -> np.ndarray:
    """Modulus 11 check digit for nine-digit integer stems (``-1`` where none exists).

    Parameters
    ----------
    stems : array-like of int
        Integers in ``0 .. 999_999_999`` (the first nine digits, read as a number).

    Returns
    -------
    numpy.ndarray of int64
        The check digit 0-9, or -1 where ``11 - (sum mod 11)`` is 10 (no valid number).

    Examples
    --------
    >>> from pophealth.contracts.nhs_number import nhs_check_digit
    >>> nhs_check_digit([943476591]).tolist()
    [9]
    """
    stems = np.asarray(stems, dtype=np.int64)
    powers = 10 ** np.arange(8, -1, -1, dtype=np.int64)
    digits = (stems[..., None] // powers) % 10
    check = 11 - (digits @ _WEIGHTS) % 11
    check = np.where(check == 11, 0, check)
    return np.where(check == 10, -1, check)


def is_valid_nhs_number(values) -> np.ndarray:
    """Vectorised Modulus 11 validity of NHS numbers.

    Parameters
    ----------
    values : array-like
        Strings of ten digits, optionally containing spaces (``"943 476 5919"``), or
        integers. Nulls, other characters and wrong lengths are invalid.

    Returns
    -------
    numpy.ndarray of bool
        One flag per input value.

    Examples
    --------
    >>> from pophealth.contracts.nhs_number import is_valid_nhs_number
    >>> is_valid_nhs_number(["9434765919", "943 476 5919", "9434765918", None]).tolist()
    [True, True, False, False]
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    n = len(series)
    if n == 0:
        return np.zeros(0, dtype=bool)
    notnull = series.notna().to_numpy()
    text = series.where(notnull, "").astype(str).to_numpy(dtype=str)
    text = np.char.replace(text, " ", "")
    ok = notnull & (np.char.str_len(text) == 10) & np.char.isdigit(text)
    digits = np.zeros((n, 10), dtype=np.int64)
    if ok.any():
        fixed = text[ok].astype("<U10")
        codepoints = fixed.view(np.uint32).reshape(-1, 10).astype(np.int64) - ord("0")
        digits[ok] = codepoints
    # isdigit accepts non-ASCII digits; keep only 0-9 code points
    ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    check = 11 - (digits[:, :9] @ _WEIGHTS) % 11
    check = np.where(check == 11, 0, check)
    return ok & (check != 10) & (check == digits[:, 9])


@lru_cache(maxsize=1)
def _test_range_ints() -> np.ndarray:
    stems = _TEST_PREFIX * 1_000_000 + np.arange(1_000_000, dtype=np.int64)
    check = nhs_check_digit(stems)
    keep = check >= 0
    out = stems[keep] * 10 + check[keep]
    out.setflags(write=False)
    return out


TEST_RANGE_CAPACITY = 909_091
"""Number of valid NHS numbers in the never-issued 999 range."""


def test_range_numbers() -> np.ndarray:
    """All valid NHS numbers in the 999 test range, ascending, as int64 (read-only).

    Examples
    --------
    >>> from pophealth.contracts.nhs_number import test_range_numbers, TEST_RANGE_CAPACITY
    >>> nums = test_range_numbers()
    >>> len(nums) == TEST_RANGE_CAPACITY, str(nums[0])[:3]
    (True, '999')
    """
    return _test_range_ints()


test_range_numbers.__test__ = False  # not a pytest test despite the name


def make_nhs_numbers(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` unique, valid NHS numbers from the never-issued 999 range.

    Parameters
    ----------
    n : int
        How many numbers; at most :data:`TEST_RANGE_CAPACITY` (909,091).
    rng : numpy.random.Generator
        Source of randomness (the only one used).

    Returns
    -------
    numpy.ndarray of str
        Ten-digit strings without spaces, all starting ``"999"``, in random order.

    Raises
    ------
    ValueError
        If ``n`` is negative or exceeds the capacity of the test range.

    Examples
    --------
    >>> import numpy as np
    >>> from pophealth.contracts.nhs_number import make_nhs_numbers, is_valid_nhs_number
    >>> nums = make_nhs_numbers(3, rng=np.random.default_rng(0))
    >>> bool(is_valid_nhs_number(nums).all()), all(s.startswith("999") for s in nums)
    (True, True)
    """
    if n < 0 or n > TEST_RANGE_CAPACITY:
        raise ValueError(
            f"n must be between 0 and {TEST_RANGE_CAPACITY} (valid numbers in the 999 test "
            f"range); got {n}"
        )
    pool = _test_range_ints()
    picks = rng.choice(len(pool), size=n, replace=False)
    return pool[picks].astype("U10")
