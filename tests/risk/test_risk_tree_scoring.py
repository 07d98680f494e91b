"""The exact tree evaluators of risk.tree_scoring against scikit-learn's own prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier

from pophealth.risk import tree_scoring
from pophealth.risk.models import RiskModel
from pophealth.risk.tree_scoring import (
    compile_tree,
    raw_predict_binned,
    raw_predict_numpy,
    tree_arrays,
)


def _data(seed: int, n: int, p: int, nan_rate: float, integer: bool):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    if integer:  # counts and flags like the feature table: many ties at the thresholds
        X = np.floor(X * 2)
    X[rng.random((n, p)) < nan_rate] = np.nan
    signal = np.nan_to_num(X[:, 0]) - np.isnan(X[:, -1]) + rng.normal(size=n)
    return X, signal > 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(40, 300), p=st.integers(1, 5),
       nan_rate=st.sampled_from([0.0, 0.1, 0.5]), integer=st.booleans(),
       leaves=st.integers(2, 12), iters=st.integers(1, 15))
def test_evaluators_equal_sklearn_raw_prediction(seed, n, p, nan_rate, integer, leaves, iters):
    X, y = _data(seed, n, p, nan_rate, integer)
    if y.all() or not y.any():
        y[0] = not y[0]
    est = HistGradientBoostingClassifier(max_iter=iters, max_leaf_nodes=leaves,
                                         min_samples_leaf=3, early_stopping=False,
                                         random_state=seed % 1000).fit(X, y)
    # held-out rows: fresh values, NaNs where training had none, values outside the range
    Xt, _ = _data(seed + 1, 200, p, max(nan_rate, 0.2), integer)
    Xt[:5] = np.array([np.inf, -np.inf, 1e300, -1e300, 0.0])[:, None]
    ref = est._raw_predict(Xt).ravel()
    assert np.array_equal(raw_predict_numpy(est, Xt, chunk_rows=64), ref)
    assert np.array_equal(raw_predict_binned(est, Xt, chunk_rows=64), ref)


def test_tree_arrays_leaves_point_to_themselves():
    X, y = _data(0, 300, 3, 0.1, False)
    est = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=4).fit(X, y)
    t = tree_arrays(est)
    sizes = [len(it[0].nodes) for it in est._predictors]
    assert t["root"].tolist() == [0, sizes[0], sizes[0] + sizes[1]]
    leaf = np.concatenate([it[0].nodes["is_leaf"] for it in est._predictors]).astype(bool)
    own = np.flatnonzero(leaf)
    assert (t["left"][own] == own).all() and (t["right"][own] == own).all()
    assert leaf.sum() == 3 * 4  # 3 trees of 4 leaves (enough rows to grow them all)


@pytest.mark.parametrize("calibration, ensemble", [("sigmoid", False), ("sigmoid", True),
                                                   ("isotonic", False), ("isotonic", True)])
def test_risk_model_fast_path_equals_sklearn_predict_proba(calibration, ensemble):
    X, y = _data(5, 3000, 4, 0.1, False)
    X = pd.DataFrame(X, columns=list("abcd"))
    model = RiskModel(calibration=calibration, ensemble=ensemble, max_iter=30).fit(X[:2000], y[:2000])
    held = X[2000:]
    got = model.predict_proba(held)
    ref = model.estimator_.predict_proba(held.to_numpy())
    assert np.abs(got - ref).max() <= 1e-12
    assert np.isnan(held.to_numpy()).any()
    assert np.array_equal(model.predict_risk(held).to_numpy(), got[:, 1])


def test_binned_evaluator_accepts_read_only_and_strided_tables():
    X, y = _data(2, 400, 3, 0.1, False)
    est = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    ref = est._raw_predict(X).ravel()
    frozen = X.copy()
    frozen.flags.writeable = False
    assert np.array_equal(raw_predict_binned(est, frozen), ref)
    for (tree,) in est._predictors:  # as after unpickling from a read-only memmap
        tree.nodes.flags.writeable = False
        tree.binned_left_cat_bitsets.flags.writeable = False
    assert np.array_equal(raw_predict_binned(est, frozen), ref)
    fortran = np.asfortranarray(X)
    assert np.array_equal(raw_predict_binned(est, fortran, chunk_rows=7), ref)


@pytest.mark.parametrize("n_threads, chunk_rows", [(1, 64), (2, 64), (2, 1), (2, 10_000)])
def test_lookup_and_compiled_walk_mixed_in_one_model_equal_sklearn(n_threads, chunk_rows,
                                                                   monkeypatch):
    # trees of 17-20 splits with the lookup limit at 18: some trees through sklearn's
    # walk, the others through lookup tables (16+ bit codes): both paths, in one model
    monkeypatch.setattr(tree_scoring, "MAX_LOOKUP_SPLITS", 18)
    X, y = _data(7, 4000, 6, 0.15, True)
    est = HistGradientBoostingClassifier(max_iter=25, max_leaf_nodes=31, min_samples_leaf=150,
                                         random_state=0).fit(X, y)
    compiled = [compile_tree(it[0].nodes) for it in est._predictors]
    assert any(c is None for c in compiled) and any(c is not None for c in compiled)
    Xt, _ = _data(8, 700, 6, 0.3, True)
    Xt[:4] = np.array([np.inf, -np.inf, np.nan, 0.0])[:, None]
    ref = est._raw_predict(Xt).ravel()
    got = raw_predict_binned(est, Xt, n_threads=n_threads, chunk_rows=chunk_rows)
    assert np.array_equal(got, ref)


def test_categorical_trees_fall_back_to_sklearn_walk():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.integers(0, 6, 600).astype(float), rng.normal(size=600)])
    X[::9, 0] = np.nan
    y = np.isin(X[:, 0], [1, 4]) ^ (rng.random(600) < 0.1)
    est = HistGradientBoostingClassifier(max_iter=10, max_leaf_nodes=4,
                                         categorical_features=[0], random_state=0).fit(X, y)
    nodes = [it[0].nodes for it in est._predictors]
    assert any((n["is_categorical"] != 0).any() for n in nodes)
    assert all(compile_tree(n) is None for n in nodes if (n["is_categorical"] != 0).any())
    assert np.array_equal(raw_predict_binned(est, X, chunk_rows=50), est._raw_predict(X).ravel())


def test_compile_tree_by_hand_missing_direction_and_threshold_edge():
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    # root: feature 0, x <= 3.5 left (missing left); left child: feature 1, x <= 0.0 left
    # (missing right); leaves 2, 3, 4 with values 10, 20, 30
    nodes = np.zeros(5, dtype=PREDICTOR_RECORD_DTYPE)
    for i, (f, t, lft, rgt, ml) in {0: (0, 3.5, 1, 4, 1), 1: (1, 0.0, 2, 3, 0)}.items():
        nodes["feature_idx"][i], nodes["num_threshold"][i] = f, t
        nodes["left"][i], nodes["right"][i], nodes["missing_go_to_left"][i] = lft, rgt, ml
    nodes["is_leaf"] = [0, 0, 1, 1, 1]
    nodes["value"] = [0, 0, 10.0, 20.0, 30.0]
    nodes["depth"] = [0, 1, 2, 2, 1]
    leaf_values, splits = compile_tree(nodes)
    assert splits == [(0, 3.5, True), (1, 0.0, False)]

    def value(*x):  # the documented rule, split by split
        code = 0
        for j, (f, t, missing_left) in enumerate(splits):
            code |= int(x[f] > t if missing_left else x[f] <= t) << j
        return leaf_values[code]
    # by hand: (x0, x1) -> leaf
    nan, inf = np.nan, np.inf
    cases = {(3.5, 0.0): 10.0, (3.5, 1e-300): 20.0, (np.nextafter(3.5, 4), 0.0): 30.0,
             (nan, 0.0): 10.0, (nan, nan): 20.0, (-inf, nan): 20.0, (inf, -inf): 30.0,
             (-inf, -inf): 10.0}
    assert {k: value(*k) for k in cases} == cases
