"""Benchmark of the vectorised core: events -> flags -> Charlson/Elixhauser/HFRS.

Usage::

    python benchmarks/bench_core.py --sizes 1000000 10000000

For each size it reuses (or writes) a synthetic population under
``benchmarks/cache/pop_<n>`` with ``pophealth.synthetic.write_population``, reads the
ICD-10 events into memory (codes as strings; the Parquet read is timed separately,
and once more with Arrow dictionary-encoded codes), then times, for events grouped by
patient (the stored order) and in arbitrary order (a seeded shuffle):

* events -> flags -> score for each index (rows/s and patients/s),
* flags -> score alone (patients/s),
* peak RSS during each stage, next to the RSS of the loaded input.

Results go to ``benchmarks/results/core.json`` and ``core.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import gib, measure, rss_bytes  # noqa: E402

import pophealth as ph  # noqa: E402
from pophealth.contracts.exceptions import DataQualityWarning  # noqa: E402

HERE = Path(__file__).resolve().parent
INDEX_DATE = "2025-04-01"
INDICES = {
    "charlson": ("charlson_quan2005_icd10", lambda f: ph.charlson(f)),
    "elixhauser": ("elixhauser_quan2005_icd10", lambda f: ph.elixhauser(f)),
    "hfrs": ("hfrs_gilbert2018_icd10", lambda f: ph.hfrs(f)["hfrs"]),
}


def ensure_population(n: int, cache: Path) -> Path:
    path = cache / f"pop_{n}"
    if not (path / "_SUCCESS").exists():
        from pophealth.synthetic import write_population

        t0 = time.perf_counter()
        write_population(path, n, random_state=0, index_date=INDEX_DATE, progress=False)
        (path / "_SUCCESS").write_text(f"{time.perf_counter() - t0:.1f}s\n")
    return path


def read_events(path: Path, dictionary: bool) -> pd.DataFrame:
    dataset = ds.dataset(path / "events", format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["patient_id", "code", "code_system", "date"],
                             filter=ds.field("code_system") == "icd10")
    if dictionary:
        table = table.set_column(1, "code", table.column("code").dictionary_encode())
        return table.to_pandas()
    return table.to_pandas()  # codes as Python strings (object dtype)


def read_register(path: Path) -> pd.DataFrame:
    dataset = ds.dataset(path / "register", format="parquet", partitioning="hive")
    reg = dataset.to_table(columns=["patient_id", "age"]).to_pandas()
    return reg.sort_values("patient_id", kind="stable").reset_index(drop=True)


def run(n: int, cache: Path, repeats: int) -> list[dict]:
    path = ensure_population(n, cache)
    rows = []
    register = read_register(path)
    for dictionary in (False, True):
        gc.collect()
        with measure() as m:
            events = read_events(path, dictionary)
        rows.append({"size": n, "stage": "read_parquet", "codes": "dictionary" if dictionary
                     else "strings", "seconds": round(m.seconds, 3), "rows": len(events),
                     "rows_per_s": round(len(events) / m.seconds)})
        if dictionary:
            events_dict = events
        else:
            events_str = events
        del events
    orders = {
        "grouped": events_str,
        "arbitrary": events_str.iloc[np.random.default_rng(1).permutation(len(events_str))]
        .reset_index(drop=True),
    }
    variants = [("grouped", "strings", orders["grouped"]),
                ("arbitrary", "strings", orders["arbitrary"]),
                ("grouped", "dictionary", events_dict)]
    for order, codes, events in variants:
        gc.collect()
        loaded = rss_bytes()
        for name, (codelist, score) in INDICES.items():
            best = None
            for _ in range(repeats):
                gc.collect()
                with warnings.catch_warnings(), measure() as m:
                    warnings.simplefilter("ignore", DataQualityWarning)
                    flags = ph.flag_conditions(events, codelist, register=register,
                                               index_date=INDEX_DATE)
                    s = score(flags)
                if best is None or m.seconds < best.seconds:
                    best = m
            with warnings.catch_warnings(), measure() as ms:
                warnings.simplefilter("ignore", DataQualityWarning)
                s = score(flags)
            rows.append({
                "size": n, "stage": f"events->flags->{name}", "order": order, "codes": codes,
                "rows": len(events), "patients": len(register),
                "seconds": round(best.seconds, 3),
                "rows_per_s": round(len(events) / best.seconds),
                "patients_per_s": round(len(register) / best.seconds),
                "rss_loaded_gib": gib(loaded), "peak_rss_gib": gib(best.peak_rss),
                "flags_to_score_seconds": round(ms.seconds, 4),
                "flags_to_score_patients_per_s": round(len(register) / ms.seconds),
                "checksum": float(np.asarray(s, dtype=float).sum()),
            })
            print(json.dumps(rows[-1]), flush=True)
            del flags
    return rows


def to_markdown(rows: list[dict]) -> str:
    out = ["| size | stage | order | codes | rows | s | rows/s | patients/s | flags→score patients/s | RSS loaded GiB | peak RSS GiB |",
           "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(
            f"| {r['size']:,} | {r['stage']} | {r.get('order', '')} | {r.get('codes', '')} | "
            f"{r['rows']:,} | {r['seconds']} | {r['rows_per_s'] / 1e6:.1f}M | "
            + (f"{r['patients_per_s'] / 1e6:.1f}M | {r['flags_to_score_patients_per_s'] / 1e6:.0f}M | "
               f"{r['rss_loaded_gib']} | {r['peak_rss_gib']} |" if "patients_per_s" in r
               else "| | | |"))
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--cache", type=Path, default=HERE / "cache")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    rows = []
    for n in args.sizes:
        rows += run(n, args.cache, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "pandas": pd.__version__, "numpy": np.__version__, "pophealth": ph.__version__}
    (args.out / "core.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / "core.md").write_text(to_markdown(rows) + "\n")
    print(to_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
