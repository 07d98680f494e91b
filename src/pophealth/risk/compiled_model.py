"""A saved calibrated gradient-boosting RiskModel scored from plain arrays, without scikit-learn.

:func:`compile_state` reads the state of a saved model (see
:mod:`~pophealth.risk.model_state`) and, when it is calibrated binary gradient boosting
(``method="hgb"``, ``calibration`` ``"sigmoid"`` or ``"isotonic"``, every tree small
enough for a lookup table), returns a :class:`CompiledScorer`: the trees as lookup tables
(:func:`~pophealth.risk.tree_scoring.compile_tree`), each model's baseline and its
calibrator's numbers. :meth:`CompiledScorer.predict_proba` then does scikit-learn's
arithmetic with numpy alone, giving the same probabilities - bit for bit, except that
numpy's ``exp`` in the sigmoid may differ from libm's (which scipy uses) in the last bit
or two on CPUs where numpy uses its own AVX-512 kernel (measured: <= 2 ulp, ~2 % of values):

* the raw score: :func:`~pophealth.risk.tree_scoring.raw_predict_lookup`;
* sigmoid calibration (``_SigmoidCalibration.predict``): ``expit(-(a * raw + b))`` with
  scipy's ``expit(x) = 1 / (1 + exp(-x))``;
* isotonic calibration (``IsotonicRegression.predict`` with ``out_of_bounds="clip"``):
  ``raw`` clipped to ``[X_min_, X_max_]`` then scipy's linear ``interp1d``, which is
  ``numpy.interp`` over the (stably sorted) thresholds, NaN outside them;
* the mean over the calibrated models, as :meth:`RiskModel.predict_proba` computes it.

The state is read with the same checks as :func:`~pophealth.risk.model_state.from_state`
(allowed classes, parameters and attributes; trees, bins and thresholds); anything this
module does not cover, or any doubt, gives None, and the caller builds the model with
scikit-learn, which raises the file's error if there is one.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from pophealth.contracts.exceptions import ConfigError
from pophealth.risk.model_state import (
    LAYOUT,
    _bin_table,
    _check_tree,
    _check_tree_bins,
    _Decoder,
)
from pophealth.risk.tree_scoring import compile_tree, raw_predict_lookup

__all__ = ["PARAM_NAMES", "CompiledScorer", "compile_state"]

#: scikit-learn's parameter names (``_get_param_names()``) of the classes this module reads
#: (scikit-learn 1.9; a test compares them with the installed version). A state with
#: another parameter is left to scikit-learn.
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "CalibratedClassifierCV": ("cv", "ensemble", "estimator", "method", "n_jobs"),
    "_SigmoidCalibration": (),
    "IsotonicRegression": ("increasing", "out_of_bounds", "y_max", "y_min"),
    "HistGradientBoostingClassifier": (
        "categorical_features", "class_weight", "early_stopping", "interaction_cst",
        "l2_regularization", "learning_rate", "loss", "max_bins", "max_depth",
        "max_features", "max_iter", "max_leaf_nodes", "min_samples_leaf", "monotonic_cst",
        "n_iter_no_change", "random_state", "scoring", "tol", "validation_fraction",
        "verbose", "warm_start"),
    "_BinMapper": ("is_categorical", "known_categories", "n_bins", "n_threads",
                   "random_state", "subsample"),
}


class _NotCovered(Exception):
    """The state is outside what this module scores (scikit-learn builds it instead)."""


class _PlainDecoder(_Decoder):
    """:class:`~pophealth.risk.model_state._Decoder` building namespaces, not classes."""

    def __init__(self, arrays: dict[str, np.ndarray], risk_params: tuple[str, ...]) -> None:
        self.arrays = arrays
        self.params = {**PARAM_NAMES, "RiskModel": risk_params}

    def obj(self, v: dict):
        if not isinstance(v, dict) or set(v) != {"$object", "params", "attrs"}:
            raise _NotCovered
        name = v["$object"]
        if name not in LAYOUT:
            raise _NotCovered
        ctor, attrs = LAYOUT[name]
        allowed = ctor if ctor is not None else self.params.get(name)
        params, values = v["params"], v["attrs"]
        if (allowed is None or not isinstance(params, dict) or not isinstance(values, dict)
                or not set(params) <= set(allowed) or not set(values) <= set(attrs)):
            raise _NotCovered
        out = SimpleNamespace(cls=name, params={k: self.value(x) for k, x in params.items()})
        for k, x in values.items():
            setattr(out, k, self.value(x))
        for k, x in out.params.items():
            if ctor is not None:
                setattr(out, k, x)
        return out


class _Sigmoid:
    """scikit-learn's ``_SigmoidCalibration.predict``: ``expit(-(a * T + b))``."""

    def __init__(self, a, b) -> None:
        self.a, self.b = a, b

    def predict(self, T: np.ndarray) -> np.ndarray:
        z = -(self.a * T + self.b)
        with np.errstate(over="ignore"):  # exp(-z) = inf gives 0, silently as in scipy
            return 1.0 / (1.0 + np.exp(-z))  # scipy.special.expit's formula


class _Isotonic:
    """scikit-learn's ``IsotonicRegression.predict`` with ``out_of_bounds="clip"``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, lo, hi) -> None:
        order = np.argsort(x, kind="mergesort")  # as scipy's interp1d
        self.x, self.y, self.lo, self.hi = x[order], y[order], lo, hi

    def predict(self, T: np.ndarray) -> np.ndarray:
        T = np.clip(T, self.lo, self.hi)
        if len(self.y) == 1:
            return self.y.repeat(T.shape)
        res = np.interp(T, self.x, self.y)
        res[T < self.x[0]] = np.nan  # interp1d's fill value outside the thresholds
        res[T > self.x[-1]] = np.nan
        return res


class CompiledScorer:
    """Calibrated lookup-table trees: ``predict_proba`` of a calibrated gradient-boosting
    :class:`~pophealth.risk.models.RiskModel`, equal to it (bit for bit but for the
    sigmoid's ``exp``: module docstring), in numpy alone.

    Parameters
    ----------
    members : list of (trees, baseline, calibrator)
        Per calibrated model: :func:`~pophealth.risk.tree_scoring.compile_tree` results,
        the baseline raw score and an object with ``predict(raw)``.
    n_features : int
    """

    def __init__(self, members: list, n_features: int) -> None:
        self.members = members
        self.n_features = n_features

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 2), for a float64 table of ``n_features`` columns."""
        proba = np.zeros((len(X), 2))
        for trees, baseline, calibrator in self.members:
            pos = calibrator.predict(raw_predict_lookup(trees, baseline, X))
            proba[:, 1] += pos
            proba[:, 0] += 1.0 - pos
        return proba / len(self.members)


def _f8(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 1


def _calibrator(c) -> _Sigmoid | _Isotonic:
    if c.cls == "_SigmoidCalibration":
        a, b = getattr(c, "a_", None), getattr(c, "b_", None)
        if not all(isinstance(v, float | np.floating) for v in (a, b)):
            raise _NotCovered
        return _Sigmoid(a, b)
    if c.cls == "IsotonicRegression":
        x, y = getattr(c, "X_thresholds_", None), getattr(c, "y_thresholds_", None)
        lo, hi = getattr(c, "X_min_", None), getattr(c, "X_max_", None)
        if (c.params.get("out_of_bounds", "nan") != "clip" or not _f8(x) or not _f8(y)
                or len(x) != len(y) or len(x) == 0
                or not all(isinstance(v, float | np.floating) for v in (lo, hi))):
            raise _NotCovered
        return _Isotonic(x, y, lo, hi)
    raise _NotCovered


def _member(cc, n_features: int) -> tuple:
    """One ``_CalibratedClassifier``: its trees, baseline and calibrator, checked as
    :func:`~pophealth.risk.model_state.from_state` checks them."""
    est, cals = cc.estimator, cc.calibrators
    if (cc.cls != "_CalibratedClassifier" or est.cls != "HistGradientBoostingClassifier"
            or not isinstance(cals, list) or len(cals) != 1):
        raise _NotCovered
    if (getattr(est, "is_categorical_", 0) is not None
            or getattr(est, "_preprocessor", 0) is not None
            or getattr(est, "n_trees_per_iteration_", None) != 1
            or getattr(est, "n_features_in_", None) != n_features
            or not isinstance(getattr(est, "_predictors", None), list)):
        raise _NotCovered
    mapper = getattr(est, "_bin_mapper", None)
    if getattr(mapper, "cls", None) != "_BinMapper":
        raise _NotCovered
    table = _bin_table(mapper, n_features)
    trees = []
    for it in est._predictors:  # trees, not patients
        if not isinstance(it, list) or len(it) != 1 or getattr(it[0], "cls", None) != (
                "TreePredictor"):
            raise _NotCovered
        _check_tree(it[0], n_features)
        _check_tree_bins(it[0], table)
        compiled = compile_tree(it[0].nodes)
        if compiled is None:
            raise _NotCovered
        trees.append(compiled)
    base = getattr(est, "_baseline_prediction", None)
    if not isinstance(base, np.ndarray) or base.dtype != np.float64 or base.size != 1:
        raise _NotCovered
    return trees, float(base.ravel()[0]), _calibrator(cals[0])


def compile_state(state, arrays: dict[str, np.ndarray], risk_params: tuple[str, ...]):
    """``(params, attrs, scorer)`` of a saved calibrated gradient-boosting RiskModel, or None.

    ``params`` are the RiskModel's constructor arguments, ``attrs`` its fitted attributes
    other than ``estimator_`` and ``scorer`` a :class:`CompiledScorer`. None when the
    state is another model, is not covered here, or fails a check (the caller then
    builds it with :func:`~pophealth.risk.model_state.from_state`, which raises the
    file's error).
    """
    try:
        if not isinstance(state, dict) or state.get("$object") != "RiskModel":
            return None
        model = _PlainDecoder(arrays, risk_params).obj(state)
        p = model.params
        if p.get("method") != "hgb" or p.get("calibration") not in ("sigmoid", "isotonic"):
            return None
        names, n = getattr(model, "feature_names_in_", None), getattr(model, "n_features_in_",
                                                                       None)
        est = getattr(model, "estimator_", None)
        if (not isinstance(names, np.ndarray) or not isinstance(n, int) or len(names) != n
                or getattr(est, "cls", None) != "CalibratedClassifierCV"
                or not isinstance(getattr(est, "calibrated_classifiers_", None), list)
                or not est.calibrated_classifiers_):
            return None
        members = [_member(cc, n) for cc in est.calibrated_classifiers_]
        classes = getattr(model, "classes_", None)
        if not isinstance(classes, np.ndarray) or classes.shape != (2,):
            return None
        attrs = {k: v for k, v in vars(model).items() if k not in ("cls", "params",
                                                                     "estimator_")}
        return p, attrs, CompiledScorer(members, n)
    except (_NotCovered, ConfigError, AttributeError, TypeError, ValueError, KeyError,
            IndexError, RecursionError):
        return None
