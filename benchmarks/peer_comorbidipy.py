"""Side-by-side peer: comorbidipy 0.5 Charlson (Quan weights) on the same events file.

Run by ``python -m benchmarks`` in a *separate* interpreter that has comorbidipy 0.5.0
(pandas 1.5, numpy < 2), e.g.::

    python3.11 -m venv /work/scratch/peer05
    /work/scratch/peer05/bin/pip install comorbidipy==0.5.0 "pandas<2" "numpy<2" pyarrow
    POPHEALTH_PEER_PYTHON=/work/scratch/peer05/bin/python python -m benchmarks --peer

comorbidipy 0.8 (the primary peer, polars) is run by ``benchmarks/bench_peer.py`` through
``benchmarks/peer_comorbidipy08.py``.

comorbidipy 0.5.0 imports ``pandas.core.common.SettingWithCopyWarning``, which pandas
1.5 moved to ``pandas.errors``; the shim below restores the old name before import. It
changes nothing else. Prints one JSON line: seconds, rows, patients, peak RSS, and the
scores (id, score) written to a Parquet file for the agreement check.
"""

import json
import resource
import sys
import time

import pandas.core.common
import pandas.errors
import pyarrow.dataset as ds

pandas.core.common.SettingWithCopyWarning = pandas.errors.SettingWithCopyWarning
from comorbidipy import comorbidity  # noqa: E402


def main(events_dir: str, out_file: str) -> None:
    table = ds.dataset(events_dir, format="parquet", partitioning="hive").to_table(
        columns=["patient_id", "code"], filter=ds.field("code_system") == "icd10")
    df = table.to_pandas()
    df["code"] = df["code"].astype(str)
    df = df.rename(columns={"patient_id": "id"})
    t0 = time.perf_counter()
    res = comorbidity(df, id="id", code="code", age=None, score="charlson", icd="icd10",
                      variant="quan", weighting="quan", assign0=True)
    seconds = time.perf_counter() - t0
    res[["id", "comorbidity_score"]].to_parquet(out_file)
    print(json.dumps({"seconds": seconds, "rows": len(df), "patients_out": len(res),
                      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
