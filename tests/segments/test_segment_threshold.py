"""The unrecognised-code threshold reaches every segment list (batch callers pass 1.0)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from pophealth.contracts.exceptions import CodelistError
from pophealth.segments import bridges_to_health, segment_flags

REG = pd.DataFrame({"patient_id": [1, 2, 3], "age": [70, 50, 30],
                    "prior_emergency_admissions": [0, 0, 0]})
# 1 of 4 ICD-10 rows is malformed (25 % > the 5 % default)
EV = pd.DataFrame({"patient_id": [1, 1, 2, 3], "code": ["I50", "J44", "C78.7", "QQ!!"],
                   "code_system": "icd10",
                   "date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-02-01",
                                           "2025-03-01"])})


def test_default_threshold_still_refuses_a_quarter_unrecognised():
    with pytest.raises(CodelistError, match="max_unrecognised"):
        segment_flags(EV, register=REG, index_date="2025-04-01")


def test_a_batch_caller_can_defer_the_threshold_and_flags_are_unchanged():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = segment_flags(EV, register=REG, index_date="2025-04-01", max_unrecognised=1.0)
        seg = bridges_to_health(REG, EV, index_date="2025-04-01", max_unrecognised=1.0)
    # by hand: heart failure and COPD for 1, metastatic cancer for 2, nothing for 3
    assert f.loc[[1, 2, 3], "heart_failure"].tolist() == [True, False, False]
    assert f.loc[[1, 2, 3], "copd"].tolist() == [True, False, False]
    assert f.loc[[1, 2, 3], "metastatic_cancer@730d"].tolist() == [False, True, False]
    assert seg.loc[3, "segment"] == "Healthy"
    assert seg.loc[2, "segment"] != "Healthy"
