"""Shipped code lists and index definitions are parsed once per process; what a caller
gets back is its own copy. Attack: edit every returned table and dict, then score again.

Expected values are Quan et al. (2011) weights: metastatic solid tumour 6, AIDS/HIV 4.
"""

from __future__ import annotations

import pandas as pd

import pophealth as ph

REG = pd.DataFrame({"patient_id": [1, 2]})
EV = pd.DataFrame({"patient_id": [1, 2], "code": ["C78.0", "B20"],
                   "code_system": ["icd10", "icd10"]})


def _charlson():
    return ph.charlson(EV, register=REG, index_date="2025-04-01").tolist()


def test_editing_a_loaded_code_list_changes_neither_the_next_load_nor_a_score():
    first = ph.load_codelist("charlson_quan2005_icd10")
    before = first.table.copy()
    first.table["code"] = "ZZZ"
    first.table.drop(first.table.index[1:], inplace=True)  # noqa: PD002 (the attack)
    again = ph.load_codelist("charlson_quan2005_icd10")
    pd.testing.assert_frame_equal(again.table, before)
    assert again.table is not first.table
    assert _charlson() == [6, 4]


def test_editing_a_loaded_index_changes_neither_the_next_load_nor_a_score():
    d = ph.load_index("charlson")
    d.weights["weight"] = 100
    d.conditions.drop(d.conditions.index, inplace=True)  # noqa: PD002 (the attack)
    d.floor_at_zero.clear()
    d.codelists.clear()
    again = ph.load_index("charlson")
    assert again.weight_vector("quan2011")["metacanc"] == 6
    assert again.weight_vector("quan2011")["aids"] == 4
    assert len(again.conditions) == 17
    assert again.codelists and again.floor_at_zero
    assert _charlson() == [6, 4]
