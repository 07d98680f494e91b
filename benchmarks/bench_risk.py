"""Benchmark the risk models: fitting on 1M patients and scoring (``predict_risk``) 1M / 10M.

Steps:

1. synthesise ``--fit-patients`` patients in memory, score the indices and build the
   feature table (``make_features``) - timed but not the point;
2. fit ``RiskModel()`` (default since issue 14: one gradient-boosting model refitted on
   all rows, Platt calibrator fitted on 3-fold out-of-fold predictions) and
   ``CoxRiskModel()`` on that table - time and peak RSS;
3. score feature tables of each ``--score-patients`` size with both models. Tables
   larger than the fitted population are the fitted feature table repeated (scoring
   cost depends on rows and columns, not on the values).

Peak RSS is the process's resident set (sampled every 5 ms) during the stage and
includes the feature table it holds; ``start_rss_gib`` gives the level before the stage.
The 1-minute load average is reported because other benchmarks may share the machine.

Usage::

    python benchmarks/bench_risk.py --fit-patients 1000000 --score-patients 1000000 10000000

Results go to ``benchmarks/results/bench_risk-<fit>-<largest score>.json``. The scoring
candidates of issue 14 (ensemble or not, tree sizes, evaluators, threads) are
compared with their held-out accuracy in ``benchmarks/bench_risk_speed.py``
(``benchmarks/results/risk_speed.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import gib, measure  # noqa: E402

import pophealth as ph  # noqa: E402
from pophealth.risk.features import make_features  # noqa: E402
from pophealth.risk.models import CoxRiskModel, RiskModel, survival_target  # noqa: E402
from pophealth.synthetic import make_population  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _stage(stage, n=None) -> dict:
    out = {"seconds": round(stage.seconds, 2), "peak_rss_gib": gib(stage.peak_rss),
           "start_rss_gib": gib(stage.start_rss)}
    if n is not None:
        out["patients_per_s"] = round(n / stage.seconds)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-patients", type=int, default=1_000_000)
    ap.add_argument("--score-patients", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--random-state", type=int, default=0)
    args = ap.parse_args(argv)
    res = {"fit_patients": args.fit_patients,
           "meta": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_avg_1m_before": round(os.getloadavg()[0], 2)}}

    with measure() as st:
        pop = make_population(args.fit_patients, random_state=args.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ph.DataQualityWarning)
            scores = ph.score_patients(pop.register, pop.events, index_date=pop.index_date,
                                       codelists={"efi": "efi_snomed_synthetic",
                                                  "cms": "cms_snomed_synthetic"})
            flags = ph.flag_conditions(pop.events, "cms_snomed_synthetic", register=pop.register,
                                       index_date=pop.index_date)
    res["synthesise_and_score_indices"] = _stage(st)
    with measure() as st:
        X = make_features(pop.register, scores.join(flags), pop.activity,
                          index_date=pop.index_date)
    res["make_features"] = _stage(st, len(X)) | {"columns": X.shape[1]}
    y = pop.outcomes["emergency_admission"]
    target = survival_target(pop.outcomes)
    del pop, scores, flags

    with measure() as st:
        model = RiskModel().fit(X, y)
    res["fit_RiskModel"] = _stage(st, len(X))
    with measure() as st:
        cox = CoxRiskModel().fit(X, target)
    res["fit_CoxRiskModel"] = _stage(st, len(X)) | {"attempts": cox.n_fit_attempts_}

    for n in args.score_patients:
        reps = -(-n // len(X))
        big = X if reps == 1 and n == len(X) else pd.DataFrame(
            np.tile(X.to_numpy(), (reps, 1))[:n], columns=X.columns,
            index=pd.RangeIndex(n, name="patient_id"))
        for name, m in (("RiskModel", model), ("CoxRiskModel", cox)):
            with measure() as st:
                risk = m.predict_risk(big)
            assert len(risk) == n and bool(risk.between(0, 1).all())
            res[f"score_{name}_{n}"] = _stage(st, n)
        del big, risk
    res["meta"]["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    res["command"] = "benchmarks/bench_risk.py " + " ".join(argv if argv is not None else sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_risk-{args.fit_patients}-{max(args.score_patients)}.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
