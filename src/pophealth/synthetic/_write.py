"""The write path of :func:`pophealth.synthetic.write_population`: generated blocks -> Arrow -> Parquet.

No pandas: every column goes from the generator's numpy arrays straight to Arrow buffers.
String columns with a small vocabulary (codes, systems, settings, kinds, geography, sex,
ethnicity) are built as dictionary arrays from integer indices into that vocabulary; NHS
numbers (always ten digits) are built as fixed-width bytes; dates as ``int64`` nanoseconds
viewed as timestamps. Parquet options: every column is dictionary-encoded except the
high-cardinality ones in :data:`NO_DICTIONARY_COLUMNS` (ids and continuous values, where the
writer would build a dictionary only to fall back to plain encoding: that is slower and the
files are larger), and row-group min/max statistics are written only for ``patient_id`` and
``date``, the columns readers filter on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pophealth.synthetic import _model as _m

_NS_PER_DAY = 86_400 * 10**9
#: string columns built as Arrow dictionary arrays (written as Parquet dictionaries)
DICTIONARY_COLUMNS = ("sex", "lsoa", "practice", "pcn", "icb", "ethnicity", "code",
                      "code_system", "setting", "kind")
#: high-cardinality columns written without a Parquet dictionary (all others have one)
NO_DICTIONARY_COLUMNS = ("patient_id", "nhs_number", "total_cost", "p_emergency_admission",
                         "p_death")
#: columns with row-group statistics (readers prune on patient and date)
STATISTICS_COLUMNS = ("patient_id", "date")
_NHS_WIDTH = 10


def dictionaries(ctx: _m.Context) -> dict:
    """Arrow string dictionaries (the vocabularies) of every dictionary column."""
    m = _m.load_model()
    vocab = {"sex": _m.SEXES, "lsoa": ctx.lsoa_codes, "practice": ctx.practice_codes,
             "pcn": ctx.pcn_codes, "icb": ctx.icb_codes, "ethnicity": m.eth_names,
             "code": m.event_vocab, "code_system": _m.CODE_SYSTEMS, "setting": _m.SETTINGS,
             "kind": _m.KINDS}
    return {k: pa.array(list(v), pa.string()) for k, v in vocab.items()}


def _dict(idx: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32, copy=False)), dictionary)


def _ts(days: np.ndarray) -> pa.Array:
    """Days since 1970-01-01 -> ``timestamp[ns]`` (no pass through numpy datetime64)."""
    return pa.array(days.astype(np.int64, copy=False) * _NS_PER_DAY, pa.int64()).view(
        pa.timestamp("ns"))


def nhs_strings(nhs: np.ndarray) -> pa.Array:
    """Ten-digit NHS numbers (int64) -> Arrow strings, built as fixed-width bytes.

    Examples
    --------
    >>> import numpy as np
    >>> from pophealth.synthetic._write import nhs_strings
    >>> nhs_strings(np.array([9990000018, 9999999999])).to_pylist()
    ['9990000018', '9999999999']
    """
    nhs = np.asarray(nhs, dtype=np.int64)
    bad = np.flatnonzero((nhs < 10 ** (_NHS_WIDTH - 1)) | (nhs >= 10 ** _NHS_WIDTH))
    if len(bad):
        raise ValueError(f"nhs_number: {len(bad)} rows not ten digits (positions {bad[:5].tolist()})")
    powers = 10 ** np.arange(_NHS_WIDTH - 1, -1, -1, dtype=np.int64)
    digits = ((nhs[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    offsets = np.arange(0, (len(nhs) + 1) * _NHS_WIDTH, _NHS_WIDTH, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(nhs),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes())])


def block_tables(ctx: _m.Context, block: _m.Block, dicts: dict) -> dict:
    """The four Arrow tables of one generated block (columns as in :class:`Population`)."""
    reg, ev, act, out = block.register, block.events, block.activity, block.outcomes
    n = len(reg["patient_id"])
    register = pa.table({
        "patient_id": reg["patient_id"],
        "nhs_number": nhs_strings(reg["nhs_number"]),
        "sex": _dict(reg["sex"], dicts["sex"]),
        "date_of_birth": _ts(reg["dob"]), "age": reg["age"].astype(np.int64),
        "lsoa": _dict(reg["lsoa"], dicts["lsoa"]),
        "practice": _dict(reg["practice"], dicts["practice"]),
        "pcn": _dict(reg["pcn"], dicts["pcn"]),
        "icb": _dict(reg["icb"], dicts["icb"]),
        "imd_decile": reg["imd"].astype(np.int64),
        "ethnicity": _dict(reg["ethnicity"], dicts["ethnicity"]),
        "date_of_death": pa.nulls(n, pa.timestamp("ns")),
        "registered_from": _ts(reg["registered_from"]),
    })
    events = pa.table({
        "patient_id": ev["pid"], "date": _ts(ev["day"]), "code": _dict(ev["code"], dicts["code"]),
        "code_system": _dict(ev["system"], dicts["code_system"]),
        "setting": _dict(ev["setting"], dicts["setting"]),
    })
    activity = pa.table({
        "patient_id": act["pid"], "date": _ts(act["day"]), "kind": _dict(act["kind"], dicts["kind"]),
        "cost": act["cost"].astype(float), "length_of_stay": act["los"].astype(np.int64),
    })
    outcomes = pa.table(out)
    return {"register": register, "events": events, "activity": activity, "outcomes": outcomes}


def batch_tables(ctx: _m.Context, blocks: list) -> dict:
    """Arrow tables of consecutive blocks: per-block tables concatenated without copying."""
    dicts = dictionaries(ctx)
    per_block = [block_tables(ctx, b, dicts) for b in blocks]
    return {name: pa.concat_tables([t[name] for t in per_block]) for name in per_block[0]}


def write_batch(tables: dict, path, batch: int, width: int) -> tuple[dict, dict]:
    """Write each table of a batch as one file per patient bucket; return row counts and files."""
    rows, files = {}, {}
    for name, table in tables.items():
        rows[name] = table.num_rows
        files[name] = []
        cols = table.column_names
        opts = {"compression": "zstd",
                "use_dictionary": [c for c in cols if c not in NO_DICTIONARY_COLUMNS],
                "write_statistics": [c for c in STATISTICS_COLUMNS if c in cols]}
        pids = table.column("patient_id").to_numpy()
        buckets = pids // width
        cuts = np.r_[0, np.flatnonzero(np.diff(buckets)) + 1, len(pids)]
        for s, e in zip(cuts[:-1], cuts[1:], strict=True):
            d = Path(path) / name / f"bucket={int(buckets[s]):03d}"
            d.mkdir(parents=True, exist_ok=True)
            f = d / f"part-{batch:05d}.parquet"
            pq.write_table(table.slice(s, e - s), f, **opts)
            files[name].append(str(f))
    return rows, files
