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
from pophealth.engines.pipeline import score_batch
from pophealth.engines.streaming import read_scores, score_dataset
from pophealth.synthetic import make_population, read_population, write_population

IDX = "2025-04-01"
LISTS = {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"}


def _score(register, events):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return ph.score_patients(register, events, index_date=IDX, codelists=LISTS)


def _table(pop, codelists=LISTS, model=None):
    """The in-memory whole-pipeline table, one batch, as score_dataset writes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return score_batch(pop.register.drop(columns=["nhs_number"], errors="ignore"),
                           pop.events, pop.activity, index_date=IDX, codelists=codelists,
                           model=model, max_unrecognised=1.0, on_no_match="ignore")


def _assert_table(streamed: pd.DataFrame, whole: pd.DataFrame) -> None:
    assert list(streamed.columns) == list(whole.columns)
    pd.testing.assert_frame_equal(streamed, whole.sort_index(), check_categorical=False,
                                  check_index_type=False, check_dtype=False)


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
    whole = _table(pop)
    streamed = read_scores(tmp_path / "scores")
    _assert_table(streamed, whole)
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
    whole = _table(pop, codelists={"hfrs": None})
    _assert_table(read_scores(tmp_path / "scores"), whole)


def test_existing_output_and_missing_input(tmp_path):
    write_population(tmp_path / "pop", 500, random_state=7, index_date=IDX, progress=False)
    (tmp_path / "scores").mkdir()
    with pytest.raises(ConfigError, match="output exists"):
        score_dataset(tmp_path / "pop", tmp_path / "scores", index_date=IDX, progress=False)
    with pytest.raises(FileNotFoundError):
        score_dataset(tmp_path / "nope", tmp_path / "s2", index_date=IDX, progress=False)
    with pytest.raises(ConfigError, match="batch_patients"):
        score_dataset(tmp_path / "pop", tmp_path / "s3", index_date=IDX, batch_patients=0)


def test_streamed_pipeline_with_model_and_activity_equals_in_memory(tmp_path):
    from pophealth.engines.pipeline import score_batch_parts
    from pophealth.risk.models import RiskModel

    write_population(tmp_path / "pop", 3_000, random_state=12, index_date=IDX, progress=False)
    pop = read_population(tmp_path / "pop", index_date=IDX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _, X, _ = score_batch_parts(pop.register, pop.events, pop.activity, index_date=IDX,
                                    codelists=LISTS, features=True, segments=False)
    y = pop.outcomes["emergency_admission"].reindex(X.index).to_numpy(dtype=bool)
    model = RiskModel(method="logistic", calibration=None).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        summary = score_dataset(tmp_path / "pop", tmp_path / "scores", index_date=IDX,
                                codelists=LISTS, batch_patients=700, model=model,
                                progress=False)
    assert summary["batches"] == 5 and summary["patients"] == 3_000  # ceil(3000 / 700)
    streamed = read_scores(tmp_path / "scores")
    for col in ("risk", "segment", "prior_cost", "prior_emergency_admissions"):
        assert col in streamed.columns
    assert streamed["prior_cost"].sum() > 0  # the activity dataset was read
    _assert_table(streamed, _table(pop, model=model))
    # every event row read once, strays included: the id ranges tile the id line
    assert summary["exclusions"]["charlson"]["n_events"] == len(pop.events)


def test_id_range_batches_read_stray_rows_once(tmp_path):
    """Rows for ids outside every batch's [first, last] - below, between, above, missing -
    each land in exactly one batch (hand-made: 4 patients in batches of 2)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from pophealth.engines.streaming import id_batches

    table = pa.table({"patient_id": pa.array([1, 10, 15, 20, 25, 30, 40, 99, None],
                                             pa.int64())})
    data = ds.dataset(table)
    register = ds.dataset(pa.table({"patient_id": pa.array([40, 10, 20, 30], pa.int64())}))
    seen = []
    for _, reg, rows in id_batches(np.array([40, 10, 20, 30]), 2):
        assert register.to_table(filter=reg).num_rows == 2
        seen.append(sorted(data.to_table(filter=rows).column("patient_id").to_pylist(),
                           key=lambda v: (v is None, v)))
    # batch 0 = {10, 20}: ids < 30; batch 1 = {30, 40}: ids >= 30 and missing ids
    assert seen == [[1, 10, 15, 20, 25], [30, 40, 99, None]]
