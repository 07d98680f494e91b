"""Issue 14: how close can any model get to the synthetic oracle's emergency-admission AUROC?

The generator's 12-month emergency-admission probability (``synthetic/_model.py``,
``generate_block``) is ``_em_prob(lp + em_latent * z, em1)``: age, deprivation, sex and the
condition matrix in ``lp``, the emergency admissions of the previous 12 months ``em1``, and
a latent frailty ``z ~ N(0, 1)`` that no input shows directly. Everything else a model sees
(conditions, A&E/outpatient/GP counts, bed days, frailty-type hospital codes) carries only
noisy traces of ``z``. This script measures, on the ``bench_risk_speed.py`` split (first
``--train`` even positions fitted, first ``--test`` odd positions held out):

* ``oracle`` - the true probabilities (what ``bench_risk_speed.py`` compares with);
* ``oracle, z = 0`` - the true formula with the latent set to its mean;
* ``ceiling`` - the true formula, the true condition matrix and admission history, and
  ``z`` integrated over its posterior given everything observable (a gradient-boosted
  regression of ``z`` on the feature table, the true conditions and three years of true
  emergency-admission counts; residual spread from the held-out rows; 64 draws): an upper
  bound for a model fitted on the observable inputs (it knows the generator's formula);
* ``RiskModel`` rows - the default model on the default feature table, with the generator's
  true condition matrix and 3-year admission history added, and with 24-month hospital
  history from the coded events (distinct inpatient / A&E / outpatient days in months
  13-24 before index, and days since the last inpatient day);
* ``R2(z | ...)`` rows - how much of the latent each input set explains (held out).

The generator's internals are replayed block by block: ``generate_block`` draws the register
(``_register``) first and then the three yearly admission counts from the same generator,
so replaying those calls gives the same ``z``, conditions and counts; the recomputed
probabilities are checked against ``outcomes.p_emergency_admission`` before use.
Writes ``benchmarks/results/risk_ceiling.md`` and ``risk_ceiling.json``.

Usage::

    python benchmarks/bench_risk_ceiling.py --patients 1000000 --train 200000 --test 200000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

import pophealth as ph
from pophealth.risk.evaluation import evaluate_risk
from pophealth.risk.features import make_features
from pophealth.risk.models import RiskModel
from pophealth.synthetic import _model as _m
from pophealth.synthetic import make_population

RESULTS = Path(__file__).resolve().parent / "results"


def _internals(n_patients: int, random_state: int, index_date, n: int) -> dict:
    """z, condition matrix, em3/em2/em1 and the admission logit without z, first n patients."""
    m = _m.load_model()
    p, c = m.p, m.coef
    ctx = _m.build_context(n_patients, random_state, index_date)
    parts: dict[str, list] = {}
    for b in range(-(-n // _m.BLOCK_SIZE)):
        rng = np.random.default_rng([ctx.random_state, 2, b])
        pt = _m._register(rng, m, ctx, ctx.block_len(b), b * _m.BLOCK_SIZE)
        age, male, has = pt["age"], pt["sex"] == 1, pt["has"]
        lp0 = (p["em_intercept"] + p["em_age40"] * np.maximum(age - 40, 0) / 10
               + p["em_age75"] * np.maximum(age - 75, 0) / 10 + p["em_child"] * (age < 5)
               + p["em_dep"] * pt["dep"] + p["em_male"] * male + has @ c["adm_beta"])
        lp = lp0 + p["em_latent"] * pt["z"]
        em3, _ = _m._em_counts(rng, m, pt, lp, np.zeros(len(age)))
        em2, _ = _m._em_counts(rng, m, pt, lp, em3)
        em1, _ = _m._em_counts(rng, m, pt, lp, em2)
        for k, v in {"z": pt["z"], "has": has, "lp0": lp0, "em1": em1, "em2": em2,
                     "em3": em3}.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v)[:n] for k, v in parts.items()}


def _event_history(events: pd.DataFrame, index_date, n: int) -> np.ndarray:
    """Distinct inpatient / A&E / outpatient days in months 13-24 before index and days
    since the last inpatient day (730 when none), patients 0..n-1 (ids are positions)."""
    ev = events[events["patient_id"] < n]
    days = ((pd.Timestamp(index_date) - ev["date"]).dt.days).to_numpy()
    pid = ev["patient_id"].to_numpy()
    setting = ev["setting"].astype(str).to_numpy()
    cols = []
    for s in ("inpatient", "ae", "outpatient"):
        keep = (setting == s) & (days >= 365) & (days < 730)
        key = np.unique(pid[keep] * 1000 + days[keep])
        cols.append(np.bincount(key // 1000, minlength=n))
    ip = (setting == "inpatient") & (days >= 0) & (days < 730)
    last = np.full(n, 730)
    np.minimum.at(last, pid[ip], days[ip])
    return np.column_stack(cols + [last]).astype(float)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--train", type=int, default=200_000)
    ap.add_argument("--test", type=int, default=200_000)
    ap.add_argument("--random-state", type=int, default=2025)
    args = ap.parse_args(argv)
    load0, cpu0, wall0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
    pop = make_population(args.patients, random_state=args.random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ph.DataQualityWarning)
        inputs = ph.score_patients(pop.register, pop.events, index_date=pop.index_date,
                                   codelists={"efi": "efi_snomed_synthetic",
                                              "cms": "cms_snomed_synthetic"}).join(
            ph.flag_conditions(pop.events, "cms_snomed_synthetic", register=pop.register,
                               index_date=pop.index_date))
    n = 2 * max(args.train, args.test)
    X = make_features(pop.register, inputs, pop.activity, index_date=pop.index_date).iloc[:n]
    y = pop.outcomes["emergency_admission"].to_numpy()[:n]
    p_true = pop.outcomes["p_emergency_admission"].to_numpy()[:n]
    pos = np.arange(n)
    train = (pos % 2 == 0) & (pos < 2 * args.train)
    test = (pos % 2 == 1) & (pos < 2 * args.test)
    g = _internals(args.patients, args.random_state, pop.index_date, n)
    par = _m.load_model().p
    replay = _m._em_prob(par, g["lp0"] + par["em_latent"] * g["z"], g["em1"])
    diff = float(np.abs(replay - p_true).max())
    if diff > 1e-9:
        raise SystemExit(f"replayed probabilities differ from the outcomes by {diff}")
    rows = []

    def row(name: str, score: np.ndarray) -> None:
        ev = evaluate_risk(y[test], score).loc[("all", "all")]
        rows.append({"candidate": name, "auroc": round(float(ev["auroc"]), 4),
                     "slope": round(float(ev["calibration_slope"]), 3)})
        print(rows[-1], flush=True)

    row("oracle (true probabilities)", p_true[test])
    row("oracle formula with z = 0", _m._em_prob(par, g["lp0"], g["em1"])[test])
    truth = np.column_stack([g["has"], g["em1"], g["em2"], g["em3"]]).astype(float)
    hist = _event_history(pop.events, pop.index_date, n)
    base = X.to_numpy()
    r2 = {}
    zhat = None
    for name, A in (("feature table", base), ("feature table + 24-month event history",
                                               np.column_stack([base, hist])),
                    ("feature table + event history + true conditions and 3-year admissions",
                     np.column_stack([base, hist, truth]))):
        reg = HistGradientBoostingRegressor(max_iter=300, max_leaf_nodes=31, learning_rate=0.1,
                                            early_stopping=False, random_state=0)
        with threadpool_limits(1):
            reg.fit(A[train], g["z"][train])
        zhat = reg.predict(A)
        res = g["z"][test] - zhat[test]
        r2[name] = round(float(1 - res.var() / g["z"][test].var()), 4)
        print(f"R2(z | {name}) = {r2[name]}", flush=True)
    sd = float((g["z"][test] - zhat[test]).std())
    rng = np.random.default_rng(0)
    post = np.mean([_m._em_prob(par, g["lp0"] + par["em_latent"] * (
        zhat + sd * rng.standard_normal(n)), g["em1"]) for _ in range(64)], axis=0)
    row("ceiling: true formula, z integrated over its posterior given all observables",
        post[test])
    for name, A in (("RiskModel default, default feature table", X),
                    ("RiskModel default + 24-month event history", np.column_stack([base, hist])),
                    ("RiskModel default + true conditions and 3-year admissions",
                     np.column_stack([base, truth]))):
        with threadpool_limits(1):
            model = RiskModel().fit(A[train], y[train])
        row(name, np.asarray(model.predict_risk(A[test])))
    oracle = rows[0]["auroc"]
    for r in rows:
        r["gap_to_oracle"] = round(oracle - r["auroc"], 4)
    cpu, wall, load = time.process_time() - cpu0, time.perf_counter() - wall0, max(
        load0, os.getloadavg()[0])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    command = "benchmarks/bench_risk_ceiling.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    meta = {"command": command, "commit": commit, "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1), "load_1m": round(load, 2),
            "training_rows": int(train.sum()), "held_out_rows": int(test.sum()),
            "r2_latent": r2, "max_abs_replay_diff": diff}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "risk_ceiling.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    table = pd.DataFrame(rows)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in table.to_numpy()]
    r2_lines = [f"* R2(z | {k}) = {v}" for k, v in r2.items()]
    (RESULTS / "risk_ceiling.md").write_text(
        "# Emergency-admission AUROC: oracle, observable ceiling, RiskModel (issue 14)\n\n"
        f"`{command}` at commit {commit}: {meta['training_rows']} training rows (even "
        f"positions), {meta['held_out_rows']} held out (odd positions), the split of "
        f"`bench_risk_speed.py`. Whole run {meta['wall_seconds']} s wall, "
        f"{meta['cpu_seconds']} CPU s, 1-minute load {meta['load_1m']} (2 shared cores).\n\n"
        + "\n".join(lines) + "\n\nHow much of the latent frailty z each input set explains "
        "(held out):\n\n" + "\n".join(r2_lines) + "\n")
    print(table.to_string())
    return {"rows": rows, **meta}


if __name__ == "__main__":
    main()
