"""Readers for real extract shapes (issue 12, item 4): SUS+ APC/OP/ECDS and GP extracts.

Expected values are worked by hand from the tiny frames written in each test and from the
NHS Data Dictionary code tables (Admission Method; Attended or Did Not Attend; Sex)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import DataQualityWarning, SchemaError
from pophealth.engines import read_ecds, read_gp_events, read_gp_register, read_sus_apc, read_sus_op

EXTRACTS = Path(__file__).resolve().parents[2] / "synthetic_data" / "extracts"
P1, P2 = "9990000018", "9990000026"


def _apc(**cols):
    base = {"NHS_NUMBER": [P1], "ADMIDATE": ["2025-01-10"], "ADMIMETH": ["21"],
            "DIAG_4_01": ["I21.0"]}
    base.update(cols)
    return pd.DataFrame(base)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return fn(*args, **kw)


# ----------------------------------------------------------------------------- admission method

EMERGENCY = ["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"]
ELECTIVE = ["11", "12", "13"]
OTHER = ["31", "32", "81", "82", "83"]


@pytest.mark.parametrize(("code", "kind"), [(c, "emergency_admission") for c in EMERGENCY]
                         + [(c, "elective_admission") for c in ELECTIVE]
                         + [(c, "other") for c in OTHER])
def test_each_admission_method_code_gives_its_kind(code, kind):
    out = _quiet(read_sus_apc, _apc(ADMIMETH=[code]))
    assert out.activity["kind"].tolist() == [kind]
    assert "unmapped_admission_method" not in out.report.counts


def test_lower_case_and_integer_admission_methods_are_read():
    assert _quiet(read_sus_apc, _apc(ADMIMETH=["2a"])).activity["kind"].tolist() == [
        "emergency_admission"]
    assert _quiet(read_sus_apc, _apc(ADMIMETH=[21])).activity["kind"].tolist() == [
        "emergency_admission"]


def test_unknown_admission_methods_are_counted_with_positions_and_warned():
    frame = pd.DataFrame({"NHS_NUMBER": [P1, P2, "9990000034"],
                          "ADMIDATE": ["2025-01-10", "2025-01-11", "2025-01-12"],
                          "ADMIMETH": ["99", "21", None], "DIAG_4_01": ["I21", "I21", "I21"]})
    with pytest.warns(DataQualityWarning, match=r"unmapped_admission_method: 2 \(first "
                      r"positions \[0, 2\]\)"):
        out = read_sus_apc(frame)
    assert out.report.counts["unmapped_admission_method"] == 2
    assert out.activity["kind"].tolist() == ["other", "emergency_admission", "other"]


# ----------------------------------------------------------------------------- wide -> long, codes

def test_wide_diagnoses_become_long_events_in_row_then_column_order():
    frame = pd.DataFrame({"NHS_NUMBER": [P1, P2], "ADMIDATE": ["2025-01-10", "2025-02-01"],
                          "ADMIMETH": ["21", "11"], "DIAG_4_01": ["I21.0", "J44.1"],
                          "DIAG_4_02": [None, "E11.9"], "DIAG_4_03": ["I50X", ""]})
    out = _quiet(read_sus_apc, frame)
    ev = out.events
    assert ev["patient_id"].tolist() == [P1, P1, P2, P2]
    assert ev["code"].tolist() == ["I210", "I50", "J441", "E119"]
    assert (ev["code_system"] == "icd10").all() and (ev["setting"] == "inpatient").all()
    assert ev["date"].tolist() == [pd.Timestamp("2025-01-10")] * 2 + [pd.Timestamp("2025-02-01")] * 2
    assert out.report.counts["empty_diagnosis_cells"] == 2  # (0, DIAG_4_02), (1, DIAG_4_03)
    ph.validate_events(ev)


@pytest.mark.parametrize(("raw", "clean"), [("I21.0", "I210"), ("I210", "I210"), ("I21X", "I21"),
                                            ("i21.0 ", "I210"), ("G30.9D", "G309"),
                                            ("F00.1A", "F001"), ("I10X-", "I10"),
                                            ("M16.91", "M1691")])
def test_icd10_dotted_filler_and_dagger_forms(raw, clean):
    out = _quiet(read_sus_apc, _apc(DIAG_4_01=[raw]))
    assert out.events["code"].tolist() == [clean]


@pytest.mark.parametrize("raw", ["12345", "I2", "II21", "I21.0.0.0"])
def test_invalid_icd10_codes_are_excluded_and_counted(raw):
    with pytest.warns(DataQualityWarning, match="invalid_diagnosis_code: 1"):
        out = read_sus_apc(_apc(DIAG_4_01=["I50"], DIAG_4_02=[raw]))
    assert out.events["code"].tolist() == ["I50"]
    assert out.report.positions["invalid_diagnosis_code"] == [0]


def test_primary_secondary_diagnosis_names_are_found_in_numeric_order():
    frame = pd.DataFrame({"NHS_NUMBER": [P1], "ADMIDATE": ["2025-01-10"], "ADMIMETH": ["21"],
                          "SECONDARY_DIAGNOSIS_10": ["N18.5"], "PRIMARY_DIAGNOSIS": ["I21.0"],
                          "SECONDARY_DIAGNOSIS_2": ["E11.9"]})
    out = _quiet(read_sus_apc, frame)
    assert out.events["code"].tolist() == ["I210", "E119", "N185"]


def test_opcs_procedures_are_opcs4_events():
    frame = _apc(PROC_OPCS_01=["K40.1"], PROC_OPCS_02=["X62.2"], PROC_OPCS_03=["-"],
                 PROC_OPCS_04=["K4"])
    with pytest.warns(DataQualityWarning, match="invalid_procedure_code: 1"):
        out = read_sus_apc(frame)
    proc = out.events[out.events["code_system"] == "opcs4"]
    assert proc["code"].tolist() == ["K401", "X622"]
    assert out.report.counts["empty_procedure_cells"] == 1  # the HES "-" filler


# ----------------------------------------------------------------------------- spells

def _spells():
    # spell A: two episodes listed out of order; spell B: one episode; keys by SPELL_ID
    return pd.DataFrame({
        "NHS_NUMBER": [P1, P1, P1],
        "SPELL_ID": ["A", "A", "B"],
        "EPIORDER": ["2", "1", "1"],
        "ADMIDATE": ["2025-01-10", "2025-01-10", "2025-03-01"],
        "EPISTART": ["2025-01-13", "2025-01-10", "2025-03-01"],
        "DISDATE": ["2025-01-17", None, "2025-03-01"],
        "ADMIMETH": ["21", "21", "12"],
        "DIAG_4_01": ["I50.0", "I21.0", "K35.8"],
        "COST": ["300", "1200", "800"]})


def test_one_activity_row_per_spell_with_spell_length_of_stay_and_summed_cost():
    out = read_sus_apc(_spells(), columns={"cost": "COST"})
    act = out.activity
    assert act["date"].tolist() == [pd.Timestamp("2025-01-10"), pd.Timestamp("2025-03-01")]
    assert act["kind"].tolist() == ["emergency_admission", "elective_admission"]
    assert act["length_of_stay"].tolist() == [7.0, 0.0]  # 10 -> 17 Jan; day case
    assert act["cost"].tolist() == [1500.0, 800.0]
    ph.validate_activity(act)


def test_diagnoses_come_from_every_episode_dated_by_episode_start():
    out = read_sus_apc(_spells(), columns={"cost": "COST"})
    assert out.events["code"].tolist() == ["I500", "I210", "K358"]
    assert out.events["date"].tolist() == [pd.Timestamp("2025-01-13"), pd.Timestamp("2025-01-10"),
                                           pd.Timestamp("2025-03-01")]


def test_first_episode_decides_the_admission_method():
    frame = _spells().assign(ADMIMETH=["11", "2B", "12"])  # EPIORDER 1 (row 1) says 2B
    out = _quiet(read_sus_apc, frame)
    assert out.activity["kind"].tolist() == ["emergency_admission", "elective_admission"]


def test_without_spell_id_the_key_is_patient_admission_date_and_provider():
    frame = _spells().drop(columns="SPELL_ID").assign(PROCODE=["RXX", "RXX", "RXX"])
    assert len(_quiet(read_sus_apc, frame).activity) == 2
    frame = frame.assign(PROCODE=["RYY", "RXX", "RXX"])  # a transfer: two providers
    assert len(_quiet(read_sus_apc, frame).activity) == 3


def test_unmapped_cost_is_zero_but_counted_and_warned():
    with pytest.warns(DataQualityWarning, match="cost_not_mapped: 2"):
        out = read_sus_apc(_spells())
    assert out.activity["cost"].tolist() == [0.0, 0.0]


def test_rows_without_patient_id_are_excluded_and_counted():
    frame = _spells().assign(NHS_NUMBER=[P1, " ", None])
    with pytest.warns(DataQualityWarning, match=r"missing_patient_id: 2 \(first positions \[1, 2\]\)"):
        out = read_sus_apc(frame, columns={"cost": "COST"})
    assert out.events["code"].tolist() == ["I500"]
    assert len(out.activity) == 1


def test_spell_without_discharge_has_missing_stay_and_is_counted():
    frame = _spells().assign(DISDATE=[None, None, "2025-03-01"])
    with pytest.warns(DataQualityWarning, match="spell_without_discharge_date: 1"):
        out = read_sus_apc(frame, columns={"cost": "COST"})
    assert np.isnan(out.activity["length_of_stay"].iloc[0])


# ----------------------------------------------------------------------------- dates, mapping

def test_day_first_dates_are_an_error_naming_column_rule_and_positions_not_values():
    frame = _apc(NHS_NUMBER=[P1, P2], ADMIDATE=["2025-01-10", "01/04/2025"], ADMIMETH=["21"] * 2,
                 DIAG_4_01=["I21"] * 2)
    with pytest.raises(SchemaError) as info:
        read_sus_apc(frame)
    msg = str(info.value)
    assert "'ADMIDATE'" in msg and "iso_8601_date" in msg and "first positions [1]" in msg
    assert "01/04/2025" not in msg and P2 not in msg


def test_impossible_iso_date_is_an_error():
    with pytest.raises(SchemaError, match="valid_date"):
        read_sus_apc(_apc(ADMIDATE=["2025-02-30"]))


def test_column_mapping_and_missing_mapped_column():
    frame = _apc().rename(columns={"NHS_NUMBER": "pseudo_id", "ADMIMETH": "admission_method"})
    out = _quiet(read_sus_apc, frame, columns={"patient_id": "pseudo_id",
                                               "admission_method": "admission_method"})
    assert out.activity["kind"].tolist() == ["emergency_admission"]
    with pytest.raises(SchemaError, match="patient_id='NHS_NUMBER'"):
        read_sus_apc(frame)


# ----------------------------------------------------------------------------- OP and ECDS

def test_outpatients_keep_attended_and_count_the_rest():
    frame = pd.DataFrame({"NHS_NUMBER": [P1] * 5, "ATTENDED": ["5", "6", "3", "2", "8"],
                          "APPTDATE": [f"2025-01-0{d}" for d in range(1, 6)],
                          "DIAG_4_01": ["J44.9"] * 5})
    with pytest.warns(DataQualityWarning) as rec:
        out = read_sus_op(frame)
    assert out.activity["kind"].tolist() == ["outpatient", "outpatient"]
    assert out.events["setting"].tolist() == ["outpatient", "outpatient"]
    assert out.report.counts["not_attended"] == 2 and out.report.counts["unmapped_attendance"] == 1
    assert "unmapped_attendance: 1 (first positions [4])" in str(rec[0].message)


def test_ecds_snomed_diagnoses_and_ae_activity():
    frame = pd.DataFrame({"NHS_NUMBER": [P1, P2], "ARRIVAL_DATE": ["2025-03-01", "2025-03-02"],
                          "EC_DIAGNOSIS_01": ["195967001", "0123456"], "TARIFF": ["180", "x"]})
    with pytest.warns(DataQualityWarning, match="invalid_diagnosis_code: 1.*invalid_cost: 1"):
        out = read_ecds(frame, columns={"cost": "TARIFF"})
    assert out.events["code"].tolist() == ["195967001"]
    assert out.activity["kind"].tolist() == ["ae", "ae"]
    assert out.activity["cost"].tolist() == [180.0, 0.0]


# ----------------------------------------------------------------------------- GP

def test_gp_events_column_mapping_and_system_aliases():
    frame = pd.DataFrame({"id": [P1, P1, P2, None], "c": ["52448006", "I50.0", "abc", "1"],
                          "sys": ["SNOMED CT", "ICD-10", "SCT", "SNOMED"],
                          "d": ["2020-01-01", "2021-01-01", "2022-01-01", "2022-01-01"]})
    with pytest.warns(DataQualityWarning, match="missing_patient_id: 1.*invalid_code: 1"):
        out = read_gp_events(frame, id="id", code="c", date="d", system="sys")
    assert out.events["code_system"].tolist() == ["snomed", "icd10"]
    assert out.events["code"].tolist() == ["52448006", "I500"]
    assert out.events["setting"].tolist() == ["primary", "primary"]


def test_gp_events_need_one_system_source():
    frame = pd.DataFrame({"patient_id": [P1], "code": ["52448006"], "date": ["2020-01-01"]})
    with pytest.raises(SchemaError, match="exactly one of system="):
        read_gp_events(frame)


def test_gp_register_with_nhs_data_dictionary_sex_codes():
    frame = pd.DataFrame({"NHSNo": [P1, P2, "9990000034"], "Gender": [2, 1, 7],
                          "DOB": ["1940-02-29", "1980-07-01", "2000-01-01"],
                          "LSOA": ["E01000001"] * 3, "PRAC": ["A81001"] * 3})
    with pytest.warns(DataQualityWarning, match=r"unmapped_sex_code: 1 \(first positions \[2\]\)"):
        reg, report = read_gp_register(frame, id="NHSNo", sex="Gender", date_of_birth="DOB",
                                       lsoa="LSOA", practice="PRAC")
    assert reg["sex"].tolist() == ["F", "M", "U"]
    ph.validate_register(reg, index_date="2025-04-01")


# ----------------------------------------------------------------------------- whole pipeline

SNOMED_LIST = pd.DataFrame({
    "condition": ["dementia", "heart_failure", "copd", "diabetes"],
    "code": ["52448006", "84114007", "13645005", "44054006"],
    "code_system": "snomed", "match": "exact"})


def test_committed_sample_files_run_through_the_whole_pipeline():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        reg, _ = read_gp_register(EXTRACTS / "gp_register.csv", id="NHSNo", sex="Gender",
                                  date_of_birth="DOB", lsoa="LSOA11", practice="PracticeCode")
        gp = read_gp_events(EXTRACTS / "gp_events.csv", id="PatientID", code="ConceptCode",
                            date="EventDate", system="Scheme")
        apc = read_sus_apc(EXTRACTS / "sus_apc.csv", columns={"cost": "TARIFF"})
        op = read_sus_op(EXTRACTS / "sus_op.csv", columns={"cost": "TARIFF"})
        ae = read_ecds(EXTRACTS / "ecds.csv", columns={"cost": "TARIFF"})
    # the sample: 27 episodes in 18 spells; one GP row has no code; six patients
    assert apc.report.rows == 27 and len(apc.activity) == 18
    assert gp.report.counts == {"missing_code": 1}
    assert reg["sex"].tolist() == ["F", "M", "F", "M", "U", "I"]
    events = pd.concat([gp.events, apc.events, op.events, ae.events], ignore_index=True)
    activity = pd.concat([apc.activity, op.activity, ae.activity], ignore_index=True)
    ph.validate_register(reg, index_date="2025-04-01")
    ph.validate_events(events, index_date="2025-04-01")
    ph.validate_activity(activity, index_date="2025-04-01")

    flags = _quiet(ph.flag_conditions, gp.events, SNOMED_LIST, register=reg,
                   index_date="2025-04-01")
    # gp_events.csv by hand: p0 dementia+HF, p1 COPD+T2DM (+ a moderate-frailty code), p2 T2DM,
    # p3 HF, p4 COPD
    assert flags.sum().to_dict() == {"dementia": 1, "heart_failure": 2, "copd": 2, "diabetes": 2}
    scores = _quiet(ph.score_patients, reg, events, index_date="2025-04-01")
    assert (scores["charlson_quan2011"] > 0).sum() >= 4
    patients = _quiet(ph.patient_table, reg, scores, activity, index_date="2025-04-01")
    assert patients["prior_emergency_admissions"].sum() > 0
    # no eFI list in SNOMED CT ships yet (issue 12, another item): state the band explicitly
    patients["efi_band"] = pd.Categorical(["fit"] * len(patients), ordered=True,
                                          categories=["fit", "mild", "moderate", "severe"])
    seg = _quiet(ph.bridges_to_health, patients, events, index_date="2025-04-01")
    assert (seg["segment"] != "healthy").sum() >= 4
