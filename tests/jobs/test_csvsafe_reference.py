"""Formula escaping against a slow cell-by-cell reference (any text, any mix of cells)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.jobs.csvsafe import neutralise_formulas, restore_formulas

TRIGGERS = "=+-@\t\r\n\0'"


def _slow_escape(cell):
    """OWASP rule, one cell: a string starting with a trigger or a quote gets one quote."""
    if isinstance(cell, str) and cell != "" and cell[0] in TRIGGERS:
        return "'" + cell
    return cell


_text = st.text(alphabet=st.sampled_from(list(TRIGGERS) + ["a", "é", " ", "1"]), max_size=4)
_cell = st.one_of(_text, st.none(), st.just(np.nan), st.integers(-3, 3))


@settings(max_examples=300, deadline=None)
@given(st.lists(_cell, min_size=1, max_size=30), st.lists(_text, min_size=1, max_size=30))
def test_neutralise_matches_cell_by_cell_reference(mixed, strings):
    frame = pd.DataFrame({"mixed": pd.Series(mixed, dtype=object)})
    got = neutralise_formulas(frame)["mixed"].tolist()
    want = [_slow_escape(c) for c in mixed]
    for g, w in zip(got, want, strict=True):
        assert (g is w) or (g == w) or (pd.isna(g) and pd.isna(w))
    text = pd.DataFrame({"s": strings})
    escaped = neutralise_formulas(text)
    assert escaped["s"].tolist() == [_slow_escape(c) for c in strings]
    assert restore_formulas(escaped)["s"].tolist() == strings


def test_nul_only_cell_and_empty_cell_hand_cases():
    t = pd.DataFrame({"pcn": ["\0", "", "\0x", "x\0", "'"]})
    assert neutralise_formulas(t)["pcn"].tolist() == ["'\0", "", "'\0x", "x\0", "''"]
