"""One pure batch function from a register and its coded events to per-patient scores.

:func:`score_patients` is what in-memory analysis, streamed Parquet scoring and the
Spark adapter all call: it depends only on the rows it is given, so scoring a
population whole or in patient batches gives the same rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    SchemaError,
    user_stacklevel,
)
from pophealth.contracts.numeric import validate_numeric
from pophealth.core.conditions import (
    UNKNOWN_SYSTEM,
    flag_conditions,
    require_event_columns,
    system_counts_text,
)
from pophealth.core.indices import (
    cambridge_score,
    charlson,
    efi,
    elixhauser,
    hfrs,
    multimorbidity,
)

__all__ = ["DEFAULT_CODELISTS", "check_code_systems", "merge_reports", "score_patients"]

_ON_NO_MATCH = ("raise", "warn", "ignore")

#: Code list used for each index by default; eFI and CMS need a primary-care list
#: (SNOMED, CTV3 or local codes) so they are off unless one is given.
DEFAULT_CODELISTS: dict[str, str | None] = {
    "charlson": "charlson_quan2005_icd10",
    "elixhauser": "elixhauser_quan2005_icd10",
    "hfrs": "hfrs_gilbert2018_icd10",
    "efi": None,
    "cms": None,
}


def score_patients(
    register: pd.DataFrame,
    events: pd.DataFrame,
    *,
    index_date,
    codelists: Mapping[str, str | None] | None = None,
    lookback_days: Mapping[str, int | None] | None = None,
    charlson_weights: str = "quan2011",
    elixhauser_weights: str = "van_walraven",
    max_unrecognised: float = 0.05,
    warn_other_system: float | None = 0.2,
    on_no_match: str = "raise",
    threads: int | None = None,
) -> pd.DataFrame:
    """Score every register patient with the shipped indices.

    No silent zeros: the code systems of the events are checked against the code lists
    of the call (after :func:`~pophealth.core.codes.normalise_system`, so ``"SNOMED
    CT"`` matches ``snomed``). The rule is:

    * when there are events but **no** row is in a code system that **any** list of the
      call covers, a :class:`~pophealth.contracts.exceptions.CodelistError` names the
      systems seen (with row counts) and the systems the lists cover;
    * otherwise each list that can match no row (say the eFI list on hospital-only
      events) gets a :class:`~pophealth.contracts.exceptions.DataQualityWarning` with
      the row counts per system, and its index is scored from no events;
    * and when ``warn_other_system`` or more of the rows are in systems no list of the
      call covers, a warning gives their counts per system.

    Parameters
    ----------
    register : DataFrame
        One row per patient with ``patient_id`` (and ``age`` or ``date_of_birth`` for
        the HFRS age check). ``age`` is checked first with the ``numeric`` rule
        (:class:`~pophealth.contracts.exceptions.SchemaError` naming column, count and
        positions, never values).
    events : DataFrame
        Coded events for (a superset of) these patients.
    index_date : date-like
    codelists : mapping, optional
        Overrides of :data:`DEFAULT_CODELISTS` (index -> code list name/path/frame, or
        ``None`` to skip that index).
    lookback_days : mapping, optional
        Index -> look-back in days (default: HFRS 730, others all history).
    max_unrecognised : float, default 0.05
        Passed to every :func:`~pophealth.core.conditions.flag_conditions` call: the
        fraction of a list's-system rows with unrecognised codes above which a
        :class:`~pophealth.contracts.exceptions.CodelistError` is raised.
    warn_other_system : float or None, default 0.2
        Share of event rows in systems no list of the call covers at or above which a
        warning is issued (``None``: never).
    on_no_match : {"raise", "warn", "ignore"}, default "raise"
        What happens when no event row can match any list of the call: raise the
        :class:`~pophealth.contracts.exceptions.CodelistError`, warn instead, or skip the
        whole code-system check (for a caller that scores patients in batches and applies
        the rule once to the summed reports with :func:`check_code_systems`).
    threads : int, optional
        Passed to every :func:`~pophealth.core.conditions.flag_conditions` call: event
        chunks processed concurrently (default 2; a batch worker process passes 1).

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` in register order: ``charlson_<w>``,
        ``elixhauser_<w>``, ``hfrs``, ``hfrs_band``, optionally ``efi_deficits``,
        ``efi``, ``efi_band``, ``cms_general``, and ``n_conditions``,
        ``multimorbidity``, ``n_body_systems``, ``complex_multimorbidity`` (over the
        Charlson conditions, or the CMS conditions when a CMS list is given).
        ``result.attrs["pophealth_reports"]`` maps each index to the
        :class:`~pophealth.core.conditions.FlagReport` counts of its code list.

    Examples
    --------
    >>> import warnings
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "age": [80, 82]})
    >>> ev = pd.DataFrame({"patient_id": [1, 1], "code": ["I50", "F00"],
    ...                    "code_system": "icd10", "date": pd.to_datetime(["2025-01-01"] * 2)})
    >>> out = ph.score_patients(reg, ev, index_date="2025-04-01")
    >>> out[["charlson_quan2011", "hfrs", "n_conditions"]]
                charlson_quan2011  hfrs  n_conditions
    patient_id
    1                           4   7.1             2
    2                           0   0.0             0
    """
    if not isinstance(register, pd.DataFrame):
        raise SchemaError("register: expected a DataFrame (one row per patient)")
    require_event_columns(events)
    if warn_other_system is not None and not 0 <= warn_other_system <= 1:
        raise ConfigError("score_patients: warn_other_system must be a fraction between 0 and 1 "
                          "or None")
    if on_no_match not in _ON_NO_MATCH:
        raise ConfigError(f"score_patients: on_no_match must be one of {', '.join(_ON_NO_MATCH)}")
    validate_numeric(register, [], table="register", optional=("age",))
    lists = dict(DEFAULT_CODELISTS)
    lists.update(codelists or {})
    windows = {"hfrs": 730}
    windows.update(lookback_days or {})

    reports = {}

    def flags(name):
        # code systems are judged over all the lists of the call (_check_systems)
        f = flag_conditions(events, lists[name], register=register, index_date=index_date,
                            lookback_days=windows.get(name), max_unrecognised=max_unrecognised,
                            warn_other_system=None, on_no_match="ignore", threads=threads)
        reports[name] = f.attrs["pophealth_report"]
        return f

    parts = []
    mm_flags, mm_map = None, None
    if lists["charlson"] is not None:
        cf = flags("charlson")
        parts.append(charlson(cf, weights=charlson_weights))
        mm_flags, mm_map = cf, "charlson"
    if lists["elixhauser"] is not None:
        parts.append(elixhauser(flags("elixhauser"), weights=elixhauser_weights))
    if lists["hfrs"] is not None:
        hf = flags("hfrs")
        parts.append(hfrs(hf, register=register, index_date=index_date))
    if lists["efi"] is not None:
        parts.append(efi(flags("efi")))
    if lists["cms"] is not None:
        cm = flags("cms")
        parts.append(cambridge_score(cm))
        mm_flags, mm_map = cm, "cms"
    if mm_flags is not None:
        parts.append(multimorbidity(mm_flags, body_systems=mm_map))
    if not parts:
        from pophealth.core.conditions import register_ids

        return pd.DataFrame(index=register_ids(register))
    if on_no_match != "ignore":
        check_code_systems(reports, warn_other_system=warn_other_system,
                           on_no_match=on_no_match, caller="score_patients")
    out = pd.concat(parts, axis=1)
    out.attrs["pophealth_reports"] = reports
    return out


def merge_reports(batches) -> dict:
    """Sum the per-index flag reports of several batches (as scoring them at once would).

    Parameters
    ----------
    batches : iterable of dict
        Each the ``attrs["pophealth_reports"]`` of one :func:`score_patients` call
        (index -> :class:`~pophealth.core.conditions.FlagReport` as a dict).

    Returns
    -------
    dict
        Index -> report whose integer counts, and per-system ``n_events`` /
        ``n_matched``, are the sums over the batches; ``unrecognised_fraction`` is
        recomputed from the sums; ``n_unrecognised_unique`` is the largest batch's
        (unique codes do not add up).

    Examples
    --------
    >>> a = {"charlson": {"codelist": "c", "n_events": 2, "n_other_system": 2,
    ...      "codelist_systems": ("icd10",),
    ...      "systems": {"snomed": {"n_events": 2, "covered": False, "n_matched": 0}}}}
    >>> b = {"charlson": {"codelist": "c", "n_events": 3, "n_other_system": 0,
    ...      "codelist_systems": ("icd10",),
    ...      "systems": {"icd10": {"n_events": 3, "covered": True, "n_matched": 1}}}}
    >>> m = merge_reports([a, b])["charlson"]
    >>> m["n_events"], m["n_other_system"], sorted(m["systems"])
    (5, 2, ['icd10', 'snomed'])
    """
    out: dict = {}
    for reports in batches:
        for name, r in reports.items():
            acc = out.get(name)
            if acc is None:
                acc = out[name] = {k: (dict(v) if isinstance(v, dict) else v)
                                   for k, v in r.items()}
                acc["systems"] = {k: dict(v) for k, v in r.get("systems", {}).items()}
                continue
            for key, value in r.items():
                if key == "n_unrecognised_unique":
                    acc[key] = max(int(acc.get(key, 0)), int(value))
                elif key.startswith("n_") and isinstance(value, (int, np.integer)):
                    acc[key] = int(acc.get(key, 0)) + int(value)
            for system, v in r.get("systems", {}).items():
                s = acc["systems"].setdefault(system, {"n_events": 0, "covered": v["covered"],
                                                       "n_matched": 0})
                s["n_events"] = int(s["n_events"]) + int(v["n_events"])
                s["n_matched"] = int(s.get("n_matched", 0)) + int(v.get("n_matched", 0))
    for acc in out.values():
        if "unrecognised_fraction" in acc:
            covered = int(acc["n_events"]) - int(acc["n_other_system"])
            acc["unrecognised_fraction"] = (int(acc["n_unrecognised"]) / covered
                                            if covered else 0.0)
    return out


def check_code_systems(reports: dict, *, warn_other_system: float | None = 0.2,
                       on_no_match: str = "raise", caller: str = "score_patients") -> None:
    """The no-silent-zeros rule of :func:`score_patients`, over one call's reports.

    Apply it once to :func:`merge_reports` of all batches when scoring in batches, so
    that the decision rests on the whole population's per-system row counts, not on
    whichever batch happens to hold only one system.

    Parameters
    ----------
    reports : dict
        Index -> flag report dict (``attrs["pophealth_reports"]``, or merged).
    warn_other_system : float or None
        As for :func:`score_patients`.
    on_no_match : {"raise", "warn", "ignore"}
        ``"raise"``: :class:`~pophealth.contracts.exceptions.CodelistError` when no row
        can match any list; ``"warn"``: a warning instead; ``"ignore"``: nothing at all.
    caller : str
        Name put at the start of messages.

    Examples
    --------
    >>> r = {"charlson": {"codelist": "c", "n_events": 4, "n_other_system": 4,
    ...      "codelist_systems": ("icd10",),
    ...      "systems": {"snomed": {"n_events": 4, "covered": False}}}}
    >>> check_code_systems(r)
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.CodelistError: score_patients: no event row can match any code list of the call: all 4 row(s) are in code system(s) snomed 4; the lists (c) cover icd10; tag the events with the lists' system or pass code lists for theirs (codelists=)
    """
    if on_no_match not in _ON_NO_MATCH:
        raise ConfigError(f"{caller}: on_no_match must be one of {', '.join(_ON_NO_MATCH)}")
    if on_no_match == "ignore" or not reports:
        return
    first = next(iter(reports.values()))
    n = first["n_events"]
    if not n:
        return
    covered = sorted({s for r in reports.values() for s in r["codelist_systems"]})
    # every report saw the same rows, so a system's row count is the same in each; a
    # system only its own list names is counted as UNKNOWN_SYSTEM in the others' reports
    n_cov = {k: v["n_events"] for r in reports.values() for k, v in r["systems"].items()
             if v["covered"]}
    n_other = n - sum(n_cov.values())
    systems = {k: {"n_events": v["n_events"], "covered": False}
               for k, v in first["systems"].items()
               if k not in n_cov and k != UNKNOWN_SYSTEM}
    unknown = n_other - sum(v["n_events"] for v in systems.values())
    if unknown:
        systems[UNKNOWN_SYSTEM] = {"n_events": unknown, "covered": False}
    systems.update({k: {"n_events": m, "covered": True} for k, m in n_cov.items()})
    if n_other == n:
        message = (
            f"{caller}: no event row can match any code list of the call: all {n} "
            f"row(s) are in code system(s) {system_counts_text(systems)}; the lists "
            f"({', '.join(r['codelist'] for r in reports.values())}) cover "
            f"{', '.join(covered) or 'no system'}; tag the events with the lists' system or "
            "pass code lists for theirs (codelists=)"
        )
        if on_no_match == "raise":
            raise CodelistError(message)
        warnings.warn(message, DataQualityWarning, stacklevel=user_stacklevel())
        return
    for name, r in reports.items():
        if r["n_events"] and r["n_events"] == r["n_other_system"]:
            warnings.warn(
                f"{caller}: {name}: code list {r['codelist']} (covers "
                f"{', '.join(r['codelist_systems'])}) can match none of the {n} event row(s) "
                f"({system_counts_text(r['systems'])}), so {name} is scored from no events",
                DataQualityWarning, stacklevel=user_stacklevel(),
            )
    if warn_other_system is not None and n_other / n >= warn_other_system:
        warnings.warn(
            f"{caller}: {n_other} of {n} event row(s) ({n_other / n:.0%} >= "
            f"warn_other_system={warn_other_system:.0%}) are in code system(s) no code list "
            f"of the call covers ({system_counts_text(systems, covered=False)}) and count "
            f"nowhere; the lists cover {', '.join(covered)} (eFI and CMS need a primary-care "
            "list: codelists={'efi': ..., 'cms': ...})",
            DataQualityWarning, stacklevel=user_stacklevel(),
        )
