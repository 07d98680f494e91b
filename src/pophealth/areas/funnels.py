"""Funnel-plot control limits (PHE/OHID Fingertips "Technical Guide: Funnel Plots").

Control limits answer "which *observed* values would be significantly different from
the target at this denominator?", so they are the observed values whose confidence
interval just reaches the target - not a confidence interval drawn around the target.

* **Rates** (exact Poisson): with ``E = target / multiplier * n`` expected events, the
  lower limit is the count ``L`` whose exact upper confidence limit equals ``E`` and the
  upper limit the count ``U`` whose exact lower limit equals ``E``::

      chi2.ppf(1 - alpha/2, 2 L + 2) / 2 = E        chi2.ppf(alpha/2, 2 U) / 2 = E

  i.e. ``P(L + 1, E) = 1 - alpha/2`` and ``P(U, E) = alpha/2`` with ``P`` the
  regularised lower incomplete gamma function, solved for the shape (the counts are
  treated as continuous, so the funnel is smooth; at whole counts it matches the PHE
  funnel tool and ``PHEindicatormethods::calculate_funnel_limits``). A negative ``L``
  becomes 0. The limit on the rate scale is ``L / n * multiplier``.
* **Proportions** (PHE "sigma-adjusted" limits): the proportions whose Wilson score
  interval just reaches the target ``p``. Solving PHE's quadratic gives exactly
  ``p -/+ z sqrt(p (1 - p) / n)``, clipped to [0, 1].

``z`` is the two-sided normal quantile of the level: 95 % (PHE's "2 sigma", p = 0.975)
and 99.8 % ("3 sigma", p = 0.999).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas._table import check_multiplier, parse_levels
from pophealth.areas.intervals import ci_suffix, z_value
from pophealth.contracts.exceptions import ConfigError

__all__ = ["funnel_limits", "poisson_control_counts"]


def poisson_control_counts(expected, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper exact Poisson control limits (as counts) around ``expected``.

    Examples
    --------
    The issue-13 example: 5 expected events (1,000 people at 500 per 100,000).

    >>> from pophealth.areas.funnels import poisson_control_counts
    >>> lo, hi = poisson_control_counts([5.0])
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.6773, 10.2963)
    """
    from scipy import special  # loaded on first use: keeps ``import pophealth`` fast

    e = np.asarray(expected, dtype="float64")
    alpha = 1 - level
    # gdtr(1, b, e) = P(b, e); gdtrib inverts it for the shape b
    upper = special.gdtrib(1.0, alpha / 2, e)
    lower = np.maximum(special.gdtrib(1.0, 1 - alpha / 2, e) - 1.0, 0.0)
    return lower, upper


def funnel_limits(
    denominators,
    target: float,
    *,
    kind: str = "rate",
    multiplier: float = 100_000,
    confidence: float | Sequence[float] = (0.95, 0.998),
) -> pd.DataFrame:
    """Funnel-plot control limits for observed values at each denominator.

    Parameters
    ----------
    denominators : array-like of positive numbers
        Populations (rates) or sample sizes (proportions).
    target : float
        The comparator on the ``multiplier`` scale (e.g. the overall rate per
        100,000, or a percentage with ``multiplier=100``); greater than 0, and below
        ``multiplier`` for proportions.
    kind : {"rate", "proportion"}
        Exact Poisson control limits, or PHE's sigma-adjusted (Wilson) limits.
    multiplier : float, default 100,000
    confidence : float or sequence of float, default (0.95, 0.998)

    Returns
    -------
    DataFrame
        ``denominator`` and ``lower_<level>`` / ``upper_<level>`` per level
        (e.g. ``lower_95``, ``upper_99_8``), on the ``multiplier`` scale.

    Raises
    ------
    ConfigError
        Non-positive or missing denominators (count and positions given), a target
        out of range, or an unknown ``kind``.

    Examples
    --------
    >>> from pophealth.areas.funnels import funnel_limits
    >>> funnel_limits([1000, 10000], 500.0).round(1)
       denominator  lower_95  upper_95  lower_99_8  upper_99_8
    0         1000      67.7    1029.6         0.0      1366.8
    1        10000     361.4     648.1       291.5      737.1
    >>> funnel_limits([10000], 82.18033788, kind="proportion", multiplier=100,
    ...               confidence=0.95).round(4)
       denominator  lower_95  upper_95
    0        10000   81.4303   82.9304
    """
    levels = parse_levels(confidence)
    mult = check_multiplier(multiplier)
    if kind not in ("rate", "proportion"):
        raise ConfigError(f"funnel_limits: kind must be 'rate' or 'proportion'; got {kind!r}")
    n = np.atleast_1d(np.asarray(denominators, dtype="float64"))
    bad = ~(n > 0) | ~np.isfinite(n)
    if bad.any():
        pos = np.flatnonzero(bad)[:10].tolist()
        raise ConfigError(f"funnel_limits: denominators must be finite and greater than 0; "
                          f"{int(bad.sum())} are not (first positions {pos})")
    if isinstance(target, bool) or not isinstance(target, int | float | np.number) or \
            not np.isfinite(target) or target <= 0 or (kind == "proportion" and target >= mult):
        upper = "" if kind == "rate" else " and below the multiplier"
        raise ConfigError(f"funnel_limits: target must be a number greater than 0{upper}")
    p = float(target) / mult
    out = pd.DataFrame({"denominator": np.atleast_1d(np.asarray(denominators))})
    for level in levels:
        s = ci_suffix(level)
        if kind == "rate":
            lo, hi = poisson_control_counts(p * n, level)
            lo, hi = lo / n, hi / n
        else:
            half = z_value(level) * np.sqrt(p * (1 - p) / n)
            lo, hi = np.maximum(p - half, 0.0), np.minimum(p + half, 1.0)
        out[f"lower_{s}"], out[f"upper_{s}"] = lo * mult, hi * mult
    return out
