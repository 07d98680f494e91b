"""Core: coded events to condition flags, indices, the patient table and the batch function.

Knows no job, engine, plot or analysis; imports only :mod:`pophealth.contracts`.

* :mod:`~pophealth.core.codes` -- code normalisation and validity per code system.
* :mod:`~pophealth.core.codelists` -- shipped and user code lists (``load_codelist``).
* :mod:`~pophealth.core.conditions` -- ``flag_conditions``: events to a patient x
  condition bool table in register order (the vectorised core).
* :mod:`~pophealth.core.indices` -- Charlson, Elixhauser, HFRS, eFI, Cambridge score,
  condition counts and multimorbidity.
* :mod:`~pophealth.core.batch` -- ``score_patients``: every index for a batch of patients
  (the one pure function that streaming and Spark also call).
* :mod:`~pophealth.core.patients` -- ``patient_table``: register + scores + prior use.
* :mod:`~pophealth.core.ages` -- ages on an index date.
* :mod:`~pophealth.core.arrays` -- array helpers (factorizing, patient positions).
"""

from pophealth.core.ages import age_at
from pophealth.core.batch import DEFAULT_CODELISTS, score_patients
from pophealth.core.codelists import Codelist, list_codelists, load_codelist
from pophealth.core.conditions import FlagReport, flag_conditions, register_ids
from pophealth.core.indices import (
    apply_hierarchy,
    cambridge_score,
    charlson,
    condition_count,
    efi,
    elixhauser,
    hfrs,
    load_index,
    multimorbidity,
)
from pophealth.core.patients import patient_table

__all__ = [
    "DEFAULT_CODELISTS",
    "Codelist",
    "FlagReport",
    "age_at",
    "apply_hierarchy",
    "cambridge_score",
    "charlson",
    "condition_count",
    "efi",
    "elixhauser",
    "flag_conditions",
    "hfrs",
    "list_codelists",
    "load_codelist",
    "load_index",
    "multimorbidity",
    "patient_table",
    "register_ids",
    "score_patients",
]
