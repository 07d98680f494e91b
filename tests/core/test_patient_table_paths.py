"""The patient table, by hand, however its scores arrive.

:func:`pophealth.core.patients.patient_table` builds the table in one go when the scores
are the register's patients in register order (the pipeline's case) and joins them
otherwise; both must give the same table. Expected values are worked out by hand below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pophealth.core.patients import frailty_band, patient_table

IDX = "2025-04-01"
SEV = "925861000000102"  # SEVFRAIL_COD (pcd_snomed)
BANDS = pd.CategoricalDtype(["fit", "mild", "moderate", "severe"], ordered=True)


def _inputs(ids):
    reg = pd.DataFrame({"patient_id": ids, "nhs_number": ["9990000018", "9990000026",
                                                          "9990000034"],
                        "age": [81, 45, 70],
                        "practice": pd.Categorical(["P1", "P2", "P1"]),
                        "efi_recorded": [np.nan, np.nan, 0.30]})
    scores = pd.DataFrame({"charlson_quan2011": [3, 0, 1],
                           "efi_band": pd.Categorical(["mild", None, "fit"], dtype=BANDS)},
                          index=pd.Index(ids, name="patient_id"))
    # patient 1: 2 emergency admissions (one on the index date) + one 366 days before
    # (outside); patient 3: an A&E attendance; an unknown patient; one after the index date
    act = pd.DataFrame({
        "patient_id": [ids[0], ids[0], ids[0], ids[2], 999, ids[1]],
        "date": pd.to_datetime(["2025-04-01", "2024-04-02", "2024-03-31", "2025-01-01",
                                "2025-01-01", "2025-04-02"]),
        "kind": ["emergency_admission", "emergency_admission", "emergency_admission", "ae",
                 "ae", "emergency_admission"],
        "cost": [1000.0, 500.0, 7.0, 150.0, 99.0, 3000.0]})
    ev = pd.DataFrame({"patient_id": [ids[0]], "code": [SEV], "code_system": "snomed",
                       "date": pd.to_datetime(["2024-06-01"])})
    return reg, scores, act, ev


def _expected(ids) -> pd.DataFrame:
    return pd.DataFrame({
        "age": [81, 45, 70], "practice": pd.Categorical(["P1", "P2", "P1"]),
        "efi_recorded": [np.nan, np.nan, 0.30],
        "charlson_quan2011": [3, 0, 1],
        "efi_band": pd.Categorical(["mild", None, "fit"], dtype=BANDS),
        "prior_cost": [1500.0, 0.0, 150.0],
        "prior_emergency_admissions": np.array([2, 0, 0], dtype=np.int64),
        "prior_ae_attendances": np.array([0, 0, 1], dtype=np.int64),
        "frailty_recorded": pd.Categorical(["severe", None, "moderate"], dtype=BANDS),
        "frailty_recorded_date": pd.to_datetime(["2024-06-01", None, None]),
        "frailty_recorded_source": pd.Categorical(["code", None, "efi_value"],
                                                  categories=["code", "efi_value"]),
        "frailty_band": pd.Categorical(["severe", None, "moderate"], dtype=BANDS),
        "frailty_source": pd.Categorical(["recorded_code", None, "recorded_efi"],
                                         categories=["recorded_code", "recorded_efi",
                                                     "efi_deficits"]),
    }, index=pd.Index(ids, name="patient_id"))


@pytest.mark.parametrize("ids", [[1, 2, 3], [30, 10, 20]])
@pytest.mark.parametrize("order", ["register", "shuffled_with_extra"])
def test_patient_table_by_hand_whatever_the_scores_order(ids, order):
    reg, scores, act, ev = _inputs(ids)
    if order == "shuffled_with_extra":  # scores of another patient too, in another order
        extra = pd.DataFrame({"charlson_quan2011": [9],
                              "efi_band": pd.Categorical(["severe"], dtype=BANDS)},
                             index=pd.Index([777], name="patient_id"))
        scores = pd.concat([scores.iloc[[2, 0, 1]], extra])
    out = patient_table(reg, scores, act, index_date=IDX, events=ev)
    pd.testing.assert_frame_equal(out, _expected(ids), check_exact=True)


def test_string_patient_ids():
    ids = ["a", "b", "c"]
    reg, scores, act, ev = _inputs(ids)
    act["patient_id"] = act["patient_id"].astype(object)
    out = patient_table(reg, scores, act, index_date=IDX, events=ev)
    pd.testing.assert_frame_equal(out, _expected(ids), check_exact=True)


def test_a_register_column_named_like_an_added_one_is_replaced_in_place():
    reg, scores, act, ev = _inputs([1, 2, 3])
    reg.insert(3, "prior_cost", [-1.0, -1.0, -1.0])  # after age
    out = patient_table(reg, scores, act, index_date=IDX, events=ev)
    assert list(out.columns[:3]) == ["age", "prior_cost", "practice"]
    assert out["prior_cost"].tolist() == [1500.0, 0.0, 150.0]


@pytest.mark.parametrize("as_category", [False, True])
def test_frailty_band_source_from_object_or_categorical(as_category):
    how = pd.Series(["efi_value", "code", None, None], dtype=object)
    if as_category:
        how = how.astype("category")
    t = pd.DataFrame({"frailty_recorded": pd.Categorical(["mild", "severe", None, None],
                                                         dtype=BANDS),
                      "frailty_recorded_source": how,
                      "efi_band": pd.Categorical(["fit", "fit", "moderate", None],
                                                 dtype=BANDS)})
    out = frailty_band(t)
    assert out["frailty_band"].astype(object).where(out["frailty_band"].notna(), None).tolist() \
        == ["mild", "severe", "moderate", None]
    assert out["frailty_source"].astype(object).where(out["frailty_source"].notna(),
                                                      None).tolist() == [
        "recorded_efi", "recorded_code", "efi_deficits", None]
