"""A crafted patient table with known counts and sentinel identifiers (for every report test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SEGMENTS = ["Healthy", "Long-term conditions", "Frailty", "Cancer", "Disability"]
SEGMENT_N = [2000, 600, 300, 97, 3]
SEGMENT_COST = [10.0, 100.0, 300.0, 200.0, 200.0]  # each patient's cost in that segment
TIERS = ["low", "moderate", "high", "very high"]
TIER_N = [2400, 450, 144, 6]
CASELOAD = {"SYNPCN0001": 3, "SYNPCN0002": 40, "SYNPCN0003": 12, "": 9}
KEY = bytes(range(32))


def _nhs(i: np.ndarray) -> np.ndarray:
    return np.array([f"999{k:07d}" for k in i], dtype=object)


@pytest.fixture(scope="session")
def crafted() -> pd.DataFrame:
    """3,000 patients in 12 LSOAs (250 each, IMD deciles 1-10), 3 PCNs, plus a small LSOA
    of 20 patients with 3 admissions; identifiers are sentinels that must never appear."""
    from pophealth.jobs.pseudonymise import pseudonymise

    n = 3000
    i = np.arange(n)
    lsoa_idx = i % 12
    decile = lsoa_idx % 10 + 1
    seg = np.repeat(np.arange(len(SEGMENTS)), SEGMENT_N)
    tier = np.repeat(np.arange(len(TIERS)), TIER_N)
    p = pd.DataFrame({
        "patient_id": np.array([f"SENTINEL-PID-{k:05d}" for k in i], dtype=object),
        "nhs_number": _nhs(i),
        "age": i % 90,
        "sex": np.where(i % 2 == 0, "F", "M"),
        "lsoa": np.array([f"L99{k + 1:06d}" for k in lsoa_idx], dtype=object),
        "pcn": np.array([f"SYNPCN000{k % 3 + 1}" for k in lsoa_idx], dtype=object),
        "practice": np.array([f"SYNP0000{k % 6 + 1}" for k in lsoa_idx], dtype=object),
        "imd_decile": decile,
        "segment": pd.Categorical.from_codes(seg, categories=SEGMENTS, ordered=True),
        "tier": pd.Categorical.from_codes(tier, categories=TIERS, ordered=True),
        "risk": np.linspace(0.9, 0.01, n),
        "prior_cost": np.asarray(SEGMENT_COST)[seg],
        # every (decile + 2)-th patient of each LSOA: 84 down to 21 per LSOA of 250
        "prior_emergency_admissions": ((i // 12) % (decile + 2) == 0).astype(np.int64),
    })
    small = pd.DataFrame({
        "patient_id": [f"SENTINEL-PID-S{k:03d}" for k in range(20)],
        "nhs_number": _nhs(np.arange(5_000_000, 5_000_020)),
        "age": 40, "sex": "F", "lsoa": "L99000013", "pcn": "SYNPCN0001",
        "practice": "SYNP00001", "imd_decile": 5,
        "segment": pd.Categorical(["Healthy"] * 20, categories=SEGMENTS, ordered=True),
        "tier": pd.Categorical(["low"] * 20, categories=TIERS, ordered=True),
        "risk": 0.01, "prior_cost": 0.0,
        "prior_emergency_admissions": [1] * 3 + [0] * 17})
    p = pd.concat([p, small], ignore_index=True)
    p["_pseudo_source"] = p["nhs_number"]
    p["pseudo_id"] = pseudonymise(p["nhs_number"].to_numpy(), KEY)
    return p.set_index("patient_id")


@pytest.fixture(scope="session")
def report(crafted):
    """The report of the crafted table, built once (figures take a few seconds)."""
    from pophealth.reports import build_report

    return build_report(crafted, index_date="2025-04-01", caseload_by_pcn=CASELOAD,
                        codelists=["charlson_quan2005_icd10", "hfrs_gilbert2018_icd10",
                                   "/data/my_local_list.csv"],
                        exclusions={"register: invalid nhs number": 4},
                        warnings=["flag_conditions(x): excluded 2 row(s) with unrecognised "
                                  "codes (1 distinct)"], random_state=0)
