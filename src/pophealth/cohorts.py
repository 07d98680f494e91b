"""High-cost cohorts, cost concentration and MDT caseload selection.

* :func:`period_cost`, :func:`high_cost_cohort`, :func:`persistent_high_cost` - who is in
  the top fraction of cost over a period (system-wide or within each PCN/practice), and
  who stays there over consecutive periods.
* :func:`predicted_high_cost` and :func:`rising_risk` - prospective cohorts from a risk or
  cost model, and people whose risk rose since the previous run.
* :func:`next_period_comparison` - next-period cost of a cohort *and* of a comparison
  group, because a cohort picked on current cost falls back towards the mean on its own
  (the Camden Coalition RCT, Finkelstein et al. NEJM 2020;382:152: a 38-point pre/post
  fall in the intervention arm, the same fall in the control arm).
* :func:`cost_concentration` - Lorenz curve, Gini and top/bottom shares.
* :func:`select_caseload` - MDT caseload selection from ordered, named rules.

**Tie rule (everywhere in this module).** People are ranked by value descending, then by
``patient_id`` ascending; the first ``k = ceil(fraction * n)`` of each group are taken,
where ``n`` is the number of eligible people in the group. So a cohort always has exactly
``k`` people (fewer only when some values are zero or missing, which never qualify), and the
result does not depend on the row order of the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pophealth.conditions import register_ids
from pophealth.exceptions import ConfigError, SchemaError

__all__ = [
    "RTM_CAUTION",
    "CostConcentration",
    "Condition",
    "SelectionRule",
    "DEFAULT_FACTORS",
    "period_cost",
    "high_cost_cohort",
    "persistent_high_cost",
    "predicted_high_cost",
    "rising_risk",
    "next_period_comparison",
    "cost_concentration",
    "select_caseload",
    "describe_reasons",
    "top_fraction_mask",
]

#: Caution attached (``frame.attrs["caution"]``) to every cohort picked on current cost.
RTM_CAUTION = (
    "Regression to the mean: people selected because their cost is high now will, on "
    "average, cost less next period without any intervention. Judge impact only against a "
    "concurrent comparison group selected the same way (see next_period_comparison), never "
    "by a before/after fall in the cohort alone."
)


def _ids_codes(ids) -> np.ndarray:
    """Integer codes that sort like the ids (ids are unique)."""
    return pd.factorize(pd.Index(ids), sort=True)[0]


def _group_codes(groups, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    return pd.factorize(pd.Series(groups), sort=True, use_na_sentinel=False)[0].astype(np.int64)


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
    order = np.lexsort((i, -v, g))  # last key is the primary sort key
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
        Missing values never qualify.
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
    >>> from pophealth.cohorts import top_fraction_mask
    >>> sel, rank, size = top_fraction_mask([5.0, 9.0, 9.0, 1.0], ids=[4, 3, 2, 1],
    ...                                     fraction=0.5)
    >>> sel.tolist(), rank.tolist()
    ([False, True, True, False], [3, 2, 1, 4])
    """
    fraction = _check_fraction(fraction, "fraction")
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)
    ok = ~np.isnan(v)
    if eligible is not None:
        ok &= np.asarray(eligible, dtype=bool)
    rank, sizes = _rank_within(v, _ids_codes(ids), _group_codes(groups, len(v)), ok)
    selected = ok & (rank >= 1) & (rank <= _k(fraction, sizes))
    if positive_only:
        selected &= v > 0
    return selected, rank, sizes


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def period_cost(activity: pd.DataFrame, *, register, start, end) -> pd.Series:
    """Total cost per register patient over the dates ``start`` to ``end`` (both inclusive).

    Parameters
    ----------
    activity : DataFrame
        ``patient_id``, ``date`` and ``cost``. Rows for people not on the register are
        ignored and counted in ``result.attrs["n_rows_unknown_patient"]``.
    register : DataFrame or Index
        The denominator (``patient_id`` column or index).
    start, end : date-like
        Whole days, inclusive.

    Returns
    -------
    Series
        Float cost indexed by ``patient_id`` in register order (0 for no activity).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import period_cost
    >>> act = pd.DataFrame({"patient_id": [1, 1, 2, 9], "cost": [10.0, 5.0, 7.0, 3.0],
    ...                     "date": pd.to_datetime(["2024-04-01 00:00", "2025-03-31 14:00",
    ...                                             "2025-04-01 00:00", "2024-05-01 00:00"])})
    >>> period_cost(act, register=pd.Index([1, 2, 3], name="patient_id"),
    ...             start="2024-04-01", end="2025-03-31").tolist()
    [15.0, 0.0, 0.0]
    """
    ids = register_ids(register)
    for col in ("patient_id", "date", "cost"):
        if col not in activity.columns:
            raise SchemaError(f"activity: missing column '{col}' (rule 'missing_column')")
    lo, hi = _day(start), _day(end) + pd.Timedelta(days=1)
    if hi <= lo:
        raise ConfigError("period_cost: end is before start")
    date = pd.to_datetime(activity["date"]).to_numpy()
    in_period = (date >= lo.to_datetime64()) & (date < hi.to_datetime64())
    pos = ids.get_indexer(activity["patient_id"].to_numpy())
    known = pos >= 0
    use = in_period & known
    cost = np.asarray(activity["cost"], dtype=np.float64)
    total = np.bincount(pos[use], weights=cost[use], minlength=len(ids))
    out = pd.Series(total, index=ids, name="cost")
    out.attrs["n_rows_unknown_patient"] = int((in_period & ~known).sum())
    return out


def _groups(register, by: str | None, ids: pd.Index):
    if by is None:
        return None
    if not isinstance(register, pd.DataFrame):
        raise ConfigError("by= needs the register as a DataFrame")
    if by not in register.columns:
        raise SchemaError(f"register: missing column '{by}' (rule 'missing_column')")
    return register[by].to_numpy()


def _cohort_frame(values: pd.Series, register, *, top_fraction: float, by: str | None,
                  value_name: str, flag_name: str, positive_only: bool) -> pd.DataFrame:
    ids = values.index
    groups = _groups(register, by, ids)
    sel, rank, size = top_fraction_mask(values.to_numpy(), ids=ids, fraction=top_fraction,
                                        groups=groups, positive_only=positive_only)
    out = pd.DataFrame(index=ids)
    if by is not None:
        out[by] = groups
    out[value_name] = values.to_numpy()
    out["rank"] = rank
    out["group_size"] = size
    out[flag_name] = sel
    out.attrs.update(top_fraction=top_fraction, by=by, tie_rule="value desc, patient_id asc")
    return out


def high_cost_cohort(activity: pd.DataFrame, *, register, start, end,
                     top_fraction: float = 0.05, by: str | None = None) -> pd.DataFrame:
    """Flag the people in the top fraction of cost over a period.

    Parameters
    ----------
    activity : DataFrame
        ``patient_id``, ``date``, ``cost``.
    register : DataFrame
        The denominator: everyone on it is ranked (zero cost included in ``n``).
    start, end : date-like
        Inclusive whole days.
    top_fraction : float, default 0.05
        The working definition of high-cost high-need in the UK literature is the top 5 %.
    by : str, optional
        Register column to rank within (e.g. ``"pcn"`` or ``"practice"``).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` in register order: [``by``], ``cost``, ``rank`` (1 =
        costliest in the group), ``group_size`` and ``high_cost`` (bool). Ties follow the
        module's rule (cost desc, patient_id asc); zero cost never qualifies.
        ``attrs["caution"]`` holds the regression-to-the-mean caution :data:`RTM_CAUTION`.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import high_cost_cohort
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3, 4], "practice": ["A", "A", "B", "B"]})
    >>> act = pd.DataFrame({"patient_id": [1, 2, 3, 4], "cost": [50.0, 80.0, 20.0, 20.0],
    ...                     "date": pd.Timestamp("2024-06-01")})
    >>> hc = high_cost_cohort(act, register=reg, start="2024-04-01", end="2025-03-31",
    ...                       top_fraction=0.5, by="practice")
    >>> hc
               practice  cost  rank  group_size  high_cost
    patient_id
    1                 A  50.0     2           2      False
    2                 A  80.0     1           2       True
    3                 B  20.0     1           2       True
    4                 B  20.0     2           2      False
    >>> hc.attrs["caution"][:22]
    'Regression to the mean'
    """
    _check_fraction(top_fraction)
    cost = period_cost(activity, register=register, start=start, end=end)
    out = _cohort_frame(cost, register, top_fraction=top_fraction, by=by, value_name="cost",
                        flag_name="high_cost", positive_only=True)
    out.attrs.update(start=str(_day(start).date()), end=str(_day(end).date()),
                     caution=RTM_CAUTION)
    return out


def persistent_high_cost(activity: pd.DataFrame, *, register, periods: Sequence[tuple],
                         top_fraction: float = 0.05, by: str | None = None) -> pd.DataFrame:
    """High cost in each of several consecutive periods, and in all of them.

    Parameters
    ----------
    activity : DataFrame
        ``patient_id``, ``date``, ``cost``.
    register : DataFrame
    periods : sequence of (start, end)
        Two or more inclusive date ranges, in time order, not overlapping.
    top_fraction : float, default 0.05
    by : str, optional
        Register column to rank within.

    Returns
    -------
    DataFrame
        Indexed by ``patient_id``: ``cost_1``, ``high_cost_1``, ... per period,
        ``n_periods_high`` and ``persistent`` (high cost in every period).
        ``attrs["persistence"]`` lists, for each consecutive pair, the share of the
        earlier period's cohort still in the cohort in the next period (in England about
        30 % of the top 5 % stay there the next year); ``attrs["caution"]`` as for
        :func:`high_cost_cohort`.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import persistent_high_cost
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3, 4]})
    >>> act = pd.DataFrame({"patient_id": [1, 2, 1, 3], "cost": [90.0, 10.0, 80.0, 95.0],
    ...                     "date": pd.to_datetime(["2023-06-01", "2023-07-01",
    ...                                             "2024-06-01", "2024-06-02"])})
    >>> p = persistent_high_cost(act, register=reg, top_fraction=0.5,
    ...                          periods=[("2023-04-01", "2024-03-31"),
    ...                                   ("2024-04-01", "2025-03-31")])
    >>> p["persistent"].tolist(), p.attrs["persistence"]
    ([True, False, False, False], [0.5])
    """
    if len(periods) < 2:
        raise ConfigError("persistent_high_cost needs at least two periods")
    bounds = [(_day(s), _day(e)) for s, e in periods]
    for (_, e0), (s1, _) in zip(bounds, bounds[1:], strict=False):
        if s1 <= e0:
            raise ConfigError("persistent_high_cost: periods must be in order and not overlap")
    out = None
    flags = []
    for i, (start, end) in enumerate(periods, start=1):
        hc = high_cost_cohort(activity, register=register, start=start, end=end,
                              top_fraction=top_fraction, by=by)
        if out is None:
            out = pd.DataFrame(index=hc.index)
            if by is not None:
                out[by] = hc[by]
        out[f"cost_{i}"] = hc["cost"]
        out[f"high_cost_{i}"] = hc["high_cost"]
        flags.append(hc["high_cost"].to_numpy())
    stacked = np.column_stack(flags)
    out["n_periods_high"] = stacked.sum(axis=1)
    out["persistent"] = stacked.all(axis=1)
    persistence = []
    for a, b in zip(flags, flags[1:], strict=False):
        persistence.append(round(float((a & b).sum() / a.sum()), 6) if a.any() else float("nan"))
    out.attrs.update(persistence=persistence, top_fraction=top_fraction, by=by,
                     caution=RTM_CAUTION, tie_rule="cost desc, patient_id asc")
    return out


def predicted_high_cost(prediction: pd.Series, *, register, top_fraction: float = 0.05,
                        by: str | None = None) -> pd.DataFrame:
    """The top fraction by a model's prediction (predicted cost or risk).

    Parameters
    ----------
    prediction : Series
        Indexed by ``patient_id``; register patients missing from it never qualify.
    register : DataFrame
    top_fraction : float, default 0.05
    by : str, optional

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` in register order: [``by``], ``prediction``, ``rank``,
        ``group_size``, ``predicted_high_cost``. A prospective cohort is less prone to
        regression to the mean than one chosen on current cost, but judge any
        intervention against a comparison group all the same.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import predicted_high_cost
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3]})
    >>> pred = pd.Series([0.2, 0.9, 0.4], index=[3, 2, 1])
    >>> predicted_high_cost(pred, register=reg, top_fraction=0.34)["predicted_high_cost"].tolist()
    [True, True, False]
    """
    ids = register_ids(register)
    values = pd.Series(prediction).reindex(ids).astype(np.float64)
    return _cohort_frame(values, register, top_fraction=top_fraction, by=by,
                         value_name="prediction", flag_name="predicted_high_cost",
                         positive_only=False)


def rising_risk(current: pd.Series, previous: pd.Series, *,
                min_increase: float = 0.05) -> pd.DataFrame:
    """People whose risk rose by at least ``min_increase`` since the previous run.

    Parameters
    ----------
    current, previous : Series
        Risk (probability) indexed by the same key (``patient_id`` or a pseudo id).
    min_increase : float, default 0.05
        Absolute increase (0.05 = five percentage points).

    Returns
    -------
    DataFrame
        Indexed like ``current``: ``previous`` (NaN if new), ``current``, ``change`` and
        ``rising``. People absent from the previous run are never "rising".

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import rising_risk
    >>> now = pd.Series([0.30, 0.10, 0.50], index=["a", "b", "c"])
    >>> before = pd.Series([0.20, 0.12], index=["a", "b"])
    >>> rising_risk(now, before, min_increase=0.1)["rising"].tolist()
    [True, False, False]
    """
    if not min_increase > 0:
        raise ConfigError("rising_risk: min_increase must be positive")
    cur = pd.Series(current, dtype=np.float64)
    prev = pd.Series(previous, dtype=np.float64).reindex(cur.index)
    change = cur - prev
    # tolerance so that 0.30 - 0.20 counts as an increase of 0.1
    rising = (change >= min_increase - 1e-12).fillna(False).astype(bool)
    return pd.DataFrame({"previous": prev, "current": cur, "change": change, "rising": rising})


def next_period_comparison(prior_cost: pd.Series, next_cost: pd.Series, *,
                           cohort: pd.Series, comparison: pd.Series | None = None
                           ) -> pd.DataFrame:
    """Mean cost before and after for a cohort *and* a comparison group.

    Use it wherever a cohort was chosen on current cost: the cohort's fall next period is
    mostly regression to the mean, and only the difference from a comparison group chosen
    the same way (ideally randomised) says anything about an intervention.

    Parameters
    ----------
    prior_cost, next_cost : Series
        Cost in the selection period and in the following period, indexed by patient_id.
    cohort : Series of bool
        Indexed by patient_id.
    comparison : Series of bool, optional
        The comparison group; default everyone not in the cohort (which shows the
        regression but is not a like-for-like control).

    Returns
    -------
    DataFrame
        Index ``["cohort", "comparison"]``; columns ``n``, ``prior_mean``, ``next_mean``,
        ``change`` and ``change_pct``. ``attrs["difference_in_change_pct"]`` is the cohort's
        percentage change minus the comparison group's; ``attrs["caution"]`` the caution.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import next_period_comparison
    >>> prior = pd.Series([100.0, 100.0, 10.0, 10.0])
    >>> after = pd.Series([50.0, 60.0, 12.0, 8.0])
    >>> cohort = pd.Series([True, False, False, False])
    >>> t = next_period_comparison(prior, after, cohort=cohort,
    ...                            comparison=pd.Series([False, True, False, False]))
    >>> t[["n", "prior_mean", "next_mean", "change_pct"]]
                n  prior_mean  next_mean  change_pct
    cohort      1       100.0       50.0       -50.0
    comparison  1       100.0       60.0       -40.0
    >>> t.attrs["difference_in_change_pct"]
    -10.0
    """
    idx = pd.Series(prior_cost).index
    prior = pd.Series(prior_cost, dtype=np.float64)
    after = pd.Series(next_cost, dtype=np.float64).reindex(idx)
    in_cohort = pd.Series(cohort).reindex(idx, fill_value=False).astype(bool)
    if comparison is None:
        in_comp = ~in_cohort
    else:
        in_comp = pd.Series(comparison).reindex(idx, fill_value=False).astype(bool)
    if (in_cohort & in_comp).any():
        raise ConfigError("next_period_comparison: cohort and comparison overlap "
                          f"({int((in_cohort & in_comp).sum())} people)")
    rows = {}
    for name, mask in (("cohort", in_cohort), ("comparison", in_comp)):
        m = mask.to_numpy() & after.notna().to_numpy()
        p, a = prior.to_numpy()[m], after.to_numpy()[m]
        pm = float(p.mean()) if len(p) else float("nan")
        am = float(a.mean()) if len(a) else float("nan")
        rows[name] = {"n": int(m.sum()), "prior_mean": pm, "next_mean": am,
                      "change": am - pm,
                      "change_pct": 100 * (am - pm) / pm if pm else float("nan")}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.attrs["difference_in_change_pct"] = float(
        out.loc["cohort", "change_pct"] - out.loc["comparison", "change_pct"])
    out.attrs["caution"] = RTM_CAUTION
    return out


@dataclass(frozen=True)
class CostConcentration:
    """How concentrated cost is: see :func:`cost_concentration`."""

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
    >>> from pophealth.cohorts import cost_concentration
    >>> cc = cost_concentration([4.0, 1.0, 3.0, 2.0], top=(0.2,))
    >>> cc.gini, cc.top_shares, cc.bottom_shares
    (0.25, {0.2: 0.32}, {0.5: 0.3})
    >>> cc.lorenz["cost_share"].tolist()
    [0.0, 0.1, 0.3, 0.6, 1.0]
    """
    x = np.asarray(pd.to_numeric(pd.Series(costs), errors="coerce"), dtype=np.float64)
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


# --------------------------------------------------------------------------- caseloads

_OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in")


@dataclass(frozen=True)
class Condition:
    """One test on a patient-table column, e.g. ``Condition("age", ">=", 18)``."""

    column: str
    op: str
    value: object

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"condition on '{self.column}': unknown op '{self.op}' "
                              f"(allowed: {', '.join(_OPS)})")
        if self.op in ("in", "not in") and not isinstance(self.value, (list, tuple)):
            raise ConfigError(f"condition on '{self.column}': '{self.op}' needs a list")

    def mask(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean mask over ``table`` rows (missing values never match)."""
        s = table[self.column]
        if self.op in ("in", "not in"):
            hit = s.astype(object).isin(list(self.value)).to_numpy()
            return hit if self.op == "in" else ~hit & s.notna().to_numpy()
        if isinstance(s.dtype, pd.CategoricalDtype) and self.op not in ("==", "!="):
            if not s.cat.ordered or self.value not in s.cat.categories:
                raise ConfigError(f"condition on '{self.column}': '{self.op}' needs an "
                                  "ordered categorical and one of its categories")
        import operator

        fn = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
              "<": operator.lt, "<=": operator.le}[self.op]
        out = fn(s, self.value)
        return np.asarray(out.fillna(False) if hasattr(out, "fillna") else out, dtype=bool) \
            & s.notna().to_numpy()


@dataclass(frozen=True)
class SelectionRule:
    """A named caseload rule: who is eligible (``where``, all must hold) and optionally
    the top fraction of the eligible by ``rank_column`` within each ``by`` group.

    Examples
    --------
    >>> from pophealth.cohorts import SelectionRule
    >>> SelectionRule.from_dict({"name": "top 2% risk per practice", "top_fraction": 0.02,
    ...                          "by": "practice", "where": [["age", ">=", 18]]}).where
    (Condition(column='age', op='>=', value=18),)
    """

    name: str
    where: tuple = ()
    top_fraction: float | None = None
    rank_column: str = "risk"
    by: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a selection rule needs a name")
        if self.top_fraction is None and not self.where:
            raise ConfigError(f"rule '{self.name}' selects everyone: give where or top_fraction")
        if self.top_fraction is not None:
            _check_fraction(self.top_fraction)

    @classmethod
    def from_dict(cls, d: Mapping) -> SelectionRule:
        """Build from a mapping (e.g. a TOML table); ``where`` items are
        ``[column, op, value]`` lists or ``{column, op, value}`` tables."""
        allowed = {"name", "where", "top_fraction", "rank_column", "by"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ConfigError(f"selection rule: unknown key(s) {unknown}")
        where = []
        for item in d.get("where", ()):
            if isinstance(item, Mapping):
                extra = sorted(set(item) - {"column", "op", "value"})
                if extra:
                    raise ConfigError(f"rule '{d.get('name')}': unknown condition key(s) {extra}")
                where.append(Condition(item["column"], item["op"], item["value"]))
            else:
                where.append(Condition(*item))
        kwargs = {k: d[k] for k in ("top_fraction", "rank_column", "by") if k in d}
        return cls(name=str(d.get("name", "")), where=tuple(where), **kwargs)

    def columns(self) -> set:
        """Patient-table columns the rule reads."""
        cols = {c.column for c in self.where}
        if self.top_fraction is not None:
            cols.add(self.rank_column)
            if self.by:
                cols.add(self.by)
        return cols


#: Plain-language factors for caseload reasons, in priority order: (column, op,
#: threshold, template). ``{value}`` is the patient's value (numbers as integers).
DEFAULT_FACTORS: tuple = (
    ("prior_emergency_admissions", ">=", 1, "{value} emergency admission(s) in the last 12 months"),
    ("efi_band", "in", ["moderate", "severe"], "{value} frailty (eFI)"),
    ("hfrs_band", "in", ["high"], "high Hospital Frailty Risk Score"),
    ("n_conditions", ">=", 4, "{value} long-term conditions"),
    ("prior_ae_attendances", ">=", 3, "{value} A&E attendances in the last 12 months"),
    ("age", ">=", 85, "aged {value}"),
    ("prior_cost", ">=", 5000, "hospital and GP costs of GBP {value} in the last 12 months"),
)


def describe_reasons(table: pd.DataFrame, *, factors: Sequence = DEFAULT_FACTORS,
                     rule: pd.Series | None = None, max_factors: int = 3) -> pd.Series:
    """Plain-language reasons: the selecting rule and up to ``max_factors`` factors.

    Factors are tried in the given (priority) order; missing columns are skipped.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import describe_reasons
    >>> t = pd.DataFrame({"prior_emergency_admissions": [3, 0], "age": [90, 40]})
    >>> describe_reasons(t, rule=pd.Series(["top 2% risk", "frailty"])).tolist()
    ['selected by: top 2% risk; factors: 3 emergency admission(s) in the last 12 months; aged 90', 'selected by: frailty']
    """
    n = len(table)
    texts, masks = [], []
    for column, op, threshold, template in factors:
        if column not in table.columns:
            continue
        m = Condition(column, op, threshold).mask(table)
        s = table[column]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            val = np.floor(s.fillna(0).to_numpy(dtype=np.float64) + 0.5).astype(np.int64)
            val = val.astype(str)
        else:
            val = s.astype(str).to_numpy()
        head, placeholder, tail = template.partition("{value}")
        if placeholder:
            text = head + val.astype(object) + tail
        else:
            text = np.full(n, template, dtype=object)
        texts.append(text)
        masks.append(m)
    parts = np.full(n, "", dtype=object)
    count = np.zeros(n, dtype=np.int64)
    for text, m in zip(texts, masks, strict=True):
        use = m & (count < max_factors)
        sep = np.where(count > 0, "; ", "")
        parts = np.where(use, parts + sep + text, parts)
        count += use
    if rule is not None:
        head = "selected by: " + pd.Series(rule).astype(str).to_numpy().astype(object)
    else:
        head = np.full(n, "", dtype=object)
    factors_txt = np.where(count > 0, "factors: " + parts, "")
    joiner = np.where((count > 0) & (rule is not None), "; ", "")
    return pd.Series(head + joiner + factors_txt, index=table.index, name="reasons")


def select_caseload(patients: pd.DataFrame, rules: Sequence, *, rank_by: str = "risk",
                    group_by: str = "pcn", factors: Sequence | None = DEFAULT_FACTORS
                    ) -> pd.DataFrame:
    """Select an MDT caseload with ordered, named rules (a person is in if any rule picks them).

    Parameters
    ----------
    patients : DataFrame
        One row per patient, indexed by ``patient_id`` (risk, tier, segment, practice, pcn,
        utilisation, scores ...).
    rules : sequence of SelectionRule or mapping
        Each rule's ``where`` conditions restrict who is eligible; with ``top_fraction``
        it then takes the top ``ceil(fraction * n_eligible)`` of each ``by`` group by
        ``rank_column`` (module tie rule). E.g. "top 2 % risk per practice" and
        "segment in (frailty, organ failure) with >= 2 emergency admissions".
    rank_by : str, default "risk"
        Column that orders the caseload (descending, ties by patient_id ascending).
    group_by : str, default "pcn"
        The caseload unit: ``rank`` restarts at 1 in each group.
    factors : sequence, optional
        Plain-language factors for ``reasons`` (see :data:`DEFAULT_FACTORS`); ``None``
        gives the rule only.

    Returns
    -------
    DataFrame
        The selected patients' rows of ``patients`` plus ``rank``, ``rule`` (the first
        rule, in the given order, that selected them), ``selected_by`` (every rule that
        did, "; "-joined) and ``reasons``; sorted by ``group_by`` then ``rank``.
        ``attrs["rule_counts"]`` gives how many each rule selected.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts import select_caseload
    >>> p = pd.DataFrame({"pcn": "N1", "practice": ["A", "A", "A", "B"],
    ...                   "risk": [0.9, 0.2, 0.1, 0.3], "segment": ["healthy", "frailty",
    ...                   "healthy", "healthy"], "prior_emergency_admissions": [0, 2, 0, 0]},
    ...                  index=pd.Index([1, 2, 3, 4], name="patient_id"))
    >>> rules = [{"name": "top risk", "top_fraction": 0.3, "by": "practice"},
    ...          {"name": "frail, 2+ admissions", "where": [["segment", "in", ["frailty"]],
    ...           ["prior_emergency_admissions", ">=", 2]]}]
    >>> select_caseload(p, rules, factors=None)[["practice", "risk", "rank", "rule"]]
               practice  risk  rank                  rule
    patient_id
    1                 A   0.9     1              top risk
    4                 B   0.3     2              top risk
    2                 A   0.2     3  frail, 2+ admissions
    """
    rules = [r if isinstance(r, SelectionRule) else SelectionRule.from_dict(r) for r in rules]
    if not rules:
        raise ConfigError("select_caseload: no rules given")
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError("select_caseload: rule names must be unique")
    needed = {rank_by, group_by}.union(*(r.columns() for r in rules))
    missing = sorted(needed - set(patients.columns))
    if missing:
        raise ConfigError(f"select_caseload: patient table lacks column(s) {missing}")
    ids = patients.index
    n = len(patients)
    hits = np.zeros((n, len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        ok = np.ones(n, dtype=bool)
        for cond in rule.where:
            ok &= cond.mask(patients)
        if rule.top_fraction is not None:
            groups = patients[rule.by].to_numpy() if rule.by else None
            ok, _, _ = top_fraction_mask(patients[rule.rank_column].to_numpy(), ids=ids,
                                         fraction=rule.top_fraction, groups=groups,
                                         eligible=ok)
        hits[:, j] = ok
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    sel = patients.iloc[np.flatnonzero(any_hit)].copy()
    h = hits[any_hit]
    name_arr = np.array(names, dtype=object)
    sel["rule"] = name_arr[first[any_hit]]
    selected_by = np.full(len(sel), "", dtype=object)
    for j in range(len(rules)):
        sep = np.where(selected_by == "", "", "; ")
        selected_by = np.where(h[:, j], selected_by + sep + names[j], selected_by)
    sel["selected_by"] = selected_by
    rank, _ = _rank_within(sel[rank_by].to_numpy(dtype=np.float64, na_value=np.nan),
                           _ids_codes(sel.index), _group_codes(sel[group_by].to_numpy(),
                                                               len(sel)),
                           np.ones(len(sel), dtype=bool))
    sel["rank"] = rank
    sel["reasons"] = describe_reasons(sel, factors=factors or (), rule=sel["rule"])
    sel = sel.sort_values([group_by, "rank"], kind="stable")
    sel.attrs["rule_counts"] = {name: int(hits[:, j].sum()) for j, name in enumerate(names)}
    sel.attrs["tie_rule"] = f"{rank_by} desc, patient_id asc"
    return sel
