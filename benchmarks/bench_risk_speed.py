"""Issue 14: candidate ways of scoring risk, compared in one run, with their accuracy.

One synthetic population of ``--patients`` (default 1M) patients gives the feature table
(``make_features`` timed on all of it, twice: see ``feature_row``; its rows also split
the CPU time into user and system seconds and count minor page faults). Models are fitted on the first ``--train`` even
positions (default 200,000: a Local Care Partnership's registered population, the size a
place would fit its own model on) and evaluated on the first ``--test`` odd positions
(held out); each candidate's held-out AUROC and calibration slope are compared with the
oracle (the generator's true probabilities). Speed is measured on the whole feature
table (``--patients`` distinct rows). The machine is shared: every row records the
1-minute load average (the larger of start and end) and the process CPU seconds beside
the wall time; ``cpu_patients_per_s`` is rows / CPU seconds (all threads), a lower
bound on one core's rate that other processes' load does not inflate as much.
Models are fitted with one thread (threadpoolctl) so that fitting fits in the run.
Writes ``benchmarks/results/risk_speed.md`` and ``risk_speed.json``.

Candidates (``RiskModel.predict_risk`` unless stated; "31x100" = 100 trees of at most 31
leaves at rate 0.1, the default before issue 14; "7x50" = 50 trees of at most 7 leaves at
rate 0.2, the default since):

* a - ``ensemble=True``, 31x100: three calibrated models averaged (before issue 14);
* b-sk - ``ensemble=False``, 31x100, scikit-learn's own ``predict_proba``;
* b - ``ensemble=False``, 31x100 (trees too large for lookup tables: sklearn's walk on
  the binned chunks, chunks over threads);
* d - (default) with the pure-numpy level-by-level evaluator (on ``--numpy-rows`` rows);
* g - 7x100; h - 7x60 at rate 0.15; i - 7x30 at rate 0.3;
* default - 7x50 at rate 0.2 (``tree_scoring.raw_predict``: one comparison per split and
  a leaf lookup per tree), with ``n_threads`` 1 and 2 rows too;
* loaded - the default model saved and read back by ``load_model``: scored from its
  arrays by ``risk.compiled_model`` (numpy only, no scikit-learn).

``--only NAME[,NAME]`` measures only those rows (``make_features``, or a candidate's key:
``a``, ``b-sk``, ``b``, ``d``, ``g``, ``h``, ``i``, ``default``, ``loaded``) and fits only
the models they need; such a run is appended to ``risk_speed.md`` as a section with its
command, commit and rows (earlier rows kept) and written to ``risk_speed_only.json``.

Usage::

    python benchmarks/bench_risk_speed.py --patients 1000000 --train 200000 --test 200000
    python benchmarks/bench_risk_speed.py --only make_features,default,loaded
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import pophealth as ph
from pophealth.risk.evaluation import evaluate_risk
from pophealth.risk.features import make_features
from pophealth.risk.model_io import load_model, save_model
from pophealth.risk.models import RiskModel
from pophealth.risk.tree_scoring import raw_predict, raw_predict_numpy
from pophealth.synthetic import make_population

RESULTS = Path(__file__).resolve().parent / "results"
OLD = {"max_leaf_nodes": 31, "max_iter": 100, "learning_rate": 0.1}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _timed(fn):
    load = _load()
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu, max(load, _load())


def _calibrated(model: RiskModel, raw_fn, X: np.ndarray) -> np.ndarray:
    """Mean over the calibrated models of calibrator(raw score) - sklearn's arithmetic."""
    ccs = model.estimator_.calibrated_classifiers_
    acc = np.zeros(len(X))
    for cc in ccs:
        acc += cc.calibrators[0].predict(raw_fn(cc.estimator, X))
    return acc / len(ccs)


def _markdown(table: pd.DataFrame) -> str:
    cells = table.astype(object).where(table.notna(), "").astype(str)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells.to_numpy()])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--train", type=int, default=200_000)
    ap.add_argument("--test", type=int, default=200_000)
    ap.add_argument("--numpy-rows", type=int, default=50_000)
    ap.add_argument("--random-state", type=int, default=2025)
    ap.add_argument("--only", default=None,
                    help="comma-separated rows to measure (make_features or candidate keys)")
    args = ap.parse_args(argv)
    only = None if args.only is None else {x.strip() for x in args.only.split(",") if x.strip()}
    if 2 * max(args.train, args.test) > args.patients:
        ap.error("--train and --test must each be at most half of --patients")

    pop = make_population(args.patients, random_state=args.random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ph.DataQualityWarning)
        inputs = ph.score_patients(pop.register, pop.events, index_date=pop.index_date,
                                   codelists={"efi": "efi_snomed_synthetic",
                                              "cms": "cms_snomed_synthetic"}).join(
            ph.flag_conditions(pop.events, "cms_snomed_synthetic", register=pop.register,
                               index_date=pop.index_date))
    rows = []

    def feature_row():
        before = resource.getrusage(resource.RUSAGE_SELF)
        X, wall, cpu, load = _timed(lambda: make_features(
            pop.register, inputs, pop.activity, index_date=pop.index_date))
        after = resource.getrusage(resource.RUSAGE_SELF)
        rows.append({"candidate": "make_features", "rows": len(X), "seconds": round(wall, 3),
                     "cpu_seconds": round(cpu, 3), "patients_per_s": round(len(X) / wall),
                     "cpu_patients_per_s": round(len(X) / cpu), "load_1m": load,
                     "activity_rows": len(pop.activity),
                     "user_seconds": round(after.ru_utime - before.ru_utime, 3),
                     "sys_seconds": round(after.ru_stime - before.ru_stime, 3),
                     "minor_faults": after.ru_minflt - before.ru_minflt})
        print(rows[-1], flush=True)
        return X

    if only is None or "make_features" in only:
        # twice, and the first table is still referenced while the second is built: the
        # first call can reuse memory the process freed after building the inputs, the
        # second needs ~330 MB it has never touched for its float block (1M x 41), so it
        # also measures the kernel's cost of fresh pages (``sys_seconds``, large and
        # variable on a loaded virtual machine); ``user_seconds`` is the computation
        X = feature_row()
        X = feature_row()
    else:
        X = make_features(pop.register, inputs, pop.activity, index_date=pop.index_date)
    y = pop.outcomes["emergency_admission"].to_numpy()
    pos = np.arange(len(X))
    train = (pos % 2 == 0) & (pos < 2 * args.train)
    test = (pos % 2 == 1) & (pos < 2 * args.test)
    oracle = evaluate_risk(y[test], pop.outcomes["p_emergency_admission"].to_numpy()[test])
    oracle_auroc = float(oracle.loc[("all", "all"), "auroc"])
    configs = {"a": {"ensemble": True, **OLD}, "b": OLD,
               "g": {"max_leaf_nodes": 7, "max_iter": 100, "learning_rate": 0.1},
               "h": {"max_leaf_nodes": 7, "max_iter": 60, "learning_rate": 0.15},
               "i": {"max_leaf_nodes": 7, "max_iter": 30, "learning_rate": 0.3},
               "default": {}}
    needs = {"b-sk": "b", "d": "default", "loaded": "default"}
    if only is not None:
        keep = {needs.get(k, k) for k in only}
        configs = {k: v for k, v in configs.items() if k in keep}
    models = {}
    for name, params in configs.items():
        with threadpool_limits(1):
            models[name], wall, _, load = _timed(lambda kw=params: RiskModel(**kw).fit(
                X[train], y[train]))
        print(f"fit {name}: {wall:.1f} s (load {load})", flush=True)
    A = X.to_numpy()
    small = A[:args.numpy_rows]
    m = models
    if "default" in m:  # the default model as a scheduled job gets it: read from a file
        with tempfile.TemporaryDirectory() as tmp:
            m["loaded"] = load_model(save_model(m["default"], Path(tmp) / "m.zip",
                                                training_period=("2024-01-01", "2024-12-31")))
    candidates = _candidates(m, X, A, small, only) if only is not None else {
        "a: ensemble=True, 31x100 (before issue 14)": (m["a"], lambda: m["a"].predict_risk(X)),
        "b-sk: ensemble=False, 31x100, sklearn predict_proba": (
            m["b"], lambda: m["b"].estimator_.predict_proba(A)[:, 1]),
        "b: ensemble=False, 31x100 (sklearn walk on binned chunks)": (
            m["b"], lambda: m["b"].predict_risk(X)),
        "d: default model, pure-numpy evaluator": (
            m["default"], lambda: _calibrated(m["default"], raw_predict_numpy, small)),
        "g: 7x100, rate 0.1": (m["g"], lambda: m["g"].predict_risk(X)),
        "h: 7x60, rate 0.15": (m["h"], lambda: m["h"].predict_risk(X)),
        "i: 7x30, rate 0.3": (m["i"], lambda: m["i"].predict_risk(X)),
        "default: 7x50, rate 0.2, n_threads=1": (m["default"], lambda: _calibrated(
            m["default"], lambda e, Z: raw_predict(e, Z, n_threads=1), A)),
        "default: 7x50, rate 0.2, n_threads=2": (m["default"], lambda: _calibrated(
            m["default"], lambda e, Z: raw_predict(e, Z, n_threads=2), A)),
        "default: 7x50, rate 0.2, RiskModel.predict_risk": (
            m["default"], lambda: m["default"].predict_risk(X)),
        "loaded: default model read by load_model, predict_risk (numpy only)": (
            m["loaded"], lambda: m["loaded"].predict_risk(X)),
    }
    for name, (model, fn) in candidates.items():
        got, wall, cpu, load = _timed(fn)
        got = np.asarray(got)
        ref = model.estimator_.predict_proba(A[:len(got)])[:, 1]
        ev = evaluate_risk(y[test], model.predict_risk(X[test]).to_numpy()).loc[("all", "all")]
        auroc = float(ev["auroc"])
        rows.append({"candidate": name, "rows": len(got), "seconds": round(wall, 3),
                     "cpu_seconds": round(cpu, 3), "patients_per_s": round(len(got) / wall),
                     "cpu_patients_per_s": round(len(got) / cpu),
                     "max_abs_diff_vs_sklearn": float(np.abs(got - ref).max()),
                     "auroc": round(auroc, 4), "oracle_auroc": round(oracle_auroc, 4),
                     "gap": round(oracle_auroc - auroc, 4),
                     "slope": round(float(ev["calibration_slope"]), 3),
                     "training_rows": int(train.sum()), "held_out_rows": int(test.sum()),
                     "load_1m": load})
        print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    table = pd.DataFrame(rows)
    command = "benchmarks/bench_risk_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    if only is not None:
        _append_run(command, table, rows, args, int(train.sum()), int(test.sum()))
        print(table.to_string())
        return {"rows": rows}
    (RESULTS / "risk_speed.json").write_text(json.dumps(
        {"command": command, "cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    (RESULTS / "risk_speed.md").write_text(
        f"# Risk scoring candidates (issue 14)\n\n`{command}` - {args.patients} synthetic "
        f"patients; models fitted on {int(train.sum())} (even positions), evaluated on "
        f"{int(test.sum())} held out (odd positions); speed on all {len(X)} feature rows; "
        f"{os.cpu_count()} cores shared with other benchmarks: `load_1m` is the 1-minute "
        "load average (the larger of start and end of the row), `cpu_seconds` the "
        "process CPU time (all threads).\n\n" + _markdown(table) + "\n")
    print(table.to_string())
    return {"rows": rows}


def _candidates(m: dict, X: pd.DataFrame, A: np.ndarray, small: np.ndarray,
                only: set) -> dict:
    """The ``--only`` rows: name -> (model, scoring function)."""
    rows = {
        "b-sk": ("b-sk: ensemble=False, 31x100, sklearn predict_proba",
                 lambda: m["b"].estimator_.predict_proba(A)[:, 1], "b"),
        "d": ("d: default model, pure-numpy evaluator",
              lambda: _calibrated(m["default"], raw_predict_numpy, small), "default"),
        "default": ("default: 7x50, rate 0.2, RiskModel.predict_risk",
                    lambda: m["default"].predict_risk(X), "default"),
        "loaded": ("loaded: default model read by load_model, predict_risk (numpy only)",
                   lambda: m["loaded"].predict_risk(X), "loaded"),
    }
    out = {}
    for key in sorted(only - {"make_features"}):
        if key in rows:
            name, fn, model = rows[key]
        else:  # a, b, g, h, i: the model's own predict_risk
            name, fn, model = f"{key}: predict_risk", (lambda k=key: m[k].predict_risk(X)), key
        out[name] = (m[model], fn)
    return out


def _append_run(command: str, table: pd.DataFrame, rows: list, args, n_train: int,
                n_test: int) -> None:
    """An ``--only`` run: a section appended to risk_speed.md, its rows to risk_speed_only.json."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    with open(RESULTS / "risk_speed.md", "a", encoding="utf-8") as fh:
        fh.write(f"\n## `{command}` at commit {commit}\n\n{args.patients} synthetic patients "
                 f"(seed {args.random_state}); models fitted on {n_train}, evaluated on "
                 f"{n_test} held out; {os.cpu_count()} cores shared with other sessions "
                 "(`load_1m`: 1-minute load average, `cpu_seconds`: process CPU time).\n\n"
                 + _markdown(table) + "\n")
    (RESULTS / "risk_speed_only.json").write_text(json.dumps(
        {"command": command, "commit": commit, "cpu_count": os.cpu_count(), "rows": rows},
        indent=2) + "\n")


if __name__ == "__main__":
    main()
