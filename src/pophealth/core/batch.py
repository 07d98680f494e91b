"""One pure batch function from a register and its coded events to per-patient scores.

:func:`score_patients` is what in-memory analysis, streamed Parquet scoring and the
Spark adapter all call: it depends only on the rows it is given, so scoring a
population whole or in patient batches gives the same rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

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

__all__ = ["DEFAULT_CODELISTS", "score_patients"]

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
                            warn_other_system=None, on_no_match="ignore")
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
    _check_systems(reports, warn_other_system)
    out = pd.concat(parts, axis=1)
    out.attrs["pophealth_reports"] = reports
    return out


def _check_systems(reports: dict, warn_other_system: float | None) -> None:
    """The no-silent-zeros rule of :func:`score_patients` (see its docstring)."""
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
        raise CodelistError(
            f"score_patients: no event row can match any code list of the call: all {n} "
            f"row(s) are in code system(s) {system_counts_text(systems)}; the lists "
            f"({', '.join(r['codelist'] for r in reports.values())}) cover "
            f"{', '.join(covered) or 'no system'}; tag the events with the lists' system or "
            "pass code lists for theirs (codelists=)"
        )
    for name, r in reports.items():
        if r["n_events"] and r["n_events"] == r["n_other_system"]:
            warnings.warn(
                f"score_patients: {name}: code list {r['codelist']} (covers "
                f"{', '.join(r['codelist_systems'])}) can match none of the {n} event row(s) "
                f"({system_counts_text(r['systems'])}), so {name} is scored from no events",
                DataQualityWarning, stacklevel=user_stacklevel(),
            )
    if warn_other_system is not None and n_other / n >= warn_other_system:
        warnings.warn(
            f"score_patients: {n_other} of {n} event row(s) ({n_other / n:.0%} >= "
            f"warn_other_system={warn_other_system:.0%}) are in code system(s) no code list "
            f"of the call covers ({system_counts_text(systems, covered=False)}) and count "
            f"nowhere; the lists cover {', '.join(covered)} (eFI and CMS need a primary-care "
            "list: codelists={'efi': ..., 'cms': ...})",
            DataQualityWarning, stacklevel=user_stacklevel(),
        )
