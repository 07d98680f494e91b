"""A rule set's lists are judged together against the events' code systems.

The Bridges to Health rules read an ICD-10 list and a SNOMED CT list. On mixed GP + hospital
events each list alone sees most rows in the other's system; the code-system rule must judge
the set, not each list (before, every mixed population got one warning per list).
"""

from __future__ import annotations

import warnings

import pandas as pd

from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.segments import segment_flags

REG = pd.DataFrame({"patient_id": [1, 2, 3, 4]})
DATES = pd.to_datetime(["2025-01-01", "2025-01-02", "2025-02-01", "2025-03-01"])
# heart failure: I50 (ICD-10) for patient 1, 84114007 (SNOMED CT) for patient 2
MIXED = pd.DataFrame({"patient_id": [1, 2, 3, 4],
                      "code": ["I50", "84114007", "J45", "195967001"],
                      "code_system": ["icd10", "snomed", "icd10", "snomed"], "date": DATES})


def _notes(events):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flags = segment_flags(events, register=REG, index_date="2025-04-01")
    return flags, [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]


def test_half_icd10_half_snomed_is_covered_by_the_set_and_says_nothing():
    flags, notes = _notes(MIXED)
    # each list alone sees 2 of 4 rows (50 % >= 20 %) in a system it does not cover
    assert [n for n in notes if "code system" in n] == []
    # both lists still count: heart failure from ICD-10 (1) and from SNOMED CT (2)
    assert flags.loc[[1, 2, 3, 4], "heart_failure"].tolist() == [True, True, False, False]


def test_rows_no_list_of_the_set_covers_give_one_note_with_the_set_counts():
    other = pd.DataFrame({"patient_id": [3, 4], "code": ["X1", "X2"],
                          "code_system": "read2", "date": DATES[:2]})
    events = pd.concat([MIXED, other], ignore_index=True)
    _, notes = _notes(events)
    system_notes = [n for n in notes if "code system" in n]
    # by hand: 2 of 6 rows are Read v2 (33 % >= 20 %); ICD-10 and SNOMED CT cover 4 rows
    assert len(system_notes) == 1
    assert system_notes[0].startswith("flag_conditions(b2h_icd10+b2h_snomed): 2 of 6 event row(s)")
    assert "(readv2 2)" in system_notes[0]
    assert "covers icd10, snomed (4 row(s)" in system_notes[0]
