"""Out-of-core scoring: stream a partitioned dataset through the one batch function.

:func:`score_dataset` reads a register, its events and (optionally) activity with
``pyarrow.dataset`` one patient bucket at a time (pophealth's Parquet layout, see
:mod:`pophealth.engines.io`) or one id range at a time, runs
:func:`pophealth.engines.pipeline.score_batch` on each (indices, patient table, segments
and, given a fitted model, risk) and writes one Parquet file per batch. Peak memory is
set by the bucket (or ``batch_patients``) size, not the population. Because the batch
function only looks at the rows it is given and each patient's rows travel with them, the
result equals scoring the whole population at once; the whole-population rules (code
systems, unrecognised codes) are decided once on the counts summed over batches.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pophealth.contracts.exceptions import ConfigError, DataQualityWarning
from pophealth.core.batch import check_code_systems, merge_reports
from pophealth.engines.batch_notes import merge_notes
from pophealth.engines.io import buckets, open_dataset, write_parquet_atomic
from pophealth.engines.pipeline import check_unrecognised, score_batch

__all__ = ["id_batches", "score_dataset"]

logger = logging.getLogger(__name__)

_EVENT_COLUMNS = ("patient_id", "code", "code_system", "date")
_ACTIVITY_COLUMNS = ("patient_id", "date", "kind", "cost", "length_of_stay")
_COUNTS = ("n_events", "n_other_system", "n_unrecognised", "n_not_in_list",
           "n_unknown_patient", "n_after_index_date", "n_before_lookback", "n_missing_date",
           "n_used")
_WARN_COUNTS = ("n_unrecognised", "n_unknown_patient", "n_missing_date")


def _columns(dataset: ds.Dataset, wanted) -> list[str]:
    return [c for c in wanted if c in dataset.schema.names]


def id_batches(ids: np.ndarray, size: int):
    """(label, register filter, rows filter) per batch of ``size`` sorted patient ids.

    The register filter selects the batch's id range ``[first, last]``; the filter for
    events/activity rows tiles the whole id line - ids below the first batch go to the
    first, ids from one batch's first up to the next batch's first to that batch, and
    missing ids to the last - so rows of patients not on the register are still read,
    and counted, exactly once.
    """
    ids = np.sort(np.asarray(ids))
    starts = list(range(0, len(ids), size))
    field = ds.field("patient_id")
    for i, start in enumerate(starts):
        chunk = ids[start:start + size]
        lo, hi = pa.scalar(chunk[0]), pa.scalar(chunk[-1])
        reg = (field >= lo) & (field <= hi)
        if len(starts) == 1:
            rows = None  # one batch: every row
        elif i == 0:
            rows = field < pa.scalar(ids[starts[1]])
        elif i + 1 < len(starts):
            rows = (field >= lo) & (field < pa.scalar(ids[starts[i + 1]]))
        else:
            rows = (field >= lo) | field.is_null()
        yield f"batch={i:05d}", reg, rows


def _batches(register: ds.Dataset, events: ds.Dataset, batch_patients: int | None):
    """Yield (label, register filter, rows filter) covering every register and event row once."""
    reg_buckets, ev_buckets = buckets(register), buckets(events)
    if reg_buckets is not None and ev_buckets is not None and batch_patients is None:
        for b in reg_buckets:
            expr = ds.field("bucket") == b
            yield f"bucket={b}", expr, expr
        return
    ids = register.to_table(columns=["patient_id"]).column("patient_id").to_numpy()
    yield from id_batches(ids, batch_patients or 1_000_000)


def score_dataset(
    path,
    out,
    *,
    index_date,
    codelists: Mapping[str, str | None] | None = None,
    batch_patients: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    on_no_match: str = "raise",
    warn_other_system: float | None = 0.2,
    max_unrecognised: float = 0.05,
    model=None,
    segments: bool = True,
    segment_rules=None,
) -> dict:
    """Score a partitioned population on disk, writing results to ``out``.

    Parameters
    ----------
    path : str or Path
        Directory holding ``register/`` and ``events/`` Parquet datasets, and optionally
        ``activity/`` (utilisation columns and risk features; none without it). With a
        ``bucket`` hive partition on both (pophealth's layout) one bucket is scored at a
        time; otherwise patients are taken in id-ordered batches of ``batch_patients``
        and their events selected by id range (fast when files are sorted by patient).
    out : str or Path
        Output directory: one ``part-*.parquet`` per batch, then ``_SUCCESS`` last.
    index_date : date-like
    codelists : mapping, optional
        As for :func:`pophealth.score_patients`.
    batch_patients : int, optional
        Patients per batch (forces id-range batches even on a bucketed layout).
    progress : bool, optional
        tqdm bar; ``None`` shows it only on a terminal.
    overwrite : bool
        Replace an existing output directory.
    on_no_match : {"raise", "warn", "ignore"}, default "raise"
    warn_other_system : float or None, default 0.2
        The no-silent-zeros rule of :func:`pophealth.score_patients`, applied **once**
        to the per-system row counts summed over all batches
        (:func:`pophealth.core.batch.check_code_systems`), so a batch that happens to
        hold only other-system rows decides nothing alone. With ``"raise"`` the error
        comes after the last batch and ``_SUCCESS`` is not written.
    max_unrecognised : float, default 0.05
        The unrecognised-code threshold of :func:`pophealth.score_patients`, likewise
        judged once on the summed counts.
    model : fitted model, optional
        Adds ``risk`` (see :func:`~pophealth.engines.pipeline.score_batch`). Tiers are a
        cut over every patient: compute them from the ``risk`` column afterwards
        (:func:`~pophealth.engines.pipeline.global_tiers`).
    segments : bool, default True
    segment_rules : SegmentRules, str or path, optional

    Returns
    -------
    dict
        ``patients`` scored, ``batches``, ``files``, ``exclusions`` (per index, the
        :class:`~pophealth.core.conditions.FlagReport` row counts summed over batches) and
        ``notes`` (also issued once each as a :class:`DataQualityWarning`). Each output
        file is the batch's :func:`~pophealth.engines.pipeline.score_batch` table with
        ``patient_id`` as a column.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from pophealth.synthetic import write_population
    >>> from pophealth.engines.streaming import score_dataset
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_population(f"{tmp}/pop", 1_000, random_state=3, progress=False)
    ...     summary = score_dataset(f"{tmp}/pop", f"{tmp}/scores", index_date="2025-04-01")
    ...     len(pd.read_parquet(f"{tmp}/scores"))
    1000
    """
    from tqdm.auto import tqdm

    root, out = Path(path), Path(out)
    register = open_dataset(root / "register")
    events = open_dataset(root / "events")
    if "patient_id" not in register.schema.names or "patient_id" not in events.schema.names:
        raise ConfigError("score_dataset: register and events need a 'patient_id' column")
    if batch_patients is not None and batch_patients < 1:
        raise ConfigError("score_dataset: batch_patients must be at least 1")
    if out.exists():
        if not overwrite:
            raise ConfigError(f"score_dataset: output exists: {out}", parameter="overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    activity = open_dataset(root / "activity") if (root / "activity").exists() else None
    reg_cols = [c for c in register.schema.names if c != "bucket"]
    ev_cols = _columns(events, _EVENT_COLUMNS)
    act_cols = _columns(activity, _ACTIVITY_COLUMNS) if activity is not None else []
    check_code_systems({}, on_no_match=on_no_match, caller="score_dataset")  # checks the value
    total, files, exclusions, under_75, merged, per_batch = 0, [], {}, 0, {}, []
    n_total = register.count_rows()
    import sys

    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=n_total, unit="patients", disable=not show, desc="scoring") as bar:
        for i, (label, reg_filter, ev_filter) in enumerate(_batches(register, events,
                                                                    batch_patients)):
            reg = register.to_table(columns=reg_cols, filter=reg_filter).to_pandas()
            ev = events.to_table(columns=ev_cols, filter=ev_filter).to_pandas()
            act = (activity.to_table(columns=act_cols, filter=ev_filter).to_pandas()
                   if activity is not None else None)
            if len(reg) == 0:
                continue
            with warnings.catch_warnings(record=True) as caught:
                # per-batch warnings are summed into one report below
                warnings.simplefilter("always", DataQualityWarning)
                scores = score_batch(reg, ev, act, index_date=index_date, codelists=codelists,
                                     model=model, segments=segments,
                                     segment_rules=segment_rules, max_unrecognised=1.0,
                                     on_no_match="ignore", warn_other_system=None)
            per_batch.append([str(w.message) for w in caught
                              if issubclass(w.category, DataQualityWarning)])
            merged = merge_reports([merged, scores.attrs.get("pophealth_reports", {})])
            for name, rep in scores.attrs.get("pophealth_reports", {}).items():
                acc = exclusions.setdefault(name, dict.fromkeys(_COUNTS, 0))
                for key in _COUNTS:
                    acc[key] += int(rep[key])
            if "age" in reg.columns:
                under_75 += int((reg["age"] < 75).sum())
            target = write_parquet_atomic(scores.reset_index(), out / f"part-{i:05d}.parquet")
            files.append(str(target))
            total += len(reg)
            bar.update(len(reg))
            logger.info("score_dataset: %s scored %d patients", label, len(reg))
            del reg, ev, act, scores
    check_unrecognised(merged, max_unrecognised, caller="score_dataset")
    with warnings.catch_warnings(record=True) as caught:  # becomes notes, warned once below
        warnings.simplefilter("always", DataQualityWarning)
        check_code_systems(merged, warn_other_system=warn_other_system,
                           on_no_match=on_no_match, caller="score_dataset")
    system_notes = [str(w.message).removeprefix("score_dataset: ") for w in caught
                    if issubclass(w.category, DataQualityWarning)]
    (out / "_SUCCESS").write_text(f"{total}\n")
    notes = list(system_notes)
    for name, acc in exclusions.items():
        parts = [f"{acc[k]} {k[2:].replace('_', ' ')}" for k in _WARN_COUNTS if acc[k]]
        if parts:
            notes.append(f"{name}: excluded rows: " + ", ".join(parts))
    if under_75 and (codelists or {}).get("hfrs", "on") is not None:
        notes.append(f"hfrs: {under_75} of {total} patient(s) are under 75 (HFRS was developed "
                     "on people aged 75+)")
    # what else the batches noted (segment lists, frailty, bands), counts summed; the index
    # lists' exclusions and the HFRS age note are the ones above
    index_lists = {r["codelist"] for r in merged.values()}
    for note in merge_notes(per_batch, n_patients=total):
        if note.startswith("hfrs: ") or any(note.startswith(f"flag_conditions({c}): excluded")
                                            for c in index_lists):
            continue
        notes.append(note)
    for note in notes:
        warnings.warn(f"score_dataset: {note}", DataQualityWarning, stacklevel=2)
    return {"patients": total, "batches": len(files), "files": files,
            "exclusions": exclusions, "notes": notes}


def read_scores(out) -> pd.DataFrame:
    """Read the output of :func:`score_dataset` back, indexed by patient_id, sorted."""
    df = pd.read_parquet(Path(out))
    return df.set_index("patient_id").sort_index()
