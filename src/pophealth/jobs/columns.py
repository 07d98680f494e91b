"""The caseload file contract: the only columns that may ever appear in a caseload file.

Every caseload (and per-practice) file carries :data:`CASELOAD_COLUMNS`. A job may add
columns with ``[output] include_columns``, but only from :data:`INCLUDABLE_COLUMNS` - an
allow-list of clinical and derived columns, never an identifier or an internal column
(``_pseudo_source`` holds the real NHS number). Anything else is a
:class:`~pophealth.contracts.exceptions.ConfigError` (CLI exit 78), raised by
:func:`check_include_columns` before any data is read.

Includable columns
------------------
* demographics: ``age``, ``age_band``, ``sex``, ``imd_decile``, ``ethnicity``
* index scores and bands: ``charlson_quan2011``, ``elixhauser_van_walraven``, ``hfrs``,
  ``hfrs_band``, ``efi``, ``efi_deficits``, ``efi_band``, ``cms_general``,
  ``n_conditions``, ``multimorbidity``, ``n_body_systems``, ``complex_multimorbidity``
* utilisation in the 12 months to the index date: ``prior_cost``,
  ``prior_emergency_admissions``, ``prior_ae_attendances``
* ``segment_rule`` (the segmentation rule that placed the patient)
* recorded frailty: ``frailty_recorded`` (latest MILDFRAIL/MODFRAIL/SEVFRAIL band),
  ``frailty_band`` and ``frailty_source`` (recorded first, else the eFI band)

Not includable, deliberately: identifiers (``patient_id``, ``nhs_number``, names,
addresses), quasi-identifiers (``date_of_birth``, ``date_of_death``, ``lsoa``,
``registered_from``/``registered_to``, postcode) and any column starting with ``_``.
A column on the list but absent from a job's patient table (e.g. ``efi`` without an eFI
code list) is a ``ConfigError`` when the job publishes.
"""

from __future__ import annotations

from collections.abc import Iterable

from pophealth.contracts.exceptions import ConfigError

__all__ = ["CASELOAD_COLUMNS", "INCLUDABLE_COLUMNS", "check_include_columns"]

#: Columns of every caseload file, in order (``risk``/``tier``/``segment`` when computed).
CASELOAD_COLUMNS = ("pseudo_id", "pcn", "practice", "rank", "risk", "tier", "segment", "status",
                    "rule", "reasons", "index_date", "run_id")

#: Columns a job may add to caseload files with ``[output] include_columns``.
INCLUDABLE_COLUMNS = frozenset({
    "age", "age_band", "sex", "imd_decile", "ethnicity",
    "charlson_quan2011", "elixhauser_van_walraven", "hfrs", "hfrs_band", "efi",
    "efi_deficits", "efi_band", "cms_general", "n_conditions", "multimorbidity",
    "n_body_systems", "complex_multimorbidity",
    "prior_cost", "prior_emergency_admissions", "prior_ae_attendances",
    "segment_rule",
    "frailty_recorded", "frailty_band", "frailty_source",
})


def check_include_columns(include: Iterable) -> tuple:
    """Refuse ``include_columns`` outside :data:`INCLUDABLE_COLUMNS` (or repeated).

    Parameters
    ----------
    include : iterable of str

    Returns
    -------
    tuple
        The columns, in the given order.

    Raises
    ------
    ConfigError
        Naming the refused column(s) - column names from the config, never data values.

    Examples
    --------
    >>> from pophealth.jobs.columns import check_include_columns
    >>> check_include_columns(["age", "efi_band"])
    ('age', 'efi_band')
    >>> check_include_columns(["age", "_pseudo_source"])
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: [output] include_columns: ['_pseudo_source'] not allowed in caseload files (rule 'caseload_allow_list'; allowed: age, age_band, ...)
    """
    cols = tuple(include)
    bad = sorted({str(c) for c in cols if not isinstance(c, str) or c not in INCLUDABLE_COLUMNS})
    if bad:
        raise ConfigError(f"[output] include_columns: {bad} not allowed in caseload files "
                          f"(rule 'caseload_allow_list'; allowed: "
                          f"{', '.join(sorted(INCLUDABLE_COLUMNS))})")
    if len(set(cols)) != len(cols):
        raise ConfigError("[output] include_columns: a column is listed twice "
                          "(rule 'unique_columns')")
    return cols
