"""The patient table: one row per registered patient with scores and prior utilisation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.core.indices import EFI_BANDS, HFRS_BANDS

__all__ = ["BAND_ORDERS", "patient_table"]

#: Known orders (lowest first) of the patient table's band columns. Segment and caseload
#: rules compare these columns in this order whatever their dtype, never alphabetically.
BAND_ORDERS: dict[str, tuple[str, ...]] = {"efi_band": EFI_BANDS, "hfrs_band": HFRS_BANDS}


def patient_table(register: pd.DataFrame, scores: pd.DataFrame, activity: pd.DataFrame,
                  *, index_date) -> pd.DataFrame:
    """The patient table: register + scores + prior-12-month utilisation, indexed by patient_id.

    The one table that segmentation (:func:`pophealth.segments.bridges_to_health`), risk
    features, cohorts and the caseload job read. Identifier columns (``patient_id`` as a
    column, ``nhs_number``) are not carried; the index is ``patient_id`` in register order.

    Parameters
    ----------
    register : DataFrame
        One row per patient (``patient_id`` plus demographics).
    scores : DataFrame
        Patient-level scores indexed by ``patient_id`` (e.g. from
        :func:`pophealth.core.batch.score_patients`).
    activity : DataFrame
        Contacts with ``patient_id``, ``date``, ``kind`` and ``cost``.
    index_date : date-like
        Utilisation counts the 365 days up to and including this date.

    Returns
    -------
    DataFrame
        Register columns, scores, ``prior_cost``, ``prior_emergency_admissions`` and
        ``prior_ae_attendances``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.core.patients import patient_table
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "age": [70, 30]})
    >>> sc = pd.DataFrame({"charlson_quan2011": [2, 0]},
    ...                   index=pd.Index([1, 2], name="patient_id"))
    >>> act = pd.DataFrame({"patient_id": [1, 1], "kind": ["ae", "emergency_admission"],
    ...                     "cost": [150.0, 2000.0],
    ...                     "date": pd.to_datetime(["2025-01-01", "2025-02-01"])})
    >>> patient_table(reg, sc, act, index_date="2025-04-01")[
    ...     ["prior_cost", "prior_emergency_admissions"]]
                prior_cost  prior_emergency_admissions
    patient_id
    1               2150.0                           1
    2                  0.0                           0
    """
    reg = register.set_index("patient_id", drop=False).rename_axis("patient_id")
    reg = reg.drop(columns=["patient_id", "nhs_number"], errors="ignore")
    idx = pd.Timestamp(index_date)
    recent = activity[(activity["date"] > idx - pd.Timedelta(days=365))
                      & (activity["date"] <= idx)]
    cost = recent.groupby("patient_id")["cost"].sum()
    emerg = recent[recent["kind"] == "emergency_admission"].groupby("patient_id").size()
    ae = recent[recent["kind"] == "ae"].groupby("patient_id").size()
    out = reg.join(scores)
    out["prior_cost"] = cost.reindex(out.index, fill_value=0.0).astype(float)
    out["prior_emergency_admissions"] = emerg.reindex(out.index, fill_value=0).astype(np.int64)
    out["prior_ae_attendances"] = ae.reindex(out.index, fill_value=0).astype(np.int64)
    return out
