"""Evaluation of risk scores: discrimination, calibration, top-k PPV, subgroup audit.

* :func:`evaluate_risk` - one table of metrics, overall and per subgroup.
* :func:`calibration_intercept_slope` - logistic recalibration on ``logit(risk)``.
* :func:`calibration_table` - observed vs predicted by risk bin (for calibration plots).
* :func:`risk_groups` - IMD quintile, sex, age band and ethnicity for the subgroup audit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.risk.tiers import top_fraction

__all__ = ["calibration_intercept_slope", "calibration_table", "evaluate_risk", "risk_groups"]

_EPS = 1e-12
#: Age bands of the subgroup audit (years, left-closed).
AUDIT_AGE_BANDS = ((0, 18), (18, 45), (45, 65), (65, 75), (75, 85), (85, np.inf))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _irls(y: np.ndarray, x: np.ndarray | None, offset: np.ndarray, iters: int = 50) -> np.ndarray:
    """Unpenalised logistic regression (Newton/IRLS) of y on [1, x] with an offset."""
    design = np.ones((len(y), 1)) if x is None else np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(iters):
        mu = 1 / (1 + np.exp(-np.clip(offset + design @ beta, -700, 700)))
        w = np.maximum(mu * (1 - mu), 1e-12)
        step = np.linalg.solve(design.T @ (design * w[:, None]), design.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def calibration_intercept_slope(y_true, risk) -> tuple[float, float]:
    """Calibration-in-the-large and calibration slope of a risk score.

    The slope ``b`` comes from the logistic recalibration ``logit P(y) = a + b logit(risk)``;
    the intercept is calibration-in-the-large, ``a'`` in ``logit P(y) = a' + logit(risk)``
    (slope fixed at 1, Van Calster et al. 2016). Perfect calibration gives (0, 1); a slope
    below 1 means the risks are too extreme (over-fitting). Risks are clipped to
    ``[1e-12, 1 - 1e-12]``. NaN when ``y_true`` has a single class.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0, 0, 1, 0, 1])
    >>> r = np.array([0.2, 0.4, 0.6, 0.7, 0.3, 0.5, 0.1, 0.8])
    >>> a, b = calibration_intercept_slope(y, r)
    >>> round(a, 4), round(b, 4)
    (0.2556, 1.3451)
    """
    y = np.asarray(y_true, dtype=float)
    lp = _logit(np.asarray(risk, dtype=float))
    if len(y) == 0 or y.min() == y.max():
        return float("nan"), float("nan")
    intercept = _irls(y, None, lp)[0]
    slope = _irls(y, lp, np.zeros(len(y)))[1]
    return float(intercept), float(slope)


def _label(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def _metrics(y: np.ndarray, r: np.ndarray, flagged: dict) -> dict:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    n, events = len(y), int(y.sum())
    both = 0 < events < n
    a, b = calibration_intercept_slope(y, r) if both else (np.nan, np.nan)
    row = {
        "n": n, "events": events, "observed_rate": events / n if n else np.nan,
        "mean_risk": float(r.mean()) if n else np.nan,
        "auroc": float(roc_auc_score(y, r)) if both else np.nan,
        "average_precision": float(average_precision_score(y, r)) if both else np.nan,
        "brier": float(brier_score_loss(y, r)) if n else np.nan,
        "calibration_intercept": a, "calibration_slope": b,
    }
    for lab, mask in flagged.items():
        k = int(mask.sum())
        row[f"flagged_{lab}"] = k
        row[f"ppv_top_{lab}"] = float(y[mask].mean()) if k else np.nan
        row[f"sensitivity_top_{lab}"] = float(y[mask].sum() / events) if events else np.nan
    return row


def _labels_problem(a: pd.Index, b: pd.Index, a_name: str, b_name: str) -> str | None:
    """Why ``b`` cannot be aligned on ``a`` by label (counts only), or None if it can."""
    dup = int(a.duplicated().sum()) + int(b.duplicated().sum())
    if dup:
        return f"{dup} duplicated index label(s)"
    only_a, only_b = len(a.difference(b)), len(b.difference(a))
    if only_a or only_b:
        return f"{only_a} index label(s) only in {a_name}, {only_b} only in {b_name}"
    return None


def _aligned(y_true, risk, groups):
    """Reorder pandas ``risk``/``groups`` on the index of a pandas ``y_true`` (same labels)."""
    if not isinstance(y_true, pd.Series):
        return y_true, risk, groups
    index = y_true.index
    out = []
    for name, obj in (("risk", risk), ("groups", groups)):
        if isinstance(obj, pd.Series | pd.DataFrame) and not obj.index.equals(index):
            why = _labels_problem(index, obj.index, "y_true", name)
            if why is not None:
                raise SchemaError(f"evaluate_risk: y_true and {name} are pandas objects whose "
                                  f"indexes cannot be aligned (rule 'same_index'): {why}",
                                  [{"column": "index", "rule": "same_index", "count": 0,
                                    "positions": []}])
            obj = obj.reindex(index)
        out.append(obj)
    return y_true, out[0], out[1]


def evaluate_risk(y_true, risk, *, top: Sequence[float] = (0.005, 0.01, 0.05, 0.2),
                  groups: pd.DataFrame | pd.Series | None = None) -> pd.DataFrame:
    """Discrimination, calibration and top-k performance, overall and per subgroup.

    Parameters
    ----------
    y_true : array-like of bool/0-1
        Observed outcome (e.g. emergency admission in the next 12 months).
    risk : array-like of float in [0, 1]
        Predicted probabilities. When ``y_true`` and ``risk`` are both pandas Series they
        are aligned on their index (the same unique labels in any order, else
        :class:`SchemaError` with the counts of unmatched labels); otherwise by position.
    top : sequence of float
        Fractions of the *whole* population flagged as highest risk, with the tie rule of
        :func:`pophealth.risk.tiers.risk_tiers`. Subgroup rows use the same population-wide
        flags, so ``flagged_<x>%`` shows how many of each group are flagged and
        ``sensitivity_top_<x>%`` how many of the group's events are caught (an equity audit).
    groups : DataFrame or Series, optional
        Categorical columns (e.g. :func:`risk_groups`), aligned on the index of a Series
        ``y_true`` as ``risk`` is, else by position; missing group values are left out of
        that variable's rows.

    Returns
    -------
    DataFrame
        Indexed by (``group``, ``level``); the first row is (``"all"``, ``"all"``). Columns
        ``n``, ``events``, ``observed_rate``, ``mean_risk``, ``auroc``,
        ``average_precision``, ``brier``, ``calibration_intercept``,
        ``calibration_slope`` and, per top fraction, ``flagged_<x>%``,
        ``ppv_top_<x>%``, ``sensitivity_top_<x>%``. Metrics that need both outcomes are
        NaN in a group with only one.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    >>> r = np.array([.9, .8, .7, .3, .2, .2, .1, .1, .05, .05])
    >>> ev = evaluate_risk(y, r, top=(0.2,))
    >>> ev[["auroc", "ppv_top_20%", "sensitivity_top_20%"]].round(4)
               auroc  ppv_top_20%  sensitivity_top_20%
    group level
    all   all  0.7381          0.5               0.3333

    Series are matched by label, not by position:

    >>> import pandas as pd
    >>> ys, rs = pd.Series(y, index=range(10)), pd.Series(r, index=range(10))
    >>> float(evaluate_risk(ys, rs.iloc[::-1], top=(0.2,))["auroc"].round(4).iloc[0])
    0.7381
    """
    y_true, risk, groups = _aligned(y_true, risk, groups)
    y = np.asarray(y_true).astype(float)
    r = np.asarray(risk, dtype=float)
    if y.shape != r.shape or y.ndim != 1:
        raise SchemaError(f"evaluate_risk: y_true has {y.size} values but risk has {r.size} "
                          "(both must be 1-D and aligned)")
    bad = ~np.isfinite(r) | (r < 0) | (r > 1)
    if bad.any() or np.isnan(y).any():
        raise SchemaError(f"evaluate_risk: {int(bad.sum())} risk value(s) missing or outside "
                          f"[0, 1] and {int(np.isnan(y).sum())} missing outcome(s)")
    flagged = {_label(f): top_fraction(r, f) for f in top}
    rows = {("all", "all"): _metrics(y, r, flagged)}
    if groups is not None:
        frame = groups.to_frame() if isinstance(groups, pd.Series) else groups
        if len(frame) != len(y):
            raise SchemaError(f"evaluate_risk: groups has {len(frame)} rows, risk has {len(y)}")
        for col in frame.columns:
            g = frame[col]
            levels = g.cat.categories if isinstance(g.dtype, pd.CategoricalDtype) else g.dropna().unique()
            if not isinstance(g.dtype, pd.CategoricalDtype):
                levels = sorted(levels, key=str)
            for level in levels:
                m = (g == level).to_numpy(dtype=bool, na_value=False)
                if m.any():
                    rows[(str(col), str(level))] = _metrics(
                        y[m], r[m], {k: v[m] for k, v in flagged.items()})
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(list(rows), names=["group", "level"])
    return out


def calibration_table(y_true, risk, *, n_bins: int = 10, strategy: str = "quantile"
                      ) -> pd.DataFrame:
    """Mean predicted risk and observed rate (Wilson 95 % CI) per risk bin.

    ``strategy="quantile"`` makes bins of equal size by rank (ties kept together);
    ``"uniform"`` makes equal-width bins on [0, 1]. Empty bins are dropped.

    Examples
    --------
    >>> import numpy as np
    >>> t = calibration_table([0, 1, 0, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> t[["n", "mean_risk", "observed_rate"]]
         n  mean_risk  observed_rate
    bin
    0    2       0.15            0.5
    1    2       0.80            0.5
    """
    y = np.asarray(y_true, dtype=float)
    r = np.asarray(risk, dtype=float)
    if strategy == "quantile":
        rank = pd.Series(r).rank(method="min").to_numpy() - 1
        b = np.minimum((rank * n_bins // len(r)).astype(int), n_bins - 1)
    elif strategy == "uniform":
        b = np.minimum((r * n_bins).astype(int), n_bins - 1)
    else:
        raise ValueError("calibration_table: 'strategy' must be 'quantile' or 'uniform'")
    df = pd.DataFrame({"bin": b, "y": y, "r": r}).groupby("bin")
    t = pd.DataFrame({"n": df.size(), "mean_risk": df["r"].mean(), "observed_rate": df["y"].mean()})
    z, n, p = 1.959964, t["n"].to_numpy(), t["observed_rate"].to_numpy()
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return t.assign(lower_ci=centre - half, upper_ci=centre + half)


def risk_groups(register: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Subgroups for the equity audit: ``imd_quintile``, ``sex``, ``age_band``, ``ethnicity``.

    Indexed by ``patient_id`` in register order; columns present only when their source
    column is (``imd_decile``, ``sex``, ``age`` or ``date_of_birth`` with ``index_date``,
    ``ethnicity``). IMD quintile 1 = most deprived. Age bands: 0-17, 18-44, 45-64, 65-74,
    75-84, 85+.

    Examples
    --------
    >>> import pandas as pd
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "sex": ["F", "M"], "age": [80, 30],
    ...                     "imd_decile": [1, 10]})
    >>> risk_groups(reg)
               imd_quintile sex age_band
    patient_id
    1                     1   F    75-84
    2                     5   M    18-44
    """
    from pophealth.core.conditions import register_ids

    ids = register_ids(register)
    out = {}
    if "imd_decile" in register.columns:
        q = (pd.to_numeric(register["imd_decile"], errors="coerce").to_numpy(dtype=float) + 1) // 2
        out["imd_quintile"] = pd.Categorical(q, categories=[1.0, 2.0, 3.0, 4.0, 5.0],
                                             ordered=True).rename_categories([1, 2, 3, 4, 5])
    if "sex" in register.columns:
        out["sex"] = register["sex"].to_numpy(dtype=object)
    age = None
    if "age" in register.columns:
        age = pd.to_numeric(register["age"], errors="coerce").to_numpy(dtype=float)
    elif "date_of_birth" in register.columns and index_date is not None:
        from pophealth.core.ages import age_at

        age = age_at(register["date_of_birth"], index_date).to_numpy(dtype=float, na_value=np.nan)
    if age is not None:
        labels = [f"{lo}-{hi - 1:g}" if np.isfinite(hi) else f"{lo}+" for lo, hi in AUDIT_AGE_BANDS]
        edges = [lo for lo, _ in AUDIT_AGE_BANDS] + [np.inf]
        out["age_band"] = pd.cut(age, edges, right=False, labels=labels)
    if "ethnicity" in register.columns:
        out["ethnicity"] = register["ethnicity"].to_numpy(dtype=object)
    return pd.DataFrame(out, index=ids)
