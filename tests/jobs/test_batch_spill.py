"""A batch's spill file: read back whole, it is the frame that was written.

:func:`pophealth.jobs.batchwork._spill` writes without column statistics and with
dictionary encoding only for the categorical columns (to save CPU in the workers); the
job's process reads the files back with ``pandas.read_parquet``, so every dtype the
patient table holds must come back as it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pophealth.jobs.batchwork import _spill


def _frame() -> pd.DataFrame:
    bands = pd.CategoricalDtype(["fit", "mild", "moderate", "severe"], ordered=True)
    return pd.DataFrame({
        "age": np.array([80, 5, 40, 61], dtype=np.int64),
        "practice": pd.Categorical(["P2", "P1", "P2", None]),
        "efi_band": pd.Categorical(["severe", None, "fit", "mild"], dtype=bands),
        "prior_cost": [1.5, np.nan, 0.0, 2500.25],
        "multimorbidity": [True, False, False, True],
        "frailty_recorded_date": pd.to_datetime(["2024-01-02", None, None, "2023-05-06"]),
        "segment_rule": np.array(["healthy", None, "dementia", "healthy"], dtype=object),
        "_pseudo_source": np.array([9990001, 9990002, 9990003, 9990004], dtype=np.int64),
    }, index=pd.Index([11, 12, 15, 19], name="patient_id"))


def test_spill_reads_back_as_the_frame_written(tmp_path):
    df = _frame()
    _spill(df, tmp_path / "part-00000.parquet")
    back = pd.read_parquet(tmp_path / "part-00000.parquet")
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back["efi_band"].cat.ordered and not back["practice"].cat.ordered


def test_spill_encodes_only_categoricals_as_dictionaries_and_writes_no_statistics(tmp_path):
    _spill(_frame(), tmp_path / "part-00000.parquet")
    meta = pq.ParquetFile(tmp_path / "part-00000.parquet").metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    dict_cols = {name for name, c in cols.items()
                 if any("DICT" in e for e in c.encodings)}
    assert dict_cols == {"practice", "efi_band"}
    assert not any(c.is_stats_set for c in cols.values())
