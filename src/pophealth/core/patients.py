"""The patient table: one row per registered patient with scores and prior utilisation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.numeric import numeric_values, validate_numeric
from pophealth.contracts.schema import as_datetime64, naive_timestamp
from pophealth.core.arrays import index_positions
from pophealth.core.frailty import recorded_frailty
from pophealth.core.indices import EFI_BANDS, HFRS_BANDS

__all__ = ["BAND_ORDERS", "frailty_band", "patient_table"]

#: Known orders (lowest first) of the patient table's band columns. Segment and caseload
#: rules compare these columns in this order whatever their dtype, never alphabetically.
BAND_ORDERS: dict[str, tuple[str, ...]] = {
    "efi_band": EFI_BANDS, "hfrs_band": HFRS_BANDS,
    "frailty_recorded": EFI_BANDS, "frailty_band": EFI_BANDS}


def frailty_band(table: pd.DataFrame) -> pd.DataFrame:
    """Combined frailty band and its source: recorded frailty first, else the eFI.

    ``frailty_band`` is ``frailty_recorded`` where the record states frailty (latest
    MILDFRAIL/MODFRAIL/SEVFRAIL code, else a recorded eFI value; see
    :mod:`pophealth.core.frailty`), otherwise ``efi_band`` computed from deficits;
    ``frailty_source`` says which (``"recorded_code"``, ``"recorded_efi"``,
    ``"efi_deficits"``) or is missing when neither is known. Recorded frailty wins
    because it is a clinician's assessment (a pophealth choice).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.core.patients import frailty_band
    >>> bands = dict(categories=["fit", "mild", "moderate", "severe"], ordered=True)
    >>> t = pd.DataFrame({
    ...     "frailty_recorded": pd.Categorical(["mild", None, None], **bands),
    ...     "frailty_recorded_source": ["code", None, None],
    ...     "efi_band": pd.Categorical(["severe", "moderate", None], **bands)})
    >>> frailty_band(t)
      frailty_band frailty_source
    0         mild  recorded_code
    1     moderate   efi_deficits
    2          NaN            NaN
    """
    n = len(table)
    codes = np.full(n, -1, dtype=np.int64)
    source = np.full(n, -1, dtype=np.int64)  # codes of _SOURCES
    if "efi_band" in table.columns:
        efi_codes = np.asarray(pd.Categorical(table["efi_band"], categories=list(EFI_BANDS),
                                              ordered=True).codes, dtype=np.int64)
        codes = efi_codes
        source[efi_codes >= 0] = 2  # efi_deficits
    if "frailty_recorded" in table.columns:
        rec = np.asarray(pd.Categorical(table["frailty_recorded"], categories=list(EFI_BANDS),
                                        ordered=True).codes, dtype=np.int64)
        # compared as a column (a categorical compares its few categories, not its rows)
        efi_value = ((table["frailty_recorded_source"] == "efi_value").fillna(False)
                     .to_numpy(dtype=bool) if "frailty_recorded_source" in table.columns
                     else np.zeros(n, dtype=bool))
        use = rec >= 0
        codes = np.where(use, rec, codes)
        source[use] = np.where(efi_value[use], 1, 0)  # recorded_efi, recorded_code
    return pd.DataFrame({
        "frailty_band": pd.Categorical.from_codes(
            codes, dtype=pd.CategoricalDtype(list(EFI_BANDS), ordered=True)),
        "frailty_source": pd.Categorical.from_codes(source, categories=list(_SOURCES))},
        index=table.index)


_SOURCES = ("recorded_code", "recorded_efi", "efi_deficits")


def patient_table(register: pd.DataFrame, scores: pd.DataFrame, activity: pd.DataFrame,
                  *, index_date, events: pd.DataFrame | None = None,
                  frailty_codelist="pcd_snomed") -> pd.DataFrame:
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
        Contacts with ``patient_id``, ``date``, ``kind`` and ``cost``. ``cost`` (and
        the register's ``age``) are checked first with the ``numeric`` rule.
    index_date : date-like
        Utilisation counts the 365 days up to and including this date. Dates are
        compared in the one convention of :mod:`pophealth.contracts.schema`: tz-aware
        activity dates (numpy or Arrow, any zone) and a tz-aware ``index_date`` on the
        local wall-clock time of their own zone; Arrow ``date32`` and ``datetime.date``
        columns are midnight of their day.
    events : DataFrame, optional
        Coded events; when given, recorded frailty (latest MILDFRAIL/MODFRAIL/SEVFRAIL
        code in ``frailty_codelist``, else the register's ``efi_recorded`` value) is
        added by :func:`pophealth.core.frailty.recorded_frailty`. Without events only
        ``efi_recorded`` (if present) is used.
    frailty_codelist : str, path, DataFrame or Codelist, default "pcd_snomed"
        The list holding the three frailty clusters.

    Returns
    -------
    DataFrame
        Register columns, scores, ``prior_cost``, ``prior_emergency_admissions``,
        ``prior_ae_attendances``, ``frailty_recorded`` (+ ``_date``, ``_source``) and
        the combined ``frailty_band`` with its ``frailty_source`` (:func:`frailty_band`:
        recorded frailty first, else ``efi_band`` from deficits).

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
    for name, frame in (("register", register), ("activity", activity)):
        if not isinstance(frame, pd.DataFrame):
            raise SchemaError(f"{name}: expected a DataFrame")
    missing = [c for c in ("patient_id", "date", "kind", "cost") if c not in activity.columns]
    if "patient_id" not in register.columns:
        raise SchemaError("register: missing column 'patient_id' (rule 'missing_column')")
    if missing:
        raise SchemaError(f"activity: missing column(s) {missing} (rule 'missing_column')")
    validate_numeric(register, [], table="register", optional=("age",))
    validate_numeric(activity, ["cost"], table="activity")
    index = pd.Index(register["patient_id"], name="patient_id")
    idx = naive_timestamp(index_date).to_datetime64()
    date = as_datetime64(activity["date"])  # tz-aware -> local wall clock
    recent = (date > idx - np.timedelta64(365, "D")) & (date <= idx)
    pos = index_positions(index, activity["patient_id"].to_numpy())
    use = recent & (pos >= 0)
    n = len(index)
    kind = activity["kind"]
    cost = numeric_values(activity["cost"], table="activity", column="cost")
    emerg = use & (kind == "emergency_admission").fillna(False).to_numpy(dtype=bool)
    ae = use & (kind == "ae").fillna(False).to_numpy(dtype=bool)
    added = {
        "prior_cost": np.bincount(pos[use], weights=np.nan_to_num(cost[use]), minlength=n),
        "prior_emergency_admissions": np.bincount(pos[emerg], minlength=n).astype(np.int64),
        "prior_ae_attendances": np.bincount(pos[ae], minlength=n).astype(np.int64)}
    rec = recorded_frailty(events, register=register, index_date=index_date,
                           codelist=frailty_codelist)
    added.update({col: rec[col].array for col in rec.columns})
    cols = [c for c in register.columns if c not in ("patient_id", "nhs_number")]
    names = [*cols, *scores.columns]
    if (index.is_unique and scores.index.equals(index) and len(set(names)) == len(names)
            and not set(names) & {*added, *_BAND_COLUMNS}):
        # the usual case (scores of these patients in register order, no name shared):
        # the table built once, not copied by set_index, drop and join, then grown a
        # column at a time
        data = {c: register[c].array for c in cols}
        data.update({c: scores[c].array for c in scores.columns})
        data.update(added)
        band = frailty_band(pd.DataFrame({c: data[c] for c in _BAND_INPUTS if c in data},
                                         index=index))
        data.update({col: band[col].array for col in band.columns})
        return pd.DataFrame(data, index=index)
    reg = register.set_index("patient_id", drop=False).rename_axis("patient_id")
    reg = reg.drop(columns=["patient_id", "nhs_number"], errors="ignore")
    out = reg.join(scores)
    for col, values in added.items():
        out[col] = values
    band = frailty_band(out)
    for col in band.columns:
        out[col] = band[col].array
    return out


_BAND_COLUMNS = ("frailty_band", "frailty_source")
_BAND_INPUTS = ("efi_band", "frailty_recorded", "frailty_recorded_source")
