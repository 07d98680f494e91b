"""load_codelist reads OpenCodelists downloads directly (issue 12 item 3).

The downloads are crafted here in the two published shapes: ``code,term`` and
``code,term,<category>``. Codes used: HF_COD 20250912 84114007 "Heart failure" and
10335000 "Chronic right-sided heart failure"; DEM_COD 20260630 52448006 "Dementia".
"""

from __future__ import annotations

import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import CodelistError

SENTINEL = "999999999999999999"  # a value that must never appear in an error


def write(tmp_path, text, name="hf.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_code_term_download_with_system_and_condition(tmp_path):
    p = write(tmp_path, "code,term\n84114007,Heart failure\n"
                        "10335000,\"Chronic right-sided heart failure\"\n")
    cl = ph.load_codelist(p, system="snomed", condition="hf")
    assert cl.name == "hf" and cl.conditions == ("hf",)
    assert cl.table[["code", "code_system", "match"]].values.tolist() == [
        ["84114007", "snomed", "exact"], ["10335000", "snomed", "exact"]]
    reg = pd.DataFrame({"patient_id": [1, 2]})
    ev = pd.DataFrame({"patient_id": [1, 2], "code": ["84114007", "52448006"],
                       "code_system": "snomed", "date": pd.to_datetime(["2024-01-01"] * 2)})
    f = ph.flag_conditions(ev, cl, register=reg, index_date="2025-04-01")
    assert f["hf"].tolist() == [True, False]


def test_category_column_form_default_and_named(tmp_path):
    p = write(tmp_path, "code,term,category\n84114007,Heart failure,hf\n52448006,Dementia,dem\n")
    cl = ph.load_codelist(p, system="snomed")
    assert cl.conditions == ("hf", "dem")
    q = write(tmp_path, "code,term,Grouping\n84114007,Heart failure,hf\n52448006,Dementia,dem\n",
              "grouped.csv")
    cl2 = ph.load_codelist(q, system="snomed", category="Grouping")
    assert dict(zip(cl2.table["code"], cl2.table["condition"], strict=True)) == {
        "84114007": "hf", "52448006": "dem"}


@pytest.mark.parametrize(("text", "kwargs", "needle"), [
    ("code,term\n84114007,x\n", {"condition": "hf"}, "pass system="),
    ("code,term\n84114007,x\n", {"system": "snomed"}, "exactly one of condition="),
    ("code,term,category\n84114007,x,hf\n", {"system": "snomed", "condition": "hf",
                                             "category": "category"}, "exactly one of"),
    ("snomedcode,term\n84114007,x\n", {"system": "snomed", "condition": "hf"},
     "missing column 'code'"),
    ("code,term\n84114007,x\n", {"system": "snomed", "category": "grp"},
     "missing category column 'grp'"),
    ("condition,code,code_system,match\nhf,84114007,snomed,exact\n", {"system": "snomed"},
     "has column 'code_system'"),
])
def test_errors_name_what_is_missing(tmp_path, text, kwargs, needle):
    p = write(tmp_path, text)
    with pytest.raises(CodelistError, match=needle.replace("(", r"\(")) as e:
        ph.load_codelist(p, **kwargs)
    assert "\n" not in str(e.value)


def test_empty_categories_are_counted_with_positions_never_values():
    dl = pd.DataFrame({"code": [SENTINEL, "84114007", SENTINEL], "term": ["a", "b", "c"],
                       "category": ["x", None, " "]})
    with pytest.raises(CodelistError) as e:
        ph.load_codelist(dl, system="snomed")
    msg = str(e.value)
    assert "column 'category'" in msg and "2 row(s)" in msg and "[1, 2]" in msg
    assert SENTINEL not in msg


def test_shipped_list_refuses_download_arguments():
    with pytest.raises(CodelistError, match="not to a shipped list"):
        ph.load_codelist("pcd_snomed", system="snomed")


def test_own_form_still_loads_unchanged(tmp_path):
    p = write(tmp_path, "condition,code,code_system,match\nchf,I50,icd10,prefix\n")
    cl = ph.load_codelist(p)
    assert cl.table[["condition", "code", "code_system", "match"]].values.tolist() == [
        ["chf", "I50", "icd10", "prefix"]]
