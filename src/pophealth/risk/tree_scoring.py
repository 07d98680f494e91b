"""Raw scores of a fitted binary HistGradientBoosting model without its per-tree full-table passes.

scikit-learn's ``predict_proba`` walks each of the model's trees over the whole float64
table in turn. Two exact alternatives are given here (equal to sklearn's raw prediction
bit for bit: the same comparisons and the same tree-by-tree summation order):

* :func:`raw_predict` - chunks of rows over threads; a small tree's leaf value from a
  lookup table indexed by one vectorised comparison per split (:func:`compile_tree`),
  a large one by sklearn's compiled walk of the chunk binned with the model's own
  ``_bin_mapper``; this is what :meth:`~pophealth.risk.models.RiskModel.predict_proba`
  uses (``raw_predict_binned`` is its former name);
* :func:`raw_predict_numpy` - a pure-numpy evaluator: all trees at once, all rows of a
  chunk level by level with fancy indexing (no compiled tree code at all; the reference
  that the tests compare with sklearn, and a benchmark candidate).

The binned walk and the numpy evaluator need that a split's float threshold is the bin
threshold it was learnt at, which a model fitted by sklearn always satisfies and
:func:`~pophealth.risk.model_state.from_state` checks for a model read from a file.
"""

from __future__ import annotations

import os
import sys

import numpy as np

__all__ = ["MAX_LOOKUP_SPLITS", "compile_tree", "default_threads", "raw_predict",
           "raw_predict_binned", "raw_predict_lookup", "raw_predict_numpy", "tree_arrays"]


def _trees(est) -> list:
    return [it[0] for it in est._predictors]


#: Trees with more split nodes than this are walked by scikit-learn's compiled code.
MAX_LOOKUP_SPLITS = 12


def compile_tree(nodes: np.ndarray) -> tuple | None:
    """A small tree as ``(leaf_values, splits)``: its splits and a lookup table of leaves.

    ``splits`` lists ``(feature, threshold, missing_go_to_left)`` per split node (in node
    order, Python scalars). Bit ``j`` of a row's code is ``x <= threshold`` for split
    ``j`` -- or, when missing values go left, ``x > threshold`` (a NaN is neither) -- so
    a row goes left at split ``j`` exactly when sklearn's raw-data walk sends it left
    (``x <= threshold``, NaN by the missing direction). Every code was walked through
    the tree once, so ``leaf_values[code]`` is the value of the leaf that sklearn's walk
    reaches (splits off the row's path do not matter). None for a tree with categorical
    splits or more than :data:`MAX_LOOKUP_SPLITS` splits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    >>> nodes = np.zeros(3, dtype=PREDICTOR_RECORD_DTYPE)  # root: feature 2 at 0.5
    >>> nodes["feature_idx"][0], nodes["num_threshold"][0] = 2, 0.5
    >>> nodes["left"][0], nodes["right"][0] = 1, 2
    >>> nodes["is_leaf"] = [0, 1, 1]; nodes["value"] = [0.0, -1.5, 2.0]; nodes["depth"] = [0, 1, 1]
    >>> leaf_values, splits = compile_tree(nodes)
    >>> leaf_values.tolist(), splits
    ([2.0, -1.5], [(2, 0.5, False)])
    """
    internal = np.flatnonzero(nodes["is_leaf"] == 0)
    k = len(internal)
    if k > MAX_LOOKUP_SPLITS or (nodes["is_categorical"][internal] != 0).any():
        return None
    bit = np.zeros(len(nodes), dtype=np.int64)
    bit[internal] = np.arange(k)
    flip = nodes["missing_go_to_left"].astype(np.int64)  # there, a set bit means "right"
    codes = np.arange(1 << k)
    node = np.zeros(len(codes), dtype=np.intp)
    leaf = nodes["is_leaf"].astype(bool)
    for _ in range(int(nodes["depth"].max())):  # every code walks the tree at once
        left = ((codes >> bit[node]) & 1) ^ flip[node] == 1
        node = np.where(leaf[node], node, np.where(left, nodes["left"][node],
                                                   nodes["right"][node]).astype(np.intp))
    splits = [(int(nodes["feature_idx"][i]), float(nodes["num_threshold"][i]),
               bool(nodes["missing_go_to_left"][i])) for i in internal]
    return nodes["value"][node].astype(np.float64), splits


def raw_predict(est, X: np.ndarray, *, n_threads: int | None = None,
                chunk_rows: int = 1 << 14) -> np.ndarray:
    """Raw (log-odds) prediction of binary HistGradientBoosting ``est`` on float table ``X``.

    Equal to ``est._raw_predict(X).ravel()`` exactly: the same comparisons and the same
    tree-by-tree summation. Rows are taken in chunks of ``chunk_rows`` straight from
    ``X`` (C or Fortran order, read-only or strided: no copy of a float64 table; a
    one-block float64 DataFrame's values are a view). A small tree (:func:`compile_tree`)
    adds its leaf values with one vectorised comparison of a column per split, giving
    each row's code, and one lookup (no per-row walk, no binning); a larger or
    categorical tree is walked by sklearn's compiled ``predict_binned`` on the chunk
    binned with the model's own ``_bin_mapper``. Chunks are shared among ``n_threads``
    Python threads (None: scikit-learn's choice, which follows ``OMP_NUM_THREADS`` and
    threadpoolctl limits), each running compiled code with one OpenMP thread, so there is
    no per-tree OpenMP barrier (on a shared machine two OpenMP threads cost 4-6x the
    single-thread CPU).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); X[::7, 1] = np.nan
    >>> est = HistGradientBoostingClassifier(max_iter=20).fit(X, X[:, 0] + rng.normal(size=500) > 0)
    >>> bool(np.array_equal(raw_predict(est, X, chunk_rows=64), est._raw_predict(X).ravel()))
    True
    """
    from sklearn.ensemble._hist_gradient_boosting._binning import _map_to_bins
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    if chunk_rows < 1:
        raise ValueError(f"raw_predict: 'chunk_rows' must be >= 1 (got {chunk_rows})")
    X = np.asarray(X, dtype=np.float64)
    mapper = est._bin_mapper
    if X.ndim != 2 or X.shape[1] != len(mapper.bin_thresholds_):
        raise ValueError(f"raw_predict: X has shape {X.shape}, expected "
                         f"(n, {len(mapper.bin_thresholds_)})")
    miss = mapper.missing_values_bin_idx_
    compiled = [compile_tree(t.nodes) for t in _trees(est)]
    # sklearn's compiled walk takes writable node tables (a model read from a read-only
    # memmap has none): copy those, once per tree
    walked = [None if c is not None
              else t if t.nodes.flags.writeable and t.binned_left_cat_bitsets.flags.writeable
              else TreePredictor(t.nodes.copy(), t.binned_left_cat_bitsets.copy(),
                                 t.raw_left_cat_bitsets.copy())
              for t, c in zip(_trees(est), compiled, strict=True)]
    is_cat = np.ascontiguousarray(mapper.is_categorical_, dtype=np.uint8)

    def binned_rows(chunk: np.ndarray) -> np.ndarray:  # row-major: cache-friendly walks
        binned = np.empty(chunk.shape, dtype=np.uint8, order="F")
        _map_to_bins(chunk, mapper.bin_thresholds_, is_cat, miss, 1, binned)
        return np.ascontiguousarray(binned)

    return _score(X, compiled, walked, float(est._baseline_prediction.ravel()[0]),
                  lambda tree, rows: tree.predict_binned(rows, miss, 1), binned_rows,
                  default_threads(n_threads), chunk_rows)


def default_threads(n_threads: int | None = None) -> int:
    """Threads for :func:`raw_predict`: scikit-learn's choice when it is loaded (which
    follows ``OMP_NUM_THREADS`` and threadpoolctl limits), else ``n_threads``, else
    ``OMP_NUM_THREADS`` or the CPUs this process may use. The scores do not depend on it."""
    if "sklearn" in sys.modules:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        return _openmp_effective_n_threads(n_threads)
    if n_threads is not None:
        if n_threads < 1:
            raise ValueError(f"raw_predict: 'n_threads' must be >= 1 (got {n_threads})")
        return n_threads
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def raw_predict_lookup(trees: list, baseline: float, X: np.ndarray, *,
                       n_threads: int | None = None, chunk_rows: int = 1 << 14) -> np.ndarray:
    """:func:`raw_predict` for trees that are all lookup tables, with no scikit-learn.

    ``trees`` are :func:`compile_tree` results (none None) in the model's order and
    ``baseline`` its baseline raw score; the arithmetic is :func:`raw_predict`'s (the
    same code), so the result equals sklearn's raw prediction bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); X[::7, 1] = np.nan
    >>> est = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=7).fit(
    ...     X, X[:, 0] + rng.normal(size=500) > 0)
    >>> trees = [compile_tree(it[0].nodes) for it in est._predictors]
    >>> base = float(est._baseline_prediction.ravel()[0])
    >>> bool(np.array_equal(raw_predict_lookup(trees, base, X, chunk_rows=64),
    ...                     est._raw_predict(X).ravel()))
    True
    """
    if chunk_rows < 1:
        raise ValueError(f"raw_predict: 'chunk_rows' must be >= 1 (got {chunk_rows})")
    if any(t is None for t in trees):
        raise ValueError("raw_predict_lookup: every tree must be a lookup table")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"raw_predict_lookup: X has shape {X.shape}, expected 2 dimensions")
    return _score(X, list(trees), [None] * len(trees), float(baseline), None, None,
                  default_threads(n_threads), chunk_rows)


def _score(X: np.ndarray, compiled: list, walked: list, baseline: float, walk, binned_rows,
           n_threads: int, chunk_rows: int) -> np.ndarray:
    """Sum of the baseline and every tree's leaf value, tree by tree, chunks over threads."""
    any_walked = any(w is not None for w in walked)
    out = np.empty(len(X))

    def score_chunk(start: int) -> None:  # a chunk of rows, never one patient at a time
        chunk = X[start:start + chunk_rows]
        rows = binned_rows(chunk) if any_walked else None
        bit = np.empty(len(chunk), dtype=bool)
        acc = np.full(len(chunk), baseline)
        for tree, lookup in zip(walked, compiled, strict=True):  # sklearn's order and sum
            if lookup is None:
                acc += walk(tree, rows)
                continue
            leaf_values, splits = lookup
            code = np.zeros(len(chunk), dtype=np.uint8 if len(splits) <= 8 else np.uint32)
            for j, (f, threshold, missing_left) in enumerate(splits):
                compare = np.greater if missing_left else np.less_equal  # NaN: both False
                compare(chunk[:, f], threshold, out=bit)
                code |= np.left_shift(bit, j, dtype=code.dtype)
            acc += leaf_values[code]
        out[start:start + len(chunk)] = acc

    starts = range(0, len(X), chunk_rows)
    if n_threads <= 1 or len(starts) <= 1:
        for start in starts:
            score_chunk(start)
    else:  # compiled code and numpy release the GIL: threads score different chunks
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(n_threads, len(starts))) as pool:
            list(pool.map(score_chunk, starts))
    return out


#: The name before issue 14's lookup scoring (the trees are no longer always binned).
raw_predict_binned = raw_predict


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
