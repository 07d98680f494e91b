"""Risk models for emergency admission in the next 12 months.

* :class:`RiskModel` - a scikit-learn classifier (default: histogram gradient boosting
  refitted on all rows, Platt-calibrated on 3-fold out-of-fold predictions) with
  :meth:`RiskModel.predict_risk`; calibrated boosting is scored by the exact evaluator of
  :mod:`pophealth.risk.tree_scoring`, exactly as scikit-learn scores it.
* :class:`CoxRiskModel` - lifelines' Cox proportional-hazards model of the time to the
  first emergency admission (``fitter_``), giving the same kind of risk Series.
* :func:`survival_target` - (duration, event) from an outcomes table, censoring at
  death or the end of follow-up.

Both models refuse to score a table whose columns differ from the ones they were
fitted on (:class:`~pophealth.contracts.exceptions.SchemaError` naming the columns).
They follow scikit-learn's estimator protocol (:class:`~pophealth.risk.estimator_base.Estimator`)
but import scikit-learn only to fit, to validate unusual input and to score models that
:mod:`~pophealth.risk.compiled_model` does not cover: a saved calibrated gradient-boosting
model is loaded and scored without scikit-learn or scipy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.risk.estimator_base import Estimator

__all__ = ["RiskModel", "CoxRiskModel", "survival_target", "check_feature_names"]

_NAME_MISMATCH = "The feature names should match those that were passed during fit"


def check_feature_names(X, expected, *, who: str = "model") -> None:
    """Raise :class:`SchemaError` if DataFrame ``X`` lacks, adds or reorders fitted features.

    The message names the missing and unexpected columns (never values). Arrays, and
    models fitted without names (``expected`` is None), are not checked.

    Examples
    --------
    >>> import pandas as pd
    >>> check_feature_names(pd.DataFrame(columns=["age", "male"]), ["age", "imd_decile"])
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: model: The feature names should match those that were passed during fit; missing column(s) ['imd_decile']; unexpected column(s) ['male']
    """
    if expected is None or not isinstance(X, pd.DataFrame):
        return
    expected = [str(c) for c in expected]
    got = [str(c) for c in X.columns]
    if got == expected:
        return
    missing = [c for c in expected if c not in set(got)]
    extra = [c for c in got if c not in set(expected)]
    parts = [f"{who}: {_NAME_MISMATCH}"]
    if missing:
        parts.append(f"missing column(s) {missing}")
    if extra:
        parts.append(f"unexpected column(s) {extra}")
    if not missing and not extra:
        parts.append("same columns in a different order (select X[model.feature_names_in_])")
    problems = ([{"column": c, "rule": "missing_feature", "count": 0, "positions": []}
                 for c in missing]
                + [{"column": c, "rule": "unexpected_feature", "count": 0, "positions": []}
                   for c in extra])
    raise SchemaError("; ".join(parts), problems)


def _risk_series(values: np.ndarray, X) -> pd.Series:
    index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(values))
    return pd.Series(values, index=index, name="risk")


class RiskModel(Estimator):
    """Calibrated classifier of emergency admission in the next 12 months.

    Parameters
    ----------
    method : {"hgb", "logistic"}, default "hgb"
        ``"hgb"``: :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (missing
        values handled natively, no early stopping, so fitting is deterministic);
        ``"logistic"``: median imputation, standardisation and L2 logistic regression.
    calibration : {"sigmoid", "isotonic", None}, default "sigmoid"
        Wrap the model in :class:`~sklearn.calibration.CalibratedClassifierCV` with
        ``cv`` stratified folds (no shuffling); ``None`` fits the model alone.
    cv : int, default 3
    ensemble : bool, default False
        Passed to ``CalibratedClassifierCV``. ``False`` (default since issue 14) fits the
        calibrator on ``cv``-fold out-of-fold predictions and scores with one model refitted
        on all rows; ``True`` averages ``cv`` calibrated fold models (``cv`` times the
        scoring cost for no accuracy gain: see ``benchmarks/results/risk_speed.md``).
    learning_rate, max_iter, max_leaf_nodes : float, int, int, default 0.2, 50, 7
        Passed to the gradient-boosting model. Since issue 14: 50 trees of at most 7
        leaves (was 100 of 31 at rate 0.1): the same held-out AUROC to 0.001 on the
        synthetic population of the time (200k and 500k training rows) at a fraction of
        the scoring cost, since each tree is scored by table lookups
        (:func:`~pophealth.risk.tree_scoring.compile_tree`); see
        ``benchmarks/results/risk_speed.md``.
    l2_regularization : float, default 0.0
        Passed to the gradient-boosting model.
    C : float, default 1.0
        Inverse regularisation strength of the logistic model.
    random_state : int, default 0
        Seed passed to the gradient-boosting model.

    Attributes
    ----------
    estimator_ : fitted scikit-learn estimator
    classes_ : ndarray of shape (2,)
    n_iter_ : int
        Boosting iterations (or logistic solver iterations), the largest over the folds.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame; scoring then requires the same columns.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": rng.uniform(20, 90, 400), "prior": rng.poisson(0.3, 400)})
    >>> y = rng.random(400) < 1 / (1 + np.exp(-(X["age"] - 70) / 10 - X["prior"]))
    >>> model = RiskModel(method="logistic").fit(X, y)
    >>> risk = model.predict_risk(X)
    >>> risk.name, len(risk), bool(risk.between(0, 1).all())
    ('risk', 400, True)
    """

    def __init__(self, method: str = "hgb", calibration: str | None = "sigmoid", cv: int = 3,
                 ensemble: bool = False, learning_rate: float = 0.2, max_iter: int = 50,
                 max_leaf_nodes: int = 7, l2_regularization: float = 0.0, C: float = 1.0,
                 random_state: int = 0):
        self.method = method
        self.calibration = calibration
        self.cv = cv
        self.ensemble = ensemble
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.C = C
        self.random_state = random_state

    _estimator_type_tag = "classifier"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def __getattr__(self, name: str):
        # a model read from a file by load_model keeps its state and builds the
        # scikit-learn estimator (importing scikit-learn) only when it is asked for
        if name == "estimator_":
            state = self.__dict__.get("_state")
            if state is not None:
                from pophealth.risk.model_state import from_state

                self.estimator_ = from_state(*state).estimator_
                del self.__dict__["_state"]
                return self.estimator_
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)`` (scikit-learn's classifier score)."""
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def _base(self):
        if self.method == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(
                learning_rate=self.learning_rate, max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes, l2_regularization=self.l2_regularization,
                early_stopping=False, random_state=self.random_state)
        if self.method == "logistic":
            from sklearn.impute import SimpleImputer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                 StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
        raise ConfigError(f"RiskModel: parameter 'method' must be 'hgb' or 'logistic' "
                          f"(got {self.method!r})")

    def fit(self, X, y):
        """Fit on a feature table ``X`` and a binary outcome ``y``; returns ``self``."""
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        base = self._base()
        if self.calibration not in ("sigmoid", "isotonic", None):
            raise ConfigError("RiskModel: parameter 'calibration' must be 'sigmoid', "
                              f"'isotonic' or None (got {self.calibration!r})")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError("Only binary classification is supported. RiskModel: y has "
                             f"{len(self.classes_)} class(es), expected 2")
        if self.calibration is None:
            estimator = base.fit(X, y)
        else:
            from sklearn.calibration import CalibratedClassifierCV

            estimator = CalibratedClassifierCV(base, method=self.calibration, cv=self.cv,
                                               ensemble=self.ensemble).fit(X, y)
        self.__dict__.pop("_state", None)  # a refit model scores with its new estimator
        self.__dict__.pop("_compiled", None)
        self.estimator_ = estimator
        self.n_iter_ = _n_iter(self.estimator_)
        return self

    def _validated(self, X):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        check_feature_names(X, getattr(self, "feature_names_in_", None), who="RiskModel")
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan")

    def _plain_table(self, X) -> np.ndarray | None:
        """``X`` as the float64 table scikit-learn's validation would give, for a model read
        by :func:`~pophealth.risk.model_io.load_model` and scored without scikit-learn;
        None when ``X`` is anything but a DataFrame of plain numeric columns with finite
        or NaN values (scikit-learn's validation then converts it or raises its error)."""
        check_feature_names(X, getattr(self, "feature_names_in_", None), who="RiskModel")
        if (not isinstance(X, pd.DataFrame) or len(X) == 0
                or X.shape[1] != self.n_features_in_
                or not all(isinstance(t, np.dtype) and t.kind in "biuf" for t in X.dtypes)):
            return None
        A = X.to_numpy(dtype=np.float64)
        return None if np.isinf(A).any() else A

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, 2), columns in ``classes_`` order.

        Equal to the fitted scikit-learn estimator's ``predict_proba`` (calibrated gradient
        boosting is scored through :func:`~pophealth.risk.tree_scoring.raw_predict`,
        which gives the same raw scores bit for bit).
        """
        compiled = self.__dict__.get("_compiled")
        if compiled is not None:  # read from a file: scored from its arrays (numpy only)
            A = self._plain_table(X)
            if A is not None:
                return compiled.predict_proba(A)
        X = self._validated(X)
        est = self.estimator_
        if self.method != "hgb" or not hasattr(est, "calibrated_classifiers_"):
            return est.predict_proba(X)
        # calibrated gradient boosting: raw scores by lookup tables (exactly sklearn's,
        # see risk.tree_scoring), then each calibrator and the mean, as sklearn does
        from pophealth.risk.tree_scoring import raw_predict

        proba = np.zeros((len(X), 2))
        for cc in est.calibrated_classifiers_:
            pos = cc.calibrators[0].predict(raw_predict(cc.estimator, X))
            proba[:, 1] += pos
            proba[:, 0] += 1.0 - pos
        return proba / len(est.calibrated_classifiers_)

    def predict(self, X) -> np.ndarray:
        """Most probable class (threshold 0.5; use :meth:`predict_risk` for ranking)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_risk(self, X) -> pd.Series:
        """Probability of the positive class (``classes_[1]``) as a Series named ``risk``.

        Indexed like ``X`` when it is a DataFrame (else a RangeIndex).
        """
        return _risk_series(self.predict_proba(X)[:, 1], X)


def _n_iter(fitted) -> int:
    """Largest number of solver/boosting iterations over the fitted (calibrated) models."""
    models = [c.estimator for c in getattr(fitted, "calibrated_classifiers_", [])] or [fitted]
    models = [m.steps[-1][1] if hasattr(m, "steps") else m for m in models]
    return int(max(np.max(m.n_iter_) for m in models))


def survival_target(outcomes: pd.DataFrame, *, event: str = "emergency_admission",
                    time: str = "days_to_emergency_admission",
                    censor: str = "end_of_follow_up_days") -> pd.DataFrame:
    """Time-to-first-event target for :class:`CoxRiskModel`.

    ``duration`` is ``outcomes[time]`` for patients with the event and
    ``outcomes[censor]`` (death, deregistration or end of follow-up) for the others.

    Returns
    -------
    DataFrame
        Columns ``duration`` (float days > 0) and ``event`` (bool), indexed like outcomes.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> out = pd.DataFrame({"emergency_admission": [True, False, False],
    ...                     "days_to_emergency_admission": [40.0, np.nan, np.nan],
    ...                     "end_of_follow_up_days": [365.0, 120.0, 365.0]})
    >>> survival_target(out)
       duration  event
    0      40.0   True
    1     120.0  False
    2     365.0  False
    """
    missing = [c for c in (event, time, censor) if c not in outcomes.columns]
    if missing:
        raise SchemaError(f"outcomes: missing column(s) {missing} (rule 'missing_column')",
                          [{"column": c, "rule": "missing_column", "count": 0, "positions": []}
                           for c in missing])
    ev = outcomes[event].astype(bool).to_numpy()
    dur = np.where(ev, pd.to_numeric(outcomes[time], errors="coerce"),
                   pd.to_numeric(outcomes[censor], errors="coerce")).astype(float)
    bad = ~np.isfinite(dur) | (dur <= 0)
    if bad.any():
        raise SchemaError(f"outcomes: {int(bad.sum())} row(s) have a missing, infinite or "
                          f"non-positive duration (columns '{time}'/'{censor}', rule "
                          f"'positive_duration'); first positions {np.flatnonzero(bad)[:10].tolist()}")
    return pd.DataFrame({"duration": dur, "event": ev}, index=outcomes.index)


class CoxRiskModel(Estimator):
    """Cox proportional-hazards model of time to first emergency admission (lifelines).

    The design matrix is the feature table with ``log1p`` applied to the non-negative
    utilisation columns (names starting ``prior_``) when ``log_utilisation``, hinge terms
    ``max(age - k, 0) / 10`` for each of ``age_knots`` when there is an ``age`` column,
    missing values filled with the training medians, and constant training columns
    dropped. ``predict_risk`` gives ``1 - S(horizon | x)``.

    Parameters
    ----------
    penalizer : float, default 0.01
        L2 penalty passed to :class:`lifelines.CoxPHFitter` (collinear features such as
        condition counts and their flags need some).
    age_knots : tuple of float, default (50, 65, 80)
    log_utilisation : bool, default True
    step_size : float, default 0.2
        Newton-Raphson step size for lifelines (its default 0.95 can diverge here); halved
        and refitted, up to twice, if lifelines warns that it did not converge.

    Attributes
    ----------
    fitter_ : lifelines.CoxPHFitter
        The fitted lifelines model (after :meth:`fit` only: a model read by
        :func:`~pophealth.risk.model_io.load_model` has ``coef_`` and
        ``baseline_cumulative_hazard_``, which are all that scoring uses).
    coef_ : Series
        Coefficients by design column (``fitter_.params_``).
    baseline_cumulative_hazard_ : Series
        Baseline cumulative hazard by time in days (``fitter_.baseline_cumulative_hazard_``).
    feature_names_in_ : ndarray of str
    n_features_in_ : int
    columns_ : list of str
        Design columns given to lifelines.
    fill_values_ : Series
        Training medians used for missing values.
    max_duration_ : float
        Longest observed training time; ``horizon_days`` may not exceed it.
    center_ : ndarray
        Training means of the design columns (partial hazards are relative to them).
    n_fit_attempts_ : int
        Fits needed to converge (1 to 3).

    Notes
    -----
    lifelines' ``concordance_index(times, scores, events)`` expects scores where *higher
    means longer survival*; :meth:`score` passes ``-partial_hazard`` so that, like
    ``fitter_.concordance_index_``, higher C means better discrimination.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> X = pd.DataFrame({"age": rng.uniform(20, 90, 300), "prior_cost": rng.gamma(1, 500, 300)})
    >>> t = rng.exponential(2000 * np.exp(-(X["age"] - 50) / 20))
    >>> y = pd.DataFrame({"duration": np.minimum(t, 365).clip(1), "event": t < 365})
    >>> cox = CoxRiskModel().fit(X, y)
    >>> risk = cox.predict_risk(X, horizon_days=365)
    >>> risk.name, bool(risk.between(0, 1).all()), cox.score(X, y) > 0.5
    ('risk', True, True)
    """

    def __init__(self, penalizer: float = 0.01, age_knots: tuple = (50, 65, 80),
                 log_utilisation: bool = True, step_size: float = 0.2):
        self.penalizer = penalizer
        self.step_size = step_size
        self.age_knots = age_knots
        self.log_utilisation = log_utilisation

    def _frame(self, X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        arr = np.asarray(X, dtype=float)
        return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])

    def _design(self, X: pd.DataFrame) -> pd.DataFrame:
        cols = {}
        for c in X.columns:
            v = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if self.log_utilisation and str(c).startswith("prior_"):
                v = np.log1p(np.clip(v, 0, None))
            cols[str(c)] = v
        if "age" in cols:
            for k in self.age_knots:
                cols[f"age_over_{k:g}"] = np.clip(cols["age"] - k, 0, None) / 10
        return pd.DataFrame(cols, index=X.index)

    def fit(self, X, y):
        """Fit on features ``X`` and ``y`` with columns ``duration`` and ``event``."""
        from lifelines import CoxPHFitter

        X = self._frame(X)
        if not isinstance(y, pd.DataFrame) or not {"duration", "event"} <= set(y.columns):
            raise SchemaError("CoxRiskModel.fit: y must be a DataFrame with columns "
                              "'duration' and 'event' (see survival_target)")
        if len(y) != len(X):
            raise SchemaError(f"CoxRiskModel.fit: X has {len(X)} rows but y has {len(y)}")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        design = self._design(X)
        self.fill_values_ = design.median().fillna(0.0)
        design = design.fillna(self.fill_values_)
        self.columns_ = [c for c in design.columns if design[c].nunique() > 1]
        df = design[self.columns_].assign(
            __duration=y["duration"].to_numpy(dtype=float),
            __event=y["event"].to_numpy(dtype=bool))
        self.max_duration_ = float(df["__duration"].max())
        self.center_ = design[self.columns_].mean().to_numpy()  # lifelines centres the same way
        # lifelines' default Newton step (0.95) can diverge on correlated hinge/count
        # columns; on a convergence warning, refit with half the step (twice at most)
        from lifelines.exceptions import ConvergenceWarning

        for attempt in range(3):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                self.fitter_ = CoxPHFitter(penalizer=self.penalizer).fit(
                    df, duration_col="__duration", event_col="__event",
                    fit_options={"step_size": self.step_size / 2 ** attempt, "max_steps": 500})
            failed = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
            for w in caught:
                if w not in failed:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if not failed:
                break
        else:
            warnings.warn("CoxRiskModel: lifelines did not converge with step sizes "
                          f"{self.step_size:g} to {self.step_size / 4:g}; raise 'penalizer'",
                          ConvergenceWarning, stacklevel=2)
        self.n_fit_attempts_ = attempt + 1
        self.coef_ = self.fitter_.params_.astype(float).copy()
        self.baseline_cumulative_hazard_ = (
            self.fitter_.baseline_cumulative_hazard_.iloc[:, 0].astype(float).copy())
        return self

    def _design_column(self, cols: dict, name: str) -> np.ndarray:
        """One design column from ``cols`` (name -> Series), as in :meth:`_design`."""
        if name.startswith("age_over_") and name not in cols:
            age = pd.to_numeric(cols["age"], errors="coerce").to_numpy(dtype=float,
                                                                       na_value=np.nan)
            return np.clip(age - float(name[len("age_over_"):]), 0, None) / 10
        v = pd.to_numeric(cols[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan,
                                                                 copy=True)
        if self.log_utilisation and name.startswith("prior_"):
            v = np.log1p(np.clip(v, 0, None))
        return v

    def _log_partial_hazard(self, X) -> np.ndarray:
        """``(x - training mean) @ coefficients``, as lifelines, one column at a time (O(n) memory)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        check_feature_names(X, self.feature_names_in_, who="CoxRiskModel")
        X = self._frame(X)
        if X.shape[1] != self.n_features_in_:
            raise SchemaError(f"CoxRiskModel: X has {X.shape[1]} features, "
                              f"expected {self.n_features_in_}")
        cols = {str(c): X[c] for c in X.columns}
        coef = self.coef_
        lph = np.full(len(X), -float(self.center_ @ coef[self.columns_].to_numpy()))
        for name in self.columns_:
            v = self._design_column(cols, name)
            v[np.isnan(v)] = self.fill_values_[name]
            lph += float(coef[name]) * v
        return lph

    def predict_risk(self, X, horizon_days: float = 365) -> pd.Series:
        """Probability of a first emergency admission within ``horizon_days``, named ``risk``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if not 0 < horizon_days <= self.max_duration_:
            raise ConfigError(f"CoxRiskModel: 'horizon_days' must be in (0, "
                              f"{self.max_duration_:g}], the longest training follow-up")
        base = self.baseline_cumulative_hazard_
        h0 = float(base[base.index <= horizon_days].iloc[-1]) if (base.index <= horizon_days).any() else 0.0
        risk = -np.expm1(-h0 * np.exp(self._log_partial_hazard(X)))
        return _risk_series(risk, X)

    def score(self, X, y) -> float:
        """Harrell's C on (X, y): higher is better, 0.5 is chance (sign handled, see Notes)."""
        from lifelines.utils import concordance_index

        return float(concordance_index(y["duration"].to_numpy(dtype=float),
                                       -self._log_partial_hazard(X),
                                       y["event"].to_numpy(dtype=bool)))
