"""Synthetic population: determinism, contracts, realism figures and streaming to Parquet."""

from importlib import resources

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pophealth as ph
from pophealth.contracts.nhs_number import is_valid_nhs_number
from pophealth.synthetic import (
    Population,
    make_population,
    realism_summary,
    write_population,
)

INDEX = pd.Timestamp("2025-04-01")
TABLES = ("register", "events", "activity", "outcomes")


def _codelist(name: str) -> pd.DataFrame:
    path = resources.files("pophealth") / "data" / "codelists" / f"{name}.csv"
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


@pytest.fixture(scope="module")
def pop() -> Population:
    return make_population(20_000, random_state=0)


def _assert_same(a: Population, b: Population) -> None:
    for t in TABLES:
        pd.testing.assert_frame_equal(getattr(a, t), getattr(b, t))
    assert a.index_date == b.index_date


def test_same_seed_gives_identical_population():
    _assert_same(make_population(3_000, random_state=7), make_population(3_000, random_state=7))


def test_different_seeds_differ():
    a = make_population(3_000, random_state=7)
    b = make_population(3_000, random_state=8)
    assert not a.register["date_of_birth"].equals(b.register["date_of_birth"])
    assert not a.outcomes["p_emergency_admission"].equals(b.outcomes["p_emergency_admission"])
    assert len(a.events) != len(b.events) or not a.events["code"].equals(b.events["code"])


def test_passes_schema_validators(pop):
    assert pop.index_date == INDEX
    ph.validate_register(pop.register, index_date=pop.index_date)
    ph.validate_events(pop.events, index_date=pop.index_date)
    ph.validate_activity(pop.activity, index_date=pop.index_date)


def test_register_columns_and_values(pop):
    reg = pop.register
    assert list(reg.columns) == [
        "patient_id", "nhs_number", "sex", "date_of_birth", "age", "lsoa", "practice", "pcn",
        "icb", "imd_decile", "ethnicity", "date_of_death", "registered_from"]
    assert isinstance(reg.index, pd.RangeIndex)
    assert reg["patient_id"].tolist() == list(range(len(reg)))
    assert reg["patient_id"].dtype == np.int64
    assert set(reg["sex"]) == {"F", "M"}
    assert set(reg["ethnicity"]) == {"White", "Asian", "Black", "Mixed", "Other"}
    assert reg["imd_decile"].between(1, 10).all() and reg["imd_decile"].nunique() == 10
    assert reg["date_of_death"].isna().all()
    dob = reg["date_of_birth"]
    had_birthday = (dob.dt.month < INDEX.month) | ((dob.dt.month == INDEX.month) & (dob.dt.day <= INDEX.day))
    completed = INDEX.year - dob.dt.year - (~had_birthday).astype(int)
    assert (completed == reg["age"]).all()
    assert ((reg["registered_from"] >= dob) & (reg["registered_from"] <= INDEX)).all()
    assert reg["lsoa"].str.fullmatch(r"L99\d{6}").all()
    assert reg["practice"].str.startswith("SYN").all() and reg["pcn"].str.startswith("SYN").all()


def test_nhs_numbers_valid_unique_and_from_999_range(pop):
    nhs = pop.register["nhs_number"]
    assert is_valid_nhs_number(nhs).all()
    assert nhs.str.startswith("999").all()
    assert nhs.is_unique


def test_events_contract(pop):
    ev = pop.events
    assert list(ev.columns) == ["patient_id", "date", "code", "code_system", "setting"]
    assert (np.diff(ev["patient_id"].to_numpy()) >= 0).all()
    assert ev["patient_id"].isin(pop.register["patient_id"]).all()
    assert (ev["date"] <= INDEX).all()
    assert ev["code"].notna().all()
    assert set(ev["code_system"]) == {"icd10", "synthetic_pc"}
    icd = ev[ev["code_system"] == "icd10"]
    pc = ev[ev["code_system"] == "synthetic_pc"]
    assert set(icd["setting"]) == {"inpatient", "outpatient", "ae"}
    assert set(pc["setting"]) == {"primary"}
    assert (icd["date"] > INDEX - pd.Timedelta(days=731)).all()
    assert pc["code"].astype(str).str.fullmatch(r"SYN\d+").all()
    dob = pop.register.set_index("patient_id")["date_of_birth"]
    assert (ev["date"].to_numpy() >= dob.loc[ev["patient_id"]].to_numpy()).all()


def test_icd10_code_strings_look_like_real_data(pop):
    icd = pop.events.loc[pop.events["code_system"] == "icd10", "code"].astype(str)
    assert 6 < len(icd) / len(pop.register) < 10
    assert icd.str.contains(".", regex=False).mean() > 0.03
    assert icd.str.contains("[a-z]", regex=True).mean() > 0.01
    assert icd.str.contains(" ", regex=False).mean() > 0.005
    norm = icd.str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    invalid = ~norm.str.fullmatch(r"[A-Z]\d{2}[0-9A-Z]{0,2}")
    assert 0.002 < invalid.mean() < 0.01
    assert (icd == "").any()


def test_icd10_codes_hit_every_index_category_and_many_non_index(pop):
    icd = pop.events.loc[pop.events["code_system"] == "icd10", "code"].astype(str)
    norm = pd.Series(icd.str.upper().str.replace(r"[^0-9A-Z]", "", regex=True).unique())
    covered = np.zeros(len(norm), dtype=bool)
    for name, min_share in (("charlson_quan2005_icd10", 1.0), ("elixhauser_quan2005_icd10", 1.0),
                            ("hfrs_gilbert2018_icd10", 0.9)):
        cl = _codelist(name)
        hit = {cond for cond, code in zip(cl["condition"], cl["code"], strict=True)
               if norm.str.startswith(code).any()}
        assert len(hit) / cl["condition"].nunique() >= min_share, name
        for code in cl["code"]:
            covered |= norm.str.startswith(code).to_numpy()
    assert (~covered).sum() > 60  # plenty of real codes that are in no index


def test_synthetic_pc_code_lists(pop):
    efi, cms = _codelist("efi_synthetic_pc"), _codelist("cms_synthetic_pc")
    assert list(efi.columns) == ["condition", "code", "code_system", "match", "description"]
    assert efi["condition"].nunique() == 36 and cms["condition"].nunique() == 20
    assert {"polypharmacy", "social_vulnerability", "falls"} <= set(efi["condition"])
    assert {"dementia", "copd", "hypertension", "anxiety_depression"} <= set(cms["condition"])
    for cl in (efi, cms):
        assert (cl["code_system"] == "synthetic_pc").all() and (cl["match"] == "exact").all()
        assert cl["code"].str.fullmatch(r"SYN\d+").all()
    emitted = set(pop.events.loc[pop.events["code_system"] == "synthetic_pc", "code"].astype(str))
    listed = set(efi["code"]) | set(cms["code"])
    assert listed <= emitted
    assert len(emitted - listed) <= 4  # only the obesity / liver items map to neither list


def test_activity_contract(pop):
    act = pop.activity
    assert list(act.columns) == ["patient_id", "date", "kind", "cost", "length_of_stay"]
    assert set(act["kind"]) == {"emergency_admission", "elective_admission", "ae", "outpatient", "gp"}
    assert act["date"].between(INDEX - pd.Timedelta(days=365), INDEX - pd.Timedelta(days=1)).all()
    assert (act["cost"] >= 0).all() and act["cost"].dtype == float
    admission = act["kind"].isin(["emergency_admission", "elective_admission"])
    assert (act.loc[~admission, "length_of_stay"] == 0).all()
    assert (act.loc[admission, "length_of_stay"] > 0).any()


def test_outcomes_contract(pop):
    out = pop.outcomes
    assert out.index.name == "patient_id"
    assert out.index.tolist() == pop.register["patient_id"].tolist()
    assert out["emergency_admission"].dtype == bool and out["death"].dtype == bool
    em, de = out["emergency_admission"], out["death"]
    assert (out["days_to_emergency_admission"].notna() == em).all()
    assert (out["days_to_death"].notna() == de).all()
    assert out.loc[em, "days_to_emergency_admission"].between(1, 365).all()
    follow = out["days_to_death"].fillna(365).clip(upper=365)
    assert (out["end_of_follow_up_days"] == follow).all()
    assert (out.loc[em & de, "days_to_emergency_admission"] <= out.loc[em & de, "days_to_death"]).all()
    for col in ("p_emergency_admission", "p_death"):
        assert out[col].between(0, 1, inclusive="neither").all()
    assert (out["total_cost"] >= 0).all()


def test_realism_on_moderate_population(pop):
    s = realism_summary(pop)
    assert 0.07 <= s["outcomes"]["emergency_admission_rate"] <= 0.12
    assert 0.76 <= s["outcomes"]["oracle_auroc_emergency_admission"] <= 0.86
    assert 0.15 <= s["multimorbidity"]["prevalence"] <= 0.29
    assert 0.12 <= s["costs"]["next_12m"]["top1"] <= 0.30
    assert 0.40 <= s["costs"]["next_12m"]["top5"] <= 0.60
    assert 0.015 <= s["costs"]["next_12m"]["bottom50"] <= 0.06
    assert s["demography"]["age_sex_max_abs_diff_pp"] < 1.0


@pytest.mark.slow
def test_realism_figures_at_200k():
    s = realism_summary(make_population(200_000, random_state=0))
    geo, mm, costs, out = s["geography"], s["multimorbidity"], s["costs"], s["outcomes"]
    assert geo["lsoa_share_1000_3000"] >= 0.95 and 900 <= geo["lsoa_size_min"]
    assert geo["lsoa_size_max"] <= 3100 and 1300 <= geo["lsoa_size_median"] <= 1700
    assert 30_000 <= geo["pcn_size_min"] and geo["pcn_size_max"] <= 52_000
    assert s["demography"]["age_sex_max_abs_diff_pp"] < 0.3
    assert 0.78 <= s["demography"]["ethnicity"]["White"] <= 0.84
    assert 0.19 <= mm["prevalence"] <= 0.27
    assert mm["share_of_multimorbid_aged_65_plus"] > 0.5
    for band in ("18-44", "45-64", "65-74"):  # earlier onset in the most deprived fifth
        row = mm["by_age_and_deprivation"][band]
        assert row["most_deprived_20pc"] > 1.3 * row["least_deprived_20pc"]
    nxt = costs["next_12m"]
    assert 0.16 <= nxt["top1"] <= 0.24 and 0.44 <= nxt["top5"] <= 0.56
    assert 0.02 <= nxt["bottom50"] <= 0.045
    assert 0.14 <= costs["top1_persistence"] <= 0.30
    assert 0.08 <= out["emergency_admission_rate"] <= 0.12
    assert 0.78 <= out["oracle_auroc_emergency_admission"] <= 0.83
    assert 0.006 <= out["death_rate"] <= 0.012
    assert 0.003 <= s["codes"]["invalid_icd10_share"] <= 0.007
    assert 7.0 <= s["codes"]["icd10_rows_per_patient"] <= 9.0
    fr = s["frailty"]  # eFI 65+ near Clegg 2016 (50/35/12/3 %); HFRS 75+ of a whole GP register
    efi = fr["efi_65_plus"]
    assert 0.46 <= efi["fit"] <= 0.56 and 0.30 <= efi["mild"] <= 0.40
    assert 0.08 <= efi["moderate"] <= 0.15 and 0.01 <= efi["severe"] <= 0.05
    hf = fr["hfrs_75_plus"]
    assert 0.60 <= hf["low"] <= 0.75 and 0.15 <= hf["intermediate"] <= 0.27
    assert 0.05 <= hf["high"] <= 0.12 and fr["hfrs_max_75_plus"] < 80
    ip = fr["hfrs_75_inpatient"]  # Gilbert 2018, hospitalised 75+: 42/38/20 %
    assert 0.40 <= ip["low"] <= 0.62 and 0.28 <= ip["intermediate"] <= 0.42
    assert 0.08 <= ip["high"] <= 0.22


def _read(path, table: str) -> pd.DataFrame:
    return ds.dataset(f"{path}/{table}", partitioning="hive").to_table().to_pandas()


def test_write_population_round_trip(tmp_path):
    n = 60_000
    summary = write_population(tmp_path, n, random_state=5, batch_size=50_000, n_buckets=2,
                               progress=False)
    mem = make_population(n, random_state=5)
    assert summary["n_buckets"] == 2
    for t in TABLES:
        assert ds.dataset(tmp_path / t, partitioning="hive").count_rows() == summary["rows"][t]
        assert summary["rows"][t] == len(getattr(mem, t))
        assert len(summary["files"][t]) == 2
    for f in summary["files"]["events"]:
        pids = pq.read_table(f, columns=["patient_id"]).column(0).to_numpy()
        assert len(pids) > 0 and (np.diff(pids) >= 0).all()
    ev = _read(tmp_path, "events").sort_values("patient_id", kind="stable").reset_index(drop=True)
    assert (ev["patient_id"].to_numpy() == mem.events["patient_id"].to_numpy()).all()
    assert (ev["code"].astype(str).to_numpy() == mem.events["code"].astype(str).to_numpy()).all()
    reg = _read(tmp_path, "register").sort_values("patient_id").reset_index(drop=True)
    assert (reg["nhs_number"].to_numpy() == mem.register["nhs_number"].to_numpy()).all()
    assert (reg["date_of_birth"].to_numpy() == mem.register["date_of_birth"].to_numpy()).all()
    ph.validate_register(reg, index_date=INDEX)
    ph.validate_events(ev, index_date=INDEX)
    ph.validate_activity(_read(tmp_path, "activity"), index_date=INDEX)
    out = _read(tmp_path, "outcomes").sort_values("patient_id").set_index("patient_id")
    np.testing.assert_allclose(out["total_cost"], mem.outcomes["total_cost"])


def test_write_population_is_batch_size_invariant(tmp_path):
    a = write_population(tmp_path / "a", 60_000, random_state=9, batch_size=1, progress=False)
    b = write_population(tmp_path / "b", 60_000, random_state=9, batch_size=1_000_000, progress=False)
    assert a["rows"] == b["rows"]
    assert len(a["files"]["events"]) == 2 and len(b["files"]["events"]) == 1
    for t in TABLES:
        ta = _read(tmp_path / "a", t).sort_values("patient_id", kind="stable").reset_index(drop=True)
        tb = _read(tmp_path / "b", t).sort_values("patient_id", kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(ta, tb)


@pytest.mark.parametrize(("n", "seed"), [(0, 0), (10, -1), (2.5, 0)])
def test_invalid_arguments(n, seed):
    with pytest.raises(ValueError):
        make_population(n, random_state=seed)
