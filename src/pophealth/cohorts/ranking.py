"""Top-fraction selection with one tie rule, shared by cohorts and caseloads.

**Tie rule.** People are ranked by value descending, then by ``patient_id`` ascending; the
first ``k = ceil(fraction * n)`` of each group are taken, where ``n`` is the number of
eligible people in the group. So a cohort always has exactly ``k`` people (fewer only when
some values are zero or missing, which never qualify), and the result does not depend on
the row order of the input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError
from pophealth.contracts.numeric import numeric_values

__all__ = ["top_fraction_mask"]


def _ids_codes(ids) -> np.ndarray:
    """Integer codes that sort like the ids (ids are unique)."""
    return pd.factorize(pd.Index(ids), sort=True)[0]


def _group_codes(groups, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    return pd.factorize(pd.Series(groups), sort=True, use_na_sentinel=False)[0].astype(np.int64)


def _lexsort_group_value_id(g: np.ndarray, v: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``np.lexsort((i, -v, g))`` (group asc, value desc, id asc) as chained stable sorts.

    Rows usually come in id order (a register sorted by patient id), so the id pass is
    skipped then; the group pass sorts small integer codes, which numpy's stable sort does
    in linear time (radix) for 16-bit keys.
    """
    if len(i) > 1 and not (np.diff(i) > 0).all():
        order = np.argsort(i, kind="stable")
    else:
        order = np.arange(len(i))
    order = order[np.argsort(-v[order], kind="stable")]
    gk = g[order]
    if len(gk) and gk.min() >= np.iinfo(np.int16).min and gk.max() <= np.iinfo(np.int16).max:
        gk = gk.astype(np.int16)
    return order[np.argsort(gk, kind="stable")]


def _rank_within(values: np.ndarray, id_codes: np.ndarray, group_codes: np.ndarray,
                 eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based rank within group (value desc, id asc) over eligible rows, and group sizes.

    Ineligible rows get rank 0 and do not count in the group size.
    """
    n = len(values)
    rank = np.zeros(n, dtype=np.int64)
    sizes = np.zeros(n, dtype=np.int64)
    pos = np.flatnonzero(eligible)
    if len(pos) == 0:
        return rank, sizes
    v, i, g = values[pos], id_codes[pos], group_codes[pos]
    order = _lexsort_group_value_id(g, v, i)
    sg = g[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sg)) + 1]
    lengths = np.diff(np.r_[starts, len(sg)])
    within = np.arange(len(sg)) - np.repeat(starts, lengths)
    rank[pos[order]] = within + 1
    sizes[pos[order]] = np.repeat(lengths, lengths)
    return rank, sizes


def _k(fraction: float, sizes: np.ndarray) -> np.ndarray:
    # round() first so that 0.05 * 100 = 5.000000000000001 gives 5, not 6
    return np.ceil(np.round(fraction * sizes, 9)).astype(np.int64)


def _check_fraction(fraction: float, name: str = "top_fraction") -> float:
    fraction = float(fraction)
    if not 0 < fraction <= 1:
        raise ConfigError(f"{name} must be in (0, 1]")
    return fraction


def top_fraction_mask(values, *, ids, fraction: float, groups=None, eligible=None,
                      positive_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top ``fraction`` of ``values`` within each group, with the module's tie rule.

    Parameters
    ----------
    values : array-like of float
        Missing values never qualify; anything else that is not a number is an error
        (:class:`~pophealth.contracts.exceptions.SchemaError`, rule ``numeric``).
    ids : array-like
        Unique patient ids (the tie-break, ascending).
    fraction : float
        In (0, 1]; each group takes ``ceil(fraction * n_eligible)`` people.
    groups : array-like, optional
        Group labels (e.g. practice); ``None`` for one group.
    eligible : array-like of bool, optional
        Who may be selected and counts in ``n``; default everyone with a value.
    positive_only : bool
        If True, values <= 0 never qualify (a zero-cost person is not high cost).

    Returns
    -------
    selected, rank, group_size : numpy arrays
        ``rank`` is 1 for the highest value in the group (0 if not eligible).

    Examples
    --------
    >>> from pophealth.cohorts.ranking import top_fraction_mask
    >>> sel, rank, size = top_fraction_mask([5.0, 9.0, 9.0, 1.0], ids=[4, 3, 2, 1],
    ...                                     fraction=0.5)
    >>> sel.tolist(), rank.tolist()
    ([False, True, True, False], [3, 2, 1, 4])
    """
    fraction = _check_fraction(fraction, "fraction")
    v = numeric_values(values if isinstance(values, pd.Series) else pd.Series(values),
                       table="values", column="values")
    ok = ~np.isnan(v)
    if eligible is not None:
        ok &= np.asarray(eligible, dtype=bool)
    rank, sizes = _rank_within(v, _ids_codes(ids), _group_codes(groups, len(v)), ok)
    selected = ok & (rank >= 1) & (rank <= _k(fraction, sizes))
    if positive_only:
        selected &= v > 0
    return selected, rank, sizes
