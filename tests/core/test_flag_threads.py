"""The flag core's ``threads`` parameter: any thread count, the same flags and report.

The job's batch workers pass ``threads=1`` (one process per core already); the flags must
not depend on it. Chunks of 7 rows make the 500 events 72 chunks, so 2 and 3 threads
really interleave them; the flags are checked against the slow per-patient reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from reference import ref_flags

import pophealth as ph
import pophealth.core.conditions as conditions
from pophealth.contracts.exceptions import ConfigError, DataQualityWarning

IDX = "2025-04-01"
CODES = ["I21.0", "I50.9", "E11.2", "C78.7", "J44.1", "N18.5", "K70.3", "F00", "Z99",
         "I10X", "G30.1", "ZZZ9"]


def _events(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 500
    ev = pd.DataFrame({
        "patient_id": rng.integers(1, 81, size=n),
        "code": rng.choice(np.array(CODES, dtype=object), size=n),
        "code_system": rng.choice(np.array(["icd10", "snomed"], dtype=object), size=n,
                                  p=[0.9, 0.1]),
        "date": pd.Timestamp(IDX) + pd.to_timedelta(rng.integers(-1200, 60, size=n), "D")})
    return ev, pd.DataFrame({"patient_id": np.arange(1, 76)})  # 76-80: not registered


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lookback", [None, 365])
def test_flags_and_report_do_not_depend_on_threads(monkeypatch, seed, lookback):
    ev, reg = _events(seed)
    monkeypatch.setattr(conditions, "_CHUNK_ROWS", 7)
    cl = ph.load_codelist("charlson_quan2005_icd10")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # unknown patients, ZZZ9
        for threads in (1, 2, 3):
            out[threads] = ph.flag_conditions(ev, cl, register=reg, index_date=IDX,
                                              lookback_days=lookback, max_unrecognised=1.0,
                                              warn_other_system=None, threads=threads)
    ref = ref_flags(ev, cl.table, reg["patient_id"].tolist(), IDX, lookback)
    assert out[1][ref.columns].to_numpy().any()  # some flags are set
    pd.testing.assert_frame_equal(out[1][ref.columns], ref, check_names=False)
    for threads in (2, 3):
        pd.testing.assert_frame_equal(out[threads], out[1])
        assert out[threads].attrs["pophealth_report"] == out[1].attrs["pophealth_report"]


@pytest.mark.parametrize("threads", [0, -1, 1.5])
def test_threads_must_be_a_positive_whole_number(threads):
    ev, reg = _events(0)
    with pytest.raises(ConfigError, match="threads must be a positive whole number"):
        ph.flag_conditions(ev, "charlson_quan2005_icd10", register=reg, index_date=IDX,
                           threads=threads)


@pytest.mark.parametrize("threads", [None, 1, 3])
def test_score_batch_parts_passes_threads_to_every_flag_core_call(monkeypatch, threads):
    from pophealth.engines.pipeline import score_batch_parts

    seen = []
    real = conditions._map_bounded

    def spy(fn, items, workers):
        seen.append(workers)
        return real(fn, items, workers)

    monkeypatch.setattr(conditions, "_map_bounded", spy)
    ev, reg = _events(1)
    reg = reg.assign(age=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        score_batch_parts(reg, ev, None, index_date=IDX, max_unrecognised=1.0,
                          on_no_match="ignore", warn_other_system=None, threads=threads)
    # charlson, elixhauser, hfrs and the segment lists (one call per window: 3)
    assert len(seen) == 6
    assert seen == [2 if threads is None else threads] * 6
