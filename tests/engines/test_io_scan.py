"""engines.io.scan / read_arrow: a filter on one dictionary column is evaluated per
dictionary value, and must give exactly the rows (and order) Arrow's own filter gives.

Crafted files: row groups whose dictionaries hold the same values in different orders
(a mask reused for the wrong dictionary would keep the wrong rows), null code systems,
a hive-partitioned dataset (a partition-key filter must fall back to Arrow's scanner).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.engines.io import open_dataset, read_arrow, read_table, scan


@pytest.fixture
def crafted(tmp_path):
    """Three row groups: systems in the order icd10, snomed / snomed, icd10 / with nulls."""
    groups = [
        pa.table({"patient_id": pa.array([1, 2, 3], pa.int64()),
                  "code": ["I21", "X1", "E11"], "code_system": ["icd10", "snomed", "icd10"]}),
        pa.table({"patient_id": pa.array([4, 5, 6], pa.int64()),
                  "code": ["X2", "I50", "X3"], "code_system": ["snomed", "icd10", "snomed"]}),
        pa.table({"patient_id": pa.array([7, 8, 9], pa.int64()),
                  "code": ["C78", None, "I10"], "code_system": [None, "icd10", "ICD10"]}),
    ]
    path = tmp_path / "events.parquet"
    with pq.ParquetWriter(path, groups[0].schema) as w:
        for g in groups:
            w.write_table(g)
    assert pq.ParquetFile(path).num_row_groups == 3
    return path


FILTERS = [
    ds.field("code_system") == "icd10",
    ds.field("code_system") != "icd10",
    ds.field("code_system").isin(["snomed", "ICD10"]),
    ds.field("code_system").is_null(),
    ~ds.field("code_system").is_valid() | (ds.field("code_system") == "snomed"),
    ds.field("code").isin(["I21", "I50", "C78"]),
    (ds.field("code_system") == "icd10") & (ds.field("patient_id") > 2),  # two columns
]


@pytest.mark.parametrize("flt", FILTERS, ids=[str(f) for f in FILTERS])
def test_scan_keeps_exactly_the_rows_arrow_keeps(crafted, flt):
    want = ds.dataset(crafted).to_table(filter=flt)
    got = read_arrow(crafted, filter=flt)
    assert got.column("patient_id").to_pylist() == want.column("patient_id").to_pylist()
    assert got.column("code").to_pylist() == want.column("code").to_pylist()
    # and read twice, the scan gives the same rows again (re-readable)
    events = scan(crafted, columns=["patient_id"], filter=flt)
    first = [b.column(0).to_pylist() for b in events.to_batches()]
    again = [b.column(0).to_pylist() for b in events.to_batches()]
    assert first == again
    assert sum(first, []) == want.column("patient_id").to_pylist()


def test_scan_filters_on_a_column_it_does_not_return(crafted):
    t = read_arrow(crafted, columns=["patient_id"], filter=ds.field("code_system") == "icd10")
    assert t.column_names == ["patient_id"]
    assert t.column("patient_id").to_pylist() == [1, 3, 5, 8]


def test_read_table_gives_categoricals_and_the_same_rows(crafted):
    df = read_table(crafted, filter=ds.field("code_system") == "snomed")
    assert df["patient_id"].tolist() == [2, 4, 6]
    assert df["code"].dtype.name == "category"


def test_partition_key_filter_falls_back_to_arrows_scanner(tmp_path):
    t = pa.table({"patient_id": pa.array([1, 2, 3, 4], pa.int64()),
                  "code": ["I21", "I50", "I21", "X1"],
                  "code_system": ["icd10", "icd10", "snomed", "icd10"],
                  "bucket": pa.array([0, 0, 1, 1], pa.int32())})
    ds.write_dataset(t, tmp_path / "ev", format="parquet", partitioning=["bucket"],
                     partitioning_flavor="hive")
    got = read_arrow(tmp_path / "ev", filter=ds.field("bucket") == 1)
    assert sorted(got.column("patient_id").to_pylist()) == [3, 4]
    got = read_arrow(tmp_path / "ev", filter=ds.field("code_system") == "icd10")
    assert sorted(got.column("patient_id").to_pylist()) == [1, 2, 4]


def test_scan_of_a_csv_file_reads_all_rows_with_a_filter(tmp_path):
    pd.DataFrame({"patient_id": [1, 2], "code": ["I21", "X"],
                  "code_system": ["icd10", "snomed"]}).to_csv(tmp_path / "e.csv", index=False)
    got = read_arrow(tmp_path / "e.csv", filter=ds.field("code_system") == "icd10")
    assert got.column("patient_id").to_pylist() == [1]
    assert pa.types.is_dictionary(got.schema.field("code").type)
    assert open_dataset(tmp_path / "e.csv").count_rows() == 2


def _many_rows(path, n: int, row_group: int):
    """``n`` events, patient i has code C78 (metastatic solid tumour, Quan 2011 weight 6)
    when i % 3 == 0 and is tagged snomed when i % 5 == 0 (filtered out)."""
    pid = pa.array(range(n), pa.int64())
    code = pa.array(["C78" if i % 3 == 0 else "I21" for i in range(n)])
    system = pa.array(["snomed" if i % 5 == 0 else "icd10" for i in range(n)])
    pq.write_table(pa.table({"patient_id": pid, "code": code, "code_system": system}), path,
                   row_group_size=row_group)
    return path


def test_a_scan_reads_a_row_group_as_one_batch(tmp_path):
    # Arrow's default cuts a row group into 2**17-row batches, which the core then had to
    # glue back together (a copy of every column per chunk): 300,000 rows must come as one
    path = _many_rows(tmp_path / "e.parquet", 300_000, 300_000)
    flt = ds.field("code_system") == "icd10"
    pairs = list(scan(path, filter=flt).to_masked_batches())
    assert [b.num_rows for b, _ in pairs] == [300_000]
    # every fifth row is snomed: 300,000 / 5 = 60,000 rows absent, 240,000 kept
    assert int(pairs[0][1].sum()) == 240_000
    assert [b.num_rows for b in scan(path).to_batches()] == [300_000]


def test_flags_and_report_do_not_depend_on_the_scan_batch_size(tmp_path, monkeypatch):
    import pophealth as ph
    import pophealth.engines.io as io

    n = 3_000
    path = _many_rows(tmp_path / "e.parquet", n, 1_000)
    reg = pd.DataFrame({"patient_id": range(n)})
    flt = ds.field("code_system") == "icd10"

    def run():
        flags = ph.flag_conditions(scan(path, filter=flt), "charlson_quan2005_icd10",
                                   register=reg, index_date="2025-04-01")
        return flags, ph.charlson(scan(path, filter=flt), register=reg,
                                  index_date="2025-04-01")

    big_flags, big = run()
    monkeypatch.setattr(io, "SCAN_BATCH_ROWS", 7)  # 143 batches per row group
    small_flags, small = run()
    # by hand: C78 and not snomed, i.e. i % 3 == 0 and i % 5 != 0: 1000 - 200 = 800 patients
    want = [6 if i % 3 == 0 and i % 5 != 0 else 0 for i in range(n)]
    assert big.tolist() == want
    assert small.tolist() == want
    pd.testing.assert_frame_equal(big_flags, small_flags)
    assert big_flags.attrs["pophealth_report"] == small_flags.attrs["pophealth_report"]
    assert big_flags.attrs["pophealth_report"]["n_events"] == n - n // 5


_VALUES = [f"v{i}" for i in range(12)]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.one_of(st.none(), st.sampled_from(_VALUES)), min_size=1, max_size=40),
       wanted=st.sets(st.sampled_from(_VALUES)), negate=st.booleans(),
       row_group=st.integers(1, 15))
def test_a_filter_on_a_many_valued_dictionary_keeps_the_rows_arrow_keeps(
        tmp_path_factory, rows, wanted, negate, row_group):
    """The per-value mask is gathered through the indices, or (few passing or few failing
    values) built by comparing the indices with those values: every route, with nulls
    (an ``isin`` is null, so failing, on them), keeps exactly Arrow's rows."""
    path = tmp_path_factory.mktemp("dict") / "e.parquet"
    pq.write_table(pa.table({"patient_id": pa.array(range(len(rows)), pa.int64()),
                             "code": pa.array(rows, pa.string()),
                             "code_system": pa.array(["icd10"] * len(rows))}), path,
                   row_group_size=row_group)
    flt = ds.field("code").isin(pa.array(sorted(wanted), pa.string()))
    if negate:
        flt = ~flt
    want = ds.dataset(path).to_table(filter=flt).column("patient_id").to_pylist()
    got = read_arrow(path, filter=flt).column("patient_id").to_pylist()
    assert got == want


@pytest.mark.parametrize("flt", FILTERS, ids=[str(f) for f in FILTERS])
def test_per_value_masks_keep_the_rows_of_the_row_masks(crafted, flt):
    """``per_value=True`` hands a filter on a dictionary column over as one flag per
    dictionary value: gathered to rows, it keeps exactly the rows of the row masks."""
    s = scan(crafted, filter=flt)
    by_rows = [(b.column("patient_id").to_pylist(), k) for b, k in s.to_masked_batches()]
    by_value = []
    for b, k in s.to_masked_batches(per_value=True):
        if k is not None and not isinstance(k, np.ndarray):
            assert k.column == s.on and len(k.passed) == len(b.column(s.on).dictionary) + 1
            k = k.rows(b)
        by_value.append((b.column("patient_id").to_pylist(), k))
    kept = [[p for p, keep in zip(ids, [True] * len(ids) if k is None else k, strict=True)
             if keep] for ids, k in by_rows]
    kept_v = [[p for p, keep in zip(ids, [True] * len(ids) if k is None else k, strict=True)
               if keep] for ids, k in by_value]
    assert [x for part in kept_v for x in part] == [x for part in kept for x in part]
    want = ds.dataset(crafted).to_table(filter=flt).column("patient_id").to_pylist()
    assert [x for part in kept_v for x in part] == want


def _dated(path, groups, unit="ns"):
    """One row group per list of dates (None: a missing date), of Arrow type ``unit``."""
    typ = pa.date32() if unit == "date32" else pa.timestamp(unit)
    tables = []
    for i, dates in enumerate(groups):
        values = [None if d is None else pd.Timestamp(d) for d in dates]
        arr = pa.array([None if v is None else (v.date() if unit == "date32" else v)
                        for v in values], typ)
        tables.append(pa.table({"patient_id": pa.array([i] * len(dates), pa.int64()),
                                "date": arr}))
    with pq.ParquetWriter(path, tables[0].schema) as w:
        for t in tables:
            w.write_table(t)
    return path


def _ns(text):
    return pd.Timestamp(text).value


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "date32"])
def test_the_date_column_is_left_out_only_of_row_groups_proven_inside_the_window(tmp_path,
                                                                                 unit):
    """Window (2024-04-01, 2025-04-01]: a row group is read without its dates only when
    its statistics prove every date present and inside; the bounds are those of the flag
    core (after the index date or on/before the lookback start: outside)."""
    path = _dated(tmp_path / "d.parquet", [
        ["2025-04-01", "2024-04-02"],   # 0 inside, max on the index date: left out
        ["2025-04-02", "2024-05-01"],   # 1 one day after the index date: read
        ["2024-04-01", "2025-01-01"],   # 2 min on the lookback start (excluded): read
        ["2024-06-01", None],           # 3 a missing date: read
        ["2024-12-31"],                 # 4 inside: left out
    ], unit)
    window = (_ns("2024-04-01"), _ns("2025-04-01"))
    got = [(b.column("patient_id")[0].as_py(), "date" in b.schema.names)
           for b, _ in scan(path).to_masked_batches(omit={"date": window})]
    assert got == [(0, False), (1, True), (2, True), (3, True), (4, False)]
    # no lower bound: row group 2 is left out too
    got = [("date" in b.schema.names) for b, _ in
           scan(path).to_masked_batches(omit={"date": (None, window[1])})]
    assert got == [False, True, False, True, False]
    # without omit every batch has its dates
    assert all("date" in b.schema.names for b, _ in scan(path).to_masked_batches())


def test_a_tz_aware_date_column_is_never_left_out(tmp_path):
    # the core compares tz-aware dates on their own zone's wall clock: stored UTC
    # statistics prove nothing about that, so the column is always read
    t = pa.table({"patient_id": pa.array([1], pa.int64()),
                  "date": pa.array([pd.Timestamp("2024-06-01", tz="Europe/London")],
                                   pa.timestamp("ns", tz="Europe/London"))})
    pq.write_table(t, tmp_path / "tz.parquet")
    window = (None, _ns("2025-04-01"))
    assert [("date" in b.schema.names) for b, _ in
            scan(tmp_path / "tz.parquet").to_masked_batches(omit={"date": window})] == [True]
