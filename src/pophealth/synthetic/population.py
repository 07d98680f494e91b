"""Synthetic GP-registered populations with coded events, activity, costs and outcomes.

``make_population`` builds a population in memory; ``write_population`` streams the same
patients to Parquet with bounded memory. Both are deterministic in ``random_state`` and
contain only synthetic data: NHS numbers come from the never-issued 999 range, LSOA codes
start ``L99`` (real English LSOAs start ``E01``), practices/PCNs/ICBs start ``SYN``.
Primary-care codes are real SNOMED CT codes drawn from the shipped PCD clusters, except for
conditions with no open SNOMED CT list, which keep the labelled stand-in system
``synthetic_pc`` (see :mod:`pophealth.synthetic.lists`).

The generating model (documented in ``synthetic_data/README.md``; parameters in
``pophealth/data/synthetic/*.csv``) has a latent frailty factor shared by ~50 conditions
and deficits with age, sex and deprivation gradients; yearly emergency admissions from a
logistic model that feeds back prior admissions; activity costs with heavy tails; and
12-month outcomes whose true probabilities are returned alongside the draws.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.schema import naive_timestamp
from pophealth.synthetic import _model as _m
from pophealth.synthetic import _write as _w
from pophealth.synthetic.lists import SYNTHETIC_LISTS

__all__ = ["SYNTHETIC_LISTS", "Population", "make_population", "write_population",
           "realism_summary"]


_TABLES = ("register", "events", "activity", "outcomes")


@dataclass(frozen=True)
class Population:
    """A synthetic population: four tables and the index date they are relative to.

    Attributes
    ----------
    register : DataFrame
        One row per patient (RangeIndex): patient_id, nhs_number, sex, date_of_birth, age,
        lsoa, practice, pcn, icb, imd_decile, ethnicity, date_of_death, registered_from.
    events : DataFrame
        Coded events (patient_id, date, code, code_system, setting), sorted by patient_id.
    activity : DataFrame
        Contacts in the 12 months before index (patient_id, date, kind, cost, length_of_stay).
    outcomes : DataFrame
        Index patient_id in register order: emergency_admission, days_to_emergency_admission,
        death, days_to_death, end_of_follow_up_days, total_cost, p_emergency_admission, p_death.
    index_date : Timestamp

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.synthetic import make_population
    >>> pop = make_population(200, random_state=0, index_date="2025-04-01")
    >>> len(pop.register), pop.index_date.date().isoformat()
    (200, '2025-04-01')
    >>> pop.outcomes.index.equals(pd.Index(pop.register["patient_id"]))
    True
    """

    register: pd.DataFrame
    events: pd.DataFrame
    activity: pd.DataFrame
    outcomes: pd.DataFrame
    index_date: pd.Timestamp


def _check_args(n_patients: int, random_state: int) -> None:
    if int(n_patients) != n_patients or n_patients < 1:
        raise ValueError("n_patients must be a positive integer")
    if int(random_state) != random_state or random_state < 0:
        raise ValueError("random_state must be a non-negative integer")


def _concat(blocks: list, table: str) -> dict:
    dicts = [getattr(b, table) for b in blocks]
    return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}


def _days_to_ns(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")


def _cat(codes: np.ndarray, categories) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=list(categories))


def _frames(ctx: _m.Context, reg: dict, ev: dict, act: dict, out: dict) -> tuple:
    m = _m.load_model()
    n = len(reg["patient_id"])
    register = pd.DataFrame({
        "patient_id": reg["patient_id"],
        "nhs_number": reg["nhs_number"].astype(str).astype(object),
        "sex": np.array(_m.SEXES, dtype=object)[reg["sex"]],
        "date_of_birth": _days_to_ns(reg["dob"]),
        "age": reg["age"].astype(np.int64),
        "lsoa": ctx.lsoa_codes[reg["lsoa"]],
        "practice": ctx.practice_codes[reg["practice"]],
        "pcn": ctx.pcn_codes[reg["pcn"]],
        "icb": ctx.icb_codes[reg["icb"]],
        "imd_decile": reg["imd"].astype(np.int64),
        "ethnicity": np.array(m.eth_names, dtype=object)[reg["ethnicity"]],
        "date_of_death": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        "registered_from": _days_to_ns(reg["registered_from"]),
    })
    events = pd.DataFrame({
        "patient_id": ev["pid"], "date": _days_to_ns(ev["day"]),
        "code": _cat(ev["code"], m.event_vocab), "code_system": _cat(ev["system"], _m.CODE_SYSTEMS),
        "setting": _cat(ev["setting"], _m.SETTINGS),
    })
    activity = pd.DataFrame({
        "patient_id": act["pid"], "date": _days_to_ns(act["day"]),
        "kind": _cat(act["kind"], _m.KINDS), "cost": act["cost"].astype(float),
        "length_of_stay": act["los"].astype(np.int64),
    })
    outcomes = pd.DataFrame({k: v for k, v in out.items() if k != "patient_id"},
                            index=pd.Index(out["patient_id"], name="patient_id"))
    return register, events, activity, outcomes


def make_population(n_patients: int, *, random_state: int, index_date="2025-04-01") -> Population:
    """Synthesise a GP-registered population in memory.

    Parameters
    ----------
    n_patients : int
        Number of registered patients.
    random_state : int
        Seed (non-negative). The same seed, size and index date give identical tables.
    index_date : date-like, default "2025-04-01"
        Events and activity fall on or before it; outcomes cover the 365 days after it.

    Returns
    -------
    Population
        ``register``, ``events``, ``activity``, ``outcomes`` and ``index_date``.
        String columns of events/activity are categoricals.

    Examples
    --------
    >>> import pophealth as ph
    >>> from pophealth.synthetic import make_population
    >>> pop = make_population(1_000, random_state=0)
    >>> len(pop.register), bool(pop.register["nhs_number"].str.startswith("999").all())
    (1000, True)
    >>> _ = ph.validate_events(pop.events, index_date=pop.index_date)
    """
    _check_args(n_patients, random_state)
    ctx = _m.build_context(int(n_patients), int(random_state), index_date)
    blocks = [_m.generate_block(ctx, b) for b in range(ctx.n_blocks)]
    reg, ev, act, out = (_concat(blocks, t) for t in _TABLES)
    frames = _frames(ctx, reg, ev, act, out)
    return Population(*frames, index_date=pd.Timestamp(ctx.index_day, unit="D"))


# ----------------------------------------------------------------------------- streaming


@lru_cache(maxsize=2)
def _cached_context(n_patients: int, random_state: int, index_date: str) -> _m.Context:
    return _m.build_context(n_patients, random_state, index_date)


def _build_batch(task: tuple) -> tuple[dict, int]:
    """Generate blocks ``first..last-1`` of a batch as Arrow tables; also the patient count."""
    path, n_patients, random_state, index_date, batch, first, last, width = task
    ctx = _cached_context(n_patients, random_state, index_date)
    blocks = [_m.generate_block(ctx, b) for b in range(first, last)]
    return _w.batch_tables(ctx, blocks), sum(ctx.block_len(b) for b in range(first, last))


def _write(tables: dict, task: tuple) -> tuple[dict, dict]:
    path, *_, batch, _first, _last, width = task
    return _w.write_batch(tables, path, batch, width)


def _run_batch(task: tuple) -> tuple[dict, dict, int]:
    """Generate and write one batch (a worker process's unit of work)."""
    tables, n_done = _build_batch(task)
    rows, files = _write(tables, task)
    return rows, files, n_done


def _serial(tasks: list, bar) -> list:
    """Generate batch ``i + 1`` while a writer thread writes batch ``i`` (pyarrow releases the
    GIL while encoding and compressing); at most one batch waits to be written."""
    results, pending = [], None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pophealth-synth-writer") as writer:
        for task in tasks:
            tables, n_done = _build_batch(task)
            if pending is not None:
                results.append((*pending[0].result(), pending[1]))
                bar.update(pending[1])
            pending = (writer.submit(_write, tables, task), n_done)
            del tables
        results.append((*pending[0].result(), pending[1]))
        bar.update(pending[1])
    return results


def _n_workers() -> int:
    env = os.environ.get("POPHEALTH_SYNTH_WORKERS", "").strip()
    return max(1, int(env)) if env.isdigit() else 1


def write_population(path, n_patients: int, *, random_state: int, index_date="2025-04-01",
                     batch_size: int = 250_000, n_buckets: int | None = None,
                     progress: bool | None = None) -> dict:
    """Stream a synthetic population to Parquet, one batch of patients at a time.

    Writes ``path/{register,events,activity,outcomes}/bucket=XXX/part-NNNNN.parquet``.
    Buckets are contiguous ranges of ``patient_id`` (a bucket is a whole number of the
    generator's 50,000-patient blocks, so there may be fewer buckets than asked for); every
    file is sorted by ``patient_id``. The patients are exactly those of
    :func:`make_population` with the same arguments, whatever ``batch_size`` is:
    ``batch_size`` (rounded up to whole blocks) only sets how many patients are held in
    memory and written per file. Setting the environment variable
    ``POPHEALTH_SYNTH_WORKERS=k`` (k > 1) generates batches in ``k`` spawned worker
    processes, each holding one batch at a time; a calling script then needs the usual
    ``if __name__ == "__main__":`` guard. The output does not depend on the number of
    workers.
    String columns are written dictionary-encoded (read back as categoricals).

    Parameters
    ----------
    path : str or Path
        Output directory (created; existing files with the same names are overwritten).
    n_patients : int
    random_state : int
    index_date : date-like, default "2025-04-01"
    batch_size : int, default 250_000
        Patients per batch (memory bound).
    n_buckets : int, optional
        Number of patient buckets; default one per million patients.
    progress : bool, optional
        Show a tqdm bar; ``None`` shows it only when stderr is a terminal.

    Returns
    -------
    dict
        ``rows`` (per table), ``files`` (per table), ``n_buckets``, ``bucket_width``,
        ``path`` and the arguments.

    Examples
    --------
    >>> import tempfile, pyarrow.dataset as ds
    >>> from pophealth.synthetic import write_population
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = write_population(tmp, 2_000, random_state=1, progress=False)
    ...     ds.dataset(f"{tmp}/register", partitioning="hive").count_rows()
    2000
    """
    from tqdm.auto import tqdm

    _check_args(n_patients, random_state)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    n_patients, random_state = int(n_patients), int(random_state)
    index_date = str(naive_timestamp(index_date).date())
    ctx = _cached_context(n_patients, random_state, index_date)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    per_batch = max(1, -(-int(batch_size) // _m.BLOCK_SIZE))
    n_buckets = n_buckets or max(1, -(-n_patients // 1_000_000))
    width = max(1, -(-ctx.n_blocks // int(n_buckets))) * _m.BLOCK_SIZE
    tasks = [(str(path), n_patients, random_state, index_date, i, first,
              min(first + per_batch, ctx.n_blocks), width)
             for i, first in enumerate(range(0, ctx.n_blocks, per_batch))]
    if progress is None:
        progress = sys.stderr.isatty()
    files = {t: [] for t in _TABLES}
    rows = dict.fromkeys(_TABLES, 0)
    workers = min(_n_workers(), len(tasks))
    with tqdm(total=n_patients, unit="patients", disable=not progress, desc="synthesising") as bar:
        if workers > 1:
            ctx_mp = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx_mp) as pool:
                # at most `workers` batches in flight: bounded memory
                results = _bounded_map(pool, _run_batch, tasks, workers, bar)
        else:
            results = _serial(tasks, bar)
    for r, f, _ in results:
        for name in _TABLES:
            rows[name] += r[name]
            files[name].extend(f[name])
    return {
        "path": str(path), "n_patients": n_patients, "random_state": random_state,
        "index_date": index_date, "n_buckets": int((n_patients - 1) // width + 1),
        "bucket_width": int(width), "rows": rows, "files": {k: sorted(v) for k, v in files.items()},
    }


def _bounded_map(pool, fn, tasks: list, in_flight: int, bar) -> list:
    results = [None] * len(tasks)
    pending = {}
    queue = list(enumerate(tasks))
    while queue or pending:
        while queue and len(pending) < in_flight:
            i, task = queue.pop(0)
            pending[pool.submit(fn, task)] = i
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            results[pending.pop(fut)] = fut.result()
            bar.update(fut.result()[2])
    return results


def realism_summary(pop: Population) -> dict:  # noqa: D103 (docstring copied below)
    from pophealth.synthetic._report import realism_summary as _summary

    return _summary(pop)


realism_summary.__doc__ = __import__(
    "pophealth.synthetic._report", fromlist=["realism_summary"]).realism_summary.__doc__
