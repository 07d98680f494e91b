"""``n_higher`` (the tier tie rule's count) against a slow, obviously-correct count."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.risk.tiers import n_higher


def _slow_n_higher(values: list[float]) -> list[float]:
    """For each value, count the non-missing values strictly greater, one by one."""
    present = [v for v in values if not np.isnan(v)]
    return [np.nan if np.isnan(v) else float(sum(w > v for w in present)) for v in values]


def test_hand_counts_with_ties_and_missing():
    # 0.5 twice: nobody above; 0.2: the two 0.5s; 0.1: three above; NaN stays NaN
    got = n_higher(np.array([0.1, 0.5, np.nan, 0.5, 0.2]))
    np.testing.assert_array_equal(got, [3.0, 0.0, np.nan, 0.0, 2.0])


def test_all_equal_and_single_and_empty():
    np.testing.assert_array_equal(n_higher(np.array([0.3, 0.3, 0.3])), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(n_higher(np.array([0.7])), [0.0])
    assert n_higher(np.array([], dtype=float)).shape == (0,)
    np.testing.assert_array_equal(n_higher(np.array([np.nan, np.nan])), [np.nan, np.nan])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0, np.nan]),
                          st.floats(min_value=-2, max_value=2)), max_size=60))
def test_matches_slow_count(values):
    np.testing.assert_array_equal(n_higher(np.array(values, dtype=float)),
                                  _slow_n_higher(values))
