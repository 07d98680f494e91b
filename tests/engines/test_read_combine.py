"""``read_table(combine_chunks=True)``: the same frame as without, from several row groups.

The row groups of a Parquet file carry their own dictionaries (here a code in one group
only, and a null); joining the chunks in Arrow first must give the same categoricals
(same categories, same order), numbers, dates and nulls.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pophealth.engines.io import read_table


def test_combined_chunks_read_as_the_same_frame(tmp_path):
    groups = [
        pd.DataFrame({"patient_id": [1, 1, 2], "code": ["I21", "E11", "I21"],
                      "code_system": ["icd10"] * 3,
                      "date": pd.to_datetime(["2024-01-01", None, "2024-02-01"])}),
        pd.DataFrame({"patient_id": [3, 4], "code": ["C78.0", None],
                      "code_system": ["icd10", "snomed"],
                      "date": pd.to_datetime(["2024-03-01", "2024-04-01"])}),
    ]
    path = tmp_path / "events.parquet"
    with pq.ParquetWriter(path, pa.Table.from_pandas(groups[0]).schema) as w:
        for g in groups:
            w.write_table(pa.Table.from_pandas(g))
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    filt = ds.field("patient_id") >= 1
    plain = read_table(path, filter=filt)
    combined = read_table(path, filter=filt, combine_chunks=True)
    pd.testing.assert_frame_equal(combined, plain, check_exact=True)
    assert combined["code"].dtype.name == "category"
    assert combined["code"].astype(object).where(combined["code"].notna(), None).tolist() == [
        "I21", "E11", "I21", "C78.0", None]
