"""SNOMED CT code lists shipped as data (issue 12 item 1).

Expected codes and counts are literals copied from the NHS England Primary Care Domain
refset downloads (OpenCodelists, OGL v3) listed in the collection's SOURCES.csv:
DEM_COD 20260630 (326 codes) holds 52448006 "Dementia"; HF_COD 20250912 (42) holds
84114007 "Heart failure"; COPD_COD 20250912 (56) holds 13645005 "Chronic obstructive
pulmonary disease"; DM_COD 20250627 (86) and DMTYPE2_COD 20260630 (23) hold 44054006
"Diabetes mellitus type 2"; MILDFRAIL_COD (3), MODFRAIL_COD (2), SEVFRAIL_COD (3).
The SNOMED CT check (Verhoeff check digit, partition identifier) is written here from
the SNOMED CT Technical Implementation Guide, independently of pophealth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import pophealth as ph
from pophealth.segments import segment_flags

DATA = Path(__file__).resolve().parents[2] / "src" / "pophealth" / "data"

# Verhoeff tables (dihedral group D5 multiplication, permutation, inverse)
_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
      [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
      [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
      [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
      [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]  # fmt: skip
_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
      [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
      [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
      [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]  # fmt: skip


def verhoeff_ok(code: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(code)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def snomed_concept_id_ok(code: str) -> bool:
    """6-18 digits, no leading zero, concept partition (00 short, 10 long), Verhoeff."""
    return (code.isdigit() and 6 <= len(code) <= 18 and code[0] != "0"
            and code[-3:-1] in {"00", "10"} and verhoeff_ok(code))


def test_the_checker_itself_rejects_broken_ids():
    assert snomed_concept_id_ok("52448006")
    assert snomed_concept_id_ok("925791000000100")
    assert not snomed_concept_id_ok("52448007")  # check digit changed
    assert not snomed_concept_id_ok("52448016")  # partition 01 = description id
    assert not snomed_concept_id_ok("52484006")  # adjacent digits swapped
    assert snomed_concept_id_ok("138875005")  # SNOMED CT root concept


def test_verhoeff_permutations_are_powers_of_the_first():
    # p[i] = p[1] applied i times (Verhoeff 1969); catches a mistyped row
    for i in range(1, 8):
        assert _P[i] == [_P[1][x] for x in _P[i - 1]]


def test_every_shipped_snomed_code_is_a_valid_concept_id():
    for name in ("pcd_snomed", "b2h_snomed"):
        df = pd.read_csv(DATA / "codelists" / f"{name}.csv", dtype=str, keep_default_na=False)
        assert (df["code_system"] == "snomed").all()
        assert (df["match"] == "exact").all()
        bad = [i for i, c in enumerate(df["code"]) if not snomed_concept_id_ok(c)]
        assert bad == [], name


def test_pcd_snomed_has_one_condition_per_cluster_with_published_counts():
    df = pd.read_csv(DATA / "codelists" / "pcd_snomed.csv", dtype=str, keep_default_na=False)
    counts = df.groupby("condition").size()
    assert len(counts) == 39
    assert len(df) == 5236  # sum of n_codes in SOURCES.csv
    assert counts[["dem_cod", "hf_cod", "copd_cod", "dm_cod", "dmtype2_cod", "mildfrail_cod",
                   "modfrail_cod", "sevfrail_cod"]].tolist() == [326, 42, 56, 86, 23, 3, 2, 3]
    assert not df.duplicated(["condition", "code"]).any()
    frail = df[df["condition"].str.endswith("frail_cod")]
    assert set(zip(frail["condition"], frail["code"], strict=True)) >= {
        ("mildfrail_cod", "925791000000100"), ("modfrail_cod", "925831000000107"),
        ("sevfrail_cod", "925861000000102")}


def test_every_pcd_cluster_has_a_source_row_with_licence_and_commit():
    src = pd.read_csv(DATA / "codelist_sources" / "pcd_snomed.csv", dtype=str,
                      keep_default_na=False)
    pcd = pd.read_csv(DATA / "codelists" / "pcd_snomed.csv", dtype=str, keep_default_na=False)
    assert set(src["condition"]) == set(pcd["condition"])
    assert (src["licence"] == "Open Government Licence v3.0").all()
    assert src["commit"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert src.set_index("condition").loc["hf_cod", "release"] == "20250912"
    n = pcd.groupby("condition").size()
    assert (src.set_index("condition")["n_codes"].astype(int) == n[src["condition"]].values).all()


def test_missing_lists_are_documented():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    prov = pd.read_csv(DATA / "provenance.csv", dtype=str).set_index("file")
    for word in ("CAN_COD", "housebound", "motor neurone", "CKD_COD"):
        assert word in readme
        assert word in prov.loc["codelists/pcd_snomed.csv", "notes"]


def test_b2h_snomed_codes_are_pcd_codes_of_the_cited_cluster():
    pcd = pd.read_csv(DATA / "codelists" / "pcd_snomed.csv", dtype=str, keep_default_na=False)
    b2h = pd.read_csv(DATA / "codelists" / "b2h_snomed.csv", dtype=str, keep_default_na=False)
    cluster = b2h["description"].str.extract(r"\[([A-Z0-9_-]+) \w+\]$")[0]
    keys = set(zip(pcd["condition"], pcd["code"], strict=True))
    cond = cluster.str.lower().str.replace("-", "_")
    assert all((c, k) in keys for c, k in zip(cond, b2h["code"], strict=True))
    hf = b2h[b2h["condition"] == "heart_failure"]
    assert len(hf) == 42 and set(cluster[hf.index]) == {"HF_COD"}


FOUR = pd.DataFrame({"patient_id": [1, 2, 3, 4],
                     "code": ["52448006", "84114007", "13645005", "44054006"],
                     "code_system": "snomed", "date": pd.to_datetime(["2024-05-01"] * 4)})
REG = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5]})


def test_four_new_user_patients_are_flagged_by_pcd_snomed():
    f = ph.flag_conditions(FOUR, "pcd_snomed", register=REG, index_date="2025-04-01")
    got = {pid: sorted(f.columns[f.loc[pid]]) for pid in REG["patient_id"]}
    assert got == {1: ["dem_cod"], 2: ["hf_cod"], 3: ["copd_cod"],
                   4: ["dm_cod", "dmtype2_cod"], 5: []}


def test_mixed_events_give_the_union_of_snomed_and_icd10():
    ev = pd.DataFrame({
        "patient_id": [1, 2, 3, 3, 4],
        "code": ["84114007", "I50.0", "84114007", "I50.9", "K35"],
        "code_system": ["snomed", "icd10", "snomed", "icd10", "icd10"],
        "date": pd.to_datetime(["2024-05-01"] * 5)})
    f = segment_flags(ev, register=REG, index_date="2025-04-01")
    assert f["heart_failure"].tolist() == [True, True, True, False, False]
    assert f["copd"].tolist() == [False] * 5
