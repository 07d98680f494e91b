"""Complementary (secondary) suppression for tables whose margins may be published.

If a margin total is published (in the same table or another one, e.g. an area total
next to its age/sex cells) and exactly one cell in that margin is suppressed, the
reader gets the hidden cell back as "total minus the other cells". Complementary
suppression hides the next-smallest cell of every such margin too, so that each
margin hides either nothing or at least two cells; it repeats until no margin has a
lone hidden cell (hiding a cell in one margin can leave another margin with one).

"Smallest" is judged on the *published* (rounded) counts, ties by row position, so
the choice reveals nothing the table does not already show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["complementary_suppression", "auto_margins"]


def auto_margins(by: Sequence[str]) -> list[list[str]]:
    """One-dimensional margins of a table keyed by ``by``: drop each key in turn.

    Examples
    --------
    >>> from pophealth.areas.complementary import auto_margins
    >>> auto_margins(["area", "sex"])
    [['sex'], ['area']]
    """
    by = list(by)
    return [[c for c in by if c != d] for d in by]


def complementary_suppression(
    keys: pd.DataFrame,
    hidden,
    margins: Sequence[Sequence[str]],
    order: Sequence[np.ndarray],
    eligible=None,
) -> np.ndarray:
    """Rows to hide in addition to ``hidden`` so that no margin hides exactly one cell.

    Parameters
    ----------
    keys : DataFrame
        The key columns named in ``margins`` (one row per table row).
    hidden : array-like of bool
        Rows already suppressed (primary suppression).
    margins : sequence of sequences of str
        Each margin is the list of key columns held fixed; the rows sharing those
        values add up to a total that may be published (``[]``: the grand total).
    order : sequence of arrays
        Sort keys choosing the "next-smallest" cell (first key first); NaN sorts last.
    eligible : array-like of bool, optional
        Rows that are cells (e.g. not a total row); others are never chosen or counted.

    Returns
    -------
    ndarray of bool
        The secondary suppressions (not including ``hidden``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pophealth.areas.complementary import complementary_suppression
    >>> keys = pd.DataFrame({"area": ["A", "A", "A"], "sex": ["F", "M", "U"]})
    >>> counts = np.array([3.0, 40.0, 12.0])
    >>> complementary_suppression(keys, [True, False, False], [["area"]], [counts]).tolist()
    [False, False, True]
    """
    hidden = np.asarray(hidden, dtype=bool).copy()
    n = len(hidden)
    ok = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    hidden &= ok
    start = hidden.copy()
    sort_keys = [np.where(np.isnan(k := np.asarray(o, dtype="float64")), np.inf, k)
                 for o in order]
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort([np.arange(n), *reversed(sort_keys)])] = np.arange(n)
    groups = []
    for cols in margins:
        cols = list(cols)
        g = (np.zeros(n, dtype=np.int64) if not cols else
             keys[cols].groupby(cols, sort=False, dropna=False, observed=True)
             .ngroup().to_numpy().astype(np.int64))
        groups.append(np.where(ok, g, -1))
    changed = True
    while changed:
        changed = False
        for g in groups:
            valid = g >= 0
            if not valid.any():
                continue
            k = int(g.max()) + 1
            gv = np.where(valid, g, 0)
            size = np.bincount(g[valid], minlength=k)
            n_hidden = np.bincount(g[valid], weights=hidden[valid], minlength=k)
            lone = (n_hidden == 1) & (size >= 2)
            if not lone.any():
                continue
            idx = np.flatnonzero(valid & ~hidden & lone[gv])
            idx = idx[np.argsort(rank[idx], kind="stable")]
            _, first = np.unique(g[idx], return_index=True)
            hidden[idx[first]] = True
            changed = True
    return hidden & ~start
