"""Confidence-interval primitives used by Fingertips / PHEindicatormethods.

All functions are vectorised over numpy arrays.

* **Byar's method** for a Poisson count ``O`` (Breslow & Day 1987)::

      lower = O (1 - 1/(9 O) - z/(3 sqrt(O)))**3
      upper = (O + 1) (1 - 1/(9 (O + 1)) + z/(3 sqrt(O + 1)))**3

* **Exact Poisson** limits via the chi-squared distribution::

      lower = chi2.ppf(alpha/2, 2 O) / 2          (0 when O = 0)
      upper = chi2.ppf(1 - alpha/2, 2 O + 2) / 2

* **Wilson score** for a proportion ``x / n``::

      (2x + z**2 -/+ z sqrt(z**2 + 4x(1 - x/n))) / (2 (n + z**2))

``z`` is the standard normal quantile ``Phi^-1(1 - alpha/2)``; confidence levels are
accepted as 0.9-1 or 90-100 (as in PHEindicatormethods) and several levels (e.g.
95 % and 99.8 %) can be computed at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError

__all__ = [
    "parse_confidence",
    "ci_suffix",
    "z_value",
    "byar_limits",
    "exact_poisson_limits",
    "poisson_limits",
    "wilson_limits",
    "ci_long",
]

#: Below this many events crude rates and ISRs use exact Poisson limits, else Byar's.
EXACT_BELOW = 10


def parse_confidence(confidence: float | Sequence[float]) -> tuple[float, ...]:
    """Normalise one or more confidence levels to fractions in [0.9, 1).

    Examples
    --------
    >>> from pophealth.areas.intervals import parse_confidence
    >>> parse_confidence(95)
    (0.95,)
    >>> parse_confidence((0.95, 99.8))
    (0.95, 0.998)
    >>> parse_confidence(0.5)
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: confidence must be between 0.9 and 1 (exclusive of 1) or between 90 and 100 (exclusive of 100); got 0.5
    """
    levels = [confidence] if np.isscalar(confidence) else list(confidence)
    if not levels:
        raise ConfigError("confidence must give at least one level, e.g. 0.95 or (0.95, 0.998)")
    out: list[float] = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int | float | np.number):
            raise ConfigError(f"confidence must be numeric; got {type(level).__name__}")
        value = float(level)
        if value >= 90:
            value = value / 100
        if not (0.9 <= value < 1):
            raise ConfigError(
                "confidence must be between 0.9 and 1 (exclusive of 1) or between 90 and 100 "
                f"(exclusive of 100); got {level!r}"
            )
        out.append(round(value, 10))
    if len(set(out)) != len(out):
        raise ConfigError("confidence levels must be distinct")
    return tuple(out)


def ci_suffix(level: float) -> str:
    """Column suffix for a confidence level: ``0.95 -> '95'``, ``0.998 -> '99_8'``.

    Examples
    --------
    >>> from pophealth.areas.intervals import ci_suffix
    >>> ci_suffix(0.95), ci_suffix(0.998)
    ('95', '99_8')
    """
    return f"{level * 100:.10g}".replace(".", "_")


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile for ``level`` (0.95 gives 1.959963984540054)."""
    from scipy import special  # loaded on first use: keeps ``import pophealth`` fast

    return float(special.ndtri(1 - (1 - level) / 2))


def byar_limits(observed, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Byar's approximate Poisson limits for counts (lower is 0 when the count is 0).

    Examples
    --------
    >>> from pophealth.areas.intervals import byar_limits
    >>> lo, hi = byar_limits([100])
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (81.3621, 121.6279)
    """
    o = np.asarray(observed, dtype="float64")
    z = z_value(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = o * (1 - 1 / (9 * o) - z / (3 * np.sqrt(o))) ** 3
    lower = np.where(o > 0, np.maximum(lower, 0.0), 0.0)
    o1 = o + 1
    upper = o1 * (1 - 1 / (9 * o1) + z / (3 * np.sqrt(o1))) ** 3
    return lower, upper


def exact_poisson_limits(observed, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood, chi-squared) Poisson limits for counts.

    Examples
    --------
    >>> from pophealth.areas.intervals import exact_poisson_limits
    >>> lo, hi = exact_poisson_limits([0, 1, 10])
    >>> [round(float(v), 4) for v in lo], [round(float(v), 4) for v in hi]
    ([0.0, 0.0253, 4.7954], [3.6889, 5.5716, 18.3904])
    """
    from scipy import special  # loaded on first use: keeps ``import pophealth`` fast

    o = np.asarray(observed, dtype="float64")
    alpha = 1 - level
    with np.errstate(invalid="ignore"):
        # chi2.ppf(p, 2k) / 2 == gammaincinv(k, p): the same quantiles without scipy.stats
        lower = np.where(o > 0, special.gammaincinv(np.where(o > 0, o, 1), alpha / 2), 0.0)
    upper = special.gammaincinv(o + 1, 1 - alpha / 2)
    return lower, upper


def poisson_limits(observed, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fingertips switch: exact limits when ``O < 10``, Byar's otherwise.

    Returns
    -------
    lower, upper : ndarray
        Limits for the count.
    method : ndarray of str
        ``"exact Poisson"`` or ``"Byar"`` per element.

    Examples
    --------
    >>> from pophealth.areas.intervals import poisson_limits
    >>> poisson_limits([3, 30])[2].tolist()
    ['exact Poisson', 'Byar']
    """
    o = np.asarray(observed, dtype="float64")
    exact_lo, exact_hi = exact_poisson_limits(o, level)
    byar_lo, byar_hi = byar_limits(o, level)
    small = o < EXACT_BELOW
    method = np.where(small, "exact Poisson", "Byar")
    return np.where(small, exact_lo, byar_lo), np.where(small, exact_hi, byar_hi), method


def wilson_limits(x, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score limits for proportions ``x / n`` (as fractions).

    Examples
    --------
    >>> from pophealth.areas.intervals import wilson_limits
    >>> lo, hi = wilson_limits([81], [263])  # Newcombe (1998), Stat Med 17:857, example
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.2553, 0.3662)
    """
    x = np.asarray(x, dtype="float64")
    n = np.asarray(n, dtype="float64")
    z = z_value(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = z * np.sqrt(z**2 + 4 * x * (1 - x / n))
        denom = 2 * (n + z**2)
        return (2 * x + z**2 - root) / denom, (2 * x + z**2 + root) / denom


def ci_long(table: pd.DataFrame) -> pd.DataFrame:
    """Reshape an area table with several confidence levels to one row per level.

    Area tables hold the first requested level in ``lower_ci``/``upper_ci`` (with its
    level in ``confidence``) and each further level in ``lower_ci_<level>`` /
    ``upper_ci_<level>`` columns (e.g. ``lower_ci_99_8``). This returns the long form:
    the rows are repeated per level, with ``confidence``, ``lower_ci`` and ``upper_ci``
    holding that level's values and the suffixed columns dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas.rates import crude_rate
    >>> t = pd.DataFrame({"area": ["A"], "numerator": [40], "denominator": [1000]})
    >>> wide = crude_rate(t, by="area", confidence=(0.95, 0.998), disclosure_control=False)
    >>> ci_long(wide)[["area", "confidence", "lower_ci", "upper_ci"]].round(
    ...     {"lower_ci": 1, "upper_ci": 1})
      area  confidence  lower_ci  upper_ci
    0    A       0.950    2857.3    5447.0
    1    A       0.998    2323.3    6369.3
    """
    extra = [c[len("lower_ci_"):] for c in table.columns if c.startswith("lower_ci_")]
    drop = [f"{side}_ci_{s}" for s in extra for side in ("lower", "upper")]
    base = table.drop(columns=drop)
    row = np.arange(len(table))
    frames = [base.assign(_row=row)]
    for suffix in extra:
        part = base.assign(_row=row)
        part["lower_ci"] = table[f"lower_ci_{suffix}"].to_numpy()
        part["upper_ci"] = table[f"upper_ci_{suffix}"].to_numpy()
        part["confidence"] = float(suffix.replace("_", ".")) / 100
        frames.append(part)
    out = pd.concat(frames, ignore_index=True).sort_values("_row", kind="stable")
    return out.drop(columns="_row").reset_index(drop=True)
