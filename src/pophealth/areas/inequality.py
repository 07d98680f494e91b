"""Slope and relative index of inequality (SII / RII) across deprivation quantiles.

The method of ``PHEindicatormethods::phe_sii`` (Low & Low, J Public Health 2004;26:388):

* quantiles are ordered ascending (IMD decile 1 = most deprived first); each gets the
  relative rank ``b`` = midpoint of its share ``a`` of the cumulative population;
* the weighted regression ``Y sqrt(a) = b0 sqrt(a) + b1 b sqrt(a)`` (no intercept) is
  fitted; ``SII = b1 * multiplier`` is the fitted difference from rank 0 (most
  deprived) to rank 1 (least deprived) and ``RII = (b0 + b1) / b0``. So a rate that is
  *higher* in deprived areas gives a **negative** SII and an RII below 1 (use a
  negative ``multiplier`` to flip the polarity; RII is then inverted, as in PHE);
* confidence limits by simulation: each quantile's value is drawn from a normal
  distribution with its standard error (on the log scale for rates and the logit scale
  for proportions, SE derived from the supplied 95 % limits), the regression refitted,
  and the percentiles of the simulated SII / RII taken.
* ``transform=True`` fits on log(rate) or logit(proportion); then
  ``SII = (f(b0 + b1) - f(b0)) * multiplier`` and ``RII = f(b0 + b1) / f(b0)`` with
  ``f`` the back-transform (exp or expit), i.e. the same "fitted least minus most
  deprived" meaning on the original scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas._table import Checks, as_by, parse_levels
from pophealth.areas.intervals import ci_suffix, z_value
from pophealth.contracts.exceptions import ConfigError, DataQualityWarning

__all__ = ["sii"]

VALUE_TYPES = ("rate", "proportion", "other")


def _logit(v):
    from scipy import special  # loaded on first use: keeps ``import pophealth`` fast

    return special.logit(v)


def _expit(v):
    from scipy import special

    return special.expit(v)


_FORWARD = {"rate": np.log, "proportion": _logit, "other": lambda v: v}
_BACK = {"rate": np.exp, "proportion": _expit, "other": lambda v: v}


def sii(
    table: pd.DataFrame,
    *,
    random_state: int | np.random.Generator,
    quantile: str = "area",
    population: str = "denominator",
    value: str = "value",
    lower_ci: str = "lower_ci",
    upper_ci: str = "upper_ci",
    se: str | None = None,
    by: str | Sequence[str] | None = None,
    value_type: str = "rate",
    transform: bool = False,
    multiplier: float = 1,
    confidence: float | Sequence[float] = 0.95,
    repetitions: int = 100_000,
    ci_confidence: float = 0.95,
) -> pd.DataFrame:
    """Slope index of inequality (and RII) with simulated confidence limits.

    Parameters
    ----------
    table : DataFrame
        One row per quantile (per ``by`` group): e.g. the output of
        ``crude_rate(aggregate_by_area(reg, by="imd_decile", ...), disclosure_control=False)``.
        Non-numeric quantiles (the ``"unknown"`` area) are excluded with a warning.
    random_state : int or numpy Generator
        Seed of the simulation (required: results are reproducible).
    quantile : str, default "area"
        Quantile column, ascending = most to least deprived (IMD decile 1 first).
        5 to 100 quantiles per group, each with population > 0.
    population, value : str
        Quantile population and indicator value columns.
    lower_ci, upper_ci : str
        Columns of the value's ``ci_confidence`` limits, used for its standard error.
    se : str, optional
        Standard-error column instead (on the log / logit scale for rates /
        proportions, as the simulation draws on that scale).
    by : str or sequence of str, optional
        Groups (e.g. ``"sex"``) each getting its own SII.
    value_type : {"rate", "proportion", "other"}
    transform : bool, default False
        Fit on log(rate) / logit(proportion) (recommended by PHE for curved gradients).
    multiplier : float, default 1
        Scales the SII (e.g. 100 for percentage points); negative flips polarity.
    confidence : float or sequence of float, default 0.95
    repetitions : int, default 100,000 (minimum 1,000)
    ci_confidence : float, default 0.95
        Level of the supplied ``lower_ci`` / ``upper_ci``.

    Returns
    -------
    DataFrame
        Two rows per group, ``statistic`` ``"sii"`` and ``"rii"``, with ``quantiles``,
        ``denominator`` (total population), ``value``, ``lower_ci``, ``upper_ci``
        (plus further levels), ``confidence``, ``method`` and ``suppressed`` (always
        ``<NA>``: model outputs need no disclosure control).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas.inequality import sii
    >>> t = pd.DataFrame({"area": range(1, 11), "denominator": 1000,
    ...                   "value": [20.0 - i for i in range(10)]})
    >>> t["lower_ci"], t["upper_ci"] = t["value"] * 0.9, t["value"] * 1.1
    >>> out = sii(t, random_state=1, repetitions=2000)
    >>> out[["statistic", "value"]].round(3)
      statistic   value
    0       sii -10.000
    1       rii   0.512
    """
    by = as_by(by)
    levels = parse_levels(confidence)
    ci_level = parse_levels(ci_confidence)[0]
    if value_type not in VALUE_TYPES:
        raise ConfigError(f"value_type must be one of {VALUE_TYPES}; got {value_type!r}")
    if isinstance(repetitions, bool) or not isinstance(repetitions, int | np.integer) or \
            repetitions < 1000:
        raise ConfigError("repetitions must be an integer of at least 1000")
    if not isinstance(multiplier, int | float | np.number) or multiplier == 0 or \
            not np.isfinite(multiplier):
        raise ConfigError("multiplier must be a non-zero number")
    if transform and value_type == "other":
        raise ConfigError("transform=True needs value_type 'rate' or 'proportion'")
    rng = np.random.default_rng(random_state)

    c = Checks("sii", table)
    spread = [se] if se is not None else [lower_ci, upper_ci]
    if not c.require([*by, quantile, population, value, *spread]):
        c.finish()
    q = pd.to_numeric(table[quantile].astype("string") if table[quantile].dtype == object
                      or pd.api.types.is_string_dtype(table[quantile].dtype)
                      else table[quantile], errors="coerce").to_numpy(dtype="float64",
                                                                      na_value=np.nan)
    dropped = np.isnan(q)
    if dropped.any():
        warnings.warn(f"sii: {int(dropped.sum())} row(s) with a non-numeric {quantile} "
                      "(e.g. 'unknown') excluded", DataQualityWarning, stacklevel=2)
    keep = ~dropped
    pop = c.numeric(population, allow_missing=True)
    y = c.numeric(value, allow_missing=True)
    c.add(population, "positive", keep & ~(pop > 0))
    c.add(value, "not_null", keep & np.isnan(y), "suppressed? SII is a model output: compute "
          "the quantile values with disclosure_control=False")
    if se is not None:
        s = c.numeric(se, allow_missing=True)
        c.add(se, "non_negative", keep & ~(s >= 0))
    else:
        lo, hi = c.numeric(lower_ci, allow_missing=True), c.numeric(upper_ci, allow_missing=True)
        c.add(lower_ci, "not_null", keep & np.isnan(lo))
        c.add(upper_ci, "not_null", keep & np.isnan(hi))
    if value_type == "rate":
        c.add(value, "positive_for_rate", keep & ~(y > 0) & ~np.isnan(y))
    elif value_type == "proportion":
        c.add(value, "between_0_and_1", keep & ~((y > 0) & (y < 1)) & ~np.isnan(y))
    c.finish()
    fwd = _FORWARD[value_type]
    with np.errstate(divide="ignore", invalid="ignore"):
        ty = fwd(y)
        if se is None:
            s = (fwd(hi) - fwd(lo)) / (2 * z_value(ci_level))
    frame = table.reset_index(drop=True).loc[keep, by].copy() if by else pd.DataFrame(
        index=np.flatnonzero(keep))
    frame["_q"], frame["_pop"], frame["_y"], frame["_ty"], frame["_se"] = (
        q[keep], pop[keep], y[keep], ty[keep], s[keep])
    c = Checks("sii", table)
    c.add(lower_ci if se is None else se, "finite_standard_error",
          keep & ~np.isfinite(np.asarray(s, dtype="float64")))
    c.finish()

    rows = []
    grouped = frame.groupby(by, sort=True, dropna=False) if by else [((), frame)]
    for key, part in grouped:
        part = part.sort_values("_q")
        _check_group(part, quantile)
        rows.extend(_fit(part, key, by, value_type, transform, multiplier, levels,
                         repetitions, rng))
    out = pd.DataFrame(rows)
    out["suppressed"] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out


def _check_group(part: pd.DataFrame, quantile: str) -> None:
    k = len(part)
    if part["_q"].duplicated().any():
        raise ConfigError(f"sii: column '{quantile}' has duplicated quantiles within a group")
    if not 5 <= k <= 100:
        raise ConfigError(f"sii: number of quantiles must be between 5 and 100; got {k}")


def _fit(part, key, by, value_type, transform, multiplier, levels, repetitions, rng):
    a = part["_pop"].to_numpy() / part["_pop"].sum()
    b = np.cumsum(a) - a / 2
    sqrt_a = np.sqrt(a)
    design = np.column_stack([sqrt_a, b * sqrt_a])
    hat = np.linalg.solve(design.T @ design, design.T)  # 2 x k least-squares operator
    back = _BACK[value_type]
    ty = part["_ty"].to_numpy()
    y = ty if transform else part["_y"].to_numpy()
    draws = rng.normal(ty, part["_se"].to_numpy(), size=(repetitions, len(part)))
    if not transform:
        draws = back(draws)
    beta = (y * sqrt_a) @ hat.T
    sims = (draws * sqrt_a) @ hat.T
    point = _indices(beta[None, :], transform, back, multiplier)
    sim = _indices(sims, transform, back, multiplier)
    keys = key if isinstance(key, tuple) else (key,)
    method = (f"simulation, {repetitions} repetitions"
              + ("; log-transformed" if transform and value_type == "rate" else "")
              + ("; logit-transformed" if transform and value_type == "proportion" else ""))
    out = []
    for j, stat in enumerate(("sii", "rii")):
        row = dict(zip(by, keys, strict=True))
        row.update(statistic=stat, quantiles=len(part), denominator=float(part["_pop"].sum()),
                   value=float(point[0, j]))
        ordered = np.sort(sim[:, j])
        for i, level in enumerate(levels):
            upper_p = level + (1 - level) / 2
            lo_pos = max(int(np.round(repetitions * (1 - upper_p))), 1)
            hi_pos = int(np.round(repetitions * upper_p))
            suffix = "" if i == 0 else "_" + ci_suffix(level)
            row["lower_ci" + suffix] = float(ordered[lo_pos - 1])
            row["upper_ci" + suffix] = float(ordered[hi_pos - 1])
        row.update(confidence=levels[0], method=method)
        out.append(row)
    return out


def _indices(beta: np.ndarray, transform: bool, back, multiplier: float) -> np.ndarray:
    """SII and RII columns from regression coefficients (rows = fits)."""
    b0, b1 = beta[:, 0], beta[:, 1]
    if transform:
        lo, hi = back(b0), back(b0 + b1)
        sii_ = (hi - lo) * multiplier
        rii_ = hi / lo
    else:
        sii_ = b1 * multiplier
        with np.errstate(divide="ignore", invalid="ignore"):
            rii_ = (b0 + b1) / b0
    if multiplier < 0:
        rii_ = 1 / rii_
    return np.column_stack([sii_, rii_])
