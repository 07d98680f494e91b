"""Benchmark stages for segmentation, risk scoring and the caseload job."""

from __future__ import annotations

from benchmarks.stages import Skip


def segmentation(ctx):
    import time

    import pyarrow.dataset as ds

    from benchmarks.stages import INDEX_DATE, _register
    from pophealth.demo import patient_table
    from pophealth.segments import bridges_to_health

    if "scores" not in ctx:
        raise Skip("needs the score_patients stage")
    activity = ds.dataset(ctx["path"] / "activity", partitioning="hive").to_table(
        columns=["patient_id", "date", "kind", "cost"]).to_pandas()
    patients = patient_table(_register(ctx), ctx["scores"], activity, index_date=INDEX_DATE)
    t0 = time.perf_counter()
    seg = bridges_to_health(patients, ctx["all_events"], index_date=INDEX_DATE,
                            extra_codelists=("cms_synthetic_pc",))
    seconds = time.perf_counter() - t0
    ctx["patients"] = patients.join(seg)
    return {"seconds": seconds, "rows": len(ctx["all_events"]),
            "segments": int(seg["segment"].nunique())}


def risk_scoring(ctx):
    raise Skip("risk stage not wired yet")


def job(ctx):
    raise Skip("job stage not wired yet")
