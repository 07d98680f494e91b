"""Cost concentration: Lorenz curve, Gini coefficient and top/bottom shares of cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pophealth.cohorts.ranking import _check_fraction
from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.contracts.numeric import numeric_values

__all__ = ["CostConcentration", "cost_concentration"]


@dataclass(frozen=True)
class CostConcentration:
    """How concentrated cost is: see :func:`cost_concentration`.

    Examples
    --------
    Four people costing 4, 1, 3 and 2. By hand, the Gini coefficient is
    sum over ordered pairs |xi - xj| / (2 n^2 mean) = 20 / (2 * 16 * 2.5) = 0.25.

    >>> from pophealth.cohorts.concentration import CostConcentration, cost_concentration
    >>> cc = cost_concentration([4.0, 1.0, 3.0, 2.0])
    >>> isinstance(cc, CostConcentration), cc.gini
    (True, 0.25)"""

    n: int
    total: float
    gini: float
    top_shares: dict = field(repr=True)
    bottom_shares: dict = field(repr=True)
    lorenz: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per statistic (``statistic``, ``value``)."""
        rows = [("n", float(self.n)), ("total", self.total), ("gini", self.gini)]
        rows += [(f"top_{100 * p:g}pct_share", v) for p, v in self.top_shares.items()]
        rows += [(f"bottom_{100 * p:g}pct_share", v) for p, v in self.bottom_shares.items()]
        return pd.DataFrame(rows, columns=["statistic", "value"])


def cost_concentration(costs, *, top: Sequence[float] = (0.005, 0.01, 0.05, 0.2),
                       bottom: Sequence[float] = (0.5,), points: int | None = None
                       ) -> CostConcentration:
    """Lorenz curve, Gini coefficient and the shares of cost held by the top/bottom.

    Parameters
    ----------
    costs : array-like
        One non-negative cost per person, zeros included (they are the bottom of the
        curve). Missing or negative values are an error.
    top, bottom : sequence of float
        Population fractions whose share of total cost is reported.
    points : int, optional
        Number of evenly spaced Lorenz points (from 0 to 1); default every vertex
        (``n + 1`` points).

    Returns
    -------
    CostConcentration
        ``gini`` = 1 - 2 x (area under the Lorenz curve) = sum_i (2i - n - 1) x_(i) /
        (n sum x) with costs sorted ascending (no small-sample correction);
        ``top_shares[p]`` = 1 - L(1 - p) and ``bottom_shares[p]`` = L(p), where L is the
        piecewise-linear Lorenz curve, so a fraction of a person counts pro rata;
        ``lorenz`` has columns ``population_share`` and ``cost_share``.

    Examples
    --------
    >>> from pophealth.cohorts.concentration import cost_concentration
    >>> cc = cost_concentration([4.0, 1.0, 3.0, 2.0], top=(0.2,))
    >>> cc.gini, cc.top_shares, cc.bottom_shares
    (0.25, {0.2: 0.32}, {0.5: 0.3})
    >>> cc.lorenz["cost_share"].tolist()
    [0.0, 0.1, 0.3, 0.6, 1.0]
    """
    x = numeric_values(costs if isinstance(costs, pd.Series) else pd.Series(costs),
                       table="costs", column="cost")
    if len(x) == 0:
        raise ConfigError("cost_concentration: no costs given")
    bad_nan, bad_neg = int(np.isnan(x).sum()), int((x < 0).sum())
    if bad_nan or bad_neg or not np.isfinite(x).all():
        raise SchemaError(f"cost_concentration: {bad_nan} missing, {bad_neg} negative or "
                          "non-finite cost(s); costs must be finite and >= 0")
    x = np.sort(x)
    n, total = len(x), float(x.sum())
    if total <= 0:
        raise SchemaError("cost_concentration: total cost is zero")
    pop = np.arange(n + 1) / n
    cum = np.r_[0.0, np.cumsum(x)] / total
    cum[-1] = 1.0

    def lorenz_at(p):
        return float(np.interp(p, pop, cum))

    gini = 1.0 - float(np.sum(cum[1:] + cum[:-1])) / n
    for p in (*top, *bottom):
        _check_fraction(p, "share fraction")
    top_shares = {float(p): round(1.0 - lorenz_at(1.0 - p), 12) for p in top}
    bottom_shares = {float(p): round(lorenz_at(p), 12) for p in bottom}
    if points is None:
        lorenz = pd.DataFrame({"population_share": pop, "cost_share": cum})
    else:
        if int(points) < 2:
            raise ConfigError("cost_concentration: points must be at least 2")
        grid = np.linspace(0.0, 1.0, int(points))
        lorenz = pd.DataFrame({"population_share": grid,
                               "cost_share": np.interp(grid, pop, cum)})
    return CostConcentration(n=n, total=total, gini=round(gini, 12), top_shares=top_shares,
                             bottom_shares=bottom_shares, lorenz=lorenz)
