#!/usr/bin/env python
"""Benchmark: factorizing an ICD-10-like string column read from Parquet.

Compares the ctypes "object address" shortcut that pophealth 0.1.0 used (kept here,
and only here, as the baseline; the library dropped it for the routes below) with
supported pandas / pyarrow routes,
reporting read + factorize totals per read route, and the is_constant_object check.

Each route runs in a fresh subprocess (so the peak RSS column is per route), single
process, best of 3.  Usage:

    python benchmarks/bench_factorize.py                 # N = 8,000,000
    python benchmarks/bench_factorize.py --n 80000000 --routes plain/b_pd_factorize,dict/d_cat_codes
    python benchmarks/bench_factorize.py --constant      # is_constant_object only
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SEED = 20240611
N_DISTINCT = 12_000
NULL_FRACTION = 0.001
REPEATS = 3

# --------------------------------------------------------------------------------------
# baseline (a): copied from pophealth/_arrays.py
# --------------------------------------------------------------------------------------
_SAMPLE = 65_536
_MAX_DISTINCT_OBJECTS = 500_000


def _object_pointers(values: np.ndarray) -> np.ndarray | None:
    if values.dtype != object or not values.flags["C_CONTIGUOUS"] or len(values) == 0:
        return None
    if values.itemsize != np.dtype(np.intp).itemsize:  # pragma: no cover
        return None
    addr = values.__array_interface__["data"][0]
    buf = (ctypes.c_ssize_t * len(values)).from_address(addr)
    return np.ctypeslib.as_array(buf)


def _factorize_objects(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ptrs = _object_pointers(values)
    if ptrs is not None:
        sample = ptrs[:_SAMPLE]
        if len(np.unique(sample)) > len(sample) // 2:
            ptrs = None
    if ptrs is not None:
        enc = pc.dictionary_encode(pa.array(ptrs, type=pa.int64()))
        if len(enc.dictionary) > _MAX_DISTINCT_OBJECTS:
            ptrs = None
    if ptrs is None:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)
    ident = enc.indices.to_numpy(zero_copy_only=False)
    distinct = np.empty(len(enc.dictionary), dtype=object)
    distinct[:] = [ctypes.cast(a, ctypes.py_object).value for a in enc.dictionary.to_pylist()]
    by_value, uniques = pd.factorize(distinct, use_na_sentinel=True)
    return by_value.astype(np.int32 if len(uniques) < 2**31 - 1 else np.int64)[ident], np.asarray(
        uniques, dtype=object
    )


def is_constant_object_ctypes(values: np.ndarray) -> bool:
    ptrs = _object_pointers(values)
    return ptrs is not None and bool(np.all(ptrs == ptrs[0]))


# --------------------------------------------------------------------------------------
# supported candidates
# --------------------------------------------------------------------------------------
def f_pd_factorize(values: np.ndarray):
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _arrow_codes(chunked) -> tuple[np.ndarray, np.ndarray]:
    """Same as pophealth._arrays._factorize_arrow (public pyarrow API only)."""
    if isinstance(chunked, pa.Array):
        chunked = pa.chunked_array([chunked])
    if not pa.types.is_dictionary(chunked.type):
        chunked = pc.dictionary_encode(chunked)
    chunked = chunked.unify_dictionaries()
    dictionary = chunked.chunk(0).dictionary
    parts = [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in chunked.chunks]
    codes = np.concatenate(parts).astype(np.int64, copy=False)
    return codes, np.asarray(dictionary.to_pylist(), dtype=object)


def f_arrow_dict_encode(values: np.ndarray):
    return _arrow_codes(pa.array(values, type=pa.string(), from_pandas=True))


def f_astype_category(values: np.ndarray):
    cat = pd.Categorical(values)
    return cat.codes.astype(np.int64, copy=False), np.asarray(cat.categories, dtype=object)


def f_hash_array(values: np.ndarray):
    """pd.util.hash_array then factorize the uint64 hashes.

    NOT exact (64-bit hash collisions are possible, missing is hashed like a value);
    timed only to show hashing by value is no shortcut.
    """
    h = pd.util.hash_array(values, categorize=False)
    codes, uniq_hashes = pd.factorize(h)
    return codes.astype(np.int64, copy=False), uniq_hashes


def f_cat_codes(series: pd.Series):
    return series.cat.codes.to_numpy().astype(np.int64, copy=False), np.asarray(
        series.cat.categories, dtype=object
    )


# --------------------------------------------------------------------------------------
# read routes
# --------------------------------------------------------------------------------------
def read_plain(f):  # (1) object column, shared string objects (deduplicate_objects)
    return pq.read_table(f).to_pandas()["code"]


def read_pandas(f):  # (2) pandas' own reader
    return pd.read_parquet(f)["code"]


def read_dict(f):  # (3) categorical
    return pq.read_table(f, read_dictionary=["code"]).to_pandas()["code"]


def read_arrow_table(f):  # (4) keep Arrow, no Python objects at all
    return pq.read_table(f).column("code")


def read_nodedup(f):  # (1') object column, one Python object per row
    return pq.read_table(f).to_pandas(deduplicate_objects=False)["code"]


def read_pandas_infer_string(f):  # (2') pandas 3 default string dtype, opt-in on 2.x
    pd.set_option("future.infer_string", True)
    return pd.read_parquet(f)["code"]


def read_pandas_arrow(f):  # (5) pandas ArrowDtype string column
    return pd.read_parquet(f, dtype_backend="pyarrow")["code"]


ROUTES = {
    # route: (reader, factorizer, takes numpy object array?)
    "plain/a_ctypes (baseline)": (read_plain, _factorize_objects, True),
    "plain/b_pd_factorize": (read_plain, f_pd_factorize, True),
    "plain/c_arrow_dict_encode": (read_plain, f_arrow_dict_encode, True),
    "plain/e_pd_Categorical": (read_plain, f_astype_category, True),
    "plain/e_hash_array (inexact)": (read_plain, f_hash_array, True),
    "pd.read_parquet/a_ctypes": (read_pandas, _factorize_objects, True),
    "pd.read_parquet/b_pd_factorize": (read_pandas, f_pd_factorize, True),
    "no-dedup/a_ctypes": (read_nodedup, _factorize_objects, True),
    "no-dedup/b_pd_factorize": (read_nodedup, f_pd_factorize, True),
    "dict/d_cat_codes": (read_dict, f_cat_codes, False),
    "arrow_table/e_dictionary_encode": (read_arrow_table, _arrow_codes, False),
    "pd.read_parquet(pyarrow)/e_dictionary_encode": (
        read_pandas_arrow,
        lambda s: _arrow_codes(s.array.__arrow_array__()),
        False,
    ),
    "pd.read_parquet(infer_string)/e_dictionary_encode": (
        read_pandas_infer_string,
        lambda s: _arrow_codes(s.array.__arrow_array__()),
        False,
    ),
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shared_fraction(values: np.ndarray, k: int = 65_536) -> float:
    """distinct object ids / distinct values in a sample (1.0 = fully shared)."""
    s = values[:k]
    return len({id(x) for x in s}) / max(1, len(set(s.tolist())))


def check(codes, uniques, values) -> None:
    missing = pd.isna(values)
    assert np.array_equal(codes == -1, missing), "missing mask"
    ok = ~missing
    assert np.array_equal(uniques[codes[ok]], values[ok]), "values"
    assert len(set(uniques.tolist())) == len(uniques), "uniques not unique"


def run_one(name: str, path: str) -> dict:
    reader, fact, is_obj = ROUTES[name]
    reads, facts = [], []
    for _ in range(REPEATS):  # read alone
        t0 = time.perf_counter()
        col = reader(path)
        reads.append(time.perf_counter() - t0)
        del col
    col = reader(path)
    for _ in range(REPEATS):  # factorize alone, on a fresh read
        t0 = time.perf_counter()
        codes, uniques = fact(col.to_numpy() if is_obj else col)
        facts.append(time.perf_counter() - t0)
    info = {"rss": peak_rss_mib()}  # peak of the timed part, before validation
    values = np.asarray(
        col.to_numpy() if isinstance(col, pd.Series) else col.to_pandas().to_numpy(), dtype=object
    )
    info["dtype"] = str(col.dtype) if isinstance(col, pd.Series) else str(col.type)
    if is_obj:
        info["shared"] = round(shared_fraction(values), 4)
    info["codes_dtype"] = str(codes.dtype)
    info["n_uniques"] = len(uniques)
    if "inexact" not in name:
        check(codes, uniques, values)
    return {
        "route": name,
        "read": min(reads),
        "fact": min(facts),
        "total": min(reads) + min(facts),
        "load": os.getloadavg(),
        **info,
    }


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def make_codes(rng: np.random.Generator) -> np.ndarray:
    codes: set[str] = set()
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    while len(codes) < N_DISTINCT:
        ndig = rng.integers(2, 5)
        codes.add(str(rng.choice(letters)) + "".join(map(str, rng.integers(0, 10, ndig))))
    for c in ("I21", "E119", "N183", "J449"):
        codes.add(c)
    out = np.array(sorted(codes), dtype=object)
    rng.shuffle(out)  # popularity rank unrelated to sort order
    return out


def write_parquet(path: str, n: int) -> None:
    rng = np.random.default_rng(SEED)
    vocab = make_codes(rng)
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks**1.1  # Zipf-ish
    p /= p.sum()
    idx = rng.choice(len(vocab), size=n, p=p).astype(np.int32)
    dictionary = pa.array(vocab.tolist(), type=pa.string())
    code = pc.take(dictionary, pa.array(idx))  # plain utf8 column (not dictionary-typed)
    null_mask = rng.random(n) < NULL_FRACTION
    code = pc.if_else(pa.array(null_mask), pa.scalar(None, pa.string()), code)
    pid = np.sort(rng.integers(0, n // 20, size=n)).astype(np.int64)
    table = pa.table({"patient_id": pid, "code": code})
    pq.write_table(table, path, row_group_size=1_000_000)


# --------------------------------------------------------------------------------------
# is_constant_object
# --------------------------------------------------------------------------------------
def const_eq(values: np.ndarray) -> bool:
    return len(values) > 0 and bool((values == values[0]).all())


def const_eq_sampled(values: np.ndarray) -> bool:
    """Reject cheaply on a strided sample first, then the full == check."""
    if len(values) == 0:
        return False
    v0 = values[0]
    step = max(1, len(values) // 4096)
    if not bool((values[::step] == v0).all()):
        return False
    return bool((values == v0).all())


def const_arrow(values: np.ndarray) -> bool:
    arr = pa.array(values, type=pa.string(), from_pandas=True)
    return len(arr) > 0 and arr.null_count == 0 and pc.count_distinct(arr).as_py() == 1


def const_pd_nunique(values: np.ndarray) -> bool:
    return len(values) > 0 and len(pd.unique(values)) == 1


def const_categorical(values) -> bool:
    """Only for a pandas Categorical: look at the int8/16 codes, not the objects."""
    codes = values.codes
    return len(codes) > 0 and codes[0] >= 0 and bool((codes == codes[0]).all())


def bench_constant(n: int, path_mixed: str | None) -> list[dict]:
    const = np.empty(n, dtype=object)
    const.fill("icd10")  # one shared object (np.full(n, "icd10", dtype=object) would NOT share)
    # same value, distinct objects (what a non-deduplicating reader would give)
    const_unshared = np.array(["icd" + str(10 + 0 * i) for i in range(n)], dtype=object)
    cases = {"constant, shared 'icd10'": const, "constant, not shared": const_unshared}
    if path_mixed:
        cases["ICD column (not constant)"] = read_plain(path_mixed).to_numpy()
    cases["constant, Categorical (1 category)"] = pd.Categorical(const)
    fns = {
        "ctypes ptrs == ptrs[0] (baseline)": is_constant_object_ctypes,
        "(values == values[0]).all()": const_eq,
        "strided sample, then ==": const_eq_sampled,
        "pc.count_distinct(pa.array) == 1": const_arrow,
        "len(pd.unique(values)) == 1": const_pd_nunique,
        "Categorical: (codes == codes[0]).all()": const_categorical,
    }
    rows = []
    for cname, vals in cases.items():
        for fname, fn in fns.items():
            if isinstance(vals, pd.Categorical) != (fn is const_categorical):
                continue
            ts = []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                r = fn(vals)
                ts.append(time.perf_counter() - t0)
            rows.append({"case": cname, "check": fname, "result": r, "s": min(ts)})
    return rows


# --------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8_000_000)
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--constant", action="store_true", help="only the is_constant bench")
    ap.add_argument("--no-constant", action="store_true")
    ap.add_argument("--_one", help=argparse.SUPPRESS)
    ap.add_argument("--_path", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a._one:  # child process
        print(json.dumps(run_one(a._one, a._path)))
        return

    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pyarrow {pa.__version__}, cpus {os.cpu_count()}, N = {a.n:,}, best of {REPEATS}\n"
    )
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(__file__))) as d:
        path = os.path.join(d, "events.parquet")
        t0 = time.perf_counter()
        write_parquet(path, a.n)
        print(
            f"data: {a.n:,} rows, {N_DISTINCT:,}+ distinct codes, Zipf s=1.1, "
            f"{NULL_FRACTION:.1%} null; parquet {os.path.getsize(path) / 2**20:.0f} MiB "
            f"(written in {time.perf_counter() - t0:.1f} s)\n"
        )
        if not a.constant:
            rows = []
            for name in a.routes.split(","):
                out = subprocess.run(
                    [sys.executable, __file__, "--_one", name, "--_path", path],
                    check=True, capture_output=True, text=True,
                ).stdout
                r = json.loads(out.strip().splitlines()[-1])
                rows.append(r)
                print(f"  done {name}: total {r['total']:.3f} s", file=sys.stderr)
            base = next((r["total"] for r in rows if "baseline" in r["route"]), None)
            print("| route (read/factorize) | column dtype | shared objs | read s | factorize s "
                  "| total s | rows/s | vs baseline | codes dtype | peak RSS MiB | load avg 1m |")
            # peak RSS: whole child process (python + pandas/pyarrow ~ 150 MiB) after 3 reads
            # and 3 factorizes, before the correctness check
            print("|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
            for r in rows:
                ratio = f"{r['total'] / base:.2f}x" if base else "-"
                sh = r.get("shared", "-")
                print(
                    f"| {r['route']} | {r['dtype']} | {sh} | {r['read']:.3f} | {r['fact']:.3f} | "
                    f"{r['total']:.3f} | {a.n / r['total'] / 1e6:.1f} M | {ratio} | "
                    f"{r['codes_dtype']} | {r['rss']:.0f} | {r['load'][0]:.2f} |"
                )
            print("\n(shared objs: distinct object ids / distinct values in the first 65,536 rows;"
                  " 1.0 = one object per distinct string)\n")
        if not a.no_constant:
            crow = bench_constant(a.n, path)
            print(f"is_constant_object, N = {a.n:,}, best of {REPEATS}, "
                  f"load avg {os.getloadavg()[0]:.2f}\n")
            print("| array | check | result | s |")
            print("|---|---|---|---:|")
            for r in crow:
                print(f"| {r['case']} | {r['check']} | {r['result']} | {r['s']:.4f} |")


if __name__ == "__main__":
    main()
