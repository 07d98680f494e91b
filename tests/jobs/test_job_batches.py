"""The job streams patient batches through the one batch function: any batch size, same run.

The job's whole-population steps (model fit, tiers, the code-system and unrecognised-code
rules, the notes) are taken once after the batches, so cutting the register into batches
of 1, 7 or 400 patients must give the same patient table, counts, notes and files.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pophealth.jobs import JobConfig, run_job
from pophealth.jobs import inputs as job_inputs

KEY = "33" * 32
IDX = "2025-04-01"


@pytest.fixture(scope="module")
def pop(tmp_path_factory):
    from pophealth.synthetic import make_population

    p = make_population(1_200, random_state=21, index_date=IDX)
    root = tmp_path_factory.mktemp("batchpop")
    reg, ev = p.register.copy(), p.events
    # excluded patients in several batches (died, registered after the index date): a
    # batched job must drop exactly these rows, as the one-batch job does
    reg.loc[reg.index[[3, 450, 801, 1100]], "date_of_death"] = pd.Timestamp("2024-01-01")
    reg.loc[reg.index[[10, 900]], "registered_from"] = pd.Timestamp("2025-06-01")
    ids = np.sort(reg["patient_id"].to_numpy())
    # event rows of patients not on the register: below the first id, in the gaps
    # between batches of 400 and above the last id - each must be counted exactly once
    stray = np.array([ids[0] - 5, ids[399] + 0, ids[-1] + 7, ids[-1] + 8], dtype=ids.dtype)
    stray = stray[~np.isin(stray, ids)]
    assert ev["patient_id"].isin(ids).all()  # the synthetic events have no strays of their own
    extra = ev.iloc[:len(stray)].copy()
    extra["patient_id"] = stray
    extra["code"], extra["code_system"] = "I21", "icd10"  # in Charlson's MI list
    extra["date"] = pd.Timestamp("2024-06-01")
    ev = pd.concat([ev, extra], ignore_index=True)
    reg.to_parquet(root / "register.parquet")
    ev.to_parquet(root / "events.parquet")
    p.activity.to_parquet(root / "activity.parquet")
    p.outcomes.reset_index().to_parquet(root / "outcomes.parquet")
    return root, len(stray), len(ev)


def _config(root, out) -> JobConfig:
    return JobConfig.from_dict({
        "index_date": IDX, "name": "batches",
        "inputs": {k: str(root / f"{k}.parquet")
                   for k in ("register", "events", "activity", "outcomes")},
        "codelists": {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"},
        "risk": {"tier_cuts": [0.01, 0.05, 0.2],
                 "fit": {"method": "logistic", "outcome": "emergency_admission",
                         "random_state": 3, "max_rows": 900}},
        "rules": [{"name": "top 5% risk per practice", "top_fraction": 0.05, "by": "practice"},
                  {"name": "frail", "where": [["segment", "==",
                                               "Frailty and dementia (long decline)"]]}],
        "output": {"dir": str(out), "rank_by": "risk"},
        "pseudonymisation": {"key_env": "PH_BATCH_KEY"},
    })


@pytest.fixture(scope="module")
def whole(pop, tmp_path_factory):
    root, _, _ = pop
    return job_inputs._build_patients(_config(root, tmp_path_factory.mktemp("o")))


def _mask(note: str) -> str:
    return re.sub(r"\((at least )?\d+ distinct\)", "(? distinct)", note)


@pytest.mark.parametrize("size", [400, 97])
def test_any_batch_size_gives_the_one_batch_table(pop, whole, tmp_path, size):
    root, n_stray, n_events = pop
    patients, counts, notes = job_inputs._build_patients(_config(root, tmp_path),
                                                        batch_patients=size)
    ref_patients, ref_counts, ref_notes = whole
    # batched, the table keeps only what the rules, reasons, lists and report read
    assert {"pcn", "practice", "_pseudo_source", "risk", "tier", "segment", "age",
            "prior_emergency_admissions", "efi_band", "hfrs_band"} <= set(patients.columns)
    # and holds PCN / practice codes as categoricals (memory at 10M); same values
    assert all(isinstance(patients[c].dtype, pd.CategoricalDtype) for c in ("pcn", "practice"))
    plain = patients.assign(**{c: patients[c].astype(object) for c in ("pcn", "practice")})
    pd.testing.assert_frame_equal(plain, ref_patients[patients.columns])
    assert counts == ref_counts
    assert counts["excluded"]["died_on_or_before_index_date"] == 4
    assert counts["excluded"]["registered_after_index_date"] == 2
    assert counts["patients_included"] == 1_200 - 6 == len(patients)
    # distinct unrecognised codes do not add up over batches: "at least" the largest batch's
    assert all("(at least " in n for n in notes if " distinct)" in n)
    # with SNOMED CT primary-care rows every batch of 97 or 400 reaches the segment lists'
    # 20 % other-system threshold, so the summed notes are exactly the one-batch notes (the
    # partial-sum case is tested by hand in tests/engines/test_batch_notes.py)
    assert [_mask(n) for n in notes] == [_mask(n) for n in ref_notes]
    # every event row is counted once, the strays as unknown patients, in any batching
    assert counts["events"]["charlson"]["n_events"] == n_events
    assert counts["events"]["charlson"]["n_unknown_patient"] == n_stray


def test_tiny_batches_do_not_trip_the_segment_lists_threshold(pop, whole, tmp_path):
    root, _, _ = pop
    # segments.segment_flags judged max_unrecognised (5 %) per call, so a 7-patient batch
    # with 2 odd codes in 38 rows raised; the batch caller now passes 1.0 and the job
    # decides once on the population's summed counts
    patients, counts, _ = job_inputs._build_patients(_config(root, tmp_path), batch_patients=7)
    plain = patients.assign(**{c: patients[c].astype(object) for c in ("pcn", "practice")})
    pd.testing.assert_frame_equal(plain, whole[0][patients.columns])
    assert counts == whole[1]


def test_run_files_identical_whatever_the_batch_size(pop, tmp_path, monkeypatch):
    root, _, _ = pop
    env = {"PH_BATCH_KEY": KEY}
    one = run_job(_config(root, tmp_path / "one"), environ=env)
    monkeypatch.setattr(job_inputs, "BATCH_PATIENTS", 250)
    # what a killed batched run leaves behind: a spill of patient-level batch tables
    stale = tmp_path / "many" / "runs" / ".tmp-batches-killed"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"patient-level rows")
    many = run_job(_config(root, tmp_path / "many"), environ=env)
    assert not stale.exists()  # removed by the next run
    assert not list((tmp_path / "many" / "runs").glob(".tmp-*"))  # and its own spill too
    assert one.run_id == many.run_id
    assert one.manifest["files"] == many.manifest["files"]  # per-file rows and SHA-256
    assert one.manifest["counts"] == many.manifest["counts"]
    assert ([_mask(n) for n in one.manifest["data_quality_notes"]]
            == [_mask(n) for n in many.manifest["data_quality_notes"]])
    assert one.manifest["counts"]["caseload_rows"] > 0
