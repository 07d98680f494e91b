"""The ranking's chained stable sorts give exactly ``np.lexsort((id, -value, group))``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.cohorts.ranking import _lexsort_group_value_id, top_fraction_mask


def test_hand_order_group_then_value_desc_then_id():
    g = np.array([1, 0, 1, 0, 0])
    v = np.array([0.5, 0.2, 0.9, 0.2, 0.7])
    i = np.array([4, 3, 2, 1, 0])
    # group 0: 0.7 (row 4), then the 0.2 tie by id: id 1 (row 3) before id 3 (row 1);
    # group 1: 0.9 (row 2), then 0.5 (row 0)
    assert _lexsort_group_value_id(g, v, i).tolist() == [4, 3, 1, 2, 0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.1, 0.2, 0.3, np.nan]),
                          st.booleans()), max_size=50),
       st.booleans(), st.integers(0, 40_000))
def test_matches_lexsort(rows, ids_sorted, group_offset):
    n = len(rows)
    g = np.array([r[0] for r in rows], dtype=np.int64) + group_offset  # past int16 too
    v = np.array([r[1] for r in rows], dtype=float)
    i = np.arange(n) if ids_sorted else np.random.default_rng(n).permutation(n)
    np.testing.assert_array_equal(_lexsort_group_value_id(g, v, i), np.lexsort((i, -v, g)))


def test_selection_independent_of_row_order():
    rng = np.random.default_rng(7)
    values = rng.choice([1.0, 2.0, 3.0], size=200)
    ids = np.arange(1000, 1200)
    groups = rng.choice(["A", "B"], size=200)
    sel, rank, _ = top_fraction_mask(values, ids=ids, fraction=0.1, groups=groups)
    perm = rng.permutation(200)
    sel_p, rank_p, _ = top_fraction_mask(values[perm], ids=ids[perm], fraction=0.1,
                                         groups=groups[perm])
    np.testing.assert_array_equal(sel_p, sel[perm])
    np.testing.assert_array_equal(rank_p, rank[perm])
