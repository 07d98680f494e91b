"""GP (SNOMED CT) data through Bridges to Health, and recorded frailty (issue 12 items 1-2).

Expected segments are derived by hand from data/segments/bridges_to_health_rules.csv
(first match wins): dementia -> rule ``dementia`` (Frailty and dementia); heart failure
with >= 1 emergency admission in 12 months -> ``organ_failure_with_emergency_admission``
(Organ failure), without one -> ``long_term_condition``; COPD without admission and type
2 diabetes -> ``long_term_condition``; nothing recorded -> ``healthy``. Recorded
frailty: ``frailty_recorded >= "moderate"`` at 65+. Codes: DEM_COD 52448006, HF_COD
84114007, COPD_COD 13645005, DM_COD 44054006 (releases in tests/core/test_snomed_lists.py);
MILDFRAIL_COD 925791000000100, MODFRAIL_COD 925831000000107, SEVFRAIL_COD 925861000000102.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from pophealth.contracts.exceptions import DataQualityWarning, SchemaError
from pophealth.core.frailty import recorded_frailty
from pophealth.core.patients import patient_table
from pophealth.segments import bridges_to_health

MILD, MOD, SEV = "925791000000100", "925831000000107", "925861000000102"
BANDS = dict(categories=["fit", "mild", "moderate", "severe"], ordered=True)
IDX = "2025-04-01"


def patients(ages, admissions):
    n = len(ages)
    return pd.DataFrame({
        "age": ages, "prior_emergency_admissions": admissions,
        "efi_band": pd.Categorical(["fit"] * n, **BANDS),
        "hfrs_band": pd.Categorical(["low"] * n, categories=["low", "intermediate", "high"],
                                    ordered=True)},
        index=pd.Index(range(1, n + 1), name="patient_id"))


def snomed(rows):
    pid, code, date = zip(*rows, strict=True)
    return pd.DataFrame({"patient_id": pid, "code": code, "code_system": "snomed",
                         "date": pd.to_datetime(list(date))})


def test_four_new_user_patients_segment_on_gp_data_alone():
    pts = patients([84, 70, 66, 55, 72, 40], [0, 1, 0, 0, 0, 0])
    ev = snomed([(1, "52448006", "2023-05-01"), (2, "84114007", "2023-05-01"),
                 (3, "13645005", "2023-05-01"), (4, "44054006", "2023-05-01"),
                 (5, "84114007", "2023-05-01")])
    out = bridges_to_health(pts, ev, index_date=IDX)
    assert out["rule"].tolist() == [
        "dementia", "organ_failure_with_emergency_admission", "long_term_condition",
        "long_term_condition", "long_term_condition", "healthy"]
    assert out["segment"].astype(str).tolist()[:2] == [
        "Frailty and dementia (long decline)", "Organ failure (limited reserve)"]


def test_mixed_gp_and_hospital_rows_give_the_union():
    pts = patients([70, 70, 70], [1, 1, 1])
    ev = pd.DataFrame({"patient_id": [1, 2, 3], "code": ["84114007", "I50.0", "44054006"],
                       "code_system": ["snomed", "icd10", "snomed"],
                       "date": pd.to_datetime(["2023-05-01"] * 3)})
    out = bridges_to_health(pts, ev, index_date=IDX)
    assert out["rule"].tolist() == ["organ_failure_with_emergency_admission"] * 2 + [
        "long_term_condition"]


def test_recorded_frailty_codes_give_bands_latest_wins():
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5, 6]})
    ev = snomed([(1, MILD, "2024-01-01"),
                 (2, SEV, "2022-01-01"), (2, MILD, "2024-01-01"),  # newer mild wins
                 (3, MILD, "2022-01-01"), (3, SEV, "2024-01-01"),
                 (4, MOD, "2024-01-01"), (4, SEV, "2025-06-01"),  # after index date
                 (5, MILD, "2024-03-03"), (5, MOD, "2024-03-03")])  # same day: worse
    out = recorded_frailty(ev, register=reg, index_date=IDX)
    assert out["frailty_recorded"].astype(object).where(
        out["frailty_recorded"].notna(), None).tolist() == [
        "mild", "mild", "severe", "moderate", "moderate", None]
    assert out["frailty_recorded_date"].iloc[3] == pd.Timestamp("2024-01-01")


def test_recorded_frailty_places_65_plus_in_frailty_segment():
    pts = patients([80, 60, 80, 80], [0, 0, 0, 0])
    ev = snomed([(1, SEV, "2024-01-01"), (2, SEV, "2024-01-01"),
                 (3, SEV, "2022-01-01"), (3, MILD, "2024-01-01"), (4, MOD, "2024-01-01")])
    out = bridges_to_health(pts, ev, index_date=IDX)
    assert out["rule"].tolist() == ["frailty_recorded", "healthy", "healthy", "frailty_recorded"]


def test_patient_table_frailty_band_and_source():
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4], "age": [80, 80, 80, 80],
                        "efi_recorded": [None, 0.30, 0.10, None]})
    scores = pd.DataFrame({"efi_band": pd.Categorical(["fit", "fit", "severe", None], **BANDS)},
                          index=pd.Index([1, 2, 3, 4], name="patient_id"))
    act = pd.DataFrame({"patient_id": [1], "kind": ["gp"], "cost": [0.0],
                        "date": pd.to_datetime(["2025-01-01"])})
    ev = snomed([(1, SEV, "2024-01-01")])
    t = patient_table(reg, scores, act, index_date=IDX, events=ev)
    assert t["frailty_band"].astype(str).tolist() == ["severe", "moderate", "fit", "nan"]
    assert t["frailty_source"].astype(object).where(t["frailty_source"].notna(), None).tolist() \
        == ["recorded_code", "recorded_efi", "recorded_efi", None]
    assert t["frailty_band"].cat.ordered


def test_efi_value_cut_points_boundaries():
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5, 6],
                        "efi_recorded": [0.12, 0.1201, 0.24, 0.2401, 0.36, 0.3601]})
    out = recorded_frailty(None, register=reg, index_date=IDX)
    assert out["frailty_recorded"].astype(str).tolist() == [
        "fit", "mild", "mild", "moderate", "moderate", "severe"]


def test_efi_value_out_of_range_names_column_count_positions_not_values():
    reg = pd.DataFrame({"patient_id": [1, 2, 3], "efi_recorded": [0.5, 36.0, 7.77]})
    with pytest.raises(SchemaError) as e:
        recorded_frailty(None, register=reg, index_date=IDX)
    msg = str(e.value)
    assert "efi_recorded" in msg and "2 row(s)" in msg and "[1, 2]" in msg
    assert "36" not in msg and "7.77" not in msg


def test_undated_frailty_codes_are_counted_not_used():
    reg = pd.DataFrame({"patient_id": [1, 2]})
    ev = pd.DataFrame({"patient_id": [1, 2], "code": [SEV, MOD], "code_system": "snomed",
                       "date": pd.to_datetime([None, "2024-01-01"])})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = recorded_frailty(ev, register=reg, index_date=IDX)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    assert len(msgs) == 1 and "1 frailty code row(s) without a 'date'" in msgs[0]
    assert SEV not in msgs[0]
    assert out["frailty_recorded"].isna().tolist() == [True, False]
