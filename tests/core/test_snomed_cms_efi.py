"""SNOMED CT versions of the CMS conditions and eFI deficits (issue 12 item 1).

Expected weights are literals copied from Payne RA, Mendonca SC, Elliott MN, et al.
Development and validation of the Cambridge Multimorbidity Score. CMAJ 2020;192(5):E107
(general-outcome weights: hypertension 0.08, diabetes 0.75, coronary heart disease 0.49,
heart failure 1.18; the six conditions without an open SNOMED list weigh cancer 1.53,
constipation 1.12, painful condition 0.92, alcohol problems 0.65, irritable bowel
syndrome 0.21, hearing loss 0.09, i.e. 4.52 of the 16.33 total; mortality weights
hypertension -2.09, diabetes 10.23, coronary heart disease 4.22). SNOMED CT codes are
literals from the NHS England PCD refsets: 38341003 "Hypertensive disorder, systemic
arterial" (HYP_COD), 44054006 "Diabetes mellitus type 2" (DM_COD), 53741008 "Coronary
arteriosclerosis" (CHD_COD), 84114007 "Heart failure" (HF_COD).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import CodelistError, DataQualityWarning

DATA = Path(__file__).resolve().parents[2] / "src" / "pophealth" / "data"
IDX = "2025-04-01"
HYP, DM, CHD, HF = "38341003", "44054006", "53741008", "84114007"
CMS_NOT_COVERED = ["cancer", "constipation", "painful_condition", "alcohol_problems",
                   "irritable_bowel_syndrome", "hearing_loss"]
EFI_COVERED = ["arthritis", "atrial_fibrillation", "cerebrovascular_disease",
               "chronic_kidney_disease", "diabetes", "heart_failure", "hypertension",
               "ischaemic_heart_disease", "memory_cognitive_problems", "osteoporosis",
               "parkinsonism_tremor", "peripheral_vascular_disease", "respiratory_disease",
               "thyroid_disease"]


def _events(rows):
    return pd.DataFrame(rows, columns=["patient_id", "code", "code_system"]).assign(
        date=pd.Timestamp("2024-06-01"))


def _flags(ev, reg, codelist):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # other-system share: tested below
        return ph.flag_conditions(ev, codelist, register=reg, index_date=IDX)


def _read(sub, name):
    return pd.read_csv(DATA / sub / f"{name}.csv", dtype=str, keep_default_na=False)


def test_gp_patient_with_hyp_dm_chd_gets_the_published_cms_weights():
    reg = pd.DataFrame({"patient_id": [1, 2]})
    ev = _events([(1, HYP, "snomed"), (1, DM, "snomed"), (1, CHD, "snomed")])
    flags = _flags(ev, reg, "cms_snomed")
    with pytest.warns(DataQualityWarning, match="CMS from 14 of 20"):
        general = ph.cambridge_score(flags)
    with pytest.warns(DataQualityWarning, match="CMS from 14 of 20"):
        mortality = ph.cambridge_score(flags, weights="mortality")
    assert general.tolist() == pytest.approx([0.08 + 0.75 + 0.49, 0.0], abs=1e-9)  # 1.32
    assert mortality.tolist() == pytest.approx([-2.09 + 10.23 + 4.22, 0.0], abs=1e-9)


def test_mixed_gp_and_hospital_events_cms_counts_snomed_rows_only():
    # CMS is a primary-care score: the hospital ICD-10 I50 row is another code system for
    # cms_snomed (reported, never a CMS condition), while Charlson flags it from ICD-10.
    reg = pd.DataFrame({"patient_id": ["gp", "hosp", "both"], "age": [70, 70, 70]})
    ev = _events([("gp", HF, "snomed"), ("hosp", "I50", "icd10"), ("both", HF, "snomed"),
                  ("both", "I50", "icd10")])
    with pytest.warns(DataQualityWarning, match=r"2 of 4 event row\(s\)"):
        flags = ph.flag_conditions(ev, "cms_snomed", register=reg, index_date=IDX)
    assert flags["heart_failure"].tolist() == [True, False, True]
    report = flags.attrs["pophealth_report"]
    assert report["n_other_system"] == 2
    assert report["systems"]["icd10"] == {"n_events": 2, "covered": False, "n_matched": 0}
    with pytest.warns(DataQualityWarning):
        out = ph.score_patients(reg, ev, index_date=IDX, codelists={"cms": "cms_snomed"})
    assert out["cms_general"].tolist() == pytest.approx([1.18, 0.0, 1.18], abs=1e-9)
    assert out["charlson_quan2011"].tolist() == [0, 2, 2]  # chf = 2 (Quan 2011)


def test_cms_coverage_warning_names_gaps_and_weight_left_out():
    cl = _read("codelists", "cms_snomed")
    one_each = cl.drop_duplicates("condition")
    reg = pd.DataFrame({"patient_id": [1, 2]})
    ev = _events([(1, c, "snomed") for c in one_each["code"]])
    flags = _flags(ev, reg, "cms_snomed")
    with pytest.warns(DataQualityWarning) as rec:
        s = ph.cambridge_score(flags)
    msg = str(rec[0].message)
    assert len(rec) == 1
    assert "CMS from 14 of 20 conditions: under-estimates" in msg
    assert "6 condition(s) not covered by code list cms_snomed" in msg
    assert "weight 4.52 of 16.33 left out" in msg
    assert all(name in msg for name in CMS_NOT_COVERED)
    # recovery: every covered condition present scores the total minus what is left out
    assert s.tolist() == pytest.approx([16.33 - 4.52, 0.0], abs=1e-9)
    assert HYP not in msg and "1" not in msg.split(":")[-1]  # names only, no codes/ids


def test_multimorbidity_warns_when_list_covers_part_of_the_index():
    reg = pd.DataFrame({"patient_id": [1]})
    flags = _flags(_events([(1, HYP, "snomed"), (1, DM, "snomed"), (1, CHD, "snomed")]), reg,
                   "cms_snomed")
    with pytest.warns(DataQualityWarning, match="counted over 14 of 20 cms conditions"):
        out = ph.multimorbidity(flags, body_systems="cms")
    # hypertension + CHD circulatory, diabetes endocrine_metabolic
    assert out.loc[1].tolist() == [3, True, 2, False]


def test_hand_made_frame_missing_cms_column_raises_unless_absent():
    names = [n for n in ph.load_index("cms").condition_names if n != "cancer"]
    f = pd.DataFrame({n: [n == "dementia"] for n in names})
    with pytest.raises(CodelistError, match="lack 1 condition column"):
        ph.cambridge_score(f)
    with pytest.warns(DataQualityWarning, match=r"CMS from 19 of 20 conditions.*not supplied"
                      r".*weight 1\.53 of 16\.33 left out\): cancer$"):
        s = ph.cambridge_score(f, missing_conditions="absent")
    assert s.tolist() == pytest.approx([2.50])


def test_flags_of_another_index_are_not_scored_as_zero_cms():
    reg = pd.DataFrame({"patient_id": [1]})
    ev = _events([(1, "I50", "icd10")])
    flags = _flags(ev, reg, "elixhauser_quan2005_icd10")  # no slug shared with CMS
    with pytest.raises(CodelistError, match="none of the 20 condition column"):
        ph.cambridge_score(flags)


def test_efi_from_partial_snomed_list_warns_under_estimate():
    cl = _read("codelists", "efi_snomed")
    assert sorted(cl["condition"].unique()) == EFI_COVERED
    one_each = cl.drop_duplicates("condition")
    reg = pd.DataFrame({"patient_id": [1, 2]})
    ev = _events([(1, c, "snomed") for c in one_each["code"]] + [(2, HYP, "snomed")])
    flags = _flags(ev, reg, "efi_snomed")
    with pytest.warns(DataQualityWarning) as rec:
        out = ph.efi(flags)
    msg = str(rec[0].message)
    assert "eFI from 14 of 36 deficits: under-estimates frailty" in msg
    assert "22 deficit(s) not covered by code list efi_snomed" in msg
    for name in ("falls", "polypharmacy", "housebound", "requirement_for_care"):
        assert name in msg
    assert out["efi_deficits"].tolist() == [14, 1]
    assert out["efi"].tolist() == pytest.approx([14 / 36, 1 / 36])
    assert out["efi_band"].astype(str).tolist() == ["severe", "fit"]  # >= 13; <= 4


def test_score_patients_with_snomed_cms_and_efi_lists():
    reg = pd.DataFrame({"patient_id": [1, 2], "age": [80, 80]})
    ev = _events([(1, HYP, "snomed"), (1, DM, "snomed"), (1, CHD, "snomed")])
    with pytest.warns(DataQualityWarning) as rec:
        out = ph.score_patients(reg, ev, index_date=IDX,
                                codelists={"cms": "cms_snomed", "efi": "efi_snomed"})
    texts = " ".join(str(w.message) for w in rec)
    assert "CMS from 14 of 20" in texts and "eFI from 14 of 36" in texts
    assert out["cms_general"].tolist() == pytest.approx([1.32, 0.0], abs=1e-9)
    assert out["efi_deficits"].tolist() == [3, 0]  # hypertension, diabetes, IHD


@pytest.mark.parametrize("name", ["cms_snomed", "efi_snomed"])
def test_every_shipped_code_is_in_pcd_snomed_under_the_cited_cluster(name):
    pcd = _read("codelists", "pcd_snomed")
    cl = _read("codelists", name)
    mapping = _read("codelist_sources", name)
    assert set(cl["code_system"]) == {"snomed"} and set(cl["match"]) == {"exact"}
    cluster = (cl["description"].str.extract(r"\[(\S+) \S+\]$")[0].str.lower()
               .str.replace("-", "_"))
    assert cluster.notna().all()
    pairs = set(zip(pcd["condition"], pcd["code"], strict=True))
    shipped = list(zip(cluster, cl["code"], strict=True))
    assert all(p in pairs for p in shipped)
    clusters = dict(zip(mapping["condition"], mapping["clusters"].str.split(), strict=True))
    assert all(c in clusters[cond] for cond, c in zip(cl["condition"], cluster, strict=True))
    # nothing dropped: each condition holds every code of every cluster it cites
    for cond, cites in clusters.items():
        want = set(pcd.loc[pcd["condition"].isin(cites), "code"])
        assert set(cl.loc[cl["condition"] == cond, "code"]) == want, cond
    assert not cl.duplicated(["condition", "code"]).any()
    uncovered = sorted(c for c, cites in clusters.items() if not cites)
    assert set(mapping.loc[mapping["clusters"] == "", "coverage"]) == {"none"}
    if name == "cms_snomed":
        assert uncovered == sorted(CMS_NOT_COVERED)
        # cluster sizes (codelist_sources/pcd_snomed.csv n_codes); STRK/TIA share 1 code
        assert len(cl) == 2814  # 326+56+24+42+480+(266+17-1)+86+190+386+106+338+(152+87)+142+117
    else:
        assert len(uncovered) == 22


def test_provenance_records_mapping_and_gaps():
    prov = pd.read_csv(DATA / "provenance.csv", keep_default_na=False).set_index("file")
    notes = prov.loc["codelists/cms_snomed.csv", "notes"]
    assert all(name in notes for name in CMS_NOT_COVERED)
    assert "STRK_COD+TIA_COD" in notes and "CKDATRISK2_COD" in notes
    assert "UNDER-ESTIMATES" in prov.loc["codelists/efi_snomed.csv", "notes"]


def test_builder_reproduces_the_shipped_lists():
    import importlib.util

    path = DATA.parents[2] / "scripts" / "build_cms_efi_snomed.py"
    spec = importlib.util.spec_from_file_location("build_cms_efi_snomed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pcd = _read("codelists", "pcd_snomed")
    for name in ("cms_snomed", "efi_snomed"):
        built = mod.build(name, pcd).reset_index(drop=True)
        pd.testing.assert_frame_equal(built, _read("codelists", name))
