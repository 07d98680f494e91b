"""The ``male`` feature: vectorised sex handling (issue 14) against hand values and the old code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pophealth.risk.features import _sex
from pophealth.synthetic import make_population

NAN = np.nan
# value -> expected ``male`` (by hand: strip, upper-case, M -> 1, F -> 0, anything else NaN)
CASES = [("M", 1.0), ("F", 0.0), (" m ", 1.0), ("f\t", 0.0), ("U", NAN), ("I", NAN),
         ("", NAN), ("MALE", NAN), (None, NAN), ("Fm", NAN)]


def _old_sex(register: pd.DataFrame) -> np.ndarray:
    """The per-row implementation replaced in issue 14 (kept here as the reference)."""
    sex = register["sex"].astype("string").str.strip().str.upper()
    return np.select([(sex == "M").to_numpy(dtype=bool, na_value=False),
                      (sex == "F").to_numpy(dtype=bool, na_value=False)], [1.0, 0.0], np.nan)


@pytest.mark.parametrize("dtype", [object, "string", "category"])
def test_sex_hand_values_in_every_dtype(dtype):
    values = [v for v, _ in CASES] * 3
    expected = np.array([e for _, e in CASES] * 3)
    reg = pd.DataFrame({"sex": pd.Series(values, dtype=dtype)})
    got = _sex(reg, len(reg))
    np.testing.assert_array_equal(got, expected)  # NaN positions compared too
    np.testing.assert_array_equal(got, _old_sex(reg))


def test_sex_numbers_and_nan_are_not_a_sex():
    reg = pd.DataFrame({"sex": pd.Series([1, 2, np.nan, "M"], dtype=object)})
    np.testing.assert_array_equal(_sex(reg, 4), [NAN, NAN, NAN, 1.0])


def test_sex_empty_and_all_missing():
    assert _sex(pd.DataFrame({"sex": pd.Series([], dtype=object)}), 0).shape == (0,)
    got = _sex(pd.DataFrame({"sex": [None, None]}), 2)
    assert np.isnan(got).all() and got.shape == (2,)


def test_sex_equals_old_implementation_on_synthetic_population():
    reg = make_population(5_000, random_state=3).register.copy()
    rng = np.random.default_rng(3)
    messy = np.array(["M", "F", " m", "f ", "U", "I", None, "x"], dtype=object)
    mixed = reg["sex"].to_numpy(dtype=object).copy()
    swap = rng.random(len(reg)) < 0.2
    mixed[swap] = messy[rng.integers(0, len(messy), swap.sum())]
    for sex in (reg["sex"], pd.Series(mixed, index=reg.index)):
        r = reg.assign(sex=sex)
        got, old = _sex(r, len(r)), _old_sex(r)
        np.testing.assert_array_equal(got, old)
        assert (got == 1).sum() > 0 and (got == 0).sum() > 0  # both sexes present
