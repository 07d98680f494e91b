"""Throughput benchmark suite: ``python -m benchmarks [--sizes ...] [--peer]``.

For each population size it generates (or reuses from ``benchmarks/cache``) a synthetic
population with ``write_population`` and measures every stage that exists:

generation, reading events, events -> flags -> Charlson / Elixhauser / HFRS (grouped
order), all indices via ``score_patients`` in memory, out-of-core ``score_dataset``
(own process, so its peak RSS is its own), area statistics (aggregation, DSR, SII),
and, when their modules are present, segmentation, risk scoring and the caseload job.
With ``--peer`` (and ``POPHEALTH_PEER_PYTHON`` pointing at an interpreter with
comorbidipy 0.5) the peer's Charlson runs on the same events file and its scores are
compared with pophealth's.

Each stage reports wall time, rows/s or patients/s and peak RSS; growth with size is
the log-log slope between consecutive sizes. Results: ``benchmarks/results/suite.json``,
``suite.md`` and ``suite.png`` (log-log plot).
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

from benchmarks import _common, stages, stages_extra
from benchmarks._measure import gib, measure

HERE = Path(__file__).resolve().parent
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)


def _run_stage(name: str, fn, n: int, ctx: dict) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with measure() as m:
                info = fn(ctx) or {}
    except _common.Skip as exc:
        return {"size": n, "stage": name, "skipped": str(exc)}
    row = {"size": n, "stage": name, "seconds": round(m.seconds, 3),
           "peak_rss_gib": gib(info.pop("peak_rss", m.peak_rss))}
    if "seconds" in info:
        row["seconds"] = round(info.pop("seconds"), 3)
    if "rows" in info:
        row["rows"] = info["rows"]
        row["rows_per_s"] = round(info.pop("rows") / row["seconds"])
    row["patients_per_s"] = round(n / row["seconds"])
    row.update(info)
    return row


def run_size(n: int, cache: Path, peer: bool) -> list[dict]:
    ctx = {"n": n, "path": _common.ensure_population(n, cache)}
    rows = [_common.generation_row(n, ctx["path"])]
    plan = [
        ("read events (strings)", stages.read_events),
        ("flags+charlson", stages.flags_charlson),
        ("flags+elixhauser", stages.flags_elixhauser),
        ("flags+hfrs", stages.flags_hfrs),
        ("score_patients (all indices, in memory)", stages.score_all),
        ("area statistics (aggregate, DSR, SII)", stages.area_stats),
        ("segmentation", stages_extra.segmentation),
        ("risk scoring", stages_extra.risk_scoring),
    ]
    for name, fn in plan:
        rows.append(_run_stage(name, fn, n, ctx))
        print(json.dumps(rows[-1]), flush=True)
    ctx.clear()
    for name, fn in (("score_dataset (streamed from disk, own process)", stages.streamed),
                     ("caseload job (own process)", stages_extra.job)):
        rows.append(_run_stage(name, fn, n, {"n": n, "path": _common.ensure_population(n, cache)}))
        print(json.dumps(rows[-1]), flush=True)
    if peer:
        rows.append(_run_stage("peer: comorbidipy 0.5 charlson", stages.peer, n,
                               {"n": n, "path": _common.ensure_population(n, cache)}))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def growth(rows: list[dict]) -> None:
    """Add the log-log slope of seconds vs size to each row (1.0 = linear)."""
    df = pd.DataFrame([r for r in rows if "seconds" in r])
    for stage, g in df.groupby("stage"):
        g = g.sort_values("size")
        for (n1, t1), (n2, t2) in zip(g[["size", "seconds"]].values[:-1],
                                      g[["size", "seconds"]].values[1:], strict=True):
            for r in rows:
                if r["stage"] == stage and r["size"] == n2 and t1 > 0 and t2 > 0:
                    r["growth_vs_previous_size"] = round(float(np.log(t2 / t1) / np.log(n2 / n1)), 2)


def markdown(rows: list[dict]) -> str:
    out = ["| size | stage | s | rows/s | patients/s | peak RSS GiB | growth | notes |",
           "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['size']:,} | {r['stage']} | | | | | | skipped: {r['skipped']} |")
            continue
        notes = ", ".join(f"{k}={v}" for k, v in r.items() if k not in {
            "size", "stage", "seconds", "rows_per_s", "patients_per_s", "peak_rss_gib",
            "growth_vs_previous_size", "rows"})
        rps = f"{r['rows_per_s'] / 1e6:.1f}M" if "rows_per_s" in r else ""
        out.append(f"| {r['size']:,} | {r['stage']} | {r['seconds']} | {rps} | "
                   f"{r['patients_per_s'] / 1e6:.2f}M | {r['peak_rss_gib']} | "
                   f"{r.get('growth_vs_previous_size', '')} | {notes} |")
    return "\n".join(out)


def plot(rows: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame([r for r in rows if "seconds" in r])
    fig, ax = plt.subplots(figsize=(8, 5))
    for stage, g in df.groupby("stage"):
        g = g.sort_values("size")
        ax.plot(g["size"], g["seconds"], marker="o", label=stage)
    ax.set(xscale="log", yscale="log", xlabel="patients", ylabel="wall seconds",
           title="pophealth stages: time vs population size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    p.add_argument("--cache", type=Path, default=HERE / "cache")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--peer", action="store_true", help="add the comorbidipy 0.5 row")
    args = p.parse_args(argv)
    rows = []
    for n in args.sizes:
        rows += run_size(n, args.cache, args.peer)
    growth(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()}
    (args.out / "suite.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / "suite.md").write_text(markdown(rows) + "\n")
    plot(rows, args.out / "suite.png")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
