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


def _old_utilisation(activity, ids, index_date, lookback_days):
    """The per-kind np.isin implementation replaced in issue 14 (the reference)."""
    from pophealth.contracts.schema import as_datetime64, naive_timestamp
    from pophealth.risk.features import _ADMISSIONS, UTILISATION_KINDS

    n = len(ids)
    idx = np.datetime64(naive_timestamp(index_date), "us")
    date = as_datetime64(activity["date"], unit="us")
    pos = ids.get_indexer(activity["patient_id"])
    since = idx - pd.Timedelta(days=lookback_days).to_timedelta64().astype("m8[us]")
    keep = (pos >= 0) & (date > since) & (date <= idx)
    pos = pos[keep]
    kind = activity["kind"].to_numpy(dtype=object)[keep]
    out = {name: np.bincount(pos[np.isin(kind, kinds)], minlength=n).astype(float)
           for name, kinds in UTILISATION_KINDS.items()}
    los = pd.to_numeric(activity["length_of_stay"]).to_numpy(dtype=float, na_value=0.0)[keep]
    adm = np.isin(kind, _ADMISSIONS)
    out["prior_bed_days"] = np.bincount(pos[adm], weights=los[adm], minlength=n)
    cost = pd.to_numeric(activity["cost"]).to_numpy(dtype=float)[keep]
    out["prior_cost"] = np.bincount(pos, weights=cost, minlength=n)
    return out


@pytest.mark.parametrize("kind_dtype", [object, "category", "string"])
def test_utilisation_equals_old_implementation_on_synthetic_population(kind_dtype):
    from pophealth.core.conditions import register_ids
    from pophealth.risk.features import UTILISATION_KINDS, make_features

    pop = make_population(5_000, random_state=11)
    kind = pop.activity["kind"].to_numpy(dtype=object).copy()
    # the generator writes five kinds: relabel a tenth of rows so every feature is exercised
    rng = np.random.default_rng(11)
    swap = rng.random(len(kind)) < 0.1
    kind[swap] = np.array(["community", "mental_health", "other"])[rng.integers(0, 3, swap.sum())]
    act = pop.activity.assign(kind=pd.Series(kind, index=pop.activity.index).astype(kind_dtype))
    X = make_features(pop.register, None, act, index_date=pop.index_date)
    old = _old_utilisation(act, register_ids(pop.register), pop.index_date, 365)
    for name, values in old.items():
        np.testing.assert_array_equal(X[name].to_numpy(), values, err_msg=name)
    # every kind the generator writes is counted somewhere, and bed days are not all zero
    assert all(X[name].sum() > 0 for name in UTILISATION_KINDS)
    assert X["prior_bed_days"].sum() > 0
