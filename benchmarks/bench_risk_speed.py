"""Issue 14: candidate ways of scoring risk, compared in one run, with their accuracy.

A synthetic population (``--patients``, default 200,000) is split by position into even
(training) and odd (held-out) rows. Each candidate's held-out AUROC and calibration slope
are compared with the oracle (the generator's true probabilities); its speed is measured
on the held-out feature table repeated to ``--score-rows`` rows (default 1M; scoring cost
depends on rows and columns, not on the values). The 1-minute load average is recorded
with every row (the machine is shared). Writes ``benchmarks/results/risk_speed.md`` and
``risk_speed.json``.

Candidates (sklearn's ``predict_proba`` unless stated):

* a - ``RiskModel(ensemble=True)``: three calibrated models of 100 trees, averaged;
* b - ``RiskModel(ensemble=False)``: one model refitted on all rows, calibrator out of fold;
* c - (b) given float32 features (sklearn converts them back to float64);
* d - (b) with the pure-numpy evaluator ``tree_scoring.raw_predict_numpy`` (timed on
  ``--numpy-rows`` rows only: it is slow);
* e1/e2 - (b) with sklearn's raw prediction at ``n_threads`` 1 / 2, then the calibrator;
* f - (b) through ``RiskModel.predict_risk``: binned table, ``tree_scoring.raw_predict_binned``;
* f-ens - (a) through ``RiskModel.predict_risk`` (binned);
* g - (f) with smaller trees, ``max_leaf_nodes=7`` (a modelling change, not the default).

Usage::

    python benchmarks/bench_risk_speed.py --patients 200000 --score-rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import pophealth as ph
from pophealth.risk.evaluation import evaluate_risk
from pophealth.risk.features import make_features
from pophealth.risk.models import RiskModel
from pophealth.risk.tree_scoring import raw_predict_numpy
from pophealth.synthetic import make_population

RESULTS = Path(__file__).resolve().parent / "results"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _timed(fn):
    load = _load()
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, max(load, _load())


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
    ap.add_argument("--patients", type=int, default=200_000)
    ap.add_argument("--score-rows", type=int, default=1_000_000)
    ap.add_argument("--numpy-rows", type=int, default=50_000)
    ap.add_argument("--random-state", type=int, default=2025)
    args = ap.parse_args(argv)

    pop = make_population(args.patients, random_state=args.random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ph.DataQualityWarning)
        inputs = ph.score_patients(pop.register, pop.events, index_date=pop.index_date,
                                   codelists={"efi": "efi_snomed_synthetic",
                                              "cms": "cms_snomed_synthetic"}).join(
            ph.flag_conditions(pop.events, "cms_snomed_synthetic", register=pop.register,
                               index_date=pop.index_date))
    X, secs, load = _timed(lambda: make_features(pop.register, inputs, pop.activity,
                                                 index_date=pop.index_date))
    rows = [{"candidate": "make_features", "rows": len(X), "seconds": round(secs, 3),
             "patients_per_s": round(len(X) / secs), "auroc": None, "slope": None,
             "load_1m": load}]
    y = pop.outcomes["emergency_admission"].to_numpy()
    train = np.arange(len(X)) % 2 == 0
    test = ~train
    oracle = evaluate_risk(y[test], pop.outcomes["p_emergency_admission"].to_numpy()[test])
    oracle = oracle.loc[("all", "all")]
    models = {}
    for name, params in (("a", {"ensemble": True}), ("b", {}), ("g", {"max_leaf_nodes": 7})):
        models[name], secs, load = _timed(lambda kw=params: RiskModel(**kw).fit(
            X[train], y[train]))
        print(f"fit {name}: {secs:.1f} s (load {load})", flush=True)
    held = X[test]
    reps = -(-args.score_rows // len(held))
    big = pd.DataFrame(np.tile(held.to_numpy(), (reps, 1))[:args.score_rows],
                       columns=X.columns)
    A = big.to_numpy()
    A32 = A.astype(np.float32)
    small = A[:args.numpy_rows]
    a, b, g = models["a"], models["b"], models["g"]
    candidates = {
        "a: ensemble=True, sklearn": (a, lambda: a.estimator_.predict_proba(A)[:, 1], A),
        "b: ensemble=False, sklearn": (b, lambda: b.estimator_.predict_proba(A)[:, 1], A),
        "c: (b) float32 features": (b, lambda: b.estimator_.predict_proba(A32)[:, 1], A),
        "d: (b) numpy evaluator": (b, lambda: _calibrated(b, raw_predict_numpy, small), small),
        "e1: (b) sklearn raw n_threads=1": (b, lambda: _calibrated(
            b, lambda e, Z: e._raw_predict(Z, n_threads=1).ravel(), A), A),
        "e2: (b) sklearn raw n_threads=2": (b, lambda: _calibrated(
            b, lambda e, Z: e._raw_predict(Z, n_threads=2).ravel(), A), A),
        "f: (b) RiskModel.predict_risk, binned, sklearn threads (default)": (
            b, lambda: b.predict_risk(big).to_numpy(), A),
        "f-ens: (a) RiskModel.predict_risk, binned": (
            a, lambda: a.predict_risk(big).to_numpy(), A),
        "g: (f) with max_leaf_nodes=7 (not the default)": (
            g, lambda: g.predict_risk(big).to_numpy(), A),
    }
    for name, (model, fn, table) in candidates.items():
        got, secs, load = _timed(fn)
        ref = model.estimator_.predict_proba(table[:len(got)])[:, 1]
        ev = evaluate_risk(y[test], model.predict_risk(held).to_numpy()).loc[("all", "all")]
        rows.append({"candidate": name, "rows": len(got), "seconds": round(secs, 3),
                     "patients_per_s": round(len(got) / secs),
                     "max_abs_diff_vs_sklearn": float(np.abs(got - ref).max()),
                     "auroc": round(float(ev["auroc"]), 4),
                     "oracle_auroc": round(float(oracle["auroc"]), 4),
                     "slope": round(float(ev["calibration_slope"]), 3), "load_1m": load})
        print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    table = pd.DataFrame(rows)
    command = "benchmarks/bench_risk_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    (RESULTS / "risk_speed.json").write_text(json.dumps(
        {"command": command, "cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    (RESULTS / "risk_speed.md").write_text(
        f"# Risk scoring candidates (issue 14)\n\n`{command}` - {args.patients} synthetic "
        f"patients, even rows train, odd rows held out; speed on {args.score_rows} rows "
        f"(held-out table repeated), {os.cpu_count()} cores shared; `load_1m` is the "
        "1-minute load average at the start/end of each row (the larger).\n\n"
        + _markdown(table) + "\n")
    print(table.to_string())
    return {"rows": rows}


if __name__ == "__main__":
    main()
