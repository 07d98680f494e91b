"""Many CSV files from one table: format once, cut the text into contiguous row blocks.

The job writes one CSV per PCN and per practice (hundreds of files). Formatting each
group with its own ``DataFrame.to_csv`` call costs a pandas round trip per file;
:func:`csv_blocks` formats the whole (group-sorted) table once - formula-safe cells
(:func:`pophealth.jobs.csvsafe.neutralise_formulas`), every non-numeric cell
double-quoted - and cuts the text at row boundaries. Each block's bytes are exactly what
:func:`csv_bytes` gives for that block on its own, because every cell is formatted on its
own value. Where that would not hold - a datetime column, whose format pandas chooses per
column, or a text cell holding a line feed, so that the text has more lines than rows -
the blocks are formatted one by one instead (same bytes, slower).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.jobs.csvsafe import neutralise_formulas

__all__ = ["csv_blocks", "csv_bytes"]


def _to_csv(frame: pd.DataFrame, header: bool = True) -> bytes:
    return frame.to_csv(index=False, header=header, lineterminator="\n",
                        quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The job's CSV bytes for ``frame``: formula-safe text cells, non-numeric cells quoted.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.jobs.csvblocks import csv_bytes
    >>> csv_bytes(pd.DataFrame({"pcn": ["=1+1", "U1"], "n": [-5, 2]}))
    b'"pcn","n"\\n"\\'=1+1",-5\\n"U1",2\\n'
    """
    return _to_csv(neutralise_formulas(frame))


def _dates_free(frame: pd.DataFrame) -> bool:
    """True when no column is datetime-like (pandas picks one date format per column, so a
    block formatted alone could differ from the same rows formatted in the whole table)."""
    for col in frame.columns:
        dtype = frame[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            dtype = dtype.categories.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(
                dtype) or isinstance(dtype, pd.PeriodDtype):
            return False
    return True


def csv_blocks(frame: pd.DataFrame, bounds: Sequence[int]) -> list[bytes]:
    """CSV bytes (header included) of each block ``frame.iloc[bounds[i]:bounds[i + 1]]``.

    Parameters
    ----------
    frame : DataFrame
        Rows in file order, each file's rows contiguous.
    bounds : sequence of int
        Non-decreasing row positions from 0 to ``len(frame)``; ``len(bounds) - 1`` blocks
        (an empty block gives the header only).

    Returns
    -------
    list of bytes
        ``csv_blocks(frame, bounds)[i] == csv_bytes(frame.iloc[bounds[i]:bounds[i + 1]])``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.jobs.csvblocks import csv_blocks
    >>> t = pd.DataFrame({"pcn": ["A", "A", "B"], "risk": [0.5, 0.25, -1.0]})
    >>> [b.decode() for b in csv_blocks(t, [0, 2, 2, 3])]
    ['"pcn","risk"\\n"A",0.5\\n"A",0.25\\n', '"pcn","risk"\\n', '"pcn","risk"\\n"B",-1.0\\n']
    """
    b = np.asarray(bounds, dtype=np.int64)
    if b.ndim != 1 or len(b) < 1 or b[0] != 0 or b[-1] != len(frame) or (np.diff(b) < 0).any():
        raise ValueError("csv_blocks: bounds must rise from 0 to the number of rows "
                         "(rule 'block_bounds')")
    if _dates_free(frame):
        safe = neutralise_formulas(frame)
        body = _to_csv(safe, header=False)
        ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n")) + 1
        if len(ends) == len(frame):  # one line per row: no cell holds a line feed
            header = _to_csv(safe.iloc[:0])
            offsets = np.concatenate([[0], ends])[b]
            return [header + body[offsets[i]:offsets[i + 1]] for i in range(len(b) - 1)]
    return [csv_bytes(frame.iloc[b[i]:b[i + 1]]) for i in range(len(b) - 1)]
