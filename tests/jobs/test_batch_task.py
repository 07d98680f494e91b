"""One batch of the job (:func:`pophealth.jobs.batchwork.score_batch_task`) in this process.

The batch sorts the register by patient (a register file need not be sorted; one that is
is taken as read) and counts the activity rows of patients not on the register; the
counts here are by hand (three rows added for ids no patient has).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pophealth.jobs import JobConfig
from pophealth.jobs.batchwork import BatchTask, score_batch_task

IDX = "2025-04-01"


@pytest.fixture(scope="module")
def pop():
    from pophealth.synthetic import make_population

    return make_population(300, random_state=21, index_date=IDX)


def _task(root, register: pd.DataFrame, pop) -> BatchTask:
    register.to_parquet(root / "register.parquet")
    pop.events.to_parquet(root / "events.parquet")
    act = pop.activity
    extra = act.iloc[:3].assign(patient_id=[10**9, 10**9, 10**9 + 1])
    pd.concat([act, extra], ignore_index=True).to_parquet(root / "activity.parquet")
    cfg = JobConfig.from_dict({
        "index_date": IDX, "name": "one-batch",
        "inputs": {k: str(root / f"{k}.parquet") for k in ("register", "events", "activity")},
        "codelists": {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"},
        "rules": [{"name": "all", "where": [["age", ">=", 0]]}],
        "output": {"dir": str(root / "out"), "rank_by": "age"},
        "pseudonymisation": {"key_env": "PH_BATCH_KEY"}})
    lists = {k: (None if v.lower() == "none" else v) for k, v in cfg.codelists.items()}
    return BatchTask(cfg, 0, 1, None, None, None, lists, None, False, None, None)


def test_sorted_or_shuffled_register_gives_the_same_batch(pop, tmp_path):
    reg = pop.register.sort_values("patient_id").reset_index(drop=True)
    shuffled = reg.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not shuffled["patient_id"].is_monotonic_increasing
    out = {}
    for name, frame in (("sorted", reg), ("shuffled", shuffled)):
        (tmp_path / name).mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = score_batch_task(_task(tmp_path / name, frame, pop))
    a, b = out["sorted"], out["shuffled"]
    assert a.table.index.tolist() == sorted(reg["patient_id"].tolist())
    pd.testing.assert_frame_equal(a.table, b.table)
    assert np.array_equal(a.keep, b.keep)
    assert a.unknown == b.unknown == 3  # the three added rows, by hand
    assert a.n_act == len(pop.activity) + 3
