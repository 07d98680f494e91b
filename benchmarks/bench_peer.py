"""pophealth vs comorbidipy 0.8 (and 0.5) from the same Parquet events file.

``python -m benchmarks.bench_peer [--sizes 1000000 10000000] [--repeats 2]``

For each size the synthetic population (``write_population``, cached under
``--cache``, default ``/work/scratch/peercache``) is turned into one Parquet events file
per event order, as a user would receive it: every event row (all code systems: ICD-10
hospital rows and primary-care rows), columns ``patient_id, date, code, code_system,
setting``, strings stored as plain Parquet strings (no Arrow schema hint that they
were dictionaries):

* ``grouped``: sorted by patient and date;
* ``shuffled``: the same rows in a seeded random order.

Each run is its own process and times the whole of what a user does *from the file*:
pophealth reads it with :func:`pophealth.engines.io.read_table` (ICD-10 filter pushed
down, the register of patient ids from ``register.parquet``) and calls
:func:`pophealth.charlson` / ``elixhauser`` / ``hfrs``; comorbidipy 0.8 scans it with
polars (same filter), normalises codes and calls ``comorbidity`` / ``hfrs``
(``benchmarks/peer_comorbidipy08.py``). Runs are interleaved (pophealth, peer,
pophealth, peer, ...) and the best of ``--repeats`` is reported with its CPU seconds,
peak RSS (VmHWM of the run's process) and the 1-minute load average when it started.
"process s" is the wall time of that run's whole process as the parent saw it
(interpreter start, imports, the timed work, writing the scores), which the timed
seconds exclude. ``--label NAME`` stores the run under ``runs[NAME]`` of the results
JSON next to the runs already there (one invocation per size and score, say) and writes
the tables of all of them to the Markdown file.

Peer interpreters (separate venvs, so their pandas/numpy/polars never meet ours)::

    # comorbidipy 0.8 (declares Python >= 3.13; runs on 3.11)
    python3.11 -m venv /work/scratch/peer08
    /work/scratch/peer08/bin/pip download comorbidipy==0.8.0 --no-deps \\
        --python-version 3.13 --only-binary=:all: -d /tmp/cm08
    /work/scratch/peer08/bin/pip install --ignore-requires-python /tmp/cm08/*.whl
    # comorbidipy 0.5 (pandas 1.5, numpy < 2)
    python3.11 -m venv /work/scratch/peer05
    /work/scratch/peer05/bin/pip install comorbidipy==0.5.0 "pandas<2" "numpy<2" pyarrow

Override the paths with ``POPHEALTH_PEER08_PYTHON`` / ``POPHEALTH_PEER_PYTHON``.

Score agreement: pophealth's scores over the register against comorbidipy 0.8's (a
patient absent from its output scores 0), % identical, and the disagreeing patients
broken down by condition flag (comorbidipy returns its per-condition columns;
``ami``/``copd`` are pophealth's ``mi``/``cpd``). Results:
``benchmarks/results/peer.json`` and ``peer.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from benchmarks._common import INDEX_DATE, ensure_population

HERE = Path(__file__).resolve().parent
SCORES = ("charlson", "elixhauser", "hfrs")
ORDERS = ("grouped", "shuffled")
PEER08 = os.environ.get("POPHEALTH_PEER08_PYTHON", "/work/scratch/peer08/bin/python")
PEER05 = os.environ.get("POPHEALTH_PEER_PYTHON", "/work/scratch/peer05/bin/python")
#: comorbidipy condition names that differ from pophealth's
PEER_NAMES = {"ami": "mi", "copd": "cpd"}


def prepare(n: int, cache: Path) -> dict:
    """Write (once) the register and the two event-order files for size ``n``."""
    pop = ensure_population(n, cache)
    out = {"register": cache / f"register_{n}.parquet",
           **{o: cache / f"events_{n}_{o}.parquet" for o in ORDERS}}
    if all(p.exists() for p in out.values()):
        return out
    reg = ds.dataset(pop / "register", partitioning="hive").to_table(columns=["patient_id"])
    reg = reg.take(pc.sort_indices(reg["patient_id"]))
    pq.write_table(reg, out["register"])
    table = ds.dataset(pop / "events", partitioning="hive").to_table(
        columns=["patient_id", "date", "code", "code_system", "setting"])
    grouped = table.take(pc.sort_indices(table, [("patient_id", "ascending"),
                                                 ("date", "ascending")]))
    del table
    # store_schema=False: plain Parquet strings, no Arrow schema telling a reader that the
    # columns were dictionaries (a user's file from another tool carries no such hint)
    pq.write_table(grouped, out["grouped"], row_group_size=1 << 20, store_schema=False)
    perm = np.random.default_rng(0).permutation(grouped.num_rows)
    pq.write_table(grouped.take(pa.array(perm)), out["shuffled"], row_group_size=1 << 20,
                   store_schema=False)
    return out


#: The timed work of a pophealth user with the file (also run by ``bench_peer_ab``): with
#: ``events_file``, ``register_file``, ``score`` and ``INDEX_DATE`` set, it leaves the
#: scores in ``s``, the wall seconds in ``dt`` and the rusage at the start in ``r0``.
POPHEALTH_TIMED = """
import json, resource, sys, time, warnings
import pyarrow.dataset as ds
import pophealth as ph
from pophealth.engines.io import read_table, scan
warnings.simplefilter("ignore")
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
reg = read_table(register_file, columns=["patient_id"])
ev = scan(events_file, columns=["patient_id", "date", "code", "code_system"],
          filter=ds.field("code_system") == "icd10")
if score == "hfrs":
    s = ph.hfrs(ev, register=reg, index_date=INDEX_DATE, lookback_days=None)["hfrs"]
else:
    s = getattr(ph, score)(ev, register=reg, index_date=INDEX_DATE)
dt = time.perf_counter() - t0
"""

_POPHEALTH = """
import sys
events_file, register_file, score, out, INDEX_DATE = sys.argv[1:6]
""" + POPHEALTH_TIMED + """
cpu0 = r0.ru_utime + r0.ru_stime
s.rename("score").to_frame().to_parquet(out)
hwm = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": dt, "patients_out": len(s), "peak_rss": hwm,
                  "cpu_seconds": r.ru_utime + r.ru_stime - cpu0}))
"""


def _run(cmd: list[str]) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          cwd=HERE.parent)
    # the whole process: interpreter start, imports, the timed work, writing the scores
    process_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["load_avg_1m"] = round(load, 2)
    info["process_seconds"] = process_seconds
    return info


def run_pophealth(events: Path, register: Path, score: str, out: Path) -> dict:
    return _run([sys.executable, "-c", _POPHEALTH, str(events), str(register), score, str(out),
                 INDEX_DATE])


def run_peer08(events: Path, score: str, out: Path) -> dict:
    return _run([PEER08, str(HERE / "peer_comorbidipy08.py"), str(events), score, str(out)])


def agreement(ours: Path, theirs: Path, register: Path) -> dict:
    """% of register patients with identical scores; the score differences' histogram."""
    reg = pd.read_parquet(register)["patient_id"].to_numpy()
    a = pd.read_parquet(ours)["score"].reindex(reg).to_numpy(dtype=float)
    t = pd.read_parquet(theirs).set_index("id")["score"]
    b = t.reindex(reg).fillna(0).to_numpy(dtype=float)
    diff = np.round(a - b, 6)
    values, counts = np.unique(diff[diff != 0], return_counts=True)
    top = sorted(zip(counts.tolist(), values.tolist(), strict=True), reverse=True)[:6]
    return {"patients": len(reg), "identical_pct": round(100 * float(np.mean(diff == 0)), 3),
            "peer_patients_out": len(t),
            "diff_ours_minus_peer_top": {f"{v:+g}": c for c, v in top}}


def condition_breakdown(events: Path, register: Path, score: str) -> dict:
    """Patients whose flag for each condition differs (pophealth vs comorbidipy 0.8)."""
    import pophealth as ph
    from pophealth.engines.io import read_table

    with tempfile.TemporaryDirectory() as tmp:
        script = (
            "import sys, polars as pl\n"
            "from comorbidipy import comorbidity\n"
            "df = pl.scan_parquet(sys.argv[1]).filter(pl.col('code_system') == 'icd10')"
            ".select(pl.col('patient_id').alias('id'), pl.col('code').str.to_uppercase()"
            ".str.replace_all('[^0-9A-Z]', '')).collect()\n"
            "r = comorbidity(df, id_col='id', code_col='code', score=sys.argv[2], "
            "icd='icd10', variant='quan', assign0=False, "
            "weighting='quan' if sys.argv[2] == 'charlson' else 'van_walraven')\n"
            "r.write_parquet(sys.argv[3])\n")
        subprocess.run([PEER08, "-c", script, str(events), score, f"{tmp}/f.parquet"],
                       check=True, capture_output=True)
        theirs = pd.read_parquet(f"{tmp}/f.parquet").set_index("id")
    reg = read_table(register, columns=["patient_id"])
    ev = read_table(events, columns=["patient_id", "date", "code", "code_system"],
                    filter=ds.field("code_system") == "icd10")
    codelist = load_codelist_name(score)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = ph.flag_conditions(ev, codelist, register=reg, index_date=INDEX_DATE)
    out = {}
    for col in theirs.columns:
        name = PEER_NAMES.get(col, col)
        if name not in ours.columns:
            continue
        b = theirs[col].reindex(ours.index).fillna(0).to_numpy() > 0
        a = ours[name].to_numpy()
        out[name] = {"only_pophealth": int((a & ~b).sum()), "only_peer": int((b & ~a).sum())}
    return {k: v for k, v in out.items() if v["only_pophealth"] or v["only_peer"]}


def load_codelist_name(score: str) -> str:
    return {"charlson": "charlson_quan2005_icd10",
            "elixhauser": "elixhauser_quan2005_icd10"}[score]


def bench(sizes, repeats: int, cache: Path, scores=SCORES, orders=ORDERS,
          breakdown: bool = True) -> list[dict]:
    rows = []
    for n in sizes:
        files = prepare(n, cache)
        n_rows = pq.ParquetFile(files["grouped"]).metadata.num_rows
        for score in scores:
            for order in orders:
                runs = {"pophealth": [], "comorbidipy 0.8": []}
                with tempfile.TemporaryDirectory() as tmp:
                    for r in range(repeats):
                        runs["pophealth"].append(run_pophealth(
                            files[order], files["register"], score, Path(tmp, f"o{r}.parquet")))
                        print(json.dumps({"n": n, "score": score, "order": order,
                                          "tool": "pophealth", **runs["pophealth"][-1]}),
                              flush=True)
                        runs["comorbidipy 0.8"].append(run_peer08(
                            files[order], score, Path(tmp, f"t{r}.parquet")))
                        print(json.dumps({"n": n, "score": score, "order": order,
                                          "tool": "comorbidipy 0.8",
                                          **runs["comorbidipy 0.8"][-1]}), flush=True)
                    agree = agreement(Path(tmp, "o0.parquet"), Path(tmp, "t0.parquet"),
                                      files["register"])
                best = {k: min(v, key=lambda x: x["seconds"]) for k, v in runs.items()}
                c = best["comorbidipy 0.8"]
                for tool, b in best.items():
                    rows.append({
                        "size": n, "score": score, "order": order, "tool": tool,
                        "seconds": round(b["seconds"], 3),
                        "all_seconds": [round(x["seconds"], 3) for x in runs[tool]],
                        "file_rows": n_rows, "icd10_rows": c["rows"],
                        "rows_per_s": round(n_rows / b["seconds"]),
                        "peak_rss_gib": round(b["peak_rss"] / 2**30, 3),
                        "max_peak_rss_gib": round(max(x["peak_rss"] for x in runs[tool]) / 2**30,
                                                  3),
                        "cpu_seconds": round(b["cpu_seconds"], 3),
                        "all_cpu_seconds": [round(x["cpu_seconds"], 3) for x in runs[tool]],
                        "process_seconds": round(b["process_seconds"], 3),
                        "load_avg_1m": b["load_avg_1m"]})
                p, c = best["pophealth"], best["comorbidipy 0.8"]
                rows[-2]["speedup_vs_peer08"] = round(c["seconds"] / p["seconds"], 2)
                rows[-2]["agreement"] = agree
        if breakdown:
            for score in ("charlson", "elixhauser"):
                rows.append({"size": n, "score": score, "tool": "flag breakdown",
                             "conditions_differing": condition_breakdown(
                                 files["grouped"], files["register"], score)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _commit() -> str:
    """The code's git commit (short hash; ``+dirty`` with uncommitted changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=HERE.parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True,
                               text=True, check=True, cwd=HERE.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def markdown(rows: list[dict], meta: dict) -> str:
    run = ""
    if meta.get("command"):
        run = f"Command `{meta['command']}` at commit {meta.get('commit', '?')}. "
    out = [f"{run}Machine: {meta['cpus']} CPUs, Python {meta['python']}; load average at start "
           f"{meta['load_avg_start']}, at end {meta['load_avg_end']}.", "",
           "| size | score | order | tool | s (best) | all runs s | CPU s (best run) | "
           "process s (best run) | rows/s (file) | peak RSS GiB | load 1m | pophealth speed-up "
           "| identical % |",
           "|---:|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "seconds" not in r:
            continue
        agree = r.get("agreement", {})
        out.append(
            f"| {r['size']:,} | {r['score']} | {r['order']} | {r['tool']} | {r['seconds']} | "
            f"{', '.join(map(str, r['all_seconds']))} | {r['cpu_seconds']} | "
            f"{r.get('process_seconds', '')} | {r['rows_per_s'] / 1e6:.1f}M | "
            f"{r['max_peak_rss_gib']} | {r['load_avg_1m']} | "
            f"{str(r['speedup_vs_peer08']) + 'x' if 'speedup_vs_peer08' in r else ''} | "
            f"{agree.get('identical_pct', '')} |")
    out += ["", "Score differences (pophealth minus comorbidipy 0.8: patients):", ""]
    for r in rows:
        if "agreement" in r:
            out.append(f"- {r['size']:,} {r['score']} {r['order']}: "
                       f"{r['agreement']['identical_pct']}% identical; "
                       f"{r['agreement']['diff_ours_minus_peer_top']}")
    out += ["", "Condition flags that differ (patients; assign0=False on the peer side):", ""]
    for r in rows:
        if r.get("tool") == "flag breakdown":
            out.append(f"- {r['size']:,} {r['score']}: {r['conditions_differing'] or 'none'}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_peer",
                                description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--scores", nargs="+", default=list(SCORES), choices=SCORES)
    p.add_argument("--orders", nargs="+", default=list(ORDERS), choices=ORDERS)
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--cache", type=Path, default=Path("/work/scratch/peercache"))
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--tag", default="peer", help="results file stem")
    p.add_argument("--label", default=None,
                   help="store this run under runs[LABEL] of TAG.json, keeping the other "
                        "runs there, and write TAG.md with the tables of all of them")
    args = p.parse_args(argv)
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(),
            "command": " ".join(["python -m benchmarks.bench_peer",
                                 *(sys.argv[1:] if argv is None else argv)]),
            "commit": _commit(),
            "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    rows = bench(args.sizes, args.repeats, args.cache, args.scores, args.orders,
                 not args.no_breakdown)
    meta["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.tag}.json"
    if args.label is None:
        path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        text = markdown(rows, meta)
    else:
        runs = json.loads(path.read_text())["runs"] if path.exists() else {}
        runs[args.label] = {"meta": meta, "rows": rows}
        path.write_text(json.dumps({"runs": runs}, indent=1))
        text = "\n\n".join(f"## {label}\n\n{markdown(r['rows'], r['meta'])}"
                           for label, r in runs.items())
    (args.out / f"{args.tag}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
