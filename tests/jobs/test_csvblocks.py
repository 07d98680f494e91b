"""csv_blocks: format a table once and cut it into per-file blocks, byte for byte what
formatting each block on its own gives (the job's per-PCN and per-practice lists)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pophealth.jobs.csvblocks import csv_blocks, csv_bytes


def _frame(text):
    n = len(text)
    return pd.DataFrame({
        "pseudo_id": [f"id{i}" for i in range(n)],
        "pcn": text,
        "practice": pd.Categorical(["=A", "B", None, "'C", "B", "=A", "@D", "B"][:n]),
        "rank": np.arange(1, n + 1),
        "risk": [0.1 + 0.2, -0.5, np.nan, 1e-300, 0.25, 3.0, -0.0, 12345678.9][:n],
        "previous_rank": pd.array([1, None, 3, None, 5, 6, None, 8][:n], "Int64"),
        "flag": [True, False, True, True, False, False, True, False][:n],
        "tier": np.array(["", "high", "", "low", "high", "", "", "low"][:n], dtype=object),
    })


# formula triggers, quotes, separators and a missing code; no line breaks
PLAIN = ["-1", "P,1", 'say "hi"', None, "+x", "\tT", "ok", "'q"]
BOUNDS = [0, 3, 3, 5, 8]  # an empty block in the middle


def test_each_block_is_what_formatting_it_alone_gives():
    frame = _frame(PLAIN)
    blocks = csv_blocks(frame, BOUNDS)
    assert len(blocks) == 4
    for i, got in enumerate(blocks):
        assert got == csv_bytes(frame.iloc[BOUNDS[i]:BOUNDS[i + 1]])


def test_blocks_hold_the_hand_written_bytes():
    frame = pd.DataFrame({"pcn": ["=1+1", "P", "P"], "risk": [0.5, np.nan, -1.0],
                          "rank": pd.array([1, None, 3], "Int64")})
    first, second = csv_blocks(frame, [0, 1, 3])
    header = b'"pcn","risk","rank"\n'
    assert first == header + b'"\'=1+1",0.5,1\n'  # formula neutralised, numbers bare
    # a missing number is written as a quoted empty text cell
    assert second == header + b'"P","",""\n"P",-1.0,3\n'


@pytest.mark.parametrize("breaker", ["P\n1", "Q\r", "a\r\nb"])
def test_a_line_break_in_a_cell_still_gives_each_blocks_own_bytes(breaker):
    text = list(PLAIN)
    text[4] = breaker  # a row spanning lines: cutting at line ends would split it
    frame = _frame(text)
    blocks = csv_blocks(frame, BOUNDS)
    for i, got in enumerate(blocks):
        assert got == csv_bytes(frame.iloc[BOUNDS[i]:BOUNDS[i + 1]])
    assert breaker.encode() in blocks[2]


def test_a_line_break_in_a_category_is_seen():
    frame = _frame(PLAIN)
    frame["practice"] = pd.Categorical(["x\ny", "B"] * 4)
    for i, got in enumerate(csv_blocks(frame, BOUNDS)):
        assert got == csv_bytes(frame.iloc[BOUNDS[i]:BOUNDS[i + 1]])


def test_a_datetime_column_keeps_each_blocks_own_format():
    # pandas writes a date-only column without the time: block 1 is midnights only
    frame = pd.DataFrame({"pcn": ["A", "B", "B"],
                          "when": [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-02 10:30"),
                                   pd.Timestamp("2025-01-03")]})
    first, second = csv_blocks(frame, [0, 1, 3])
    assert first == b'"pcn","when"\n"A","2025-01-01"\n'
    assert second == csv_bytes(frame.iloc[1:3])
    assert b"10:30:00" in second


@pytest.mark.parametrize("bounds", [[1, 8], [0, 5], [0, 6, 4, 8], []])
def test_bad_bounds_are_refused(bounds):
    with pytest.raises(ValueError, match="rule 'block_bounds'"):
        csv_blocks(_frame(PLAIN), bounds)
