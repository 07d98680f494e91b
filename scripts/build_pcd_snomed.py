"""Build ``data/codelists/pcd_snomed.csv`` and ``b2h_snomed.csv`` from PCD refset CSVs.

Usage: ``python scripts/build_pcd_snomed.py <folder with the refset CSVs and SOURCES.csv>``.
The inputs are OpenCodelists downloads (``code,term``) of the NHS England Primary Care
Domain reference sets (Open Government Licence v3.0); SOURCES.csv names each file's
repository, path, commit and release. Run once per refresh; the outputs are committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

#: Bridges to Health condition slug (as in b2h_icd10) -> PCD clusters (file stems).
B2H_CLUSTERS: dict[str, tuple[str, ...]] = {
    "dementia": ("dem_cod",),
    "heart_failure": ("hf_cod",),
    "copd": ("copd_cod",),
    "interstitial_lung_disease": ("interstitial-lung-disease-codes",),
    "chronic_liver_disease": ("cldatrisk1_cod",),
    "palliative_care": ("palcare_cod",),
    "learning_disability": ("ld_cod",),
    "autism": ("autism_cod",),
    "pregnancy": ("preg_cod",),
    "hypertension": ("hyp_cod",),
    "diabetes": ("dm_cod",),
    "coronary_heart_disease": ("chd_cod",),
    "atrial_fibrillation": ("afib_cod",),
    "stroke_tia": ("strk_cod", "tia_cod"),
    "peripheral_vascular_disease": ("pad_cod",),
    "asthma": ("ast_cod",),
    "chronic_kidney_disease": ("ckd1and2_cod", "ckdatrisk2_cod"),
    "epilepsy": ("epil_cod",),
    "parkinsons": ("pd_cod",),
    "multiple_sclerosis": ("multiple-sclerosis-codes",),
    "psychosis": ("mh_cod",),
    "rheumatoid_arthritis": ("rarth_cod",),
    "inflammatory_bowel_disease": ("ulccolitis_cod",),
    "hiv": ("hiv_cod",),
    "osteoporosis": ("osteo_cod",),
    "anxiety_depression": ("depr_cod",),
}


def slug(stem: str) -> str:
    """Condition name of a cluster: the file stem, ``-`` -> ``_`` (``hf_cod``)."""
    return stem.replace("-", "_")


def main(folder: Path, out: Path) -> None:
    sources = pd.read_csv(folder / "SOURCES.csv", dtype=str)
    rows = []
    for file, version in zip(sources["file"], sources["opencodelists_version"], strict=True):
        stem = file[:-4]
        release = version.rsplit("/", 1)[-1]
        t = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
        rows.append(pd.DataFrame({
            "condition": slug(stem), "code": t["code"].str.strip(), "code_system": "snomed",
            "match": "exact",
            "description": t["term"].str.strip() + f" [{stem.upper()} {release}]"}))
    pcd = pd.concat(rows, ignore_index=True).sort_values(["condition", "code"], kind="stable")
    pcd.to_csv(out / "pcd_snomed.csv", index=False, lineterminator="\n")
    b2h = []
    for condition, stems in B2H_CLUSTERS.items():
        for stem in stems:
            part = pcd[pcd["condition"] == slug(stem)].copy()
            part["condition"] = condition
            b2h.append(part)
    pd.concat(b2h, ignore_index=True).drop_duplicates(["condition", "code"]).to_csv(
        out / "b2h_snomed.csv", index=False, lineterminator="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parents[1] / "src/pophealth/data/codelists")
