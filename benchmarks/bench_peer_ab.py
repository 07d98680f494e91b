"""pophealth from the Parquet file, two source trees side by side (CPU seconds under load).

``python -m benchmarks.bench_peer_ab --src before=/path/to/old/src --src after=src
[--sizes 1000000] [--scores charlson] [--orders grouped shuffled] [--repeats 6]``

Runs the timed work of :mod:`benchmarks.bench_peer` (read the register, scan the events
file with the ICD-10 filter, score) in a fresh process per run with ``PYTHONPATH`` set to
each source tree in turn (interleaved: A, B, A, B, ...), on the files ``bench_peer``
caches (``--cache``, read only). On a loaded machine wall times are noise and the
kernel's share of CPU (page faults) swings with the load: the table reports user CPU
seconds, process CPU seconds and wall seconds as min and median over the runs, the
median page faults, the largest peak RSS and the mean 1-minute load, and checks that
every run of every tree gives the same scores (SHA-256 of the score vector).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.bench_peer import INDEX_DATE, ORDERS, POPHEALTH_TIMED, SCORES

HERE = Path(__file__).resolve().parent

_RUN = """
import hashlib, sys
events_file, register_file, score, INDEX_DATE = sys.argv[1:5]
""" + POPHEALTH_TIMED + """
wall = dt
r = resource.getrusage(resource.RUSAGE_SELF)
hwm = int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM")).split()[1])
print(json.dumps({"wall": wall, "utime": r.ru_utime - r0.ru_utime,
                  "cpu": r.ru_utime + r.ru_stime - r0.ru_utime - r0.ru_stime,
                  "minflt": r.ru_minflt - r0.ru_minflt, "peak_rss": hwm * 1024,
                  "scores": hashlib.sha256(s.to_numpy().tobytes()).hexdigest()[:16]}))
"""


def run(src: str, events: Path, register: Path, score: str) -> dict:
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", _RUN, str(events), str(register), score,
                           INDEX_DATE], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=src))
    if proc.returncode:
        raise RuntimeError(f"{src}: {proc.stderr[-2000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load": load}


def summary(runs: list[dict]) -> dict:
    def mm(key):
        v = [r[key] for r in runs]
        return round(min(v), 3), round(statistics.median(v), 3)
    return {"utime_min_med": mm("utime"), "cpu_min_med": mm("cpu"), "wall_min_med": mm("wall"),
            "minflt_med": int(statistics.median(r["minflt"] for r in runs)),
            "peak_rss_gib": round(max(r["peak_rss"] for r in runs) / 2**30, 3),
            "load_mean": round(statistics.mean(r["load"] for r in runs), 2),
            "scores": sorted({r["scores"] for r in runs})}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_peer_ab",
                                description=__doc__.splitlines()[0])
    p.add_argument("--src", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--scores", nargs="+", default=["charlson"], choices=SCORES)
    p.add_argument("--orders", nargs="+", default=list(ORDERS), choices=ORDERS)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--cache", type=Path, default=Path("/work/scratch/peercache"))
    args = p.parse_args(argv)
    srcs = [s.split("=", 1) for s in args.src]
    out = ["| size | score | order | tree | user CPU s min / med | CPU s min / med | "
           "wall s min / med | page faults med | peak RSS GiB | load 1m | scores |",
           "|---:|---|---|---|---|---|---|---:|---:|---:|---|"]
    for n in args.sizes:
        register = args.cache / f"register_{n}.parquet"
        for score in args.scores:
            for order in args.orders:
                events = args.cache / f"events_{n}_{order}.parquet"
                runs = {name: [] for name, _ in srcs}
                for _ in range(args.repeats):
                    for name, src in srcs:
                        runs[name].append(run(src, events, register, score))
                for name, _ in srcs:
                    s = summary(runs[name])
                    out.append(
                        f"| {n:,} | {score} | {order} | {name} | "
                        f"{s['utime_min_med'][0]} / {s['utime_min_med'][1]} | "
                        f"{s['cpu_min_med'][0]} / {s['cpu_min_med'][1]} | "
                        f"{s['wall_min_med'][0]} / {s['wall_min_med'][1]} | {s['minflt_med']} | "
                        f"{s['peak_rss_gib']} | {s['load_mean']} | {', '.join(s['scores'])} |")
                    print(out[-1], flush=True)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
