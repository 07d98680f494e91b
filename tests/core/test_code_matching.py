"""Code-list matching and code normalisation against slow, obviously-correct references.

``Codelist.match`` / ``CodeMatcher`` look codes up by hash per rule kind (exact, prefix
of each length) and expand rule codes shared by several conditions through a CSR table;
``normalise_codes`` / ``is_valid_code`` run plain-Python string rules on plain strings
and pandas' string methods otherwise. The references here are a double loop over
(code, rule) with ``==`` / ``startswith`` and the pandas rules written out.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.core.codelists import Codelist, load_codelist
from pophealth.core.codes import CODE_PATTERNS, canonical_system, is_valid_code, normalise_codes

# a small alphabet, so that prefixes, exact hits and near misses are common
_CODE = st.text(alphabet="A1", min_size=1, max_size=3)
_RULES = st.lists(st.tuples(st.sampled_from(["c1", "c2"]), _CODE,
                            st.sampled_from(["exact", "prefix"]),
                            st.sampled_from(["icd10", "snomed"])), min_size=1, max_size=25)


def _reference_match(table: pd.DataFrame, conditions: tuple, codes: list, system: str):
    pairs = set()
    for row in table.itertuples():
        if row.code_system != system:
            continue
        c = conditions.index(row.condition)
        for i, code in enumerate(codes):
            if code == row.code if row.match == "exact" else code.startswith(row.code):
                pairs.add((i, c))
    return sorted(pairs)


@settings(max_examples=150, deadline=None)
@given(rules=_RULES, codes=st.lists(_CODE, max_size=30),
       split=st.integers(0, 30), system=st.sampled_from(["icd10", "snomed"]))
def test_match_equals_a_double_loop_over_codes_and_rules(rules, codes, split, system):
    cl = Codelist.from_frame(pd.DataFrame(rules, columns=["condition", "code", "match",
                                                          "code_system"]))
    codes_arr = np.asarray(codes, dtype=object)
    ci, ki = cl.match(codes_arr, system)
    got = list(zip(ci.tolist(), ki.tolist(), strict=True))
    assert got == _reference_match(cl.table, cl.conditions, codes, system)
    # one prepared matcher over two batches gives the pairs of the whole
    m = cl.matcher(system)
    a, b = m.match(codes_arr[:split]), m.match(codes_arr[split:])
    joined = sorted([*zip(a[0].tolist(), a[1].tolist(), strict=True),
                     *zip((b[0] + min(split, len(codes))).tolist(), b[1].tolist(),
                          strict=True)])
    assert joined == got


def test_a_rule_code_shared_by_two_conditions_flags_both_and_duplicates_once():
    cl = Codelist.from_frame(pd.DataFrame({
        "condition": ["a", "b", "a", "a"], "code": ["E11", "E11", "E112", "E1"],
        "code_system": "icd10", "match": ["prefix", "prefix", "exact", "prefix"]}))
    ci, ki = cl.match(np.array(["E112", "E1", "E11", "I10"], dtype=object), "icd10")
    # E112: a (E11 and E1 prefixes, E112 exact), b (E11 prefix only); E1: a;
    # E11: a, b; I10: none
    assert list(zip(ci.tolist(), ki.tolist(), strict=True)) == [
        (0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]


def test_shipped_lists_match_the_reference_on_their_own_codes_and_neighbours():
    cl = load_codelist("charlson_quan2005_icd10")
    codes = cl.table["code"].tolist()
    probe = sorted({*codes, *(c + "9" for c in codes), *(c[:-1] for c in codes)})
    ci, ki = cl.match(np.asarray(probe, dtype=object), "icd10")
    assert list(zip(ci.tolist(), ki.tolist(), strict=True)) == _reference_match(
        cl.table, cl.conditions, probe, "icd10")


def _pandas_normalise(codes, system):
    s = pd.Series(np.asarray(codes, dtype=object)).fillna("").astype(str)
    s = s.str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    if system == "icd10":
        s = s.str.replace(r"^([A-Z][0-9]{2})X$", r"\1", regex=True)
    return s.tolist()


_RAW = st.text(alphabet=st.sampled_from(list("aAxX019 .-_ßǆİ\n\t")), max_size=7)


@settings(max_examples=200, deadline=None)
@given(codes=st.lists(_RAW, max_size=20), system=st.sampled_from(["icd10", "ICD-10", "snomed"]),
       missing=st.booleans())
def test_normalise_and_validity_equal_the_pandas_string_rules(codes, system, missing):
    """Plain strings take the plain-Python route; a list with a missing value the pandas
    route: both must give what pandas' string methods give."""
    raw = [*codes, None] if missing else codes
    canon = "icd10" if system != "snomed" else "snomed"
    want = _pandas_normalise(raw, canon)
    got = normalise_codes(raw, system)
    assert got.dtype == object and got.tolist() == want
    pattern = re.compile(CODE_PATTERNS[canon])
    assert is_valid_code(got, system).tolist() == [pattern.fullmatch(x) is not None
                                                   for x in want]


def test_canonical_system_equals_normalise_system():
    from pophealth.core.codes import SYSTEM_ALIASES, normalise_system

    names = ["SNOMED CT", "sct", "ICD-10", "icd10", "OPCS-4", "Read v3", "Read v2",
             "ICD-10-CM", "synthetic_pc", "  Snomed-CT UK ", *SYSTEM_ALIASES]
    assert [canonical_system(x) for x in names] == normalise_system(names).tolist()
