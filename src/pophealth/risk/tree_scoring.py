"""Raw scores of a fitted binary HistGradientBoosting model without its per-tree full-table passes.

scikit-learn's ``predict_proba`` walks each of the model's trees over the whole float64
table in turn. Two exact alternatives are given here (equal to sklearn's raw prediction
bit for bit: the same comparisons and the same tree-by-tree summation order):

* :func:`raw_predict_binned` - map each chunk of rows to the model's uint8 bins (its own
  ``_bin_mapper`` thresholds) and walk the trees over the 8x smaller binned chunk
  (sklearn's compiled ``predict_binned``), chunks shared among threads; this is what
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
                       chunk_rows: int = 1 << 15) -> np.ndarray:
    """Raw (log-odds) prediction of binary HistGradientBoosting ``est`` on float table ``X``.

    Equal to ``est._raw_predict(X).ravel()`` exactly. Rows are taken in chunks of
    ``chunk_rows``; each chunk is binned column by column straight from ``X`` (C or
    Fortran order, read-only or strided: no float copy of the table), turned into a
    row-major uint8 block (a 32768-row chunk of 41 features is 1.3 MB, cache-sized) and
    walked through every tree. Chunks are shared among ``n_threads`` Python threads
    (None: scikit-learn's choice, which follows ``OMP_NUM_THREADS`` and threadpoolctl
    limits), each calling the compiled code with one OpenMP thread: a tree pass has
    no OpenMP barrier, which on a shared machine cost up to 6x the single-thread time
    (``benchmarks/results/risk_speed.md``). Memory: one uint8 copy of a chunk per thread.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); X[::7, 1] = np.nan
    >>> est = HistGradientBoostingClassifier(max_iter=20).fit(X, X[:, 0] + rng.normal(size=500) > 0)
    >>> bool(np.array_equal(raw_predict_binned(est, X, chunk_rows=64), est._raw_predict(X).ravel()))
    True
    """
    from sklearn.ensemble._hist_gradient_boosting._binning import _map_to_bins
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    if chunk_rows < 1:
        raise ValueError(f"raw_predict_binned: 'chunk_rows' must be >= 1 (got {chunk_rows})")
    n_threads = _openmp_effective_n_threads(n_threads)
    X = np.asarray(X, dtype=np.float64)  # a one-block float64 DataFrame gives a view
    if X.ndim != 2 or X.shape[1] != len(est._bin_mapper.bin_thresholds_):
        raise ValueError(f"raw_predict_binned: X has shape {X.shape}, expected "
                         f"(n, {len(est._bin_mapper.bin_thresholds_)})")
    mapper, trees = est._bin_mapper, _trees(est)
    # sklearn's compiled walk takes writable node tables (a model read from a read-only
    # memmap has none): copy those, once per tree
    trees = [t if t.nodes.flags.writeable and t.binned_left_cat_bitsets.flags.writeable
             else TreePredictor(t.nodes.copy(), t.binned_left_cat_bitsets.copy(),
                                t.raw_left_cat_bitsets.copy()) for t in trees]
    miss = mapper.missing_values_bin_idx_
    is_cat = np.ascontiguousarray(mapper.is_categorical_, dtype=np.uint8)
    baseline = float(est._baseline_prediction.ravel()[0])
    out = np.empty(len(X))

    def score_chunk(start: int) -> None:  # a chunk of rows, never one patient at a time
        chunk = X[start:start + chunk_rows]
        binned = np.empty(chunk.shape, dtype=np.uint8, order="F")
        _map_to_bins(chunk, mapper.bin_thresholds_, is_cat, miss, 1, binned)
        binned = np.ascontiguousarray(binned)  # row-major: one row's bins in one cache line
        acc = np.full(len(chunk), baseline)
        for tree in trees:  # same order and summation as sklearn's _raw_predict
            acc += tree.predict_binned(binned, miss, 1)
        out[start:start + len(chunk)] = acc

    starts = range(0, len(X), chunk_rows)
    if n_threads <= 1 or len(starts) <= 1:
        for start in starts:
            score_chunk(start)
    else:  # the compiled code releases the GIL: threads score different chunks
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(n_threads, len(starts))) as pool:
            list(pool.map(score_chunk, starts))
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
