"""High-cost cohorts and the regression-to-the-mean comparison.

* :func:`period_cost`, :func:`high_cost_cohort`, :func:`persistent_high_cost` - who is in
  the top fraction of cost over a period (system-wide or within each PCN/practice), and
  who stays there over consecutive periods.
* :func:`predicted_high_cost` and :func:`rising_risk` - prospective cohorts from a risk or
  cost model, and people whose risk rose since the previous run.
* :func:`next_period_comparison` - next-period cost of a cohort *and* of a comparison
  group, because a cohort picked on current cost falls back towards the mean on its own
  (the Camden Coalition RCT, Finkelstein et al. NEJM 2020;382:152: a 38-point pre/post
  fall in the intervention arm, the same fall in the control arm).

Every cohort uses the tie rule of :func:`pophealth.cohorts.ranking.top_fraction_mask` (value desc,
then patient_id asc; ``k = ceil(fraction * n)`` per group). Also importable from here:
:mod:`pophealth.cohorts.concentration` (cost concentration) and :mod:`pophealth.cohorts.caseload`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.cohorts.ranking import _check_fraction, top_fraction_mask
from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.contracts.numeric import numeric_values, validate_numeric
from pophealth.contracts.schema import as_datetime64, naive_timestamp
from pophealth.core.conditions import register_ids

__all__ = ["RTM_CAUTION", "period_cost", "high_cost_cohort", "persistent_high_cost", "predicted_high_cost", "rising_risk", "next_period_comparison"]

#: Caution attached (``frame.attrs["caution"]``) to every cohort picked on current cost.
RTM_CAUTION = (
    "Regression to the mean: people selected because their cost is high now will, on "
    "average, cost less next period without any intervention. Judge impact only against a "
    "concurrent comparison group selected the same way (see next_period_comparison), never "
    "by a before/after fall in the cohort alone."
)


def _day(value) -> pd.Timestamp:
    return naive_timestamp(value).normalize()


def _check_activity(activity: pd.DataFrame) -> None:
    if not isinstance(activity, pd.DataFrame):
        raise SchemaError("activity: expected a DataFrame")
    for col in ("patient_id", "date", "cost"):
        if col not in activity.columns:
            raise SchemaError(f"activity: missing column '{col}' (rule 'missing_column')")
    validate_numeric(activity, ["cost"], table="activity")


def _series_values(values, name: str) -> pd.Series:
    """``values`` as a float Series keeping its index, checked with the ``numeric`` rule."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    return pd.Series(numeric_values(s, table=name, column=name), index=s.index)


def period_cost(activity: pd.DataFrame, *, register, start, end) -> pd.Series:
    """Total cost per register patient over the dates ``start`` to ``end`` (both inclusive).

    Parameters
    ----------
    activity : DataFrame
        ``patient_id``, ``date`` and ``cost``. Rows for people not on the register are
        ignored and counted in ``result.attrs["n_rows_unknown_patient"]``. ``cost`` must
        hold numbers (:class:`SchemaError` rule ``numeric`` otherwise, with count and
        positions, never values).
    register : DataFrame or Index
        The denominator (``patient_id`` column or index).
    start, end : date-like
        Whole days, inclusive. Tz-aware dates (in ``activity`` or here) count on the
        local date of their own zone (the convention of :mod:`pophealth.contracts.schema`).

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
    _check_activity(activity)
    ids = register_ids(register)
    lo, hi = _day(start), _day(end) + pd.Timedelta(days=1)
    if hi <= lo:
        raise ConfigError("period_cost: end is before start")
    date = as_datetime64(activity["date"])  # tz-aware -> local wall clock
    in_period = (date >= lo.to_datetime64()) & (date < hi.to_datetime64())
    pos = ids.get_indexer(activity["patient_id"].to_numpy())
    known = pos >= 0
    use = in_period & known
    cost = numeric_values(activity["cost"], table="activity", column="cost")
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
    _check_activity(activity)
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
    _check_activity(activity)
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
    prediction = _series_values(prediction, "prediction")
    ids = register_ids(register)
    values = prediction.reindex(ids)
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
    cur = _series_values(current, "current")
    prev = _series_values(previous, "previous").reindex(cur.index)
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
    prior = _series_values(prior_cost, "prior_cost")
    after = _series_values(next_cost, "next_cost").reindex(prior.index)
    idx = prior.index
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
