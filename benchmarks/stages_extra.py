"""Benchmark stages for segmentation, risk scoring and the caseload job (the parts above the
scoring core). Shares only ``_common`` with ``stages.py``."""

from __future__ import annotations

from benchmarks._common import INDEX_DATE, Skip, load_register

JOB_MAX_PATIENTS = 1_000_000


def segmentation(ctx):
    import time

    import pyarrow.dataset as ds

    from pophealth.core import patient_table
    from pophealth.segments import bridges_to_health

    if "scores" not in ctx:
        raise Skip("needs the score_patients stage")
    activity = ds.dataset(ctx["path"] / "activity", partitioning="hive").to_table(
        columns=["patient_id", "date", "kind", "cost"]).to_pandas()
    patients = patient_table(load_register(ctx), ctx["scores"], activity, index_date=INDEX_DATE)
    t0 = time.perf_counter()
    seg = bridges_to_health(patients, ctx["all_events"], index_date=INDEX_DATE,
                            extra_codelists=("cms_snomed_synthetic",))
    seconds = time.perf_counter() - t0
    ctx["patients"] = patients.join(seg)
    return {"seconds": seconds, "rows": len(ctx["all_events"]),
            "segments": int(seg["segment"].nunique())}


def _model_path(ctx):
    """A RiskModel fitted once on a separate 50,000-patient population, cached."""
    from benchmarks import bench_job

    work = ctx["path"].parent
    bench_job._model(work)  # writes work/model.zip unless it exists
    return work / "model.zip"


def risk_scoring(ctx):
    import time

    import pyarrow.dataset as ds

    from pophealth.risk.features import make_features
    from pophealth.risk.model_io import load_model

    if "scores" not in ctx:
        raise Skip("needs the score_patients stage")
    model = load_model(_model_path(ctx))
    activity = ds.dataset(ctx["path"] / "activity", partitioning="hive").to_table(
        columns=["patient_id", "date", "kind", "cost", "length_of_stay"]).to_pandas()
    t0 = time.perf_counter()
    X = make_features(load_register(ctx), ctx["scores"], activity, index_date=INDEX_DATE)
    t1 = time.perf_counter()
    risk = model.predict_risk(X)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "features_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2),
            "mean_risk": round(float(risk.mean()), 4)}


def job(ctx):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from benchmarks import bench_job

    if ctx["n"] > JOB_MAX_PATIENTS:
        raise Skip(f"job measured up to {JOB_MAX_PATIENTS:,} patients (the issue's 1M target); "
                   "set benchmarks.stages_extra.JOB_MAX_PATIENTS to go further")
    work = ctx["path"].parent / f"job_{ctx['n']}"
    work.mkdir(exist_ok=True)
    link = work / "population"
    if not link.exists():
        link.symlink_to(ctx["path"].resolve(), target_is_directory=True)
    model = _model_path(ctx)
    if not (work / "model.zip").exists():
        (work / "model.zip").symlink_to(model.resolve())
    (work / "job.toml").write_text(bench_job.TOML)
    import shutil

    shutil.rmtree(work / "caseloads", ignore_errors=True)
    env = dict(os.environ)
    env[bench_job.KEY_ENV] = "5a" * 32  # benchmark-only key; synthetic data
    script = Path(bench_job.__file__)
    proc = subprocess.run([sys.executable, str(script), "--child", "--work", str(work)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": info["job_s"], "peak_rss": info["peak_rss_mib"] * 2**20,
            "rerun_s": info["rerun_s"], "caseload_rows": info["caseload_rows"]}
