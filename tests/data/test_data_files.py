"""Checks on the index definitions shipped as CSV under src/pophealth/data/.

Counts and weights are checked against the published numbers transcribed in the methods reference
(Quan 2005, SHMI v1.35, Gilbert 2018, Charlson 1987, Quan 2011, van Walraven 2009, Sharma 2021,
Payne 2020). The files are read directly with pandas so these tests do not depend on the loaders.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[2] / "src" / "pophealth" / "data"

CODELIST_HEADER = ["condition", "code", "code_system", "match", "description"]
WEIGHTS_HEADER = ["scheme", "condition", "weight"]
HIERARCHY_HEADER = ["dominant", "subordinate"]
CONDITIONS_HEADER = ["condition", "label", "body_system"]
PROVENANCE_HEADER = ["file", "source", "version", "citation", "licence", "notes"]

CHARLSON_SLUGS = [
    "mi", "chf", "pvd", "cevd", "dementia", "cpd", "rheumd", "pud", "mld",
    "diab", "diabwc", "hp", "rend", "canc", "msld", "metacanc", "aids",
]  # fmt: skip
ELIXHAUSER_SLUGS = [
    "chf", "carit", "valv", "pcd", "pvd", "hypunc", "hypc", "para", "ond", "cpd", "diabunc",
    "diabc", "hypothy", "rf", "ld", "pud", "aids", "lymph", "metacanc", "solidtum", "rheumd",
    "coag", "obes", "wloss", "fed", "blane", "dane", "alcohol", "drug", "psycho", "depre",
]  # fmt: skip
EFI_SLUGS = [
    "activity_limitation", "anaemia", "arthritis", "atrial_fibrillation",
    "cerebrovascular_disease", "chronic_kidney_disease", "diabetes", "dizziness", "dyspnoea",
    "falls", "foot_problems", "fragility_fracture", "hearing_impairment", "heart_failure",
    "heart_valve_disease", "housebound", "hypertension", "hypotension_syncope",
    "ischaemic_heart_disease", "memory_cognitive_problems", "mobility_transfer_problems",
    "osteoporosis", "parkinsonism_tremor", "peptic_ulcer", "peripheral_vascular_disease",
    "polypharmacy", "requirement_for_care", "respiratory_disease", "skin_ulcer",
    "sleep_disturbance", "social_vulnerability", "thyroid_disease", "urinary_incontinence",
    "urinary_system_disease", "visual_impairment", "weight_loss_anorexia",
]  # fmt: skip
CMS_SLUGS = [
    "dementia", "cancer", "copd", "atrial_fibrillation", "heart_failure", "constipation",
    "painful_condition", "epilepsy", "stroke_tia", "diabetes", "alcohol_problems", "psychosis",
    "chronic_kidney_disease", "anxiety_depression", "coronary_heart_disease",
    "rheumatoid_arthritis", "irritable_bowel_syndrome", "asthma", "hearing_loss", "hypertension",
]  # fmt: skip
BODY_SYSTEMS = {
    "circulatory", "respiratory", "endocrine_metabolic", "neurological", "mental_health",
    "renal_urological", "digestive", "musculoskeletal", "cancer", "infectious",
    "haematological", "sensory", "skin", "social_functional",
}  # fmt: skip

# Quan 2005 Charlson ICD-10: per-condition prefix counts after range expansion (total 289).
QUAN_CHARLSON_COUNTS = {
    "mi": 3, "chf": 14, "pvd": 13, "cevd": 13, "dementia": 7, "cpd": 21, "rheumd": 9,
    "pud": 4, "mld": 19, "diab": 25, "diabwc": 25, "hp": 12, "rend": 22, "canc": 83,
    "msld": 11, "metacanc": 4, "aids": 4,
}  # fmt: skip
# SHMI v1.35: the reference count (224) includes two codes found in only one of four
# transcriptions of the specification; they are deliberately not shipped (see provenance notes).
SHMI_REFERENCE_TOTAL = 224
SHMI_DISPUTED = {("diab", "E110"), ("rheumd", "M351")}

CODELISTS = {
    "charlson_quan2005_icd10": CHARLSON_SLUGS,
    "charlson_shmi_icd10": CHARLSON_SLUGS,
    "elixhauser_quan2005_icd10": ELIXHAUSER_SLUGS,
    "hfrs_gilbert2018_icd10": None,  # condition = the code itself
}
WEIGHTS = {
    "charlson": (CHARLSON_SLUGS, {"charlson1987", "quan2011", "shmi"}),
    "elixhauser": (ELIXHAUSER_SLUGS, {"van_walraven", "swiss"}),
    "cms": (CMS_SLUGS, {"general", "mortality"}),
}
CONDITIONS = {
    "charlson": CHARLSON_SLUGS,
    "elixhauser": ELIXHAUSER_SLUGS,
    "efi": EFI_SLUGS,
    "cms": CMS_SLUGS,
}
HIERARCHIES = {
    "charlson": (CHARLSON_SLUGS, {("msld", "mld"), ("diabwc", "diab"), ("metacanc", "canc")}),
    "elixhauser": (
        ELIXHAUSER_SLUGS,
        {("hypc", "hypunc"), ("diabc", "diabunc"), ("metacanc", "solidtum")},
    ),
}


def read(relpath: str) -> pd.DataFrame:
    return pd.read_csv(DATA / relpath, dtype=str, keep_default_na=False)


def codelist(name: str) -> pd.DataFrame:
    return read(f"codelists/{name}.csv")


def weights(index: str) -> pd.DataFrame:
    df = read(f"weights/{index}.csv")
    df["weight"] = df["weight"].astype(float)
    return df


def scheme(index: str, name: str) -> dict[str, float]:
    df = weights(index)
    sub = df[df["scheme"] == name]
    return dict(zip(sub["condition"], sub["weight"], strict=True))


def all_csvs() -> list[str]:
    return sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*.csv"))


# --- headers, normalisation, duplicates -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CODELISTS))
def test_codelist_header_and_values(name):
    df = codelist(name)
    assert list(df.columns) == CODELIST_HEADER
    assert len(df) > 0
    assert df["code"].str.fullmatch(r"[A-Z0-9]+").all()
    assert (df["code_system"] == "icd10").all()
    assert df["match"].isin(["prefix", "exact"]).all()
    assert not df.duplicated().any()
    assert not df.duplicated(["condition", "code"]).any()


@pytest.mark.parametrize("name", sorted(n for n, slugs in CODELISTS.items() if slugs))
def test_codelist_condition_slugs(name):
    assert set(codelist(name)["condition"]) == set(CODELISTS[name])


def test_hfrs_condition_is_the_three_character_code():
    df = codelist("hfrs_gilbert2018_icd10")
    assert (df["condition"] == df["code"]).all()
    assert df["code"].str.fullmatch(r"[A-Z][0-9]{2}").all()
    assert (df["match"] == "prefix").all()


@pytest.mark.parametrize("index", sorted(WEIGHTS) + ["hfrs"])
def test_weights_header_and_numeric(index):
    df = read(f"weights/{index}.csv")
    assert list(df.columns) == WEIGHTS_HEADER
    assert pd.to_numeric(df["weight"], errors="coerce").notna().all()
    assert not df.duplicated(["scheme", "condition"]).any()


@pytest.mark.parametrize("index", sorted(HIERARCHIES))
def test_hierarchy_header_and_slugs(index):
    df = read(f"hierarchies/{index}.csv")
    assert list(df.columns) == HIERARCHY_HEADER
    slugs, expected = HIERARCHIES[index]
    assert set(df["dominant"]) | set(df["subordinate"]) <= set(slugs)
    assert set(zip(df["dominant"], df["subordinate"], strict=True)) == expected
    assert not df.duplicated().any()


@pytest.mark.parametrize("index", sorted(CONDITIONS))
def test_conditions_files(index):
    df = read(f"conditions/{index}.csv")
    assert list(df.columns) == CONDITIONS_HEADER
    assert list(df["condition"]) == CONDITIONS[index]
    assert df["condition"].is_unique
    assert (df["label"].str.len() > 0).all()
    assert set(df["body_system"]) <= BODY_SYSTEMS


# --- published counts -------------------------------------------------------------------------


def test_quan_charlson_per_condition_counts():
    counts = codelist("charlson_quan2005_icd10").groupby("condition").size().to_dict()
    assert counts == QUAN_CHARLSON_COUNTS
    assert sum(counts.values()) == 289


def test_quan_charlson_range_expansion_examples():
    df = codelist("charlson_quan2005_icd10")
    by = df.groupby("condition")["code"].apply(set)
    assert {"I425", "I426", "I427", "I428", "I429", "I43", "I50"} <= by["chf"]
    assert {"F00", "F01", "F02", "F03"} <= by["dementia"]
    assert {f"I{n}" for n in range(60, 70)} <= by["cevd"]
    assert by["diab"] == {f"E1{t}{c}" for t in range(5) for c in "01689"}
    assert by["diabwc"] == {f"E1{t}{c}" for t in range(5) for c in "23457"}
    assert by["metacanc"] == {"C77", "C78", "C79", "C80"}


def test_shmi_charlson_counts_and_documented_differences():
    df = codelist("charlson_shmi_icd10")
    pairs = set(zip(df["condition"], df["code"], strict=True))
    assert len(pairs) == 222
    assert not pairs & SHMI_DISPUTED
    assert len(pairs | SHMI_DISPUTED) == SHMI_REFERENCE_TOTAL
    by = df.groupby("condition")["code"].apply(set)
    assert by["chf"] == {"I50"}
    assert {"I23", "I258"} <= by["mi"]
    assert {"C44", "C86"} <= by["canc"]
    assert {"B23", "O987"} <= by["aids"]
    assert by["metacanc"] == {"C77", "C78", "C79", "C80"}


def test_shmi_disputed_codes_recorded_in_provenance():
    prov = read("provenance.csv").set_index("file")
    notes = prov.loc["codelists/charlson_shmi_icd10.csv", "notes"]
    assert "E110" in notes
    assert "M351" in notes


def test_quan_elixhauser_counts_and_multi_mapping():
    df = codelist("elixhauser_quan2005_icd10")
    assert len(df) == 399
    counts = df.groupby("condition").size()
    assert counts["solidtum"] == 70
    assert counts["diabc"] == 35
    assert counts["diabunc"] == 15
    i426 = set(df.loc[df["code"] == "I426", "condition"])
    assert i426 == {"chf", "alcohol"}


def test_hfrs_codes_and_weights():
    codes = codelist("hfrs_gilbert2018_icd10")
    assert len(codes) == 109
    w = scheme("hfrs", "gilbert2018")
    assert len(w) == 109
    assert set(w) == set(codes["code"])
    assert sum(w.values()) == pytest.approx(173.2, abs=1e-6)
    assert min(w.values()) == pytest.approx(0.1)
    assert max(w.values()) == pytest.approx(7.1)
    assert w["F00"] == pytest.approx(7.1)
    assert w["R50"] == pytest.approx(0.1)
    assert set(weights("hfrs")["scheme"]) == {"gilbert2018"}


# --- weights against the published tables -----------------------------------------------------


@pytest.mark.parametrize("index", sorted(WEIGHTS))
def test_every_scheme_covers_every_condition(index):
    slugs, schemes = WEIGHTS[index]
    df = weights(index)
    assert set(df["scheme"]) == schemes
    for name in schemes:
        sub = df[df["scheme"] == name]
        assert sorted(sub["condition"]) == sorted(slugs), name


def test_charlson_weights_spot_checks():
    c87 = scheme("charlson", "charlson1987")
    q11 = scheme("charlson", "quan2011")
    shmi = scheme("charlson", "shmi")
    assert c87["metacanc"] == 6 and c87["aids"] == 6 and c87["msld"] == 3
    assert c87["diabwc"] == 2 and c87["mi"] == 1
    assert q11["aids"] == 4
    assert q11["mi"] == 0 and q11["msld"] == 4 and q11["chf"] == 2
    assert shmi["diabwc"] == -1
    assert shmi["msld"] == 18 and shmi["dementia"] == 14 and shmi["chf"] == 13


def test_quan2011_maximum_is_24():
    q11 = scheme("charlson", "quan2011")
    subordinate = {"mld", "diab", "canc"}  # dominated in the hierarchy, and lighter here
    assert sum(w for c, w in q11.items() if c not in subordinate) == 24


def test_elixhauser_weights_spot_checks():
    vw = scheme("elixhauser", "van_walraven")
    swiss = scheme("elixhauser", "swiss")
    assert vw["metacanc"] == 12
    assert vw["ld"] == 11 and vw["drug"] == -7 and vw["obes"] == -4
    assert swiss["ld"] == 16
    assert swiss["metacanc"] == 17 and swiss["dane"] == -7 and swiss["hypunc"] == -4


def test_van_walraven_published_range():
    vw = scheme("elixhauser", "van_walraven")
    # solid tumour is dominated by metastatic cancer, so it cannot add to the maximum
    top = sum(w for c, w in vw.items() if w > 0 and c != "solidtum")
    bottom = sum(w for w in vw.values() if w < 0)
    assert (bottom, top) == (-19, 85)


def test_cms_weights_spot_checks():
    general = scheme("cms", "general")
    mortality = scheme("cms", "mortality")
    assert general["dementia"] == pytest.approx(2.5)
    assert general["hypertension"] == pytest.approx(0.08)
    assert sum(w for w in general.values() if w > 0) == pytest.approx(16.33, abs=1e-6)
    assert mortality["dementia"] == pytest.approx(124.42)
    assert mortality["hearing_loss"] == pytest.approx(-3.94)


# --- provenance -------------------------------------------------------------------------------


def test_provenance_header_and_rows():
    prov = read("provenance.csv")
    assert list(prov.columns) == PROVENANCE_HEADER
    assert prov["file"].is_unique
    for col in ["source", "citation", "licence"]:
        assert (prov[col].str.len() > 0).all(), col
    assert set(prov["file"]) <= set(all_csvs())


def test_every_csv_has_a_provenance_row():
    prov = set(read("provenance.csv")["file"])
    missing = [f for f in all_csvs() if f != "provenance.csv" and f not in prov]
    assert missing == []


def test_readme_lists_every_provenance_row():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    files = read("provenance.csv")["file"]
    missing = [f for f in files if f"`{f}`" not in readme]
    assert missing == []
