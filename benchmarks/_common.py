"""What every benchmark stage module shares: constants, the cached population, the register,
the Skip signal and running a stage in its own process. Imports no stage module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

from benchmarks._measure import measure

INDEX_DATE = "2025-04-01"
SYNTHETIC_LISTS = {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"}


class Skip(Exception):
    """Stage not available (module missing, peer not installed)."""


def ensure_population(n: int, cache: Path) -> Path:
    path = cache / f"pop_{n}"
    if not (path / "_generation.json").exists():
        from pophealth.synthetic import write_population

        shutil.rmtree(path, ignore_errors=True)
        with measure() as m:
            summary = write_population(path, n, random_state=0, index_date=INDEX_DATE,
                                       progress=False)
        (path / "_generation.json").write_text(json.dumps({
            "seconds": m.seconds, "peak_rss": m.peak_rss, "rows": summary["rows"]}))
    return path


def generation_row(n: int, path: Path) -> dict:
    g = json.loads((path / "_generation.json").read_text())
    rows = sum(g["rows"].values())
    return {"size": n, "stage": "generation (write_population, cached)",
            "seconds": round(g["seconds"], 3), "rows": rows,
            "rows_per_s": round(rows / g["seconds"]), "patients_per_s": round(n / g["seconds"]),
            "peak_rss_gib": round(g["peak_rss"] / 2**30, 3)}


def load_register(ctx):
    if "register" not in ctx:
        reg = ds.dataset(ctx["path"] / "register", partitioning="hive").to_table().to_pandas()
        ctx["register"] = reg.drop(columns="bucket").sort_values("patient_id").reset_index(drop=True)
    return ctx["register"]


def own_process(code: str, *args) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info
