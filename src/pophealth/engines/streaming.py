"""Out-of-core scoring: stream a partitioned dataset through the batch function.

:func:`score_dataset` reads a register and its events with ``pyarrow.dataset`` one
patient bucket at a time (pophealth's Parquet layout, see :mod:`pophealth.engines.io`), scores
each with :func:`pophealth.score_patients` and writes one Parquet file per bucket.
Peak memory is set by the bucket (or ``batch_patients``) size, not the population.
Because the batch function only looks at the rows it is given and each patient's
events travel with them, the result equals scoring the whole population at once.
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
from pophealth.core.batch import check_code_systems, merge_reports, score_patients
from pophealth.engines.io import buckets, open_dataset, write_parquet_atomic

__all__ = ["score_dataset"]

logger = logging.getLogger(__name__)

_REGISTER_COLUMNS = ("patient_id", "age", "date_of_birth")
_EVENT_COLUMNS = ("patient_id", "code", "code_system", "date")
_COUNTS = ("n_events", "n_other_system", "n_unrecognised", "n_not_in_list",
           "n_unknown_patient", "n_after_index_date", "n_before_lookback", "n_missing_date",
           "n_used")
_WARN_COUNTS = ("n_unrecognised", "n_unknown_patient", "n_missing_date")


def _columns(dataset: ds.Dataset, wanted) -> list[str]:
    return [c for c in wanted if c in dataset.schema.names]


def _batches(register: ds.Dataset, events: ds.Dataset, batch_patients: int | None):
    """Yield (label, register filter, events filter) covering every register row once."""
    reg_buckets, ev_buckets = buckets(register), buckets(events)
    if reg_buckets is not None and ev_buckets is not None and batch_patients is None:
        for b in reg_buckets:
            expr = ds.field("bucket") == b
            yield f"bucket={b}", expr, expr
        return
    ids = register.to_table(columns=["patient_id"]).column("patient_id").to_numpy()
    ids = np.sort(ids)
    size = batch_patients or 1_000_000
    for i, start in enumerate(range(0, len(ids), size)):
        chunk = ids[start:start + size]
        lo, hi = chunk[0], chunk[-1]
        expr = (ds.field("patient_id") >= pa.scalar(lo)) & (ds.field("patient_id") <= pa.scalar(hi))
        yield f"batch={i:05d}", expr, expr


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
) -> dict:
    """Score a partitioned population on disk, writing results to ``out``.

    Parameters
    ----------
    path : str or Path
        Directory holding ``register/`` and ``events/`` Parquet datasets. With a
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

    Returns
    -------
    dict
        ``patients`` scored, ``batches``, ``files``, ``exclusions`` (per index, the
        :class:`~pophealth.core.conditions.FlagReport` row counts summed over batches) and
        ``notes`` (also issued once each as a :class:`DataQualityWarning`).

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
    reg_cols, ev_cols = _columns(register, _REGISTER_COLUMNS), _columns(events, _EVENT_COLUMNS)
    check_code_systems({}, on_no_match=on_no_match, caller="score_dataset")  # checks the value
    total, files, exclusions, under_75, merged = 0, [], {}, 0, {}
    n_total = register.count_rows()
    import sys

    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=n_total, unit="patients", disable=not show, desc="scoring") as bar:
        for i, (label, reg_filter, ev_filter) in enumerate(_batches(register, events,
                                                                    batch_patients)):
            reg = register.to_table(columns=reg_cols, filter=reg_filter).to_pandas()
            ev = events.to_table(columns=ev_cols, filter=ev_filter).to_pandas()
            if len(reg) == 0:
                continue
            with warnings.catch_warnings():
                # per-batch warnings are summed into one report below
                warnings.simplefilter("ignore", DataQualityWarning)
                scores = score_patients(reg, ev, index_date=index_date, codelists=codelists,
                                        on_no_match="ignore")
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
            del reg, ev, scores
    check_code_systems(merged, warn_other_system=warn_other_system, on_no_match=on_no_match,
                       caller="score_dataset")
    (out / "_SUCCESS").write_text(f"{total}\n")
    notes = []
    for name, acc in exclusions.items():
        parts = [f"{acc[k]} {k[2:].replace('_', ' ')}" for k in _WARN_COUNTS if acc[k]]
        if parts:
            notes.append(f"{name}: excluded rows: " + ", ".join(parts))
    if under_75 and (codelists or {}).get("hfrs", "on") is not None:
        notes.append(f"hfrs: {under_75} of {total} patient(s) are under 75 (HFRS was developed "
                     "on people aged 75+)")
    for note in notes:
        warnings.warn(f"score_dataset: {note}", DataQualityWarning, stacklevel=2)
    return {"patients": total, "batches": len(files), "files": files,
            "exclusions": exclusions, "notes": notes}


def read_scores(out) -> pd.DataFrame:
    """Read the output of :func:`score_dataset` back, indexed by patient_id, sorted."""
    df = pd.read_parquet(Path(out))
    return df.set_index("patient_id").sort_index()
