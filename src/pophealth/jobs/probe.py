"""A zero-row dry run of the job, so a config that cannot work fails before any data is read.

:func:`check_pipeline` builds empty register, events and activity tables with the
contract's columns and runs the job's own steps on them - scores with the configured
code lists, the patient table, the segment rules, the caseload rules and ranking. What
the real run would reject for a reason that does not depend on the data (an index that
needs a list not given, a rule or ``rank_by`` on a column the job never has, a
non-numeric ranking column) is a :class:`~pophealth.contracts.exceptions.ConfigError`
here instead, naming the config section. Nothing is read from disk except code lists
and rule sets.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, DataQualityWarning, PopHealthError

__all__ = ["check_pipeline"]

_DATES = ("date_of_birth", "date_of_death", "registered_from", "registered_to")
_INTS = ("patient_id", "age", "imd_decile")


def _empty_register() -> pd.DataFrame:
    from pophealth.contracts.schema import _REGISTER_KNOWN

    cols = {}
    for col in _REGISTER_KNOWN:
        if col in _DATES:
            cols[col] = pd.Series([], dtype="datetime64[ns]")
        elif col in _INTS:
            cols[col] = pd.Series([], dtype=np.int64)
        else:
            cols[col] = pd.Series([], dtype=object)
    cols["nhs_number"] = pd.Series([], dtype=object)
    return pd.DataFrame(cols)


def _empty(**dtypes) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in dtypes.items()})


def _numeric(patients: pd.DataFrame, column: str) -> bool:
    dtype = patients[column].dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def check_pipeline(config) -> pd.DataFrame:
    """Run the job's steps on zero rows; raise :class:`ConfigError` on a config that cannot work.

    Parameters
    ----------
    config : JobConfig
        Its code lists, risk, segment rules, selection rules, ``rank_by`` and
        ``include_columns`` are checked together.

    Returns
    -------
    DataFrame
        The (empty) patient table the rules would run on: its columns are what rules,
        ``rank_by`` and ``include_columns`` may name.

    Examples
    --------
    >>> from pophealth.jobs.config import JobConfig
    >>> from pophealth.jobs.probe import check_pipeline
    >>> cfg = {"index_date": "2025-04-01",
    ...        "inputs": {"register": "r", "events": "e", "activity": "a"},
    ...        "codelists": {"efi": "efi_snomed_synthetic"},
    ...        "rules": [{"name": "old", "where": [["age", ">=", 90]]}],
    ...        "output": {"dir": "out", "rank_by": "prior_cost"},
    ...        "pseudonymisation": {"key_env": "PH_KEY"}}
    >>> "efi_band" in check_pipeline(JobConfig.from_dict(cfg)).columns
    True
    >>> cfg["output"]["rank_by"] = "segment"
    >>> JobConfig.from_dict(cfg)
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: [output] rank_by 'segment' is not a numeric column of the patient table
    """
    with warnings.catch_warnings():
        # zero rows: data-quality notes (e.g. "HFRS on under-75s", a band column the
        # rules lack) say nothing about the config; the real run reports them
        warnings.simplefilter("ignore", DataQualityWarning)
        return _check_pipeline(config)


def _check_pipeline(config) -> pd.DataFrame:
    from pophealth.cohorts.caseload import select_caseload
    from pophealth.core.batch import score_patients
    from pophealth.core.patients import patient_table

    idx = config.index_date
    register = _empty_register()
    events = _empty(patient_id=np.int64, code=object, code_system=object,
                    date="datetime64[ns]")
    activity = _empty(patient_id=np.int64, date="datetime64[ns]", kind=object, cost=float,
                      length_of_stay=float)
    lists = {k: (None if v.lower() == "none" else v) for k, v in config.codelists.items()}
    try:
        scores = score_patients(register, events, index_date=idx, codelists=lists)
        patients = patient_table(register, scores, activity, index_date=idx, events=events)
    except PopHealthError as exc:
        raise ConfigError(f"[codelists]: {exc}") from None
    if config.risk_model is not None or config.risk_fit is not None:
        patients["risk"] = pd.Series([], dtype=float)
        patients["tier"] = pd.Series([], dtype=object)
    if config.segments:
        from pophealth.segments import bridges_to_health
        from pophealth.segments.bridges import rule_matches, segment_flags

        try:
            seg = bridges_to_health(patients, events, index_date=idx,
                                    rules=config.segment_rules)
            # on zero rows the precedence walk stops at once; this evaluates every rule
            rule_matches(segment_flags(events, config.segment_rules, register=patients,
                                       index_date=idx),
                         patients, config.segment_rules, index_date=idx)
        except PopHealthError as exc:
            raise ConfigError(f"[segments]: {exc}") from None
        patients["segment"] = seg["segment"].reindex(patients.index)
        patients["segment_rule"] = seg["rule"].reindex(patients.index)
    known = set(patients.columns)
    if config.rank_by not in known or not _numeric(patients, config.rank_by):
        raise ConfigError(f"[output] rank_by '{config.rank_by}' is not a numeric column of "
                          "the patient table")
    for rule in config.rules:
        used = {c.column for c in rule.where} | ({rule.by} if rule.by else set())
        if rule.top_fraction is not None:
            used.add(rule.rank_column)
            if rule.rank_column in known and not _numeric(patients, rule.rank_column):
                raise ConfigError(f"[[rules]] '{rule.name}': rank_column "
                                  f"'{rule.rank_column}' is not numeric")
        missing = sorted(used - known)
        if missing:
            raise ConfigError(f"[[rules]] '{rule.name}': the patient table has no column(s) "
                              f"{missing} (it has: {', '.join(sorted(known))})")
    missing = sorted(set(config.include_columns) - known)
    if missing:
        raise ConfigError(f"[output] include_columns: the patient table has no column(s) "
                          f"{missing}")
    try:
        select_caseload(patients, config.rules, rank_by=config.rank_by, group_by="pcn")
    except PopHealthError as exc:
        raise ConfigError(f"[[rules]]: {exc}") from None
    return patients
