"""Out-of-core scoring equals in-memory scoring; the batch function is split-invariant."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pophealth as ph
from pophealth.contracts.exceptions import ConfigError, DataQualityWarning
from pophealth.engines.streaming import read_scores, score_dataset
from pophealth.synthetic import make_population, read_population, write_population

IDX = "2025-04-01"
LISTS = {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"}


def _score(register, events):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return ph.score_patients(register, events, index_date=IDX, codelists=LISTS)


@pytest.fixture(scope="module")
def small_pop():
    return make_population(3_000, random_state=11, index_date=IDX)


@given(cuts=st.lists(st.integers(0, 3_000), max_size=4), seed=st.integers(0, 1000))
@settings(max_examples=15)
def test_batch_split_invariance(small_pop, cuts, seed):
    reg, ev = small_pop.register, small_pop.events
    whole = _score(reg, ev)
    # any split of the patients into batches, each with its own events, in any order
    order = np.random.default_rng(seed).permutation(len(reg))
    bounds = sorted({0, len(reg), *cuts})
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part = reg.iloc[order[lo:hi]]
        parts.append(_score(part, ev[ev.patient_id.isin(part.patient_id)]))
    got = pd.concat(parts).loc[whole.index]
    pd.testing.assert_frame_equal(got, whole)


@pytest.mark.slow
def test_streamed_buckets_equal_in_memory(tmp_path):
    write_population(tmp_path / "pop", 110_000, random_state=5, index_date=IDX, n_buckets=3,
                     progress=False)
    with pytest.warns(DataQualityWarning, match="score_dataset: charlson: excluded rows"):
        summary = score_dataset(tmp_path / "pop", tmp_path / "scores", index_date=IDX,
                                codelists=LISTS, progress=False)
    assert summary["batches"] == 3 and summary["patients"] == 110_000
    pop = read_population(tmp_path / "pop", index_date=IDX)
    whole = _score(pop.register, pop.events)
    streamed = read_scores(tmp_path / "scores")
    pd.testing.assert_frame_equal(streamed, whole, check_categorical=False,
                                  check_index_type=False)
    counts = summary["exclusions"]["charlson"]
    assert counts["n_events"] == len(pop.events)
    assert sum(v for k, v in counts.items() if k != "n_events") == counts["n_events"]


def test_id_range_batches_equal_in_memory(tmp_path):
    write_population(tmp_path / "pop", 4_000, random_state=6, index_date=IDX, progress=False)
    summary = score_dataset(tmp_path / "pop", tmp_path / "scores", index_date=IDX,
                            batch_patients=1_234, codelists={"hfrs": None}, progress=False)
    assert summary["batches"] == 4
    assert (tmp_path / "scores" / "_SUCCESS").read_text().strip() == "4000"
    pop = read_population(tmp_path / "pop", index_date=IDX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        whole = ph.score_patients(pop.register, pop.events, index_date=IDX,
                                  codelists={"hfrs": None})
    pd.testing.assert_frame_equal(read_scores(tmp_path / "scores"), whole,
                                  check_index_type=False)


def test_existing_output_and_missing_input(tmp_path):
    write_population(tmp_path / "pop", 500, random_state=7, index_date=IDX, progress=False)
    (tmp_path / "scores").mkdir()
    with pytest.raises(ConfigError, match="output exists"):
        score_dataset(tmp_path / "pop", tmp_path / "scores", index_date=IDX, progress=False)
    with pytest.raises(FileNotFoundError):
        score_dataset(tmp_path / "nope", tmp_path / "s2", index_date=IDX, progress=False)
    with pytest.raises(ConfigError, match="batch_patients"):
        score_dataset(tmp_path / "pop", tmp_path / "s3", index_date=IDX, batch_patients=0)
