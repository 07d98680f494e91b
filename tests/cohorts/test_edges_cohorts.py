"""Top fractions on non-binary fractions and period edges (issue 16, item 2).

Plain computations written here: the top ``fraction`` of a group of ``n`` is
``ceil(fraction * n)`` people computed with exact rationals (so 7 % of 100 is 7,
although ``0.07 * 100 == 7.000000000000001`` in floating point), ranked by value
descending then patient id ascending; a period ``start``..``end`` includes both days.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from strategies import fractions, sizes_for

from pophealth.cohorts import high_cost_cohort, period_cost, select_caseload, top_fraction_mask


def _plain_top(values, ids, groups, fraction):
    """Selected flags by hand: per group, sort (value desc, id asc), take ceil(f * n)."""
    chosen = set()
    for g in set(groups):
        members = sorted((-v, i) for v, i, gg in zip(values, ids, groups, strict=True)
                         if gg == g)
        chosen |= {i for _, i in members[:math.ceil(fraction * len(members))]}
    return [i in chosen for i in ids]


@given(data=st.data(), fraction=fractions())
def test_top_fraction_mask_takes_exact_ceil_per_group(data, fraction):
    n = data.draw(sizes_for(fraction, high=300))
    values = data.draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))  # many ties
    ids = data.draw(st.permutations(range(1000, 1000 + n)))
    groups = data.draw(st.lists(st.sampled_from(["P1", "P2"]), min_size=n, max_size=n))
    sel, _, _ = top_fraction_mask(np.array(values, dtype=float), ids=ids,
                                  fraction=float(fraction), groups=groups)
    assert sel.tolist() == _plain_top(values, ids, groups, fraction)


def test_seven_percent_of_100_is_7_in_every_entry_point():
    ids = pd.Index(range(1, 101), name="patient_id")
    cost = np.arange(100, 0, -1, dtype=float)  # distinct and positive: no ties, no zeros
    register = pd.DataFrame({"patient_id": ids})
    activity = pd.DataFrame({"patient_id": ids, "cost": cost,
                             "date": pd.Timestamp("2024-06-01")})
    hc = high_cost_cohort(activity, register=register, start="2024-04-01", end="2025-03-31",
                          top_fraction=0.07)
    assert hc.index[hc["high_cost"]].tolist() == [1, 2, 3, 4, 5, 6, 7]
    patients = pd.DataFrame({"pcn": "N1", "risk": cost / 100}, index=ids)
    caseload = select_caseload(patients, [{"name": "top", "top_fraction": 0.07}],
                               factors=None)
    assert caseload.index.tolist() == [1, 2, 3, 4, 5, 6, 7]


@given(data=st.data(), fraction=fractions())
def test_high_cost_cohort_with_period_edges(data, fraction):
    start, end = pd.Timestamp("2024-04-01"), pd.Timestamp("2025-03-31")
    edges = [start - pd.Timedelta(days=1), start, start + pd.Timedelta(days=1),
             end - pd.Timedelta(days=1), end, end + pd.Timedelta(days=1)]
    n = data.draw(sizes_for(fraction, high=60))
    m = data.draw(st.integers(0, 3 * n))
    pids = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    dates = data.draw(st.lists(st.sampled_from(edges), min_size=m, max_size=m))
    costs = data.draw(st.lists(st.integers(0, 50), min_size=m, max_size=m))
    activity = pd.DataFrame({"patient_id": pids, "cost": np.array(costs, dtype=float),
                             "date": pd.to_datetime(dates)})
    register = pd.DataFrame({"patient_id": range(n)})
    total = [sum(c for p, c, d in zip(pids, costs, dates, strict=True)
                 if p == i and start <= d <= end) for i in range(n)]
    assert period_cost(activity, register=register, start=start, end=end).tolist() == total
    hc = high_cost_cohort(activity, register=register, start=start, end=end,
                          top_fraction=float(fraction))
    # everyone on the register counts in n; zero cost never qualifies
    want = [s and t > 0 for s, t in zip(_plain_top(total, list(range(n)), [0] * n, fraction),
                                        total, strict=True)]
    assert hc["high_cost"].tolist() == want
