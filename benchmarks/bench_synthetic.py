"""Benchmark ``pophealth.synthetic.write_population``.

Each size runs in a fresh Python process, so the peak RSS reported (``resource.getrusage``,
the process itself plus any worker processes) belongs to that size alone.

Usage::

    python benchmarks/bench_synthetic.py --sizes 1000000 10000000 --out /tmp/x
    python benchmarks/bench_synthetic.py --sizes 1000000 --workers 2 --out /tmp/x

Results are appended to ``benchmarks/results/bench_synthetic.csv`` and written as
``benchmarks/results/bench_synthetic-<timestamp>.json`` (the timestamp is only a file name).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _code_version() -> str:
    """Git commit of the imported pophealth (``+dirty`` with local changes), else ``unknown``."""
    import pophealth

    src = Path(pophealth.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def _one(n: int, out: Path, batch_size: int, seed: int) -> dict:
    from pophealth.synthetic import write_population

    target = out / f"n{n}"
    shutil.rmtree(target, ignore_errors=True)
    load0 = os.getloadavg()[0]
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    summary = write_population(target, n, random_state=seed, batch_size=batch_size, progress=False)
    wall = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    uc = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, if any
    cpu = (u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime) + uc.ru_utime + uc.ru_stime
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    size = sum(f.stat().st_size for f in target.rglob("*.parquet"))
    import pyarrow.dataset as ds

    icd = ds.dataset(target / "events", partitioning="hive").count_rows(
        filter=ds.field("code_system") == "icd10")
    return {
        "code": _code_version(),
        "n_patients": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "load_avg_1m_at_start": round(load0, 2), "patients_per_s": round(n / wall),
        "rows_register": summary["rows"]["register"], "rows_events": summary["rows"]["events"],
        "rows_events_icd10": icd, "rows_activity": summary["rows"]["activity"],
        "peak_rss_mib": round(max(rss_self, rss_children)), "peak_rss_main_mib": round(rss_self),
        "peak_rss_worker_mib": round(rss_children), "parquet_mib": round(size / 2**20, 1),
        "batch_size": batch_size, "workers": int(os.environ.get("POPHEALTH_SYNTH_WORKERS", "1") or 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--out", type=Path, required=True, help="scratch directory for Parquet output")
    ap.add_argument("--batch-size", type=int, default=250_000)
    ap.add_argument("--workers", type=int, default=1, help="POPHEALTH_SYNTH_WORKERS for the run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the Parquet output")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        print(json.dumps(_one(args.one, args.out, args.batch_size, args.seed)))
        return 0
    env = dict(os.environ, POPHEALTH_SYNTH_WORKERS=str(args.workers))
    runs = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--out", str(args.out),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        run = json.loads(res.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(f"{n:>11,} patients: {run['wall_s']:8.1f} s (cpu {run['cpu_s']:.1f} s, load "
              f"{run['load_avg_1m_at_start']}) {run['patients_per_s']:>9,}/s  "
              f"events {run['rows_events']:,} (icd10 {run['rows_events_icd10']:,})  "
              f"activity {run['rows_activity']:,}  peak RSS {run['peak_rss_mib']:,} MiB  "
              f"parquet {run['parquet_mib']} MiB")
        if not args.keep:
            shutil.rmtree(args.out / f"n{n}", ignore_errors=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"bench_synthetic-{stamp}.json").write_text(
        json.dumps({"runs": runs, "meta": meta, "command": " ".join(sys.argv)}, indent=2) + "\n")
    csv_path = RESULTS / "bench_synthetic.csv"
    fields = ["timestamp", *runs[0].keys(), "cpu_count", "load_avg_1m_at_end"]
    old_rows = []
    if csv_path.exists():  # older rows keep their columns; new columns are blank for them
        with csv_path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            fields += [f for f in (reader.fieldnames or []) if f not in fields]
            old_rows = list(reader)
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(old_rows)
        for run in runs:
            w.writerow({"timestamp": stamp, **run, "cpu_count": meta["cpu_count"],
                        "load_avg_1m_at_end": meta["load_avg_1m_at_end"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
