"""One patient batch of the job: read, validate, score and spill it - in this process or a worker.

:func:`score_batch_task` is the body of the job's batch loop (see
:func:`pophealth.jobs.inputs._build_patients`): it reads one batch's register, events and
activity rows, validates them, runs :func:`~pophealth.engines.pipeline.score_batch_parts`
and, when the job is batched, writes the batch's included rows (and, when a model is
fitted, its features) to the run's private spill directory. It returns a small
:class:`BatchResult` - the keep mask, counts, notes, flag reports and risks - never the
batch's tables, so a worker process sends back kilobytes, not frames.

:func:`run_batches` runs the tasks serially or on a pool of worker processes
(:func:`job_workers`); results come back in batch order whatever the worker count, so
the job's outputs are byte-identical however many workers scored it, and the error
raised is the first failing batch's, as in a serial run.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import (
    ConfigError,
    DataQualityWarning,
    PopHealthError,
    SchemaError,
)
from pophealth.jobs.config import JobConfig

__all__ = ["BatchResult", "BatchTask", "WORKERS_ENV", "job_workers", "run_batches",
           "score_batch_task"]

#: Environment variable setting the number of worker processes scoring the job's batches
#: (1 = in the job's own process). Unset: :func:`default_workers`.
WORKERS_ENV = "POPHEALTH_JOB_WORKERS"

_DATE_COLUMNS = ("date_of_birth", "date_of_death", "registered_from", "registered_to", "date")


def default_workers() -> int:
    """Two workers when the machine has two or more cores, else one.

    Each worker holds one batch (~0.65 GiB at 250,000 patients), so more workers cost
    memory; two is what the job was measured with (``benchmarks/results/bench_job.md``).
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def job_workers(environ=None) -> int:
    """The worker count: :data:`WORKERS_ENV` if set (a positive integer), else
    :func:`default_workers`.

    Examples
    --------
    >>> from pophealth.jobs.batchwork import job_workers
    >>> job_workers({"POPHEALTH_JOB_WORKERS": "1"})
    1
    >>> job_workers({"POPHEALTH_JOB_WORKERS": "0"})
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: POPHEALTH_JOB_WORKERS must be a positive integer
    """
    env = os.environ if environ is None else environ
    text = env.get(WORKERS_ENV)
    if text is None or not text.strip():
        return default_workers()
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{WORKERS_ENV} must be a positive integer")
    return n


@dataclass(frozen=True)
class BatchTask:
    """Everything one batch needs (small: filters, the model, the id exclusions)."""

    config: JobConfig
    k: int
    nb: int
    reg_filter: object
    rows_filter: object
    bad_ids: np.ndarray | None
    lists: dict
    model: object
    fitting: bool
    train: np.ndarray | None  # training positions within this batch (when fitting)
    spill: Path | None
    #: threads of the flag core (event chunks processed concurrently; None: its default).
    #: :func:`run_batches` sets 1 in worker processes: the workers already fill the cores.
    threads: int | None = None


@dataclass
class BatchResult:
    """What a batch reports back; ``table``/``X`` only when there is no spill (one batch)."""

    n: int
    keep: np.ndarray
    excluded: dict
    unknown: int
    n_act: int
    notes: list
    report: dict
    n_features: int | None
    risk: np.ndarray | None
    train_X: pd.DataFrame | None
    columns: list
    table: pd.DataFrame | None = None
    X: pd.DataFrame | None = None


def _dates(s: pd.Series) -> np.ndarray:
    from pophealth.contracts.schema import as_datetime64

    return as_datetime64(s, unit="us")  # tz-aware -> local wall clock; 9999-12-31 kept


def _naive_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """The job's one date convention: every date column as naive ``datetime64`` on
    local wall-clock time (tz-aware -> zone dropped, clock reading kept; Arrow ``date32`` /
    ``datetime.date`` -> midnight), so every later step compares like with like. Naive
    ``[ns]`` columns are kept as read; others become ``[us]`` (which keeps 9999-12-31)."""
    from pophealth.contracts.schema import is_datetimelike

    # naive datetime64[ns] already follows the convention and is the unit the core
    # computes in (core.arrays.datetimes): left as it is, not converted to [us] and back
    # in every step (1M patients: 12 conversions a batch)
    cols = {c: _dates(frame[c]) for c in _DATE_COLUMNS
            if c in frame.columns and len(frame) and frame[c].dtype != _NS
            and is_datetimelike(frame[c])}
    return frame.assign(**cols) if cols else frame


_NS = np.dtype("datetime64[ns]")


def _in_batch(exc: SchemaError, batches: int, k: int, what: str) -> SchemaError:
    """A batch's error, saying that its positions are within the batch (when batched)."""
    if batches == 1:
        return exc
    out = type(exc)(f"{exc} (positions are within the {what} rows of patient batch {k} of "
                    f"{batches})", getattr(exc, "problems", []))
    return out


def _batch_read(path: Path, filter, batches: int, k: int, what: str,
                skip: tuple = ()) -> pd.DataFrame:
    from pophealth.engines.io import open_dataset, read_table

    # the partition column is not read (dropping it afterwards copied the whole frame)
    columns = [c for c in open_dataset(path).schema.names if c not in ("bucket", *skip)]
    try:
        return read_table(path, columns=columns, filter=filter, combine_chunks=True)
    except SchemaError as exc:
        raise _in_batch(exc, batches, k, what) from None


def _exclusions(config: JobConfig, register: pd.DataFrame, bad_ids, excluded: dict):
    """The batch's keep mask; adds its date-rule exclusion counts to ``excluded``."""
    from pophealth.contracts.schema import naive_timestamp

    keep = np.ones(len(register), dtype=bool)
    if bad_ids is not None:
        keep &= ~np.isin(register["patient_id"].to_numpy(), bad_ids)
    t = np.datetime64(naive_timestamp(config.index_date), "us")  # wall clock, like the columns
    for col, reason, test in (
            ("date_of_death", "died_on_or_before_index_date", lambda d: d <= t),
            ("registered_from", "registered_after_index_date", lambda d: d > t),
            ("registered_to", "deregistered_before_index_date", lambda d: d < t)):
        if col in register.columns:
            d = _dates(register[col])
            hit = ~np.isnat(d) & test(d)
            excluded[reason] = excluded.get(reason, 0) + int((hit & keep).sum())
            keep &= ~hit
    return keep


_LAST = ("risk", "tier", "segment", "segment_rule")


def _final_order(columns) -> list:
    """The patient table's column order: the others as they come, then :data:`_LAST`."""
    return [c for c in columns if c not in _LAST] + [c for c in _LAST if c in columns]


def _output_columns(config: JobConfig, columns) -> list:
    """The patient-table columns the caseload rules, reasons, lists and report read."""
    from pophealth.cohorts.caseload import DEFAULT_FACTORS

    if config.report is not None:
        return list(columns)
    wanted = {"pcn", "practice", "_pseudo_source", "risk", "tier", "segment",
              config.rank_by, *config.include_columns,
              *(f[0] for f in DEFAULT_FACTORS)}
    for rule in config.rules:
        wanted |= set(rule.columns())
    return [c for c in columns if c in wanted]


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """PCN and practice codes as categoricals: a few hundred codes, not one Python string
    per patient (at 10M patients that is over a gigabyte)."""
    cols = {c: frame[c].astype("category") for c in ("pcn", "practice")
            if c in frame.columns and frame[c].dtype == object}
    return frame.assign(**cols) if cols else frame


def _warnings_to_notes(caught) -> list:
    return sorted({str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)})


def score_batch_task(task: BatchTask) -> BatchResult:
    """Read, validate, score (and spill) one batch; see the module docstring.

    Raises
    ------
    SchemaError
        A batch's input breaks its contract; when batched, the message says the
        positions are within patient batch ``k`` of ``nb``.
    """
    from pophealth.contracts.schema import validate_activity, validate_events, validate_register
    from pophealth.engines.pipeline import score_batch_parts

    config, k, nb = task.config, task.k, task.nb
    idx = config.index_date
    # NHS numbers (one Python string per patient) only when they are the pseudonyms'
    # source: no step reads them otherwise (the patient table does not carry them)
    register = _batch_read(config.inputs["register"], task.reg_filter, nb, k, "register",
                           () if config.id_column == "nhs_number" else ("nhs_number",))
    events = _batch_read(config.inputs["events"], task.rows_filter, nb, k, "events")
    activity = _batch_read(config.inputs["activity"], task.rows_filter, nb, k, "activity")
    try:
        validate_register(register, index_date=idx)
        validate_events(events)
        validate_activity(activity)
    except SchemaError as exc:
        raise _in_batch(exc, nb, k, "input") from None
    register, events, activity = (_naive_dates(register), _naive_dates(events),
                                  _naive_dates(activity))
    if not (register["patient_id"].is_monotonic_increasing
            and register.index.equals(pd.RangeIndex(len(register)))):
        # (a Parquet register written sorted by patient, as pophealth writes it, is read
        # in order: no copy)
        register = register.sort_values("patient_id", kind="stable").reset_index(drop=True)
    excluded: dict = {}
    keep = _exclusions(config, register, task.bad_ids, excluded)
    unknown = _unknown_rows(register["patient_id"].to_numpy(),
                            activity["patient_id"].to_numpy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        try:
            table, X, rep = score_batch_parts(
                register, events, activity, index_date=idx, codelists=task.lists,
                model=task.model, features=task.fitting, segments=config.segments,
                segment_rules=config.segment_rules, max_unrecognised=1.0,
                on_no_match="ignore", warn_other_system=None, threads=task.threads)
        except SchemaError as exc:
            raise _in_batch(exc, nb, k, "register") from None
    table["_pseudo_source"] = register[config.id_column].to_numpy()
    out = BatchResult(
        n=len(register), keep=keep, excluded=excluded, unknown=unknown,
        n_act=len(activity), notes=_warnings_to_notes(caught), report=rep,
        n_features=None if X is None else X.shape[1],
        risk=table["risk"].to_numpy() if "risk" in table.columns else None,
        train_X=X.iloc[task.train] if task.fitting else None, columns=list(table.columns))
    if task.spill is None:
        out.table, out.X = table, X
    else:
        # only the included patients' output columns go to disk (and come back)
        cols = _final_order(_output_columns(config, table.columns))
        _spill(_compact(table.loc[keep, cols]), task.spill / f"part-{k:05d}.parquet")
        if task.fitting:
            _spill(X, task.spill / f"X-{k:05d}.parquet")
    return out


def _spill(frame: pd.DataFrame, path: Path) -> None:
    """Write a batch's frame for the job's process to read back whole, once.

    Dictionary encoding only for the categorical columns (Arrow would otherwise try it on
    every number column, then give up on most of them) and no column statistics (the file
    is never filtered): 250,000 patients' output columns write in about half the CPU of
    the defaults, read back as fast, same content (``benchmarks/results/bench_job.md``).
    """
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    frame.to_parquet(path, use_dictionary=cats, write_statistics=False)


def _unknown_rows(register_ids: np.ndarray, ids: np.ndarray) -> int:
    """Rows of ``ids`` whose patient is not in ``register_ids`` (validated: unique)."""
    from pophealth.core.arrays import index_positions

    return int((index_positions(pd.Index(register_ids), ids) < 0).sum())


def _exit_with_parent(fd: int) -> None:  # pragma: no cover - runs in a worker process
    """Block on the parent's pipe; when the parent dies (killed), end this worker."""
    try:
        while os.read(fd, 1):
            pass
    finally:
        os._exit(1)


def _worker_init(read_fd: int, write_fd: int) -> None:  # pragma: no cover - in a worker
    """A worker ends when the job's process does (a SIGKILLed job leaves no worker behind);
    its numpy arrays get ordinary pages (:func:`_small_pages`)."""
    os.close(write_fd)  # only the parent holds the write end: EOF when it dies
    threading.Thread(target=_exit_with_parent, args=(read_fd,), daemon=True).start()
    _small_pages()


def _small_pages() -> bool:
    """Stop numpy asking for transparent huge pages in this (worker) process.

    numpy calls ``madvise`` for huge pages on every array of 4 MiB or more; a fresh worker's
    first batch then faults in 2 MiB pages, each zeroed and, when the machine's memory is
    fragmented, compacted first: most of the first batch's system CPU (0.4-0.8 s of it at
    250,000 patients on a loaded 2-core machine; ``benchmarks/results/bench_job.md``,
    session 20). This is numpy's own switch (its ``NUMPY_MADVISE_HUGEPAGE`` environment
    variable would not do: it is read at import, before the fork). Only the worker
    processes, which the job creates and ends, are changed. Returns whether the switch
    was found.
    """
    import numpy

    core = getattr(numpy, "_core", None) or getattr(numpy, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        return False
    switch(False)
    return True


class WorkerLostError(PopHealthError):
    """A batch worker process ended without a result (e.g. killed for lack of memory).

    Nothing is published: the run is built in a temporary directory (CLI exit 70).
    """


def run_batches(tasks: Sequence[BatchTask], workers: int = 1) -> Iterator[BatchResult]:
    """Score ``tasks``; yield their results in task order.

    With ``workers > 1`` (and more than one task) the tasks run on a pool of that many
    worker processes (forked on Linux, so the loaded model and code are shared, not
    re-imported); each reads and spills its own batch, so reading one batch overlaps
    scoring another. The first failing task's error is raised (in task order, as in a
    serial run) and the tasks not yet started are cancelled; a worker that dies (killed,
    e.g. by the kernel's out-of-memory killer) gives :class:`WorkerLostError`, which says
    how to retry with less memory. Worker processes score with
    one flag-core thread (a task's own ``threads``, if set, is kept): the workers already
    keep the cores busy, and a second thread per worker only adds CPU (hand-off and
    cache misses; ``benchmarks/results/bench_job.md``, session 20).
    """
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield score_batch_task(task)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from pophealth.jobs.runstore import _test_pause

    if sys.platform.startswith("linux"):
        ctx, (r, w) = multiprocessing.get_context("fork"), os.pipe()
        init, initargs = _worker_init, (r, w)
    else:  # pragma: no cover - fork is unsafe on macOS and absent on Windows
        ctx, r, w, init, initargs = multiprocessing.get_context("spawn"), -1, -1, None, ()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                               initializer=init, initargs=initargs)
    try:
        futures = [pool.submit(score_batch_task, task if task.threads is not None
                               else replace(task, threads=1)) for task in tasks]
        for k, fut in enumerate(futures):
            try:
                res = fut.result()
            except SchemaError as exc:
                raise exc.with_traceback(None) from None  # the worker's one-line error
            except BrokenProcessPool:
                raise WorkerLostError(
                    f"batch {k + 1} of {len(tasks)}: a worker process ended without a result "
                    "(killed, e.g. by the system for lack of memory); nothing published. "
                    f"Each of the {min(workers, len(tasks))} workers holds one batch: "
                    f"rerun with {WORKERS_ENV}=1 (one batch in memory at a time)") from None
            if k == 0:
                _test_pause("batch_scored")
            yield res
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
