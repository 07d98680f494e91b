"""The job's inputs: read, validate, check data-quality thresholds, score, predict, segment.

:func:`_build_patients` turns the config's register, events and activity into the
patient table the caseload rules run on; a broken threshold or data contract is a
:class:`DataQualityError` carrying counts, column and rule names only - never identifiers.
Dates follow one convention once validated: tz-aware dates keep the local wall-clock time
of their own zone (see :mod:`pophealth.contracts.schema` and :func:`_naive_dates`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, DataQualityWarning, SchemaError
from pophealth.jobs.batchwork import (
    _LAST,
    BatchTask,
    _final_order,
    _warnings_to_notes,
    job_workers,
    run_batches,
)
from pophealth.jobs.config import JobConfig

__all__ = ["DataQualityError"]

logger = logging.getLogger("pophealth.jobs.run")  # one logger name for the whole job


class DataQualityError(SchemaError):
    """Input data broke a quality threshold; a report was written and nothing published.

    Attributes
    ----------
    report_path : Path or None
    """

    def __init__(self, message: str, problems: list | None = None, report_path=None):
        super().__init__(message, problems)
        self.report_path = report_path


def _read(path: Path) -> pd.DataFrame:
    from pophealth.engines.io import read_table

    return read_table(path).drop(columns=["bucket"], errors="ignore")


def _fail(message: str, counts: dict, column: str = "", rule: str = "", count: int = 0):
    exc = DataQualityError(message, [{"column": column, "rule": rule, "count": int(count),
                                      "positions": []}])
    exc.counts = counts
    return exc


def _training_rows(config: JobConfig, ids: np.ndarray):
    """Positions (in sorted-register order) and outcomes of the rows the model is fitted on."""
    fit = config.risk_fit
    outcome = fit.get("outcome", "emergency_admission")
    outcomes = _read(config.inputs["outcomes"])
    if outcome not in outcomes.columns or "patient_id" not in outcomes.columns:
        raise ConfigError(f"[risk.fit] outcomes input lacks 'patient_id' or '{outcome}'")
    y = outcomes.set_index("patient_id")[outcome].reindex(pd.Index(ids, name="patient_id"))
    train = np.flatnonzero(y.notna().to_numpy())
    max_rows = int(fit.get("max_rows", 0))
    seed = int(fit.get("random_state", 0))
    if max_rows and len(train) > max_rows:
        rng = np.random.default_rng(seed)
        train = np.sort(rng.choice(train, size=max_rows, replace=False))
    return train, y.iloc[train].astype(bool).to_numpy()


def _fit_model(config: JobConfig, X_train: pd.DataFrame, y_train: np.ndarray):
    from pophealth.risk.models import RiskModel

    fit = config.risk_fit
    calibration = fit.get("calibration", "sigmoid")
    model = RiskModel(method=fit.get("method", "hgb"),
                      calibration=None if calibration == "none" else calibration,
                      random_state=int(fit.get("random_state", 0)))
    model.fit(X_train, y_train)
    logger.info("job: fitted a risk model on %d patients", len(X_train))
    return model


def _model_info(config: JobConfig, model, n_features: int) -> dict:
    meta = getattr(model, "metadata_", None) or {}
    info = {"source": "saved model" if config.risk_model is not None else "fitted in the job",
            "class": type(model).__name__, "n_features": int(n_features)}
    info.update({k: meta[k] for k in ("training_period", "performance", "description")
                 if k in meta})
    return info


def _load_model(path: Path):
    from pophealth.risk.model_io import load_model

    return load_model(path)


def _no_stage(stage: str) -> None:
    """Default stage callback of :func:`_build_patients`: does nothing."""


#: Patients per batch of the job (the sorted register is scored this many at a time).
BATCH_PATIENTS = 250_000


def _register_ids(config: JobConfig, counts: dict):
    """The register's ids (and NHS numbers) only: the batches' bounds and the global checks."""
    from pophealth.engines.io import open_dataset, read_table

    cols = ["patient_id"] + (["nhs_number"] if config.id_column == "nhs_number" else [])
    names = open_dataset(config.inputs["register"]).schema.names
    for col in ("patient_id", "pcn", config.id_column):
        if col not in names:
            raise _fail(f"register: missing column '{col}' (rule 'missing_column')", counts,
                        col, "missing_column")
    frame = read_table(config.inputs["register"], columns=cols)
    missing = frame["patient_id"].isna().to_numpy()
    if missing.any():
        raise _fail(f"register: column 'patient_id' breaks rule 'not_null' in "
                    f"{int(missing.sum())} row(s); first positions "
                    f"{np.flatnonzero(missing)[:10].tolist()}", counts, "patient_id",
                    "not_null", int(missing.sum()))
    return frame


def _row_count(path: Path) -> int:
    from pophealth.engines.io import open_dataset

    return int(open_dataset(path).count_rows())


def _build_patients(config: JobConfig, stage=_no_stage, batch_patients: int | None = None,
                    ) -> tuple[pd.DataFrame, dict, list]:
    """Read, validate, check thresholds, score, predict and segment; included patients only.

    The register is read in batches of ``batch_patients`` (default :data:`BATCH_PATIENTS`)
    consecutive patient ids, each with its own events and activity rows (id-range filters
    that tile the id line, so every row is read once), and streamed through
    :func:`pophealth.engines.pipeline.score_batch_parts`. Only the id columns are read
    whole (batch bounds, duplicate NHS numbers). With more than one batch each batch's
    patient table goes to a temporary Parquet dataset (``runs/.tmp-batches-*``), and the table
    returned holds only the columns the caseload rules, reasons, output and report read.
    Whole-population decisions - the data-quality thresholds, the model fit, the tiers -
    are taken once over the sums of all batches.

    ``stage(name)`` is called as each long step starts ("read", "score", "risk",
    "segments"; see :data:`pophealth.jobs.progress.STAGES`).
    """
    from pophealth.contracts.nhs_number import is_valid_nhs_number

    q = config.quality
    stage("read")
    counts: dict = {"register_rows_in": 0,
                    "events_rows_in": _row_count(config.inputs["events"]),
                    "activity_rows_in": _row_count(config.inputs["activity"])}
    ids_frame = _register_ids(config, counts)
    n = len(ids_frame)
    counts["register_rows_in"] = n
    logger.info("job: read %d register, %d event and %d activity row(s)", n,
                counts["events_rows_in"], counts["activity_rows_in"])
    excluded: dict = {}
    bad_ids = None
    if config.id_column == "nhs_number":
        nhs = ids_frame["nhs_number"]
        valid = is_valid_nhs_number(nhs)
        text = nhs.astype(str).str.replace(r"[\s-]", "", regex=True)
        dup = text.duplicated(keep=False).to_numpy() & valid
        excluded["invalid_nhs_number"] = int((~valid).sum())
        excluded["duplicate_nhs_number"] = int(dup.sum())
        bad = ~valid | dup
        counts["excluded"] = excluded
        if n and bad.mean() > q["max_invalid_id_fraction"]:
            raise _fail(f"register: {int(bad.sum())} of {n} row(s) have an invalid or duplicated "
                        f"NHS number, above max_invalid_id_fraction "
                        f"{q['max_invalid_id_fraction']}", counts, "nhs_number",
                        "valid_unique_nhs_number", int(bad.sum()))
        bad_ids = ids_frame["patient_id"].to_numpy()[bad]
    ids = np.sort(ids_frame["patient_id"].to_numpy())
    del ids_frame
    lists = {k: (None if v.lower() == "none" else v) for k, v in config.codelists.items()}
    return _score_batches(config, ids, bad_ids, excluded, counts, lists, stage,
                          batch_patients or BATCH_PATIENTS)


def _score_batches(config: JobConfig, ids, bad_ids, excluded, counts, lists, stage, size):
    """Stream the register's patient batches through the one batch function (see
    :func:`_build_patients`)."""
    import shutil
    import tempfile

    from pophealth.core.batch import check_code_systems, merge_reports
    from pophealth.engines.batch_notes import merge_notes
    from pophealth.engines.pipeline import check_unrecognised, global_tiers
    from pophealth.engines.streaming import id_batches

    q = config.quality
    bounds = list(id_batches(ids, size)) if len(ids) else [("batch=00000", None, None)]
    nb = len(bounds)
    has_risk = config.risk_model is not None or config.risk_fit is not None
    model = _load_model(config.risk_model) if config.risk_model is not None else None
    fitting = has_risk and model is None
    if fitting:
        train, y_train = _training_rows(config, ids)
    spill = None
    if nb > 1:
        # runs/.tmp-*: private (0700), and removed by the next run if this one is killed
        (config.output_dir / "runs").mkdir(parents=True, exist_ok=True)
        spill = Path(tempfile.mkdtemp(dir=config.output_dir / "runs", prefix=".tmp-batches-"))
    try:
        tasks = [BatchTask(config=config, k=k, nb=nb, reg_filter=reg_f, rows_filter=rows_f,
                           bad_ids=bad_ids, lists=lists, model=model, fitting=fitting,
                           train=(_batch_train(train, k * size, min((k + 1) * size, len(ids)))
                                  if fitting else None), spill=spill)
                 for k, (_, reg_f, rows_f) in enumerate(bounds)]
        tables, feats, train_parts, per_batch, reports = [], [], [], [], []
        risks, keeps, unknown, n_act, n_features = [], [], 0, 0, 0
        stage("score")
        for res in run_batches(tasks, job_workers() if nb > 1 else 1):
            for reason, c in res.excluded.items():
                excluded[reason] = excluded.get(reason, 0) + c
            unknown += res.unknown
            n_act += res.n_act
            per_batch.append(res.notes)
            reports.append(res.report)
            n_features = res.n_features if res.n_features is not None else n_features
            keeps.append(res.keep)
            if fitting:
                train_parts.append(res.train_X)
            if res.risk is not None:
                risks.append(res.risk)
            if spill is None:
                tables.append(res.table)
                feats.append(res.X)
            else:
                tables.append(res.columns)
            del res
        counts["excluded"] = excluded
        counts["activity_rows_unknown_patient"] = unknown
        if n_act and unknown / n_act > q["max_unknown_patient_activity_fraction"]:
            raise _fail(f"activity: {unknown} of {n_act} row(s) are for patients not on the "
                        "register, above max_unknown_patient_activity_fraction "
                        f"{q['max_unknown_patient_activity_fraction']}", counts, "patient_id",
                        "known_patient", unknown)
        merged = merge_reports(reports)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataQualityWarning)
            # the config's threshold is the only one, judged on the whole population
            check_unrecognised(merged, q["max_unrecognised_code_fraction"])
            check_code_systems(merged, on_no_match="raise", caller="score_patients")
        once = _warnings_to_notes(caught)
        counts["events"] = {k: {f: int(r[f]) for f in (
            "n_events", "n_other_system", "n_unrecognised", "n_unknown_patient",
            "n_after_index_date", "n_used")} for k, r in sorted(merged.items())}
        keep = np.concatenate(keeps) if keeps else np.zeros(0, dtype=bool)
        stage("risk")
        info = None
        if fitting:
            model = _fit_model(config, pd.concat(train_parts), y_train)
            del train_parts
            parts = feats if spill is None else (
                pd.read_parquet(spill / f"X-{k:05d}.parquet") for k in range(nb))
            risks = [model.predict_risk(X).to_numpy() for X in parts]
        if has_risk:
            info = _model_info(config, model, n_features)
        stage("segments")
        if spill is None:
            patients = tables[0]
        else:
            frames = [pd.read_parquet(spill / f"part-{k:05d}.parquet") for k in range(nb)]
            patients = _concat(frames)
            del frames  # the batches' frames are not kept beside the whole table
            import pyarrow as pa

            # Arrow's allocator keeps the reads' freed buffers for reuse; the rest of the
            # job is pandas/numpy, so hand them back before the whole-population steps
            pa.default_memory_pool().release_unused()
        if has_risk:
            risk = np.concatenate(risks)
            del risks
            risk_s = pd.Series(risk if spill is None else risk[keep], index=patients.index)
            _put(patients, "risk", risk_s.to_numpy())
            tiers = global_tiers(risk_s, cuts=config.tier_cuts,
                                 include=keep if spill is None else None)
            _put(patients, "tier", tiers.array)  # ordered categorical, as risk_tiers gives it
    finally:
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
    final = _final_order(patients.columns)
    if list(patients.columns) != final:  # a reordering copies every column: only if needed
        patients = patients[final]
    if spill is None:
        patients = patients[keep]
    if info is not None:
        counts["risk_model"] = info
    counts["patients_included"] = int(keep.sum())
    notes = sorted(set(merge_notes(per_batch, n_patients=len(ids))) | set(once))
    logger.info("job: %d patient(s) included, %d excluded", int(keep.sum()), int((~keep).sum()))
    return patients, counts, notes


def _batch_train(train: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The training positions (sorted-register order) in ``[lo, hi)``, within that batch."""
    return train[(train >= lo) & (train < hi)] - lo


def _put(frame: pd.DataFrame, name: str, values) -> None:
    """Set column ``name`` in place; a new one goes where :func:`_final_order` puts it, so
    the table needs no reordering copy."""
    if name in frame.columns:
        frame[name] = values
        return
    later = _LAST[_LAST.index(name) + 1:]
    pos = next((frame.columns.get_loc(c) for c in later if c in frame.columns),
               len(frame.columns))
    frame.insert(pos, name, values)


def _concat(frames: list) -> pd.DataFrame:
    """Concatenate batch tables; categoricals with different categories are unioned (a
    plain concat would turn them into Python objects)."""
    from pandas.api.types import union_categoricals

    out = pd.concat(frames)
    for col in frames[0].columns:
        if (isinstance(frames[0][col].dtype, pd.CategoricalDtype)
                and not isinstance(out[col].dtype, pd.CategoricalDtype)):
            out[col] = pd.Categorical(union_categoricals([f[col] for f in frames],
                                                         ignore_order=True))
    return out
