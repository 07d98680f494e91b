"""Side-by-side peer: comorbidipy 0.8 (polars) Charlson, Elixhauser or HFRS from a Parquet file.

Run by ``python -m benchmarks.bench_peer`` in a *separate* interpreter that has
comorbidipy 0.8.0 and polars. comorbidipy 0.8 declares ``Requires-Python >=3.13`` but
runs on 3.11; install it into its own venv with::

    python3.11 -m venv /work/scratch/peer08
    /work/scratch/peer08/bin/pip download comorbidipy==0.8.0 --no-deps \\
        --python-version 3.13 --only-binary=:all: -d /tmp/cm08
    /work/scratch/peer08/bin/pip install --ignore-requires-python /tmp/cm08/*.whl
    # pulls its runtime deps from the wheel metadata: polars>=1.27.1, rich, typer

Usage: ``peer_comorbidipy08.py EVENTS.parquet SCORE OUT.parquet`` with SCORE one of
``charlson``, ``elixhauser``, ``hfrs``. The timed work is what a user of comorbidipy does
with the file: read the ICD-10 rows (``code_system == "icd10"`` pushed down into the
scan), normalise the codes the way comorbidipy expects them (upper case, no dots or other
punctuation: its maps are undotted prefixes such as ``I21``) and call ``comorbidity``
(Quan 2005 mapping; Quan 2011 weights for Charlson, van Walraven for Elixhauser; assign0)
or ``hfrs``. Prints one JSON line: seconds, rows, patients out, peak RSS (VmHWM); the
scores (id, score) go to OUT for the agreement check (not timed).
"""

import json
import resource
import sys
import time

import polars as pl
from comorbidipy import comorbidity, hfrs


def _peak_rss() -> int:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("VmHWM"))
    return int(line.split()[1]) * 1024


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(events_file: str, score: str, out_file: str) -> None:
    cpu0 = _cpu()
    t0 = time.perf_counter()
    df = (pl.scan_parquet(events_file)
          .filter(pl.col("code_system") == "icd10")
          .select(pl.col("patient_id").alias("id"),
                  pl.col("code").str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "")
                  .alias("code"))
          .collect())
    if score == "hfrs":
        res = hfrs(df, id_col="id", code_col="code").rename({"hfrs_score": "score"})
    else:
        res = comorbidity(df, id_col="id", code_col="code", score=score, icd="icd10",
                          variant="quan",
                          weighting="quan" if score == "charlson" else "van_walraven",
                          assign0=True).rename({"comorbidity_score": "score"})
    seconds = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    res.select("id", "score").write_parquet(out_file)
    print(json.dumps({"seconds": seconds, "rows": df.height, "patients_out": res.height,
                      "peak_rss": _peak_rss(), "cpu_seconds": cpu}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
