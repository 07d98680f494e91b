"""The one batch function for the whole pipeline: register + events (+ activity) -> patient table.

:func:`score_batch` is what the in-memory job, :func:`~pophealth.engines.streaming.score_dataset`
and :func:`~pophealth.engines.spark.score_spark` all call. It depends only on the patients
it is given and their own rows, so any split of a population into patient batches gives
the same rows as one batch.

What is local and what is global
--------------------------------
Everything a patient's row holds is computed from that patient's own rows: indices
(:func:`~pophealth.core.batch.score_patients`), the patient-table columns
(:func:`~pophealth.core.patients.patient_table`: prior-12-month utilisation, recorded
frailty), segments (:func:`~pophealth.segments.bridges_to_health`) and, given a fitted
model, risk (:func:`~pophealth.risk.features.make_features` then ``predict_risk``).

Risk **tiers** are not: "top 0.5 %" is a cut over the whole population, so a batch
cannot know it. :func:`score_batch` therefore never assigns tiers; after all batches,
:func:`global_tiers` ranks the one float ``risk`` column of every included patient (cheap:
8 bytes a patient). Likewise the no-silent-zeros rule on code systems and the
unrecognised-code threshold are decisions about the whole population: a batch caller passes
``on_no_match="ignore"`` / ``max_unrecognised=1.0`` and applies them once to the summed
reports (:func:`~pophealth.core.batch.merge_reports`, :func:`check_unrecognised`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import CodelistError
from pophealth.core.batch import score_patients
from pophealth.core.patients import patient_table

__all__ = ["check_unrecognised", "empty_activity", "global_tiers", "score_batch",
           "score_batch_parts"]


def empty_activity() -> pd.DataFrame:
    """An activity table with no rows (the contract's columns), for a batch without one."""
    return pd.DataFrame({"patient_id": pd.Series([], dtype=np.int64),
                         "date": pd.Series([], dtype="datetime64[us]"),
                         "kind": pd.Series([], dtype=object),
                         "cost": pd.Series([], dtype=np.float64)})


def score_batch_parts(register: pd.DataFrame, events: pd.DataFrame,
                      activity: pd.DataFrame | None = None, *, index_date,
                      codelists: Mapping[str, str | None] | None = None,
                      model=None, features: bool = False, segments: bool = True,
                      segment_rules=None, max_unrecognised: float = 0.05,
                      on_no_match: str = "raise", warn_other_system: float | None = 0.2,
                      threads: int | None = None,
                      ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """:func:`score_batch` returning ``(patients, features or None, reports)``.

    ``features=True`` (or a ``model``) builds the risk feature table
    (:func:`~pophealth.risk.features.make_features` over the register, the index scores
    and the activity), returned so that a caller fitting a model on the whole population
    can keep the training rows; ``reports`` are the per-index flag reports. ``threads``
    is passed to every :func:`~pophealth.core.conditions.flag_conditions` call (event
    chunks processed concurrently; default 2, a batch worker process passes 1).
    """
    scores = score_patients(register, events, index_date=index_date, codelists=codelists,
                            max_unrecognised=max_unrecognised, on_no_match=on_no_match,
                            warn_other_system=warn_other_system, threads=threads)
    reports = scores.attrs.get("pophealth_reports", {})
    act = empty_activity() if activity is None else activity
    patients = patient_table(register, scores, act, index_date=index_date, events=events)
    # a batch without activity rows sums costs to int64 (numpy's bincount of nothing):
    # one dtype for every batch, so batches concatenate and write alike
    if patients["prior_cost"].dtype != np.float64:
        patients["prior_cost"] = patients["prior_cost"].astype(np.float64)
    X = None
    if model is not None or features:
        from pophealth.risk.features import make_features

        X = make_features(register, scores, act, index_date=index_date)
    if model is not None:
        patients["risk"] = model.predict_risk(X).reindex(patients.index).to_numpy()
    if segments:
        from pophealth.segments import bridges_to_health

        # the segment lists' report joins the indices': a batch caller judges the
        # code-system and unrecognised-code rules once, on the sums over all batches
        seg = bridges_to_health(patients, events, index_date=index_date, rules=segment_rules,
                                max_unrecognised=max_unrecognised,
                                warn_other_system=warn_other_system,
                                on_no_match="ignore" if on_no_match == "ignore" else "warn",
                                threads=threads)
        reports = {**reports, **seg.attrs["pophealth_reports"]}
        patients["segment"] = seg["segment"].reindex(patients.index)
        patients["segment_rule"] = seg["rule"].reindex(patients.index)
    patients.attrs["pophealth_reports"] = reports
    return patients, X, reports


def score_batch(register: pd.DataFrame, events: pd.DataFrame,
                activity: pd.DataFrame | None = None, *, index_date,
                codelists: Mapping[str, str | None] | None = None, model=None,
                segments: bool = True, segment_rules=None, max_unrecognised: float = 0.05,
                on_no_match: str = "raise",
                warn_other_system: float | None = 0.2) -> pd.DataFrame:
    """The full patient table for a batch of patients: indices, utilisation, segments, risk.

    Parameters
    ----------
    register : DataFrame
        The batch's patients, one row each (``patient_id``, ``age`` or
        ``date_of_birth``, ``sex``, ...).
    events : DataFrame
        Coded events of (a superset of) these patients.
    activity : DataFrame, optional
        Contacts (``patient_id``, ``date``, ``kind``, ``cost``); none when omitted.
    index_date : date-like
    codelists : mapping, optional
        Index code lists, as for :func:`pophealth.score_patients`.
    model : fitted model, optional
        Anything with ``predict_risk(X)`` over :func:`~pophealth.risk.features.make_features`
        columns (e.g. a fitted :class:`~pophealth.risk.RiskModel`); adds ``risk``.
    segments : bool, default True
        Add ``segment`` and ``segment_rule`` (:func:`~pophealth.segments.bridges_to_health`).
    segment_rules : SegmentRules, str or path, optional
        Rules for the segments (default: the shipped Bridges to Health rules).
    max_unrecognised, on_no_match, warn_other_system
        As for :func:`pophealth.score_patients`. A batch caller passes
        ``max_unrecognised=1.0, on_no_match="ignore"`` and decides once on the summed
        reports (module docstring).

    Returns
    -------
    DataFrame
        :func:`~pophealth.core.patients.patient_table` indexed by ``patient_id`` in
        register order, plus ``risk`` (with a model) and ``segment``/``segment_rule``.
        No ``tier``: tiers need the whole population's risk (:func:`global_tiers`).
        ``attrs["pophealth_reports"]``: the flag reports of the index code lists.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.pipeline import score_batch
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "age": [80, 40]})
    >>> ev = pd.DataFrame({"patient_id": [1], "code": ["I50"], "code_system": "icd10",
    ...                    "date": pd.to_datetime(["2025-01-01"])})
    >>> act = pd.DataFrame({"patient_id": [1], "date": pd.to_datetime(["2025-02-01"]),
    ...                     "kind": ["emergency_admission"], "cost": [2500.0]})
    >>> import warnings
    >>> with warnings.catch_warnings():  # no SNOMED rows, no eFI: noted, not wrong
    ...     warnings.simplefilter("ignore")
    ...     t = score_batch(reg, ev, act, index_date="2025-04-01",
    ...                     codelists={"hfrs": None, "elixhauser": None})
    >>> t["charlson_quan2011"].tolist(), t["prior_emergency_admissions"].tolist()
    ([2, 0], [1, 0])
    >>> t["segment_rule"].tolist()
    ['organ_failure_with_emergency_admission', 'healthy']
    """
    patients, _, _ = score_batch_parts(
        register, events, activity, index_date=index_date, codelists=codelists, model=model,
        segments=segments, segment_rules=segment_rules, max_unrecognised=max_unrecognised,
        on_no_match=on_no_match, warn_other_system=warn_other_system)
    return patients


def global_tiers(risk, *, cuts: Sequence[float] = (0.005, 0.05, 0.2), include=None,
                 labels: Sequence[str] | None = None) -> pd.Series:
    """Risk tiers over the whole population, from the ``risk`` column of every batch.

    Parameters
    ----------
    risk : Series
        Every patient's risk (all batches concatenated, any order).
    cuts, labels
        As for :func:`pophealth.risk.tiers.risk_tiers`.
    include : bool array-like, optional
        Patients the cuts are taken over (e.g. those not excluded from the job); the
        others get a missing tier.

    Returns
    -------
    Series
        Ordered categorical ``tier`` indexed like ``risk``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.engines.pipeline import global_tiers
    >>> r = pd.Series([0.9, 0.1, 0.5, 0.3], index=[10, 11, 12, 13])
    >>> global_tiers(r, cuts=(0.25, 0.5, 0.75), include=[True, True, True, False]).tolist()
    ['very high', 'moderate', 'high', nan]
    """
    from pophealth.risk.tiers import risk_tiers

    if include is None:
        return risk_tiers(risk, cuts=cuts, labels=labels)
    keep = np.asarray(include, dtype=bool)
    return risk_tiers(risk[keep], cuts=cuts, labels=labels).reindex(risk.index)


def check_unrecognised(reports: dict, max_unrecognised: float, *,
                       caller: str = "score_batch") -> None:
    """The unrecognised-code threshold, once over reports summed across batches.

    :func:`~pophealth.core.conditions.flag_conditions` raises when more than
    ``max_unrecognised`` of a list's-system rows have unrecognised codes; judged per
    batch, one batch of odd rows would fail a population that passes as a whole (and a
    split could hide a bad population). Batch callers pass ``max_unrecognised=1.0`` and
    call this on :func:`~pophealth.core.batch.merge_reports` of all batches.

    Examples
    --------
    >>> r = {"charlson": {"codelist": "c", "n_events": 10, "n_other_system": 0,
    ...                   "n_unrecognised": 2}}
    >>> check_unrecognised(r, 0.05)
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.CodelistError: events: column 'code' breaks rule 'recognised_code' in 2 of 10 row(s) in the code list's system(s) (20.0% > max_unrecognised=5.0%) for code list c (charlson); was the wrong column or code system passed?
    """
    for name, r in reports.items():
        covered = int(r["n_events"]) - int(r["n_other_system"])
        bad = int(r["n_unrecognised"])
        if bad and covered and bad / covered > max_unrecognised:
            raise CodelistError(
                f"events: column 'code' breaks rule 'recognised_code' in {bad} of {covered} "
                f"row(s) in the code list's system(s) ({bad / covered:.1%} > "
                f"max_unrecognised={max_unrecognised:.1%}) for code list {r['codelist']} "
                f"({name}); was the wrong column or code system passed?")
