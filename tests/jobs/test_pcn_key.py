"""The caseload's PCN key: one normalised string per PCN (a categorical), not per patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pophealth.jobs.run import _pcn_key


@pytest.mark.parametrize("as_category", [False, True])
def test_pcn_key_is_the_normalised_code_of_each_patient(as_category):
    pcn = pd.Series(["P2", None, " ", "", "P1", np.nan, "P2", "=x", "P1 "], dtype=object)
    if as_category:
        pcn = pcn.astype("category")
    patients = pd.DataFrame({"pcn": pcn, "risk": np.arange(9.0)})
    out = _pcn_key(patients)
    key = out["_pcn_key"]
    # by hand: missing and blank -> "", codes kept as written (no strip of "P1 ")
    assert key.astype(object).tolist() == ["P2", "", "", "", "P1", "", "P2", "=x", "P1 "]
    assert isinstance(key.dtype, pd.CategoricalDtype)
    assert key.cat.categories.tolist() == ["", "=x", "P1", "P1 ", "P2"]  # sorted, present only
    assert "_pcn_key" not in patients.columns  # the caller's frame is not changed
    assert np.shares_memory(out["risk"].to_numpy(), patients["risk"].to_numpy())  # no copy


def test_pcn_key_has_no_empty_code_when_every_pcn_is_known():
    out = _pcn_key(pd.DataFrame({"pcn": ["B", "A", "B"]}))
    assert out["_pcn_key"].cat.categories.tolist() == ["A", "B"]
    assert out["_pcn_key"].astype(object).tolist() == ["B", "A", "B"]


def test_numeric_pcn_codes_become_text():
    out = _pcn_key(pd.DataFrame({"pcn": pd.array([7, None, 12], "Int64")}))
    assert out["_pcn_key"].astype(object).tolist() == ["7", "", "12"]
