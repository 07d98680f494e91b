"""Arrow input to the flag core (issue 14, item 1): one code path for pandas strings,
categoricals, Arrow tables and Arrow batch sources read chunk by chunk.

Each property compares two forms of the *same rows*: the flags and the whole exclusion
report must be identical, whatever the form, row order, chunk size or Arrow batch split.
The attacks check that missing ids in a streamed source are refused (count and absolute
positions, never values) and that a one-shot reader is refused rather than read twice.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_properties import CHARLSON, ELIX, HFRS, INDEX_DATE, event_tables

import pophealth as ph
import pophealth.core.conditions as conditions
from pophealth.contracts.exceptions import DataQualityWarning, SchemaError
from pophealth.engines.io import scan


def _flags(events, cl, register, lookback=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return ph.flag_conditions(events, cl, register=register, index_date=INDEX_DATE,
                                  lookback_days=lookback, max_unrecognised=1.0,
                                  on_no_match="ignore")


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["pophealth_report"] == b.attrs["pophealth_report"]


def _arrow_dictionary(events: pd.DataFrame, batch_rows: int) -> pa.Table:
    """The rows as an Arrow table of dictionary-encoded codes, split into batches of
    ``batch_rows`` rows, each batch with its own dictionary (as a Parquet reader gives)."""
    batches, schema = [], None
    for a in range(0, max(len(events), 1), batch_rows):
        part = events.iloc[a:a + batch_rows]
        t = pa.Table.from_pandas(part, preserve_index=False)
        t = t.set_column(1, "code", t.column("code").dictionary_encode())
        t = t.set_column(2, "code_system", t.column("code_system").dictionary_encode())
        batches += t.combine_chunks().to_batches()
        schema = t.schema
    return pa.Table.from_batches(batches, schema=schema)


class _Source:
    """A minimal Arrow batch source (schema + to_batches(columns=)), read again on each use."""

    def __init__(self, table: pa.Table, batch_rows: int) -> None:
        self.table, self.batch_rows, self.schema = table, batch_rows, table.schema
        self.reads = 0

    def to_batches(self, columns=None):
        self.reads += 1
        return self.table.select(columns or self.schema.names).to_batches(self.batch_rows)


@settings(max_examples=60, deadline=None)
@given(data=event_tables(max_events=60), batch=st.integers(1, 9), chunk=st.integers(1, 25),
       lookback=st.sampled_from([None, 365]), cl=st.sampled_from([CHARLSON, ELIX, HFRS]))
def test_pandas_strings_categoricals_arrow_tables_and_sources_agree(data, batch, chunk,
                                                                     lookback, cl):
    register, events = data
    base = _flags(events, cl, register, lookback)
    old = conditions._CHUNK_ROWS
    conditions._CHUNK_ROWS = chunk
    try:
        cats = events.assign(code=events.code.astype("category"),
                             code_system=events.code_system.astype("category"))
        _same(_flags(cats, cl, register, lookback), base)
        plain = pa.Table.from_pandas(events, preserve_index=False)
        _same(_flags(plain, cl, register, lookback), base)
        dic = _arrow_dictionary(events, batch)
        _same(_flags(dic, cl, register, lookback), base)
        source = _Source(dic, batch)
        _same(_flags(source, cl, register, lookback), base)
        assert source.reads == 1
    finally:
        conditions._CHUNK_ROWS = old


@settings(max_examples=40, deadline=None)
@given(data=event_tables(max_events=60), seed=st.integers(0, 2**16), batch=st.integers(1, 9))
def test_arrow_row_order_does_not_matter(data, seed, batch):
    register, events = data
    base = _flags(_arrow_dictionary(events, batch), CHARLSON, register, 365)
    shuffled = events.iloc[np.random.default_rng(seed).permutation(len(events))]
    _same(_flags(_arrow_dictionary(shuffled, batch), CHARLSON, register, 365), base)


def test_charlson_of_a_parquet_scan_equals_charlson_of_the_frame(tmp_path):
    """The whole route from a file: dotted/lower-case codes, two row groups with
    different dictionaries, other-system rows filtered at the scan. Hand-computed Quan
    2011 scores: patient 1 metastatic tumour (C78.0 -> 6) and CHF (I50 -> 2) = 8;
    patient 2 diabetes with complications (e11.2 -> 1) = 1; patient 3 only a SNOMED row
    (filtered out) = 0."""
    rows = pd.DataFrame({
        "patient_id": np.array([1, 2, 3, 1, 2], dtype=np.int64),
        "code": ["C78.0", "e11.2", "22298006", "I50", "E11.9"],
        "code_system": ["icd10", "icd10", "snomed", "icd10", "icd10"],
        "date": pd.to_datetime(["2024-01-01"] * 5),
    })
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), tmp_path / "ev.parquet",
                   row_group_size=3)
    reg = pd.DataFrame({"patient_id": [1, 2, 3]})
    events = scan(tmp_path / "ev.parquet", filter=ds.field("code_system") == "icd10")
    got = ph.charlson(events, register=reg, index_date=INDEX_DATE)
    assert got.tolist() == [8, 1, 0]
    frame = rows[rows.code_system == "icd10"]
    assert ph.charlson(frame, register=reg, index_date=INDEX_DATE).tolist() == [8, 1, 0]


def test_missing_ids_in_a_streamed_source_are_counted_across_chunks(monkeypatch):
    """Ids missing in three different chunks: one error with the total count and the
    absolute positions, never an id value (sentinels that would stand out)."""
    monkeypatch.setattr(conditions, "_CHUNK_ROWS", 4)
    ids = pa.array([987654321, None, 987654322, 987654323, 987654324, None, 987654325,
                    987654326, 987654327, None, 987654328, 987654329], type=pa.int64())
    t = pa.table({"patient_id": ids, "code": pa.array(["I21"] * 12).dictionary_encode(),
                  "code_system": pa.array(["icd10"] * 12).dictionary_encode()})
    reg = pd.DataFrame({"patient_id": np.arange(987654321, 987654330, dtype=np.int64)})
    with pytest.raises(SchemaError) as err:
        ph.flag_conditions(_Source(t, 3), CHARLSON, register=reg, index_date=INDEX_DATE)
    msg = str(err.value)
    assert msg == ("events: column 'patient_id' breaks rule 'not_null' in 3 row(s); first "
                   "positions [1, 5, 9]")
    assert "98765" not in msg


def test_arrow_dates_in_other_units_and_missing_dates_count_as_in_pandas():
    """Microsecond timestamps with a missing date: the report counts the missing date
    and the event after the index date exactly as the pandas frame does."""
    dates = pa.array([pd.Timestamp("2024-05-01").value // 1000, None,
                      pd.Timestamp("2025-06-01").value // 1000], type=pa.timestamp("us"))
    t = pa.table({"patient_id": pa.array([1, 2, 3], pa.int64()),
                  "code": pa.array(["I50", "I50", "I50"]).dictionary_encode(),
                  "code_system": pa.array(["icd10"] * 3), "date": dates})
    reg = pd.DataFrame({"patient_id": [1, 2, 3]})
    got = _flags(t, CHARLSON, reg)
    want = _flags(t.to_pandas(), CHARLSON, reg)
    _same(got, want)
    report = got.attrs["pophealth_report"]
    assert (report["n_missing_date"], report["n_after_index_date"], report["n_used"]) == (1, 1, 1)
    assert got["chf"].tolist() == [True, False, False]


def test_a_one_shot_record_batch_reader_is_refused():
    """A RecordBatchReader can be read once: a second index over it would see no rows and
    score everyone 0, so it is refused up front."""
    t = pa.table({"patient_id": [1], "code": ["I50"], "code_system": ["icd10"]})
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches())
    with pytest.raises(SchemaError, match="expected a DataFrame or Arrow table"):
        ph.flag_conditions(reader, CHARLSON, register=pd.DataFrame({"patient_id": [1]}),
                           index_date=INDEX_DATE)


def test_an_arrow_table_without_a_code_system_column_is_refused():
    t = pa.table({"patient_id": [1], "code": ["I50"]})
    with pytest.raises(SchemaError, match="missing column 'code_system'"):
        ph.charlson(t, register=pd.DataFrame({"patient_id": [1]}), index_date=INDEX_DATE)


@settings(max_examples=40, deadline=None)
@given(data=event_tables(max_events=60), chunk=st.integers(1, 25), rg=st.integers(1, 9),
       cl=st.sampled_from([CHARLSON, ELIX]))
def test_a_filtered_parquet_scan_equals_the_filtered_frame(tmp_path_factory, data, chunk, rg,
                                                            cl):
    """The scan hands the core unfiltered batches with a row mask: the rows failing the
    filter must be absent from every count, exactly as if filtered out beforehand."""
    register, events = data
    path = tmp_path_factory.mktemp("scan") / "ev.parquet"
    pq.write_table(pa.Table.from_pandas(events, preserve_index=False), path,
                   row_group_size=rg)
    flt = ds.field("code_system") == "icd10"
    want = _flags(events[events.code_system == "icd10"].reset_index(drop=True), cl, register,
                  365)
    old = conditions._CHUNK_ROWS
    conditions._CHUNK_ROWS = chunk
    try:
        _same(_flags(scan(path, filter=flt), cl, register, 365), want)
    finally:
        conditions._CHUNK_ROWS = old


def test_missing_ids_on_rows_a_scan_filters_out_do_not_count(tmp_path):
    """A missing id on a row the filter drops is not an error; one on a kept row is,
    at its position among the kept rows."""
    t = pa.table({"patient_id": pa.array([1, None, 2, None], pa.int64()),
                  "code": ["I50", "X1", "I50", "I21"],
                  "code_system": ["icd10", "snomed", "icd10", "icd10"]})
    pq.write_table(t, tmp_path / "ev.parquet")
    reg = pd.DataFrame({"patient_id": [1, 2]})
    only_first_three = scan(tmp_path / "ev.parquet", filter=ds.field("patient_id").is_valid()
                            | (ds.field("code_system") == "snomed"))
    assert only_first_three.on is None  # two columns: Arrow's own filter
    kept = scan(tmp_path / "ev.parquet", filter=ds.field("code_system") == "icd10")
    with pytest.raises(SchemaError, match=r"in 1 row\(s\); first positions \[2\]$"):
        ph.flag_conditions(kept, CHARLSON, register=reg, index_date=INDEX_DATE)
    pq.write_table(t.slice(0, 3), tmp_path / "ev3.parquet")
    flags = ph.flag_conditions(scan(tmp_path / "ev3.parquet",
                                    filter=ds.field("code_system") == "icd10"),
                               CHARLSON, register=reg, index_date=INDEX_DATE)
    assert flags["chf"].tolist() == [True, True]
    assert flags.attrs["pophealth_report"]["n_events"] == 2


@settings(max_examples=40, deadline=None)
@given(data=event_tables(max_events=40), rg=st.integers(1, 6),
       unit=st.sampled_from(["ns", "us", "ms", "date32"]),
       lookback=st.sampled_from([None, 365]), cl=st.sampled_from([CHARLSON, HFRS]),
       inside=st.integers(0, 3))
def test_a_scan_that_leaves_out_proven_dates_equals_the_frame(tmp_path_factory, data, rg,
                                                              unit, lookback, cl, inside):
    """Row groups whose date statistics prove every date inside the window are read
    without dates: flags and the whole report (after-index, before-lookback and
    missing-date counts) must equal the frame's. ``inside`` moves that many of every
    four events into the window so that some row groups are proven inside."""
    register, events = data
    events = events.copy()
    move = np.arange(len(events)) % 4 < inside
    events.loc[move, "date"] = INDEX_DATE - pd.Timedelta(days=100)
    table = pa.Table.from_pandas(events, preserve_index=False)
    if unit == "date32":
        table = table.set_column(3, "date", table.column("date").cast(pa.date32()))
    else:
        table = table.set_column(3, "date", table.column("date").cast(pa.timestamp(unit)))
    path = tmp_path_factory.mktemp("dates") / "ev.parquet"
    pq.write_table(table, path, row_group_size=rg)
    flt = ds.field("code_system") == "icd10"
    want = _flags(events[events.code_system == "icd10"].reset_index(drop=True), cl, register,
                  lookback)
    _same(_flags(scan(path, filter=flt), cl, register, lookback), want)
    _same(_flags(scan(path), cl, register, lookback), _flags(events, cl, register, lookback))


def test_dates_left_out_of_a_proven_row_group_still_count_its_events(tmp_path):
    """By hand: row group 0 (dates all inside the window) is read without dates, row
    group 1 has one event after the index date and one missing date."""
    t = pa.table({"patient_id": pa.array([1, 2, 3, 3], pa.int64()),
                  "code": ["I50", "I21", "I50", "I21"],
                  "code_system": ["icd10"] * 4,
                  "date": pa.array([pd.Timestamp("2024-01-01"), pd.Timestamp("2025-04-01"),
                                    pd.Timestamp("2025-04-02"), None], pa.timestamp("ns"))})
    pq.write_table(t, tmp_path / "ev.parquet", row_group_size=2)
    s = scan(tmp_path / "ev.parquet")
    assert [("date" in b.schema.names) for b, _ in s.to_masked_batches(
        omit={"date": (None, pd.Timestamp(INDEX_DATE).value)})] == [False, True]
    flags = _flags(s, CHARLSON, pd.DataFrame({"patient_id": [1, 2, 3]}))
    assert flags["chf"].tolist() == [True, False, False]
    assert flags["mi"].tolist() == [False, True, False]
    r = flags.attrs["pophealth_report"]
    assert (r["n_used"], r["n_after_index_date"], r["n_missing_date"]) == (2, 1, 1)


def test_missing_ids_after_chunks_filtered_per_system_value_are_at_absolute_positions(
        tmp_path, monkeypatch):
    """Chunks whose code-system filter is folded into the core count their rows there:
    a missing id in a later row group is still reported at its position among all kept
    rows. By hand: row groups of 4 rows, 3 kept (icd10) in each of the first two, then
    the third holds a kept row with a missing id at its second kept row: 3 + 3 + 1 = 7."""
    monkeypatch.setattr(conditions, "_CHUNK_ROWS", 2)
    ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, None, 12]
    systems = ["icd10", "snomed", "icd10", "icd10"] * 2 + ["snomed", "icd10", "icd10", "icd10"]
    t = pa.table({"patient_id": pa.array(ids, pa.int64()), "code": ["I50"] * 12,
                  "code_system": systems})
    pq.write_table(t, tmp_path / "ev.parquet", row_group_size=4)
    reg = pd.DataFrame({"patient_id": range(1, 13)})
    with pytest.raises(SchemaError, match=r"in 1 row\(s\); first positions \[7\]$"):
        ph.flag_conditions(scan(tmp_path / "ev.parquet", filter=ds.field("code_system")
                                == "icd10"), CHARLSON, register=reg, index_date=INDEX_DATE)


def test_a_dictionary_that_repeats_a_value_flags_every_chunk(monkeypatch):
    """Arrow allows a dictionary to hold a value twice: both indices are the code, in
    every chunk (a second chunk used to fail looking the code up in the code book)."""
    monkeypatch.setattr(conditions, "_CHUNK_ROWS", 2)
    codes = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()),
                                           pa.array(["I21", "I21"]))
    b = pa.record_batch({"patient_id": pa.array([1, 2], pa.int64()), "code": codes,
                         "code_system": pa.array(["icd10", "icd10"])})
    t = pa.Table.from_batches([b, b])
    flags = _flags(t, CHARLSON, pd.DataFrame({"patient_id": [1, 2]}))
    assert flags["mi"].tolist() == [True, True]
    assert flags.attrs["pophealth_report"]["n_used"] == 4


@pytest.mark.parametrize("flt", [ds.field("code").isin(["I50", "C78", "X1"]),
                                 ds.field("code_system").isin(["icd10", "ICD-10"]),
                                 ds.field("code_system") != "snomed"],
                         ids=["on code", "isin systems", "not snomed"])
def test_a_scan_filtered_on_either_dictionary_column_equals_the_filtered_frame(tmp_path, flt):
    """A filter on the code column reaches the core as a row mask, one on the code
    system as one flag per system value: both count exactly the frame's filtered rows.
    By hand, each filter keeps four rows (on code: 0, 2, 3, 5; on systems: 0, 1, 2, 4)
    and only patient 1 has heart failure (row 5's I50 is a snomed row)."""
    t = pa.table({"patient_id": pa.array([1, 1, 2, 3, 3, 4], pa.int64()),
                  "code": ["I50", "I21", "C78", "X1", "E11", "I50"],
                  "code_system": ["icd10", "icd10", "ICD-10", "snomed", "icd10", "snomed"]})
    pq.write_table(t, tmp_path / "ev.parquet", row_group_size=4)
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4]})
    kept = ds.dataset(t).to_table(filter=flt).to_pandas()
    got = _flags(scan(tmp_path / "ev.parquet", filter=flt), CHARLSON, reg)
    _same(got, _flags(kept, CHARLSON, reg))
    assert got.attrs["pophealth_report"]["n_events"] == 4
    assert got["chf"].tolist() == [True, False, False, False]


def test_chunks_sharing_a_dictionary_classify_codes_first_seen_in_a_later_chunk(monkeypatch):
    """Batches with one dictionary (as the row groups of a file often have) reuse the
    code ids found for earlier chunks; a code the first chunk did not hold is still
    classified when it first occurs. By hand: chunk 1 holds I50 (chf), chunk 2 C78
    (metastatic) and I50 again, chunk 3 an unrecognised code."""
    monkeypatch.setattr(conditions, "_CHUNK_ROWS", 2)
    dictionary = pa.array(["I50", "C78", "ZZ!", "E11.9"])
    batches = [pa.record_batch({
        "patient_id": pa.array(p, pa.int64()),
        "code": pa.DictionaryArray.from_arrays(pa.array(i, pa.int32()), dictionary),
        "code_system": pa.array(["icd10"] * len(p))})
        for p, i in [([1, 2], [0, 0]), ([2, 3], [1, 0]), ([3, 3], [2, 2])]]
    t = pa.Table.from_batches(batches)
    reg = pd.DataFrame({"patient_id": [1, 2, 3]})
    got = _flags(t, CHARLSON, reg)
    _same(got, _flags(t.to_pandas(), CHARLSON, reg))
    assert got["chf"].tolist() == [True, True, True]
    assert got["metacanc"].tolist() == [False, True, False]
    r = got.attrs["pophealth_report"]
    assert (r["n_used"], r["n_unrecognised"], r["n_unrecognised_unique"]) == (4, 2, 1)
