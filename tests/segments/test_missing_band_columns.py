"""GP-only data has no eFI from deficits: a missing band column is unknown, and said so."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.segments import bridges_to_health

IDX = "2025-04-01"
HFRS = pd.CategoricalDtype(["low", "intermediate", "high"], ordered=True)


def _patients(with_efi: bool) -> pd.DataFrame:
    t = pd.DataFrame({"age": [84, 70, 30], "prior_emergency_admissions": [0, 0, 0],
                      "hfrs_band": pd.Series(["low", "low", "low"], dtype=HFRS)},
                     index=pd.Index([1, 2, 3], name="patient_id"))
    if with_efi:
        t["efi_band"] = pd.Categorical([None, None, None],
                                       categories=["fit", "mild", "moderate", "severe"],
                                       ordered=True)
    return t


# patient 2: moderate frailty code (MODFRAIL_COD, PCD 2026 release) at 70 -> recorded frailty
EVENTS = pd.DataFrame({"patient_id": [2], "code": ["925831000000107"], "code_system": "snomed",
                       "date": pd.to_datetime(["2024-11-01"])})


def test_missing_efi_band_is_unknown_and_warned_not_an_error():
    with pytest.warns(DataQualityWarning) as rec:
        seg = bridges_to_health(_patients(with_efi=False), EVENTS, index_date=IDX)
    msgs = [str(w.message) for w in rec if "efi_band" in str(w.message)]
    assert len(msgs) == 1  # said once, not once per internal step
    assert "band unknown for all 3 patient(s)" in msgs[0] and "frailty_efi" in msgs[0]
    # by hand: 1 is 84 with no frailty evidence and no conditions -> healthy; 2 has a
    # recorded moderate frailty code at 65+ -> frailty_recorded; 3 -> healthy
    assert seg["rule"].tolist() == ["healthy", "frailty_recorded", "healthy"]


def test_the_same_patients_with_an_all_missing_efi_column_segment_identically():
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        without = bridges_to_health(_patients(with_efi=False), EVENTS, index_date=IDX)
        with_col = bridges_to_health(_patients(with_efi=True), EVENTS, index_date=IDX)
    pd.testing.assert_frame_equal(without, with_col)
