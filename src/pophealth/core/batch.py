"""One pure batch function from a register and its coded events to per-patient scores.

:func:`score_patients` is what in-memory analysis, streamed Parquet scoring and the
Spark adapter all call: it depends only on the rows it is given, so scoring a
population whole or in patient batches gives the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.numeric import validate_numeric
from pophealth.core.conditions import flag_conditions
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
) -> pd.DataFrame:
    """Score every register patient with the shipped indices.

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
    validate_numeric(register, [], table="register", optional=("age",))
    lists = dict(DEFAULT_CODELISTS)
    lists.update(codelists or {})
    windows = {"hfrs": 730}
    windows.update(lookback_days or {})

    reports = {}

    def flags(name):
        f = flag_conditions(events, lists[name], register=register, index_date=index_date,
                            lookback_days=windows.get(name), max_unrecognised=max_unrecognised)
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
    out = pd.concat(parts, axis=1)
    out.attrs["pophealth_reports"] = reports
    return out
