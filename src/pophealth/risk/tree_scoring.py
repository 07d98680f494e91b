"""Raw scores of a fitted binary HistGradientBoosting model without its per-tree full-table passes.

scikit-learn's ``predict_proba`` walks each of the model's trees over the whole float64
table in turn. Two exact alternatives are given here (equal to sklearn's raw prediction
bit for bit: the same comparisons and the same tree-by-tree summation order):

* :func:`raw_predict_binned` - map the table once to the model's uint8 bins (its own
  ``_bin_mapper``) and walk the trees over the 8x smaller binned table (sklearn's compiled
  ``predict_binned``) with OpenMP threads; this is what
  :meth:`~pophealth.risk.models.RiskModel.predict_proba` uses;
* :func:`raw_predict_numpy` - a pure-numpy evaluator: all trees at once, all rows of a
  chunk level by level with fancy indexing (no compiled tree code at all; the reference
  that the tests compare with sklearn, and a benchmark candidate).

Both need that a split's float threshold is the bin threshold it was learnt at, which a
model fitted by sklearn always satisfies and
:func:`~pophealth.risk.model_state.from_state` checks for a model read from a file.
"""

from __future__ import annotations

import numpy as np

__all__ = ["raw_predict_binned", "raw_predict_numpy", "tree_arrays"]


def _trees(est) -> list:
    return [it[0] for it in est._predictors]


def raw_predict_binned(est, X: np.ndarray, *, n_threads: int | None = None,
                       chunk_rows: int = 1 << 17) -> np.ndarray:
    """Raw (log-odds) prediction of binary HistGradientBoosting ``est`` on float table ``X``.

    Equal to ``est._raw_predict(X).ravel()`` exactly. Rows are binned and scored in
    chunks of ``chunk_rows`` (memory: one uint8 copy of a chunk) with ``n_threads``
    OpenMP threads (None: scikit-learn's own choice, which follows ``OMP_NUM_THREADS``
    and threadpoolctl limits).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); X[::7, 1] = np.nan
    >>> est = HistGradientBoostingClassifier(max_iter=20).fit(X, X[:, 0] + rng.normal(size=500) > 0)
    >>> bool(np.array_equal(raw_predict_binned(est, X), est._raw_predict(X).ravel()))
    True
    """
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    n_threads = _openmp_effective_n_threads(n_threads)
    X = np.asarray(X, dtype=np.float64)
    mapper, trees = est._bin_mapper, _trees(est)
    # sklearn's compiled walk takes writable node tables (a model read from a read-only
    # memmap has none): copy those, once per tree
    trees = [t if t.nodes.flags.writeable and t.binned_left_cat_bitsets.flags.writeable
             else TreePredictor(t.nodes.copy(), t.binned_left_cat_bitsets.copy(),
                                t.raw_left_cat_bitsets.copy()) for t in trees]
    miss = mapper.missing_values_bin_idx_
    out = np.empty(len(X))
    for start in range(0, len(X), chunk_rows):  # chunks of rows, not patients one by one
        chunk = X[start:start + chunk_rows]
        if not (chunk.flags.c_contiguous and chunk.flags.writeable):  # sklearn's binning
            chunk = np.array(chunk, order="C")  # needs a writable C array (read-only memmaps)
        binned = mapper.transform(chunk)
        acc = np.full(len(binned), float(est._baseline_prediction.ravel()[0]))
        for tree in trees:  # same order and summation as sklearn's _raw_predict
            acc += tree.predict_binned(binned, miss, n_threads)
        out[start:start + chunk_rows] = acc
    return out


def tree_arrays(est) -> dict[str, np.ndarray]:
    """All trees' nodes in one set of flat arrays (children as global node numbers).

    Leaves point to themselves, so walking a fixed number of levels keeps a finished row
    on its leaf. Keys: ``feature``, ``threshold``, ``left``, ``right``,
    ``missing_left``, ``value``, ``root`` (one per tree) and ``depth`` (the deepest leaf).
    """
    trees = _trees(est)
    sizes = np.array([len(t.nodes) for t in trees])
    root = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    nodes = np.concatenate([t.nodes for t in trees])
    offset = np.repeat(root, sizes)
    own = np.arange(len(nodes), dtype=np.intp)
    leaf = nodes["is_leaf"].astype(bool)
    return {
        "feature": np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp),
        "threshold": nodes["num_threshold"].astype(np.float64),
        "left": np.where(leaf, own, nodes["left"].astype(np.intp) + offset),
        "right": np.where(leaf, own, nodes["right"].astype(np.intp) + offset),
        "missing_left": nodes["missing_go_to_left"].astype(bool),
        "value": nodes["value"].astype(np.float64),
        "root": root,
        "depth": np.array(int(nodes["depth"].max()) if len(nodes) else 0),
    }


def raw_predict_numpy(est, X: np.ndarray, *, chunk_rows: int = 1 << 14) -> np.ndarray:
    """Pure-numpy raw prediction of binary HistGradientBoosting ``est``, equal to sklearn's.

    Every row of a chunk moves down every tree one level per step (``depth`` steps):
    ``x <= threshold`` goes left, a missing ``x`` follows the node's missing direction,
    as in sklearn; leaf values are then added tree by tree to the baseline.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); X[::5, 2] = np.nan
    >>> est = HistGradientBoostingClassifier(max_iter=20).fit(X, X[:, 2] + rng.normal(size=500) > 0)
    >>> bool(np.array_equal(raw_predict_numpy(est, X), est._raw_predict(X).ravel()))
    True
    """
    X = np.asarray(X, dtype=np.float64)
    t = tree_arrays(est)
    out = np.empty(len(X))
    for start in range(0, len(X), chunk_rows):  # chunks of rows; trees and levels vectorised
        chunk = X[start:start + chunk_rows]
        rows = np.arange(len(chunk))[:, None]
        node = np.broadcast_to(t["root"], (len(chunk), len(t["root"]))).copy()
        for _ in range(int(t["depth"])):
            x = chunk[rows, t["feature"][node]]
            left = np.where(np.isnan(x), t["missing_left"][node], x <= t["threshold"][node])
            node = np.where(left, t["left"][node], t["right"][node])
        leaf_values = t["value"][node]
        acc = np.full(len(chunk), float(est._baseline_prediction.ravel()[0]))
        for j in range(leaf_values.shape[1]):  # tree by tree: sklearn's summation order
            acc += leaf_values[:, j]
        out[start:start + chunk_rows] = acc
    return out
