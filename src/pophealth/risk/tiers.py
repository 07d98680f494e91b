"""Risk tiers (very high / high / moderate / low) from a risk score, with an exact tie rule.

The same rank rule defines "the top x %" in :func:`pophealth.risk.evaluation.evaluate_risk`,
so a patient counted in the top 0.5 % there is the patient put in the "very high" tier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError

__all__ = ["DEFAULT_TIER_LABELS", "n_higher", "risk_tiers", "top_count", "top_fraction"]

#: Tier labels from the highest-risk tier down, for the default three cuts.
DEFAULT_TIER_LABELS: tuple[str, ...] = ("very high", "high", "moderate", "low")


def n_higher(risk: np.ndarray) -> np.ndarray:
    """For each value, how many non-missing values are strictly greater (NaN gives NaN).

    Examples
    --------
    >>> n_higher(np.array([0.1, 0.5, 0.5, np.nan, 0.2]))
    array([ 3.,  0.,  0., nan,  2.])
    """
    r = np.asarray(risk, dtype=float)
    ok = ~np.isnan(r)
    vals = r[ok]
    # in ascending order, a value's strictly-greater count is n - 1 - (the position of the
    # last value equal to it): one sort and sequential passes, no random-access search
    order = np.argsort(vals)
    srt = vals[order]
    n = len(srt)
    last_of_run = np.flatnonzero(np.r_[srt[1:] != srt[:-1], True])  # ends of equal runs
    run = np.zeros(n, dtype=np.int64)
    run[last_of_run[:-1] + 1] = 1
    higher = np.empty(n)
    higher[order] = n - 1 - last_of_run[np.cumsum(run)]
    out = np.full(r.shape, np.nan)
    out[ok] = higher
    return out


def top_count(fraction, n: int) -> np.ndarray:
    """``ceil(fraction * n)``, rounded first to 9 decimals so float error cannot add one.

    ``0.07 * 100`` is ``7.000000000000001`` in floating point; a bare ``ceil`` would give 8.
    The same rounding is used by :func:`pophealth.cohorts.ranking.top_fraction_mask`, so a
    "top 7 %" means the same number of patients in tiers, evaluation and caseload rules.
    ``fraction`` may be a scalar or an array (of cuts); the result is int64 of that shape.

    Examples
    --------
    >>> 0.07 * 100
    7.000000000000001
    >>> int(top_count(0.07, 100)), int(top_count(0.071, 100)), top_count([0.005, 0.05], 1000)
    (7, 8, array([ 5, 50]))
    """
    return np.ceil(np.round(np.asarray(fraction, dtype=float) * n, 9)).astype(np.int64)


def top_fraction(risk: np.ndarray, fraction: float) -> np.ndarray:
    """Bool mask of the patients in the top ``fraction`` by the tie rule of :func:`risk_tiers`.

    A patient is in the top fraction when fewer than ``k = top_count(fraction, n)`` patients
    have a strictly higher risk (``n`` = non-missing risks); missing risks are never
    flagged. Without ties exactly ``k`` patients are flagged.

    Examples
    --------
    >>> top_fraction(np.array([0.9, 0.8, 0.8, 0.1]), 0.25)
    array([ True, False, False, False])
    >>> top_fraction(np.array([0.9, 0.8, 0.8, 0.1]), 0.5)
    array([ True,  True,  True, False])
    """
    higher = n_higher(risk)
    n = int(np.count_nonzero(~np.isnan(higher)))
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(higher, nan=np.inf) < top_count(fraction, n)


def risk_tiers(risk, *, cuts: Sequence[float] = (0.005, 0.05, 0.2),
               labels: Sequence[str] | None = None) -> pd.Series:
    """Assign risk tiers by rank: the top 0.5 %, the next 4.5 %, the next 15 %, the rest.

    Tie rule (deterministic, independent of row order): a patient's tier depends only on
    ``h`` = the number of patients with *strictly higher* risk. Each cut ``c`` gives a
    count ``k = top_count(c, n)`` = ``ceil(c * n)`` (``n`` counts the non-missing risks;
    see :func:`top_count` for the rounding), and the patient is in the first tier whose
    ``k`` exceeds ``h`` (``h < k(0.005)`` -> very high, ``h < k(0.05)`` -> high,
    ``h < k(0.2)`` -> moderate, else low) -- the rule of :func:`top_fraction`. So equal
    risks always share a tier, and a group of ties straddling a cut goes to the higher
    tier. Without ties the "very high" tier holds exactly ``ceil(0.005 * n)`` patients
    (and likewise for the cumulative share of each cut); with ties at a cut it may hold
    more, never fewer. Missing risks get a missing tier and are not counted.

    Parameters
    ----------
    risk : Series or array-like
        Risk scores (higher = more at risk), e.g. from ``RiskModel.predict_risk``.
    cuts : sequence of float, default (0.005, 0.05, 0.2)
        Strictly increasing cumulative fractions in (0, 1).
    labels : sequence of str, optional
        ``len(cuts) + 1`` labels from the highest tier down; the default is
        :data:`DEFAULT_TIER_LABELS` (needs three cuts).

    Returns
    -------
    Series
        Ordered categorical named ``tier`` with categories from the lowest to the highest
        tier (``low < moderate < high < very high``), indexed like ``risk``.

    Examples
    --------
    >>> import pandas as pd
    >>> risk = pd.Series([0.9, 0.5, 0.5, 0.2, 0.1], index=list("abcde"))
    >>> risk_tiers(risk, cuts=(0.2, 0.4, 0.8))
    a    very high
    b         high
    c         high
    d     moderate
    e          low
    Name: tier, dtype: category
    Categories (4, object): ['low' < 'moderate' < 'high' < 'very high']
    """
    cuts_arr = np.asarray(cuts, dtype=float)
    if (cuts_arr.ndim != 1 or len(cuts_arr) == 0 or np.any(cuts_arr <= 0)
            or np.any(cuts_arr >= 1) or np.any(np.diff(cuts_arr) <= 0)):
        raise ConfigError("risk_tiers: 'cuts' must be strictly increasing fractions in (0, 1)")
    if labels is None:
        if len(cuts_arr) != len(DEFAULT_TIER_LABELS) - 1:
            raise ConfigError(f"risk_tiers: give 'labels' ({len(cuts_arr) + 1} needed) when "
                              f"'cuts' has {len(cuts_arr)} values instead of 3")
        labels = DEFAULT_TIER_LABELS
    labels = list(labels)
    if len(labels) != len(cuts_arr) + 1 or len(set(labels)) != len(labels):
        raise ConfigError(f"risk_tiers: 'labels' needs {len(cuts_arr) + 1} distinct labels, "
                          f"got {len(labels)}")
    if isinstance(risk, pd.Series):
        index = risk.index
    elif isinstance(risk, pd.DataFrame):
        raise ConfigError("risk_tiers: 'risk' must be one column (a Series), not a DataFrame")
    else:
        index = None
    values = pd.to_numeric(pd.Series(np.asarray(risk).ravel()), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)
    higher = n_higher(values)
    n = int(np.count_nonzero(~np.isnan(values)))
    codes = np.full(len(values), -1, dtype=np.int64)
    ok = ~np.isnan(higher)
    # position in labels (0 = top tier); categories run the other way (lowest first)
    codes[ok] = len(labels) - 1 - np.searchsorted(top_count(cuts_arr, n), higher[ok],
                                                  side="right")
    cat = pd.Categorical.from_codes(codes, categories=labels[::-1], ordered=True)
    return pd.Series(cat, index=index, name="tier")
