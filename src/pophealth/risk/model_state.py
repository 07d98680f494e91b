"""A fitted risk model as plain data -- JSON plus numeric arrays -- and back, with no pickle.

:func:`to_state` turns a fitted :class:`~pophealth.risk.models.RiskModel` or
:class:`~pophealth.risk.models.CoxRiskModel` into a JSON-able tree and a dict of numeric
numpy arrays; :func:`from_state` rebuilds it. Only the classes in :data:`ALLOWED` can be
named in a state, each with a fixed list of fitted attributes (what prediction needs);
they are built by calling their constructors with plain values (numbers, strings,
numeric arrays, tuples of those) and setting the listed attributes. Nothing is imported
by name from the file, no ``__reduce__``/pickle is ever run, and arrays are read with
``allow_pickle=False`` by the caller. The decision trees of gradient boosting are checked
before use (children after their parent and inside the tree, features inside the model,
no categorical splits), since sklearn walks them in compiled code without bounds checks,
and each split's float threshold must be the bin threshold it names, since
:mod:`~pophealth.risk.tree_scoring` scores the binned table.

A state is a tagged tree: ``{"$object": class, "params": {...}, "attrs": {...}}``,
``{"$array": name}`` (numeric array), ``{"$scalar": name}`` (numpy scalar, as a 0-d
array), ``{"$strings": [...]}`` (object array of str), ``{"$tuple": [...]}``,
``{"$dtype": "float64"}``, ``{"$series": {"index": ..., "values": ..., "name": ...}}``;
lists, str, int, float (NaN and infinities included), bool and None are themselves.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError

__all__ = ["ALLOWED", "from_state", "to_state"]

_ARRAY_NAME = re.compile(r"^arrays/[0-9]{4,9}\.npy$")
_NUMERIC_KINDS = "biuf"


#: Class name -> (constructor argument names, or None for ``get_params``; the fitted
#: attributes a state may set). Plain data: :mod:`~pophealth.risk.compiled_model` reads
#: a state with it without importing scikit-learn.
LAYOUT: dict[str, tuple[tuple[str, ...] | None, tuple[str, ...]]] = {
    "RiskModel": (None, ("feature_names_in_", "n_features_in_", "classes_", "estimator_",
                         "n_iter_")),
    "CoxRiskModel": (None, (
        "feature_names_in_", "n_features_in_", "columns_", "fill_values_", "max_duration_",
        "center_", "n_fit_attempts_", "coef_", "baseline_cumulative_hazard_")),
    "CalibratedClassifierCV": (None, ("calibrated_classifiers_", "classes_", "n_features_in_")),
    "_CalibratedClassifier": (("estimator", "calibrators", "classes", "method"), ()),
    "_SigmoidCalibration": (None, ("a_", "b_")),
    "IsotonicRegression": (None, ("increasing_", "X_min_", "X_max_", "X_thresholds_",
                                  "y_thresholds_")),
    "HistGradientBoostingClassifier": (None, (
        "classes_", "n_features_in_", "n_trees_per_iteration_", "_baseline_prediction",
        "_predictors", "is_categorical_", "_preprocessor", "_is_categorical_remapped",
        "_n_features", "do_early_stopping_", "train_score_",
        "validation_score_", "_bin_mapper")),
    "_BinMapper": (None, ("bin_thresholds_", "n_bins_non_missing_", "missing_values_bin_idx_",
                          "is_categorical_")),
    "TreePredictor": (("nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"), ()),
    "Pipeline": (None, ()),
    "SimpleImputer": (None, ("statistics_", "n_features_in_", "_fit_dtype", "_fill_dtype",
                             "indicator_")),
    "StandardScaler": (None, ("mean_", "var_", "scale_", "n_features_in_", "n_samples_seen_")),
    "LogisticRegression": (None, ("classes_", "coef_", "intercept_", "n_features_in_",
                                  "n_iter_")),
}


def _specs() -> dict:
    """Class name -> (class, constructor argument names or None for get_params, attributes)."""
    from sklearn.calibration import (
        CalibratedClassifierCV,
        _CalibratedClassifier,
        _SigmoidCalibration,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.impute import SimpleImputer
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from pophealth.risk.models import CoxRiskModel, RiskModel

    classes = {cls.__name__: cls for cls in (
        RiskModel, CoxRiskModel, CalibratedClassifierCV, _CalibratedClassifier,
        _SigmoidCalibration, IsotonicRegression, HistGradientBoostingClassifier, _BinMapper,
        TreePredictor, Pipeline, SimpleImputer, StandardScaler, LogisticRegression)}
    return {name: (classes[name], *layout) for name, layout in LAYOUT.items()}


#: Class names a saved model may contain (nothing else can be built from a file).
ALLOWED: tuple[str, ...] = tuple(LAYOUT)


# ----------------------------------------------------------------------------- encoding


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.specs = _specs()

    def array(self, a: np.ndarray, tag: str = "$array") -> dict:
        if a.dtype.kind not in _NUMERIC_KINDS and not (a.dtype.kind == "V" and a.dtype.names):
            raise ConfigError(f"save_model: cannot store an array of dtype {a.dtype} "
                              "in the code-free format")
        name = f"arrays/{len(self.arrays):04d}.npy"
        self.arrays[name] = np.array(a, copy=True)
        return {tag: name}

    def value(self, v, where: str):
        if v is None or isinstance(v, bool | int | float | str) and not isinstance(v, np.generic):
            return v
        if isinstance(v, np.generic):
            return self.array(np.asarray(v), "$scalar")
        if isinstance(v, np.dtype):
            if v.kind not in _NUMERIC_KINDS:
                raise ConfigError(f"save_model: {where}: dtype {v} cannot be stored")
            return {"$dtype": v.str}
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                if not all(isinstance(x, str) for x in v.ravel().tolist()):
                    raise ConfigError(f"save_model: {where}: object array of non-strings")
                return {"$strings": [str(x) for x in v.ravel().tolist()]}
            return self.array(v)
        if isinstance(v, list):
            return [self.value(x, where) for x in v]
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x, where) for x in v]}
        if isinstance(v, pd.Series):
            return {"$series": {"index": self.value(v.index.to_numpy(), where),
                                "values": self.value(v.to_numpy(), where),
                                "name": self.value(v.name, where)}}
        return self.obj(v, where)

    def obj(self, o, where: str) -> dict:
        name = type(o).__name__
        spec = self.specs.get(name)
        if spec is None or type(o) is not spec[0]:
            raise ConfigError(f"save_model: {where}: {type(o).__module__}.{type(o).__qualname__} "
                              "is not a class the code-free model format can store")
        _, ctor, attrs = spec
        _check_savable(name, o)
        params = ({k: getattr(o, k) for k in ctor} if ctor is not None
                  else o.get_params(deep=False))
        return {"$object": name,
                "params": {k: self.value(v, f"{name}.{k}") for k, v in sorted(params.items())},
                "attrs": {k: self.value(getattr(o, k), f"{name}.{k}") for k in attrs
                          if hasattr(o, k)}}


def _check_savable(name: str, o) -> None:
    if name == "HistGradientBoostingClassifier" and hasattr(o, "_predictors"):
        if o.is_categorical_ is not None or o._preprocessor is not None:
            raise ConfigError("save_model: gradient boosting with categorical features cannot "
                              "be stored in the code-free format")
        if type(o._loss).__name__ != "HalfBinomialLoss":
            raise ConfigError("save_model: only binary gradient boosting can be stored")


def to_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """The state tree of a fitted model and its arrays (name -> array).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pophealth.risk.models import RiskModel
    >>> X = pd.DataFrame({"age": np.arange(40.0)})
    >>> model = RiskModel(method="logistic", calibration=None).fit(X, np.arange(40) % 3 == 0)
    >>> state, arrays = to_state(model)
    >>> state["$object"], state["attrs"]["feature_names_in_"], sorted(arrays)[:2]
    ('RiskModel', {'$strings': ['age']}, ['arrays/0000.npy', 'arrays/0001.npy'])
    >>> rebuilt = from_state(state, arrays)
    >>> bool((rebuilt.predict_risk(X) == model.predict_risk(X)).all())
    True
    """
    enc = _Encoder()
    if type(model).__name__ not in ("RiskModel", "CoxRiskModel"):
        raise ConfigError(f"save_model: only fitted RiskModel and CoxRiskModel can be saved "
                          f"(got {type(model).__name__})")
    return enc.obj(model, "model"), enc.arrays


# ----------------------------------------------------------------------------- decoding


def _bad(why: str) -> ConfigError:
    return ConfigError(f"load_model: the model file is not valid ({why})")


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.specs = _specs()

    def array(self, name) -> np.ndarray:
        if not isinstance(name, str) or not _ARRAY_NAME.match(name) or name not in self.arrays:
            raise _bad("an array reference is malformed or missing")
        a = self.arrays[name]
        if a.dtype.kind not in _NUMERIC_KINDS and not (a.dtype.kind == "V" and a.dtype.names):
            raise _bad("an array is not numeric")
        return a

    def value(self, v):
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict) or len(v) != 1 and "$object" not in v:
            raise _bad("an entry has an unknown form")
        if "$object" in v:
            return self.obj(v)
        (tag, body), = v.items()
        if tag == "$array":
            return self.array(body)
        if tag == "$scalar":
            a = self.array(body)
            if a.shape != ():
                raise _bad("a scalar is not 0-dimensional")
            return a[()]
        if tag == "$strings":
            if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
                raise _bad("a string array holds non-strings")
            return np.asarray(body, dtype=object)
        if tag == "$tuple" and isinstance(body, list):
            return tuple(self.value(x) for x in body)
        if tag == "$dtype" and isinstance(body, str):
            dt = np.dtype(body) if re.fullmatch(r"[<>|=]?[biuf][1248]", body) else None
            if dt is None:
                raise _bad("a dtype is not numeric")
            return dt
        if tag == "$series" and isinstance(body, dict) and set(body) == {"index", "values",
                                                                          "name"}:
            return pd.Series(self.value(body["values"]), index=self.value(body["index"]),
                             name=self.value(body["name"]))
        raise _bad("an entry has an unknown tag")

    def obj(self, v: dict):
        if set(v) != {"$object", "params", "attrs"}:
            raise _bad("an object entry has unexpected keys")
        name = v["$object"]
        if not isinstance(name, str) or name not in ALLOWED:
            raise _bad("it names a class outside the allowed list")
        cls, ctor, attrs = self.specs[name]
        params, values = v["params"], v["attrs"]
        if not isinstance(params, dict) or not isinstance(values, dict):
            raise _bad("an object entry is malformed")
        allowed = set(ctor) if ctor is not None else set(cls._get_param_names())
        if not set(params) <= allowed or not set(values) <= set(attrs):
            raise _bad(f"a {name} has parameters or attributes outside its allowed list")
        kwargs = {k: self.value(x) for k, x in params.items()}
        try:
            o = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise _bad(f"a {name} cannot be built ({type(exc).__name__})") from None
        for k, x in values.items():
            value = self.value(x)
            try:
                setattr(o, k, value)
            except AttributeError:
                raise _bad(f"a {name} attribute cannot be set") from None
        _finish(name, o)
        return o


#: scikit-learn's tree node record (``PREDICTOR_RECORD_DTYPE``), written out so that a
#: tree can be checked without importing scikit-learn (a test compares the two).
TREE_RECORD_DTYPE = np.dtype([
    ("value", "<f8"), ("count", "<u4"), ("feature_idx", "<i8"), ("num_threshold", "<f8"),
    ("missing_go_to_left", "u1"), ("left", "<u4"), ("right", "<u4"), ("gain", "<f8"),
    ("depth", "<u4"), ("is_leaf", "u1"), ("bin_threshold", "u1"), ("is_categorical", "u1"),
    ("bitset_idx", "<u4")])


def _check_tree(p, n_features: int) -> None:
    nodes = p.nodes
    if (not isinstance(nodes, np.ndarray) or nodes.dtype != TREE_RECORD_DTYPE
            or nodes.ndim != 1 or len(nodes) == 0):
        raise _bad("a tree's node table has the wrong type")
    i = np.arange(len(nodes))
    split = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    bad = split & ((left <= i) | (right <= i) | (left >= len(nodes)) | (right >= len(nodes))
                   | (nodes["feature_idx"] < 0) | (nodes["feature_idx"] >= n_features))
    if bad.any() or (nodes["is_categorical"] != 0).any():
        raise _bad("a tree has out-of-range children or features, or categorical splits")
    for b in (p.binned_left_cat_bitsets, p.raw_left_cat_bitsets):
        if not isinstance(b, np.ndarray) or b.dtype != np.uint32 or b.shape != (0, 8):
            raise _bad("a tree has categorical bitsets")


def _bin_table(mapper, n_features: int) -> np.ndarray:
    """(feature, bin) -> the float threshold a split at that bin has (inf: last bin, NaN: none)."""
    thresholds = getattr(mapper, "bin_thresholds_", None)
    miss = getattr(mapper, "missing_values_bin_idx_", None)
    if (not isinstance(thresholds, list) or len(thresholds) != n_features
            or not all(isinstance(t, np.ndarray) and t.ndim == 1 and t.dtype.kind == "f"
                       and len(t) <= 254 for t in thresholds)
            or not isinstance(miss, int | np.integer) or not 0 < int(miss) <= 255):
        raise _bad("gradient boosting has no valid bin thresholds")
    table = np.full((n_features, 256), np.nan)
    for f, t in enumerate(thresholds):  # features, not patients
        table[f, :len(t)] = t
        table[f, len(t)] = np.inf
    return table


def _check_tree_bins(p, table: np.ndarray) -> None:
    """Each split's float threshold is the bin threshold it names (scoring on bins relies on it)."""
    nodes = p.nodes
    split = nodes["is_leaf"] == 0
    f = nodes["feature_idx"][split].astype(np.intp)
    expected = table[f, nodes["bin_threshold"][split].astype(np.intp)]
    if not np.array_equal(expected, nodes["num_threshold"][split]):
        raise _bad("a tree's split thresholds differ from its bin thresholds")


def _finish(name: str, o) -> None:
    """Rebuild derived state and check what compiled code will trust."""
    if name == "IsotonicRegression" and hasattr(o, "X_thresholds_"):
        o._build_f(o.X_thresholds_, o.y_thresholds_)
    if name == "HistGradientBoostingClassifier" and hasattr(o, "_predictors"):
        if (o.is_categorical_ is not None or o._preprocessor is not None
                or o.n_trees_per_iteration_ != 1 or not isinstance(o.n_features_in_, int)):
            raise _bad("gradient boosting that is not binary or has categorical features")
        table = _bin_table(getattr(o, "_bin_mapper", None), o.n_features_in_)
        for it in o._predictors:
            if not isinstance(it, list) or len(it) != 1:
                raise _bad("gradient boosting iterations are malformed")
            _check_tree(it[0], o.n_features_in_)
            _check_tree_bins(it[0], table)
        o._loss = o._get_loss(sample_weight=None)


def from_state(state: dict, arrays: dict[str, np.ndarray]):
    """Rebuild the model described by :func:`to_state`'s output.

    Raises
    ------
    ConfigError
        When the state names a class outside :data:`ALLOWED`, an attribute outside the
        class's list, an array that is missing or not numeric, or a malformed tree.
    """
    try:
        model = _Decoder(arrays).obj(state) if isinstance(state, dict) else None
    except RecursionError:
        raise _bad("it is nested too deeply") from None
    if type(model).__name__ not in ("RiskModel", "CoxRiskModel"):
        raise _bad("the top-level object is not a RiskModel or CoxRiskModel")
    return model
