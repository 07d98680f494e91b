"""Spec tests for the indices: hand-computed scores for tiny patients.

Expected values are worked from the published weight tables (see
src/pophealth/data/provenance.csv), e.g. Quan 2011: diabetes with complications 1,
mild liver 2, moderate/severe liver 4, malignancy 2, metastatic 6, AIDS/HIV 4.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import CodelistError, ConfigError, DataQualityWarning

IDX = "2025-04-01"


def one_patient_events(*codes):
    return pd.DataFrame({"patient_id": 1, "code": list(codes), "code_system": "icd10"})


REG1 = pd.DataFrame({"patient_id": [1], "age": [80]})


def charlson_of(*codes, **kw):
    return ph.charlson(one_patient_events(*codes), register=REG1, index_date=IDX, **kw).iloc[0]


@pytest.mark.parametrize(
    ("codes", "weights", "expected"),
    [
        (("E119",), "quan2011", 0),          # diabetes uncomplicated 0
        (("E112",), "quan2011", 1),          # diabetes with complications 1
        (("E112", "E119"), "quan2011", 1),   # hierarchy: uncomplicated adds nothing
        (("E112", "E119"), "charlson1987", 2),  # 1987: diabwc 2, diab masked
        (("E119",), "charlson1987", 1),
        (("K703",), "quan2011", 2),          # mild liver
        (("K703", "K721"), "quan2011", 4),   # mild masked by moderate/severe
        (("C50",), "quan2011", 2),
        (("C50", "C78"), "quan2011", 6),     # malignancy masked by metastatic
        (("C50", "C78"), "charlson1987", 6),
        (("B20",), "quan2011", 4),           # Quan 2011 AIDS/HIV = 4 (not 2)
        (("B20",), "charlson1987", 6),
        (("I21", "I50", "F00"), "quan2011", 0 + 2 + 2),
        (("I21", "I50", "F00"), "charlson1987", 3),
        (("J06", "R10"), "quan2011", 0),     # codes in no list
    ],
)
def test_charlson_quan_mapping(codes, weights, expected):
    assert charlson_of(*codes, weights=weights) == expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (("E102",), 0),            # diabetes with complications -1, floored at 0
        (("E102", "C78"), 13),     # -1 + metastatic 14
        (("I50",), 13),            # CHF 13
        (("I21",), 5),             # AMI 5
        (("B20",), 2),             # HIV 2
    ],
)
def test_charlson_shmi(codes, expected):
    assert charlson_of(*codes, weights="shmi", variant="shmi") == expected


def test_hierarchy_off_scores_both_and_apply_hierarchy_clears_flags():
    assert charlson_of("K703", "K721", hierarchy=False) == 6
    flags = ph.flag_conditions(one_patient_events("K703", "K721", "E112", "E119"),
                               "charlson_quan2005_icd10", register=REG1, index_date=IDX)
    assert flags.loc[1, ["mld", "msld", "diab", "diabwc"]].tolist() == [True] * 4
    h = ph.apply_hierarchy(flags, "charlson")
    assert h.loc[1, ["mld", "msld", "diab", "diabwc"]].tolist() == [False, True, False, True]
    assert flags.loc[1, "mld"]  # input untouched


@pytest.mark.parametrize(("age", "points"),
                         [(45, 0), (49, 0), (50, 1), (59, 1), (60, 2), (79, 3), (80, 4), (95, 4)])
def test_charlson_age_points(age, points):
    reg = pd.DataFrame({"patient_id": [1], "age": [age]})
    s = ph.charlson(one_patient_events("I50"), register=reg, index_date=IDX, age_points=True)
    assert s.name == "charlson_quan2011_age"
    assert s.iloc[0] == 2 + points


def test_charlson_age_from_date_of_birth():
    reg = pd.DataFrame({"patient_id": [1, 2],
                        "date_of_birth": pd.to_datetime(["1975-04-01", "1975-04-02"])})
    ev = pd.DataFrame({"patient_id": [1, 2], "code": ["I21", "I21"], "code_system": "icd10"})
    s = ph.charlson(ev, register=reg, index_date=IDX, age_points=True, weights="charlson1987")
    assert s.tolist() == [1 + 1, 1 + 0]  # 50 on the index date vs 49


def test_charlson_needs_register_for_events_and_known_weights():
    with pytest.raises(ConfigError, match="register= and index_date= are required"):
        ph.charlson(one_patient_events("I50"))
    with pytest.raises(ConfigError, match="unknown weights 'vw'; available: charlson1987, quan2011, shmi"):
        charlson_of("I50", weights="vw")
    with pytest.raises(ConfigError, match="age_points=True needs age"):
        ph.charlson(one_patient_events("I50"), register=pd.DataFrame({"patient_id": [1]}),
                    index_date=IDX, age_points=True)


@pytest.mark.parametrize(
    ("codes", "weights", "expected"),
    [
        (("I426",), "van_walraven", 7),    # chf 7 + alcohol 0
        (("I426",), "swiss", 10),          # chf 13 + alcohol -3
        (("I10", "I11"), "van_walraven", 0),
        (("I10",), "swiss", -4),
        (("I10", "I11"), "swiss", -3),     # uncomplicated hypertension masked
        (("C50", "C78"), "van_walraven", 12),  # solid tumour masked by metastatic
        (("C50",), "van_walraven", 4),
        (("F32", "E66"), "van_walraven", -3 - 4),  # depression, obesity
    ],
)
def test_elixhauser(codes, weights, expected):
    s = ph.elixhauser(one_patient_events(*codes), register=REG1, index_date=IDX, weights=weights)
    assert s.name == f"elixhauser_{weights}"
    assert s.iloc[0] == expected


@pytest.mark.parametrize(
    ("codes", "score", "band"),
    [
        (("F001", "F009"), 7.1, "intermediate"),          # one group counts once
        (("F001", "F009", "F00"), 7.1, "intermediate"),
        (("F05", "M79", "F32", "R50"), 4.9, "low"),        # 3.2+1.1+0.5+0.1
        (("W19", "R55"), 5.0, "intermediate"),             # 3.2+1.8: 5 is intermediate
        (("F00", "I69", "W19", "E55"), 15.0, "intermediate"),  # 7.1+3.7+3.2+1.0
        (("F00", "G81", "R29"), 15.1, "high"),             # 7.1+4.4+3.6
        ((), 0.0, "low"),
    ],
)
def test_hfrs(codes, score, band):
    ev = one_patient_events(*codes) if codes else one_patient_events("J06")
    out = ph.hfrs(ev, register=REG1, index_date=IDX, lookback_days=None)
    assert out.loc[1, "hfrs"] == score   # exact: integer arithmetic on weights x 10
    assert out.loc[1, "hfrs_band"] == band
    assert list(out["hfrs_band"].cat.categories) == ["low", "intermediate", "high"]
    assert out["hfrs_band"].cat.ordered


def test_hfrs_default_lookback_is_two_years():
    ev = pd.DataFrame({"patient_id": 1, "code": ["F00", "G81"], "code_system": "icd10",
                       "date": pd.to_datetime(["2024-01-01", "2022-01-01"])})
    assert ph.hfrs(ev, register=REG1, index_date=IDX).loc[1, "hfrs"] == 7.1
    assert ph.hfrs(ev, register=REG1, index_date=IDX, lookback_days=None).loc[1, "hfrs"] == 11.5


def test_hfrs_warns_for_under_75s_and_when_age_unknown():
    reg = pd.DataFrame({"patient_id": [1, 2, 3], "age": [74, 75, 60]})
    ev = pd.DataFrame({"patient_id": [1], "code": ["F00"], "code_system": "icd10"})
    with pytest.warns(DataQualityWarning, match=r"2 of 3 patient\(s\) are under 75"):
        ph.hfrs(ev, register=reg, index_date=IDX, lookback_days=None)
    with pytest.warns(DataQualityWarning, match="ages not supplied"):
        ph.hfrs(ev, register=reg[["patient_id"]], index_date=IDX, lookback_days=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ph.hfrs(ev, register=reg.assign(age=[80, 90, 75]), index_date=IDX, lookback_days=None)
    with pytest.raises(ph.SchemaError, match="pass lookback_days=None"):
        ph.hfrs(ev, register=reg, index_date=IDX)


EFI_NAMES = ph.load_index("efi").condition_names


@pytest.mark.parametrize(
    ("k", "band"),
    [(0, "fit"), (4, "fit"), (5, "mild"), (8, "mild"), (9, "moderate"), (12, "moderate"),
     (13, "severe"), (36, "severe")],
)
def test_efi_bands_on_counts(k, band):
    f = pd.DataFrame({n: [i < k] for i, n in enumerate(EFI_NAMES)})
    out = ph.efi(f)
    assert len(EFI_NAMES) == 36
    assert out.loc[0, "efi_deficits"] == k
    assert out.loc[0, "efi"] == pytest.approx(k / 36)
    assert out.loc[0, "efi_band"] == band


def test_efi_missing_deficits():
    f = pd.DataFrame({n: [True] for n in EFI_NAMES if n != "polypharmacy"})
    with pytest.raises(CodelistError, match="lack 1 condition column"):
        ph.efi(f)
    with pytest.warns(DataQualityWarning, match="polypharmacy"):
        out = ph.efi(f, missing_deficits="absent")
    assert out.loc[0, "efi_deficits"] == 35


CMS_NAMES = ph.load_index("cms").condition_names


@pytest.mark.parametrize(
    ("present", "expected"),
    [(("dementia", "copd"), 3.96), (("hypertension",), 0.08), ((), 0.0),
     (CMS_NAMES, 16.33), (("asthma", "hearing_loss", "irritable_bowel_syndrome"), 0.49)],
)
def test_cambridge_general(present, expected):
    f = pd.DataFrame({n: [n in present] for n in CMS_NAMES})
    assert ph.cambridge_score(f).iloc[0] == pytest.approx(expected, abs=1e-9)


def test_cambridge_mortality_weights():
    f = pd.DataFrame({n: [n in ("dementia", "asthma")] for n in CMS_NAMES})
    assert ph.cambridge_score(f, weights="mortality").iloc[0] == pytest.approx(124.42 - 2.73)


def test_condition_count_and_multimorbidity():
    f = pd.DataFrame({"mi": [True, True, False, True], "chf": [True, False, False, False],
                      "cpd": [True, False, False, True], "diab": [False, False, False, True]})
    out = ph.multimorbidity(f, body_systems="charlson")
    assert out["n_conditions"].tolist() == [3, 1, 0, 3]
    assert out["multimorbidity"].tolist() == [True, False, False, True]
    # mi/chf circulatory, cpd respiratory, diab endocrine
    assert out["n_body_systems"].tolist() == [2, 1, 0, 3]
    assert out["complex_multimorbidity"].tolist() == [False, False, False, True]
    assert ph.condition_count(f).tolist() == [3, 1, 0, 3]
    no_map = ph.multimorbidity(f)
    assert no_map["complex_multimorbidity"].tolist() == [True, False, False, True]


def test_scores_are_indexed_like_the_register_and_named():
    reg = pd.DataFrame({"patient_id": ["c", "a", "b"], "age": [80, 80, 80]})
    ev = pd.DataFrame({"patient_id": ["a"], "code": ["I50"], "code_system": "icd10"})
    s = ph.charlson(ev, register=reg, index_date=IDX)
    assert s.index.tolist() == ["c", "a", "b"] and s.index.name == "patient_id"
    assert s.name == "charlson_quan2011"
    assert s.tolist() == [0, 2, 0]
    assert s.dtype == np.int64


def test_flags_with_wrong_dtype_are_rejected():
    f = pd.DataFrame({c: [0] for c in ph.load_codelist("charlson_quan2005_icd10").conditions})
    with pytest.raises(CodelistError, match="expected bool"):
        ph.charlson(f)
