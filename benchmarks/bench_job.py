"""Benchmark the whole stratification job (``pophealth stratify``) on a large synthetic register.

Steps (only step 3 is the job being timed):

1. write a synthetic population of ``--patients`` to ``--work/population`` (skipped if it is
   already there with the same size and seed);
2. fit a RiskModel on a separate 50,000-patient synthetic training population and save it
   (a scheduled job loads a saved model; it does not train);
3. run the job from a TOML config: read Parquet, validate, score the indices, build the
   features, predict risk, tiers, Bridges to Health segments, select the caseload,
   pseudonymise the selected patients, write per-PCN and per-practice lists, changes and
   the manifest; then rerun it (same inputs and config: same run id, content reused).

The job runs in a fresh process so its peak RSS (VmHWM) is its own; its batch workers
(``POPHEALTH_JOB_WORKERS``, ``--workers``) are child processes, so ``job_cpu_s`` adds their
CPU seconds (``RUSAGE_CHILDREN``) to the job process's, and ``peak_rss_tree_mib`` is the
largest sum of the job's and its workers' RSS, sampled every 20 ms from this process. The
1-minute load average before and after is reported because other benchmarks may share the
machine.

Usage::

    python benchmarks/bench_job.py --patients 1000000 --work /tmp/bench_job

Results go to ``benchmarks/results/bench_job-<n>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
KEY_ENV = "POPHEALTH_BENCH_KEY"

TOML = """\
name = "bench"
index_date = "2025-04-01"

[inputs]
register = "population/register"
events = "population/events"
activity = "population/activity"

[codelists]
efi = "efi_snomed_synthetic"
cms = "cms_snomed_synthetic"

[risk]
model = "model.zip"

[[rules]]
name = "top 2% risk per practice (adults)"
top_fraction = 0.02
by = "practice"
where = [["age", ">=", 18]]

[[rules]]
name = "frailty or organ failure with 2+ emergency admissions"
where = [
  ["segment", "in", ["Frailty and dementia (long decline)", "Organ failure (limited reserve)"]],
  ["prior_emergency_admissions", ">=", 2],
]

[output]
dir = "caseloads"
per_practice = true

[pseudonymisation]
key_env = "POPHEALTH_BENCH_KEY"
# the synthetic 999 range holds 909,091 valid NHS numbers, so a 1M register repeats them
id_column = "patient_id"
"""


def _population(work: Path, n: int, seed: int) -> float:
    from pophealth.synthetic import write_population

    marker = work / "population" / f"_n{n}_seed{seed}"
    if marker.exists():
        return 0.0
    t0 = time.perf_counter()
    write_population(work / "population", n, random_state=seed, progress=False)
    marker.write_text("")
    return time.perf_counter() - t0


def _model(work: Path) -> float:
    import warnings

    from pophealth.core.batch import score_patients
    from pophealth.risk.features import make_features
    from pophealth.risk.model_io import save_model
    from pophealth.risk.models import RiskModel
    from pophealth.synthetic import make_population

    if (work / "model.zip").exists():
        return 0.0
    t0 = time.perf_counter()
    pop = make_population(50_000, random_state=12345, index_date="2025-04-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_patients(pop.register, pop.events, index_date=pop.index_date,
                                codelists={"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"})
    X = make_features(pop.register, scores, pop.activity, index_date=pop.index_date)
    model = RiskModel().fit(X, pop.outcomes["emergency_admission"].reindex(X.index))
    save_model(model, work / "model.zip", training_period=("2024-04-02", "2026-04-01"),
               description="bench_job training population (synthetic, seed 12345)")
    return time.perf_counter() - t0


def _vmhwm_kib() -> int:
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith("VmHWM")).split()[1])


def _rss_kib(pid) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return int(next(line for line in fh if line.startswith("VmRSS")).split()[1])
    except (OSError, StopIteration):
        return 0  # the process ended between listing and reading


def _tree_rss_kib(pid: int) -> int:
    """VmRSS of process ``pid`` plus its descendants' (the job's batch workers)."""
    import glob

    kids = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as fh:
                kids += [int(k) for k in fh.read().split()]
        except OSError:
            pass
    return _rss_kib(pid) + sum(_tree_rss_kib(k) for k in kids)


def _exec_done(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"--child" in fh.read()
    except OSError:
        return False


def _run_sampled(cmd, env) -> tuple[str, int]:
    """Run the job's child process; sample its tree's summed RSS every 20 ms from here
    (the workers' memory is not in the child's VmHWM). Returns (stdout, peak KiB)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, env=env)
        peak = 0
        while proc.poll() is None:
            if _exec_done(proc.pid):  # before exec the pid is a copy of this process
                peak = max(peak, _tree_rss_kib(proc.pid))
            time.sleep(0.02)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
        out.seek(0)
        return out.read(), peak


def _run_job_child(work: str, profile: str | None = None, batch: int | None = None) -> None:
    """Child process: run the job twice, print one JSON line (``profile``: cProfile the
    first run and write its top functions by cumulative time there)."""
    from pophealth.jobs import JobConfig, run_job
    from pophealth.jobs.batchwork import job_workers

    if batch:
        from pophealth.jobs import inputs

        inputs.BATCH_PATIENTS = batch  # patients per streamed batch (default: the job's)
    import resource

    cfg = JobConfig.from_toml(Path(work) / "job.toml")
    t0, c0 = time.perf_counter(), time.process_time()
    if profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        first = prof.runcall(run_job, cfg)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(45)
        Path(profile).write_text(buf.getvalue())
    else:
        first = run_job(cfg)
    t1, c1 = time.perf_counter(), time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the batch workers, reaped
    second = run_job(cfg)
    t2 = time.perf_counter()
    print(json.dumps({
        "job_s": round(t1 - t0, 2), "rerun_s": round(t2 - t1, 2),
        # CPU seconds of the job (all its threads): less inflated by a loaded machine
        "job_cpu_s": round(c1 - c0 + kids.ru_utime + kids.ru_stime, 2),
        "job_cpu_s_main": round(c1 - c0, 2),
        "job_cpu_s_workers": round(kids.ru_utime + kids.ru_stime, 2),
        "workers": job_workers(),
        "rerun_same_run_id": first.run_id == second.run_id, "rerun_reused": second.reused,
        # VmHWM of this process (ru_maxrss would include a large parent's, kept over exec)
        "peak_rss_mib": round(_vmhwm_kib() / 1024),
        "patients_included": first.manifest["counts"]["patients_included"],
        "caseload_rows": first.manifest["counts"]["caseload_rows"],
        "by_rule": first.manifest["counts"]["by_rule"],
        "files": len(first.manifest["files"]),
    }))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=1_000_000)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", type=Path, default=None,
                   help="cProfile the first run; top functions written to this file")
    p.add_argument("--batch-patients", type=int, default=None,
                   help="patients per streamed batch of the job (default: "
                        "pophealth.jobs.inputs.BATCH_PATIENTS)")
    p.add_argument("--workers", type=int, default=None,
                   help="batch worker processes of the job (POPHEALTH_JOB_WORKERS; "
                        "default: pophealth.jobs.batchwork.default_workers())")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _run_job_child(str(args.work), str(args.profile) if args.profile else None,
                       args.batch_patients)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    synth_s = _population(args.work, args.patients, args.seed)
    model_s = _model(args.work)
    (args.work / "job.toml").write_text(TOML)
    import shutil

    shutil.rmtree(args.work / "caseloads", ignore_errors=True)
    env = dict(os.environ)
    env[KEY_ENV] = "5a" * 32  # benchmark-only key; synthetic data
    if args.workers:
        env["POPHEALTH_JOB_WORKERS"] = str(args.workers)
    load_before = os.getloadavg()[0]
    child = [sys.executable, __file__, "--child", "--work", str(args.work)]
    if args.profile:
        child += ["--profile", str(args.profile)]
    if args.batch_patients:
        child += ["--batch-patients", str(args.batch_patients)]
    stdout, tree_peak = _run_sampled(child, env)
    result = json.loads(stdout.strip().splitlines()[-1])
    # the job's process and its workers together, sampled every 20 ms (first run and rerun)
    result["peak_rss_tree_mib"] = round(tree_peak / 1024)
    result.update({
        "n_patients": args.patients, "synth_s": round(synth_s, 2), "model_fit_s": round(model_s, 2),
        "meta": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                 "load_avg_1m_before": round(load_before, 2),
                 "load_avg_1m_after": round(os.getloadavg()[0], 2)},
        "command": " ".join(["benchmarks/bench_job.py", *sys.argv[1:]]),
    })
    result["profiled"] = bool(args.profile)
    from pophealth.jobs.inputs import BATCH_PATIENTS

    result["batch_patients"] = args.batch_patients or BATCH_PATIENTS
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                      text=True, cwd=Path(__file__).parent).stdout.strip()
    suffix = ("-profile" if args.profile else "") + (
        f"-batch{args.batch_patients}" if args.batch_patients else "") + (
        f"-workers{args.workers}" if args.workers else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"bench_job-{args.patients}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
