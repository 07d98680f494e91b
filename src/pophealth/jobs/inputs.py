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


_DATE_COLUMNS = ("date_of_birth", "date_of_death", "registered_from", "registered_to", "date")


def _dates(s: pd.Series) -> np.ndarray:
    from pophealth.contracts.schema import as_datetime64

    return as_datetime64(s, unit="us")  # tz-aware -> local wall clock; 9999-12-31 kept


def _naive_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """The job's one date convention: every date column as naive ``datetime64[us]`` on
    local wall-clock time (tz-aware -> zone dropped, clock reading kept; Arrow ``date32`` /
    ``datetime.date`` -> midnight), so every later step compares like with like."""
    from pophealth.contracts.schema import is_datetimelike

    cols = {c: _dates(frame[c]) for c in _DATE_COLUMNS
            if c in frame.columns and len(frame) and is_datetimelike(frame[c])}
    return frame.assign(**cols) if cols else frame


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
BATCH_PATIENTS = 1_000_000


def _build_patients(config: JobConfig, stage=_no_stage, batch_patients: int | None = None,
                    ) -> tuple[pd.DataFrame, dict, list]:
    """Read, validate, check thresholds, score, predict and segment; included patients only.

    ``stage(name)`` is called as each long step starts ("read", "score", "risk",
    "segments"; see :data:`pophealth.jobs.progress.STAGES`).
    """
    from pophealth.contracts.nhs_number import is_valid_nhs_number
    from pophealth.contracts.schema import (
        naive_timestamp,
        validate_activity,
        validate_events,
        validate_register,
    )

    q, idx = config.quality, config.index_date
    stage("read")
    register = _read(config.inputs["register"])
    events = _read(config.inputs["events"])
    activity = _read(config.inputs["activity"])
    counts: dict = {"register_rows_in": len(register), "events_rows_in": len(events),
                    "activity_rows_in": len(activity)}
    logger.info("job: read %d register, %d event and %d activity row(s)", len(register),
                len(events), len(activity))
    validate_register(register, index_date=idx)
    validate_events(events)
    validate_activity(activity)
    register, events, activity = (_naive_dates(register), _naive_dates(events),
                                   _naive_dates(activity))
    for col in ("pcn", config.id_column):
        if col not in register.columns:
            raise _fail(f"register: missing column '{col}' (rule 'missing_column')", counts,
                        col, "missing_column")
    register = register.sort_values("patient_id", kind="stable").reset_index(drop=True)
    n = len(register)
    keep = np.ones(n, dtype=bool)
    excluded: dict = {}
    if config.id_column == "nhs_number":
        nhs = register["nhs_number"]
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
        keep &= ~bad
    t = np.datetime64(naive_timestamp(idx), "us")  # wall clock, like the columns
    for col, reason, test in (
            ("date_of_death", "died_on_or_before_index_date", lambda d: d <= t),
            ("registered_from", "registered_after_index_date", lambda d: d > t),
            ("registered_to", "deregistered_before_index_date", lambda d: d < t)):
        if col in register.columns:
            d = _dates(register[col])
            hit = ~np.isnat(d) & test(d)
            excluded[reason] = int((hit & keep).sum())
            keep &= ~hit
    counts["excluded"] = excluded
    pos = pd.Index(register["patient_id"]).get_indexer(activity["patient_id"].to_numpy())
    unknown = int((pos < 0).sum())
    counts["activity_rows_unknown_patient"] = unknown
    if len(activity) and unknown / len(activity) > q["max_unknown_patient_activity_fraction"]:
        raise _fail(f"activity: {unknown} of {len(activity)} row(s) are for patients not on the "
                    "register, above max_unknown_patient_activity_fraction "
                    f"{q['max_unknown_patient_activity_fraction']}", counts, "patient_id",
                    "known_patient", unknown)
    lists = {k: (None if v.lower() == "none" else v) for k, v in config.codelists.items()}
    patients, counts["events"], notes, info = _score_batches(
        config, register, events, activity, lists, keep, stage, batch_patients)
    if info is not None:
        counts["risk_model"] = info
    patients = patients[keep]
    counts["patients_included"] = int(keep.sum())
    logger.info("job: %d patient(s) included, %d excluded", int(keep.sum()), int((~keep).sum()))
    return patients, counts, notes


def _batch_bounds(n: int, batch_patients: int) -> list[tuple[int, int]]:
    """[start, stop) positions of consecutive patient batches of the sorted register."""
    starts = list(range(0, n, batch_patients)) or [0]
    return [(a, min(a + batch_patients, n)) for a in starts]


def _rows_by_batch(frame: pd.DataFrame, ids: np.ndarray, bounds) -> list[pd.DataFrame]:
    """``frame`` split by the batch its ``patient_id`` falls in (row order kept).

    Batch ``k`` takes the ids from its first patient's up to (not including) the next
    batch's first: the batches tile the whole id line, so rows of patients not on the
    register are still seen - and counted - exactly once."""
    if len(bounds) == 1:
        return [frame]
    lows = ids[[a for a, _ in bounds[1:]]]
    which = np.searchsorted(lows, frame["patient_id"].to_numpy(), side="right")
    order = np.argsort(which, kind="stable")
    cuts = np.searchsorted(which[order], np.arange(1, len(bounds)))
    return [frame.iloc[part].reset_index(drop=True) for part in np.split(order, cuts)]


def _score_batches(config: JobConfig, register, events, activity, lists, keep, stage,
                   batch_patients):
    """Stream the sorted register's patient batches through the one batch function.

    Per batch, :func:`pophealth.engines.pipeline.score_batch_parts` gives the patient
    table (indices, utilisation, recorded frailty, segments and, with a saved model,
    risk). Whole-population decisions are taken once, after the batches: the code-system
    and unrecognised-code rules on the summed flag reports, fitting the model (on the
    training rows gathered from every batch), and the risk tiers (a global rank).
    """
    from pophealth.core.batch import check_code_systems, merge_reports
    from pophealth.engines.batch_notes import merge_notes
    from pophealth.engines.pipeline import check_unrecognised, score_batch_parts

    q, idx = config.quality, config.index_date
    ids = register["patient_id"].to_numpy()
    bounds = _batch_bounds(len(register), batch_patients or BATCH_PATIENTS)
    ev_parts = _rows_by_batch(events, ids, bounds)
    act_parts = _rows_by_batch(activity, ids, bounds)
    has_risk = config.risk_model is not None or config.risk_fit is not None
    model = _load_model(config.risk_model) if config.risk_model is not None else None
    fitting = has_risk and model is None
    if fitting:
        train, y_train = _training_rows(config, ids)
    tables, features, train_parts, per_batch, reports = [], [], [], [], []
    stage("score")
    for k, (a, b) in enumerate(bounds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataQualityWarning)
            try:
                table, X, rep = score_batch_parts(
                    register.iloc[a:b].reset_index(drop=True), ev_parts[k], act_parts[k],
                    index_date=idx, codelists=lists, model=model, features=fitting,
                    segments=config.segments, segment_rules=config.segment_rules,
                    max_unrecognised=1.0, on_no_match="ignore", warn_other_system=None)
            except SchemaError as exc:
                if len(bounds) == 1:
                    raise
                raise type(exc)(f"{exc} (positions are within patient batch {k}, which "
                                f"starts at row {a} of the register sorted by patient_id)",
                                getattr(exc, "problems", [])) from None
        per_batch.append(_warnings_to_notes(caught))
        n_features = X.shape[1] if X is not None else 0
        reports.append(rep)
        tables.append(table)
        if fitting:
            features.append(X)
            sel = train[(train >= a) & (train < b)] - a
            train_parts.append(X.iloc[sel])
    merged = merge_reports(reports)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        # the config's threshold is the only one, judged on the whole population
        check_unrecognised(merged, q["max_unrecognised_code_fraction"])
        check_code_systems(merged, on_no_match="raise", caller="score_patients")
    once = _warnings_to_notes(caught)
    patients = pd.concat(tables) if len(tables) > 1 else tables[0]
    patients["_pseudo_source"] = register[config.id_column].to_numpy()
    info = None
    stage("risk")
    if has_risk:
        from pophealth.engines.pipeline import global_tiers

        if fitting:
            model = _fit_model(config, pd.concat(train_parts), y_train)
            risk = pd.concat([model.predict_risk(X) for X in features])
            patients["risk"] = risk.reindex(patients.index).to_numpy()
        info = _model_info(config, model, n_features)
        patients["tier"] = global_tiers(patients["risk"], cuts=config.tier_cuts, include=keep)
    stage("segments")
    order = [c for c in patients.columns if c not in ("risk", "tier", "segment", "segment_rule")]
    patients = patients[order + [c for c in ("risk", "tier", "segment", "segment_rule")
                                 if c in patients.columns]]
    counts = {k: {f: int(r[f]) for f in (
        "n_events", "n_other_system", "n_unrecognised", "n_unknown_patient",
        "n_after_index_date", "n_used")} for k, r in sorted(merged.items())}
    notes = sorted(set(merge_notes(per_batch, n_patients=len(register))) | set(once))
    return patients, counts, notes, info


def _warnings_to_notes(caught) -> list:
    return sorted({str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)})
