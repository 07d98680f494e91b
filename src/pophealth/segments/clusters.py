"""Data-driven segments: k-means or a Gaussian mixture on standardised features.

Following the utilisation-based segmentations of Vuik et al. (Popul Health Metr 2016)
and Nnoaham & Cann (BMC Public Health 2020): counts and costs are ``log1p``-transformed
(they are heavily right-skewed), every feature is standardised, and the clusters are
relabelled ``1..k`` in order of mean cost (1 = cheapest) so that the labels mean the
same thing on every run and can be named by people from the profile table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.contracts.numeric import numeric_values, validate_numeric
from pophealth.contracts.schema import as_datetime64, naive_timestamp

__all__ = ["ClusterSegments", "cluster_segments", "utilisation_features"]


@dataclass(frozen=True)
class ClusterSegments:
    """Result of :func:`cluster_segments`.

    Attributes
    ----------
    labels : Series
        Ordered categorical ``1..n_segments`` (1 = lowest mean cost), indexed like the
        features.
    profile : DataFrame
        One row per segment: ``n``, ``share``, ``mean_age``, ``mean_cost``,
        ``cost_share``, the mean of each numeric feature and the prevalence of each
        boolean feature.
    model : sklearn Pipeline
        The fitted ``FunctionTransformer(log1p) -> StandardScaler -> KMeans/GaussianMixture``.
    order : ndarray
        ``order[raw_label]`` = the cost-ordered label (1-based).

    Examples
    --------
    Two well-separated groups of 5 and 3 people: segment 1 is the cheaper one.

    >>> import pandas as pd
    >>> from pophealth.segments.clusters import cluster_segments
    >>> X = pd.DataFrame({"admissions": [0, 0, 0, 0, 0, 6, 7, 8]})
    >>> cost = pd.Series([100.0] * 5 + [9000.0] * 3)
    >>> res = cluster_segments(X, n_segments=2, random_state=0, cost=cost)
    >>> res.labels.tolist(), res.profile["n"].tolist()
    ([1, 1, 1, 1, 1, 2, 2, 2], [5, 3])
    """

    labels: pd.Series
    profile: pd.DataFrame
    model: object
    order: np.ndarray

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Cost-ordered labels for new patients (same feature columns)."""
        X = _matrix(features, list(self.model.feature_names_in_))
        raw = self.model.predict(X)
        return _labels(self.order[raw], len(self.order), features.index)


def _matrix(features: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise SchemaError("features: expected a DataFrame (one row per patient)")
    if columns is not None:
        missing = [c for c in columns if c not in features.columns]
        if missing:
            raise SchemaError(f"features: missing column(s) {missing}")
        features = features[columns]
    bad = [c for c in features.columns if not (pd.api.types.is_numeric_dtype(features[c])
                                                or pd.api.types.is_bool_dtype(features[c]))]
    if bad:
        raise SchemaError(f"features: column(s) {bad} are not numeric or boolean")
    X = features.astype("float64")
    na = X.isna().to_numpy()
    if na.any():
        rows = np.flatnonzero(na.any(axis=1))
        raise SchemaError(f"features: {len(rows)} row(s) have missing values; "
                          f"first positions {rows[:10].tolist()}")
    neg = (X < 0).to_numpy()
    if neg.any():
        cols = [c for c, b in zip(X.columns, neg.any(axis=0), strict=True) if b]
        raise SchemaError(f"features: column(s) {cols} have negative values "
                          "(counts, costs and flags are expected)")
    return X


def utilisation_features(activity: pd.DataFrame, register, *, index_date,
                         days: int = 365) -> pd.DataFrame:
    """Per-patient contact counts by ``kind`` and total cost in ``(index_date - days, index_date]``.

    Returns a DataFrame indexed by ``patient_id`` in register order with one
    ``n_<kind>`` column per activity kind (in the order of the ``kind`` categories, or
    sorted) and ``cost``; patients without activity get zeros. ``cost`` must be numeric
    (rule ``numeric``); tz-aware dates (and ``index_date``) are compared on the local
    wall-clock time of their own zone, the convention of :mod:`pophealth.contracts.schema`.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments.clusters import utilisation_features
    >>> act = pd.DataFrame({"patient_id": [1, 1, 2], "kind": ["gp", "ae", "gp"],
    ...                     "cost": [40.0, 150.0, 40.0],
    ...                     "date": pd.to_datetime(["2025-01-01", "2025-02-01", "2023-01-01"])})
    >>> utilisation_features(act, pd.DataFrame({"patient_id": [1, 2, 3]}),
    ...                      index_date="2025-04-01")
                n_ae  n_gp   cost
    patient_id
    1              1     1  190.0
    2              0     0    0.0
    3              0     0    0.0
    """
    from pophealth.core.arrays import id_array, positions
    from pophealth.core.conditions import register_ids

    missing = [c for c in ("patient_id", "date", "kind", "cost") if c not in activity.columns]
    if missing:
        raise SchemaError(f"activity: missing column(s) {missing}")
    validate_numeric(activity, ["cost"], table="activity")
    ids = register_ids(register)
    when = naive_timestamp(index_date).to_datetime64()
    date = as_datetime64(activity["date"])  # tz-aware -> local wall clock
    keep = (date > when - np.timedelta64(days, "D")) & (date <= when)
    pos = positions(id_array(activity["patient_id"].to_numpy()[keep], "activity"),
                    id_array(ids.to_numpy(), "register"))
    ok = pos >= 0
    kind = activity["kind"]
    kinds = [str(c) for c in kind.cat.categories] if isinstance(kind.dtype, pd.CategoricalDtype) \
        else sorted(pd.unique(kind.dropna().astype(str)))
    kcode = pd.Categorical(kind.astype(str).to_numpy()[keep], categories=kinds).codes
    ok &= kcode >= 0
    n = len(ids)
    counts = np.zeros((n, len(kinds)), dtype=np.int64)
    np.add.at(counts, (pos[ok], kcode[ok]), 1)
    out = pd.DataFrame(counts, index=ids, columns=[f"n_{k}" for k in kinds])
    cost = numeric_values(activity["cost"], table="activity", column="cost")
    out["cost"] = np.bincount(pos[ok], weights=cost[keep][ok], minlength=n)
    return out


def _labels(codes: np.ndarray, k: int, index) -> pd.Series:
    cats = list(range(1, k + 1))
    return pd.Series(pd.Categorical.from_codes(codes - 1, categories=cats, ordered=True),
                     index=index, name="cluster")


def cluster_segments(features: pd.DataFrame, *, n_segments: int, random_state: int,
                     cost: str | pd.Series, age: str | pd.Series | None = None,
                     method: str = "kmeans", n_init: int = 4) -> ClusterSegments:
    """Cluster patients on standardised utilisation and condition features.

    Parameters
    ----------
    features : DataFrame
        One row per patient (index kept), numeric (counts, costs) and boolean
        (condition flags) columns, all used for clustering; no missing or negative values.
    n_segments : int
        Number of clusters (>= 2).
    random_state : int
        Seed for k-means / the mixture (results are deterministic for a seed).
    cost : str or Series
        Cost used to order the labels and for the cost columns of the profile: a
        column of ``features`` (then also a clustering feature) or a Series aligned
        with it (then not a feature).
    age : str or Series, optional
        For ``mean_age`` in the profile (a column of ``features`` or a Series).
    method : {"kmeans", "gmm"}
        ``sklearn.cluster.KMeans`` or ``sklearn.mixture.GaussianMixture`` (diagonal
        covariance).
    n_init : int
        Restarts.

    Returns
    -------
    ClusterSegments
        ``labels`` (1 = lowest mean cost), ``profile``, fitted ``model``.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from pophealth.segments.clusters import cluster_segments
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"admissions": np.r_[np.zeros(50), rng.poisson(3, 10)],
    ...                   "gp_visits": np.r_[rng.poisson(2, 50), rng.poisson(9, 10)],
    ...                   "copd": np.r_[np.zeros(50, bool), np.ones(10, bool)]})
    >>> cost = pd.Series(np.r_[np.full(50, 100.0), np.full(10, 5000.0)], index=X.index)
    >>> res = cluster_segments(X, n_segments=2, random_state=0, cost=cost)
    >>> res.profile[["n", "mean_cost", "cost_share", "copd"]].round(2)
              n  mean_cost  cost_share  copd
    cluster
    1        50      100.0        0.09   0.0
    2        10     5000.0        0.91   1.0
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X = _matrix(features)
    k = int(n_segments)
    if k < 2 or k > len(X):
        raise ConfigError(f"n_segments must be between 2 and the number of rows ({len(X)})")
    if X.shape[1] == 0:
        raise SchemaError("features: no columns")

    def aligned(v, what):
        if isinstance(v, str):
            if v not in features.columns:
                raise SchemaError(f"features: missing column '{v}' (argument '{what}')")
            return numeric_values(features[v], table="features", column=v)
        s = pd.Series(v)
        numeric_values(s, table="features", column=what)  # before any conversion
        if not s.index.equals(features.index):
            s = s.reindex(features.index)
        vals = numeric_values(s, table="features", column=what)
        miss = np.isnan(vals)
        if miss.any():
            raise SchemaError(f"{what}: {int(miss.sum())} feature row(s) have no value; "
                              f"first positions {np.flatnonzero(miss)[:10].tolist()}")
        return vals

    cost_v = aligned(cost, "cost")
    if method == "kmeans":
        est = KMeans(n_clusters=k, n_init=n_init, random_state=random_state)
    elif method == "gmm":
        est = GaussianMixture(n_components=k, covariance_type="diag", n_init=n_init,
                              random_state=random_state, reg_covar=1e-4)
    else:
        raise ConfigError("method must be 'kmeans' or 'gmm'")
    model = make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                          StandardScaler(), est)
    model.fit(X)
    raw = np.asarray(model.predict(X), dtype=np.int64)
    sums = np.bincount(raw, weights=cost_v, minlength=k)
    sizes = np.bincount(raw, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cost = np.where(sizes > 0, sums / np.maximum(sizes, 1), -np.inf)
    rank = np.lexsort((np.arange(k), mean_cost))  # ties: lower raw label first
    order = np.empty(k, dtype=np.int64)
    order[rank] = np.arange(1, k + 1)
    labels = _labels(order[raw], k, features.index)

    prof = pd.DataFrame(index=pd.Index(range(1, k + 1), name="cluster"))
    lab = order[raw] - 1
    n = np.bincount(lab, minlength=k)
    nz = np.where(n > 0, n, np.nan)
    prof["n"] = n
    prof["share"] = n / len(X)
    if age is not None:
        age_v = aligned(age, "age")
        prof["mean_age"] = np.bincount(lab, weights=np.nan_to_num(age_v), minlength=k) / nz
    csum = np.bincount(lab, weights=cost_v, minlength=k)
    prof["mean_cost"] = csum / nz
    prof["cost_share"] = csum / csum.sum() if csum.sum() > 0 else np.nan
    for c in X.columns:
        if isinstance(cost, str) and c == cost:
            continue
        prof[c] = np.bincount(lab, weights=X[c].to_numpy(), minlength=k) / nz
    return ClusterSegments(labels=labels, profile=prof, model=model, order=order)
