"""Risk features on the look-back edges and top fractions on the float traps (issue 16, item 2).

Plain computations written here: ``make_features`` counts activity with
``index_date - lookback_days < date <= index_date`` (its documented window), and the
top ``fraction`` of ``n`` distinct risks is ``ceil(fraction * n)`` people, computed with
exact rationals (``fractions.Fraction``) so that ``0.07 * 100`` is 7, not 7.000000000000001.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from strategies import LOOKBACKS, fractions, offset_lists, sizes_for

from pophealth.risk.features import make_features
from pophealth.risk.tiers import risk_tiers, top_fraction

INDEX = pd.Timestamp("2025-04-01")
KIND_FEATURE = {"emergency_admission": "prior_emergency_admissions",
                "ae": "prior_ae_attendances", "gp": "prior_gp_contacts"}


@given(data=st.data(),
       lookback=st.one_of(st.sampled_from(LOOKBACKS), st.integers(1, 900)))
def test_make_features_utilisation_window_edges(data, lookback):
    offsets = data.draw(offset_lists((lookback,)))
    n = len(offsets)
    pids = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    kinds = data.draw(st.lists(st.sampled_from(sorted(KIND_FEATURE)), min_size=n, max_size=n))
    costs = data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    stays = data.draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    activity = pd.DataFrame({"patient_id": pids, "kind": kinds,
                             "cost": np.array(costs, dtype=float), "length_of_stay": stays,
                             "date": pd.to_datetime([INDEX + pd.Timedelta(days=d)
                                                     for d in offsets])})
    register = pd.DataFrame({"patient_id": [1, 2, 3], "sex": "F", "age": 70})
    X = make_features(register, None, activity, index_date=INDEX, lookback_days=lookback)
    for pid in (1, 2, 3):
        rows = [(k, c, s) for p, k, c, s, o in zip(pids, kinds, costs, stays, offsets,
                                                   strict=True)
                if p == pid and -lookback < o <= 0]
        for kind, feature in KIND_FEATURE.items():
            assert X.loc[pid, feature] == sum(k == kind for k, _, _ in rows), feature
        assert X.loc[pid, "prior_cost"] == sum(c for _, c, _ in rows)
        assert X.loc[pid, "prior_bed_days"] == sum(
            s for k, _, s in rows if k == "emergency_admission")


@given(data=st.data(), fraction=fractions())
def test_top_fraction_takes_ceil_of_the_exact_product(data, fraction):
    n = data.draw(sizes_for(fraction))
    risk = np.arange(n, 0, -1, dtype=float)  # distinct, highest first
    k = math.ceil(fraction * n)  # exact rational arithmetic
    flagged = top_fraction(risk, float(fraction))
    assert flagged.tolist() == [True] * k + [False] * (n - k)


@given(data=st.data(), fraction=fractions().filter(lambda f: f < 1))  # cuts are in (0, 1)
def test_risk_tier_cut_takes_ceil_of_the_exact_product(data, fraction):
    n = data.draw(sizes_for(fraction))
    risk = np.arange(n, 0, -1, dtype=float)
    k = math.ceil(fraction * n)
    tiers = risk_tiers(risk, cuts=(float(fraction),), labels=["top", "rest"])
    assert tiers.tolist() == ["top"] * k + ["rest"] * (n - k)
