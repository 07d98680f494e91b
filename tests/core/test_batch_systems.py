"""The no-silent-zeros rule over batches: decided once on the summed per-system counts.

Counts are hand-computed from the crafted rows (Charlson/Elixhauser/HFRS lists cover
ICD-10 only; SNOMED rows are in no list's system).
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import CodelistError, ConfigError, DataQualityWarning
from pophealth.core.batch import check_code_systems, merge_reports
from pophealth.engines.streaming import score_dataset

IDX = "2025-04-01"
SNOMED, ICD10 = "22298006", "I21"  # myocardial infarction in both systems


def _events(rows):
    """rows: (patient_id, system) pairs."""
    return pd.DataFrame({
        "patient_id": [p for p, _ in rows],
        "code": [SNOMED if s == "snomed" else ICD10 for _, s in rows],
        "code_system": [s for _, s in rows],
        "date": pd.to_datetime(["2024-06-01"] * len(rows)),
    })


def _write(tmp_path, register, events):
    root = tmp_path / "pop"
    (root / "register").mkdir(parents=True)
    (root / "events").mkdir()
    register.to_parquet(root / "register" / "part-0.parquet", index=False)
    events.to_parquet(root / "events" / "part-0.parquet", index=False)
    return root


def _reg(n):
    return pd.DataFrame({"patient_id": list(range(1, n + 1)), "age": [80] * n})


def _stream(tmp_path, register, events, **kw):
    root = _write(tmp_path, register, events)
    # the index lists' rule only: no segments (their lists are judged inside segments)
    return score_dataset(root, tmp_path / "out", index_date=IDX, batch_patients=1,
                         progress=False, segments=False, **kw)


def test_each_batch_alone_would_raise_but_the_sum_only_warns(tmp_path):
    # batch 1 (patient 1): 3 SNOMED rows, nothing can match -> alone an error;
    # batch 2 (patient 2): 2 ICD-10 rows. Sum: 3 of 5 rows (60 % >= 20 %) in SNOMED -> warning
    ev = _events([(1, "snomed")] * 3 + [(2, "icd10")] * 2)
    with pytest.raises(CodelistError):
        ph.score_patients(_reg(1), ev[ev.patient_id == 1], index_date=IDX)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = _stream(tmp_path, _reg(2), ev)
    texts = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    other = [t for t in texts if "no code list of the call covers" in t]
    assert len(other) == 1
    assert other[0].startswith("score_dataset: 3 of 5 event row(s) (60% >= ")
    assert "(snomed 3)" in other[0]
    assert (tmp_path / "out" / "_SUCCESS").read_text() == "2\n"
    assert summary["exclusions"]["charlson"]["n_other_system"] == 3
    assert SNOMED not in " ".join(texts) and ICD10 not in " ".join(texts)


def test_each_batch_alone_would_warn_but_the_sum_is_quiet(tmp_path):
    # batch 1: 1 SNOMED + 1 ICD-10 row (50 % other -> alone a warning);
    # batch 2: 10 ICD-10 rows. Sum: 1 of 12 (8 %) < 20 % -> no code-system warning
    ev = _events([(1, "snomed"), (1, "icd10")] + [(2, "icd10")] * 10)
    with pytest.warns(DataQualityWarning, match="1 of 2 event row"):
        ph.score_patients(_reg(1), ev[ev.patient_id == 1], index_date=IDX)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _stream(tmp_path, _reg(2), ev)
    texts = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    assert not [t for t in texts if "code system" in t]
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_no_row_of_any_batch_can_match_raises_once_naming_systems(tmp_path):
    # 2 + 3 SNOMED rows over two batches: nothing can match anywhere -> one error, summed
    ev = _events([(1, "snomed")] * 2 + [(2, "snomed")] * 3)
    with pytest.raises(CodelistError) as info:
        _stream(tmp_path, _reg(2), ev)
    msg = str(info.value)
    assert msg.startswith("score_dataset: no event row can match any code list of the call: "
                          "all 5 row(s) are in code system(s) snomed 5; ")
    assert "cover icd10" in msg
    assert SNOMED not in msg
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_streamed_no_match_can_warn_instead(tmp_path):
    ev = _events([(1, "snomed")] * 2 + [(2, "snomed")] * 3)
    with pytest.warns(DataQualityWarning, match="all 5 row"):
        _stream(tmp_path, _reg(2), ev, on_no_match="warn")
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_score_patients_on_no_match_modes():
    ev = _events([(1, "snomed")] * 4)
    with pytest.raises(CodelistError, match="all 4 row"):
        ph.score_patients(_reg(1), ev, index_date=IDX)
    with pytest.warns(DataQualityWarning, match="all 4 row"):
        out = ph.score_patients(_reg(1), ev, index_date=IDX, on_no_match="warn")
    assert out["charlson_quan2011"].tolist() == [0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "ignore": no check, so no warning at all
        out = ph.score_patients(_reg(1), ev, index_date=IDX, on_no_match="ignore")
    assert out.attrs["pophealth_reports"]["charlson"]["n_other_system"] == 4
    with pytest.raises(ConfigError, match="on_no_match must be one of raise, warn, ignore"):
        ph.score_patients(_reg(1), ev, index_date=IDX, on_no_match="skip")


def test_merge_reports_sums_counts_and_systems():
    ev = _events([(1, "snomed")] * 3 + [(2, "icd10")] * 2)
    reps = [ph.score_patients(_reg(2).iloc[[i]], ev[ev.patient_id == i + 1], index_date=IDX,
                              on_no_match="ignore").attrs["pophealth_reports"]
            for i in range(2)]
    m = merge_reports(reps)["charlson"]
    assert (m["n_events"], m["n_other_system"]) == (5, 3)
    assert m["systems"]["snomed"]["n_events"] == 3 and not m["systems"]["snomed"]["covered"]
    assert m["systems"]["icd10"]["n_events"] == 2 and m["systems"]["icd10"]["covered"]
    # I21 is in Charlson's MI list and dated inside the window: both ICD-10 rows are used
    assert m["n_used"] == 2
    with pytest.warns(DataQualityWarning, match="3 of 5 event row"):
        check_code_systems(merge_reports(reps), caller="x")
