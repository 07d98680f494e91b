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


def _risk(config: JobConfig, register, scores, activity) -> pd.Series:
    from pophealth.risk.features import make_features

    X = make_features(register, scores, activity, index_date=config.index_date)
    if config.risk_model is not None:
        model = _load_model(config.risk_model)
    else:
        from pophealth.risk.models import RiskModel

        fit = config.risk_fit
        outcome = fit.get("outcome", "emergency_admission")
        outcomes = _read(config.inputs["outcomes"])
        if outcome not in outcomes.columns or "patient_id" not in outcomes.columns:
            raise ConfigError(f"[risk.fit] outcomes input lacks 'patient_id' or '{outcome}'")
        y = outcomes.set_index("patient_id")[outcome].reindex(X.index)
        train = np.flatnonzero(y.notna().to_numpy())
        max_rows = int(fit.get("max_rows", 0))
        seed = int(fit.get("random_state", 0))
        if max_rows and len(train) > max_rows:
            rng = np.random.default_rng(seed)
            train = np.sort(rng.choice(train, size=max_rows, replace=False))
        calibration = fit.get("calibration", "sigmoid")
        model = RiskModel(method=fit.get("method", "hgb"),
                          calibration=None if calibration == "none" else calibration,
                          random_state=seed)
        model.fit(X.iloc[train], y.iloc[train].astype(bool).to_numpy())
        logger.info("job: fitted a risk model on %d patients", len(train))
    meta = getattr(model, "metadata_", None) or {}
    info = {"source": "saved model" if config.risk_model is not None else "fitted in the job",
            "class": type(model).__name__, "n_features": int(X.shape[1])}
    info.update({k: meta[k] for k in ("training_period", "performance", "description")
                 if k in meta})
    return model.predict_risk(X), info


def _load_model(path: Path):
    from pophealth.risk.model_io import load_model

    return load_model(path)


def _no_stage(stage: str) -> None:
    """Default stage callback of :func:`_build_patients`: does nothing."""


def _build_patients(config: JobConfig, stage=_no_stage) -> tuple[pd.DataFrame, dict, list]:
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
    from pophealth.core.batch import score_patients
    from pophealth.core.patients import patient_table

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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        # the config's threshold is the only one: flag_conditions raises above it
        stage("score")
        scores = score_patients(register, events, index_date=idx, codelists=lists,
                                max_unrecognised=q["max_unrecognised_code_fraction"])
        reports = scores.attrs.get("pophealth_reports", {})
        counts["events"] = {k: {f: int(r[f]) for f in (
            "n_events", "n_other_system", "n_unrecognised", "n_unknown_patient",
            "n_after_index_date", "n_used")} for k, r in sorted(reports.items())}
        patients = patient_table(register, scores, activity, index_date=idx, events=events)
        patients["_pseudo_source"] = register[config.id_column].to_numpy()
        stage("risk")
        if config.risk_model is not None or config.risk_fit is not None:
            from pophealth.risk.tiers import risk_tiers

            risk, counts["risk_model"] = _risk(config, register, scores, activity)
            patients["risk"] = risk.reindex(patients.index).to_numpy()
            tiers = risk_tiers(patients.loc[keep, "risk"], cuts=config.tier_cuts)
            patients["tier"] = tiers.reindex(patients.index)
        stage("segments")
        if config.segments:
            from pophealth.segments import bridges_to_health

            seg = bridges_to_health(patients, events, index_date=idx,
                                    rules=config.segment_rules)
            patients["segment"] = seg["segment"].reindex(patients.index)
            patients["segment_rule"] = seg["rule"].reindex(patients.index)
    notes = _warnings_to_notes(caught)
    patients = patients[keep]
    counts["patients_included"] = int(keep.sum())
    logger.info("job: %d patient(s) included, %d excluded", int(keep.sum()), int((~keep).sum()))
    return patients, counts, notes


def _warnings_to_notes(caught) -> list:
    return sorted({str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)})
