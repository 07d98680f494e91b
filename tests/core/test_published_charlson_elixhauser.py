"""The shipped Charlson and Elixhauser definitions against the published tables.

Expected values come only from the independent transcriptions in
``tests/fixtures/published/`` (each file cites its source table and version; see
``published.py``), never from ``src/pophealth/data``. A failure here means the shipped
definition and the transcription disagree: resolve it against the primary source.

Two layers:

* definitions: every condition's prefix set, every weight of every scheme, every
  hierarchy pair and the floor rule, compared in full with what ``load_codelist`` and
  ``load_index`` return;
* behaviour: for every published prefix, a patient holding one code built from it is
  flagged with exactly the published conditions and scores exactly the published weight
  through ``ph.charlson`` / ``ph.elixhauser``; every pair of conditions scores as the
  published weights and hierarchy say.
"""

from __future__ import annotations

import itertools

import pandas as pd
import published as pub
import pytest

import pophealth as ph

IDX = "2025-04-01"

# (index, code list, variant argument of ph.charlson, weight schemes scored with that list)
CASES = [
    ("charlson", "charlson_quan2005_icd10", "quan2005", ("quan2011", "charlson1987", "shmi")),
    ("charlson", "charlson_shmi_icd10", "shmi", ("shmi",)),
    ("elixhauser", "elixhauser_quan2005_icd10", None, ("van_walraven", "swiss")),
]
LISTS = [c[1] for c in CASES]
SCHEMES = [(c[0], s) for c in CASES[::2] for s in pub.schemes(c[0])]


def _code_from(prefix: str) -> str:
    """A code inside ``prefix``: a 3-character category gets a 4th character."""
    return prefix + "9" if len(prefix) == 3 else prefix


def _score(index: str, variant: str | None, scheme: str, events: pd.DataFrame,
           register: pd.DataFrame) -> pd.Series:
    if index == "charlson":
        return ph.charlson(events, weights=scheme, variant=variant, register=register,
                           index_date=IDX)
    return ph.elixhauser(events, weights=scheme, register=register, index_date=IDX)


def _patients(code_sets: list[tuple[str, ...]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Register with patient i holding exactly the codes ``code_sets[i]``."""
    register = pd.DataFrame({"patient_id": range(len(code_sets))})
    rows = [(i, c) for i, codes in enumerate(code_sets) for c in codes]
    events = pd.DataFrame(rows, columns=["patient_id", "code"]).assign(code_system="icd10")
    return register, events


def _diff(published: dict, shipped: dict) -> str:
    lines = []
    for c in sorted(set(published) | set(shipped)):
        a, b = published.get(c, frozenset()), shipped.get(c, frozenset())
        if a != b:
            lines.append(f"{c}: published only {sorted(a - b)}, shipped only {sorted(b - a)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- definitions


@pytest.mark.parametrize("listname", LISTS)
def test_every_condition_prefix_set_matches_the_published_table(listname):
    table = ph.load_codelist(listname).table
    assert set(table["code_system"]) == {"icd10"}
    assert set(table["match"]) == {"prefix"}
    shipped = {c: frozenset(g["code"]) for c, g in table.groupby("condition")}
    published = pub.codes(listname)
    assert shipped == published, "\n" + _diff(published, shipped)
    # no prefix listed twice under one condition (a duplicate would hide a dropped one)
    assert not table.duplicated(["condition", "code"]).any()


@pytest.mark.parametrize(("index", "scheme"), SCHEMES)
def test_every_weight_matches_the_published_table(index, scheme):
    shipped = ph.load_index(index).weight_vector(scheme)
    assert shipped.index.is_unique
    assert shipped.to_dict() == pub.weights(index, scheme)


@pytest.mark.parametrize("index", ["charlson", "elixhauser"])
def test_schemes_hierarchy_and_floor_rules_match_the_published_tables(index):
    defn = ph.load_index(index)
    assert set(defn.schemes) == set(pub.schemes(index))
    assert sorted(defn.hierarchy) == sorted(pub.hierarchy(index))
    assert defn.floor_at_zero == {
        s: pub.FLOOR_AT_ZERO.get((index, s), False) for s in pub.schemes(index)
    }


def test_quan2011_maximum_is_24_and_published_tables_are_complete():
    # Quan 2011 states a maximum total of 24; the 17 conditions of Table 1 each have a
    # weight in every scheme.
    all_charlson = set(pub.codes("charlson_quan2005_icd10"))
    assert pub.expected_score(all_charlson, "charlson", "quan2011") == 24
    for index, listname in (("charlson", "charlson_quan2005_icd10"),
                            ("charlson", "charlson_shmi_icd10"),
                            ("elixhauser", "elixhauser_quan2005_icd10")):
        for scheme in pub.schemes(index):
            assert set(pub.weights(index, scheme)) == set(pub.codes(listname))


# ----------------------------------------------------------------------------- behaviour


def _one_code_per_prefix(listname: str) -> list[tuple[str, str]]:
    return [(cond, _code_from(p)) for cond, prefixes in pub.codes(listname).items()
            for p in sorted(prefixes)]


@pytest.mark.parametrize("listname", LISTS)
def test_a_code_from_each_published_prefix_flags_exactly_its_published_conditions(listname):
    pairs = _one_code_per_prefix(listname)
    register, events = _patients([(code,) for _, code in pairs])
    flags = ph.flag_conditions(events, listname, register=register, index_date=IDX)
    conditions = list(pub.codes(listname))
    assert sorted(flags.columns) == sorted(conditions)
    want = pd.DataFrame(
        [[c in pub.conditions_hit(code, listname) for c in flags.columns] for _, code in pairs],
        index=flags.index, columns=flags.columns,
    )
    bad = [(i, pairs[i][0]) for i in range(len(pairs))
           if not (flags.iloc[i] == want.iloc[i]).all()]
    assert not bad, f"{len(bad)} of {len(pairs)} codes flag other conditions: {bad[:10]}"
    # each code is at least its own condition (the transcription's own consistency)
    assert all(cond in pub.conditions_hit(code, listname) for cond, code in pairs)


@pytest.mark.parametrize(
    ("index", "listname", "variant", "scheme"),
    [(i, ln, v, s) for i, ln, v, schemes in CASES for s in schemes],
)
def test_a_code_from_each_published_prefix_scores_the_published_weight(
        index, listname, variant, scheme):
    pairs = _one_code_per_prefix(listname)
    register, events = _patients([(code,) for _, code in pairs])
    got = _score(index, variant, scheme, events, register)
    want = [pub.expected_score(pub.conditions_hit(code, listname), index, scheme)
            for _, code in pairs]
    bad = [(pairs[i][0], int(got.iloc[i]), want[i]) for i in range(len(pairs))
           if got.iloc[i] != want[i]]
    assert not bad, f"{len(bad)} codes score wrong (condition, got, published): {bad[:10]}"
    # most codes hit one condition only, so this is the condition's own weight
    single = [i for i, (c, code) in enumerate(pairs)
              if pub.conditions_hit(code, listname) == {c}]
    assert len(single) > 0.9 * len(pairs)


@pytest.mark.parametrize(
    ("index", "listname", "variant", "scheme"),
    [(i, ln, v, s) for i, ln, v, schemes in CASES for s in schemes],
)
def test_every_pair_of_conditions_scores_the_published_weights_and_hierarchy(
        index, listname, variant, scheme):
    # one representative code per condition: its first published prefix
    rep = {c: _code_from(sorted(p)[0]) for c, p in pub.codes(listname).items()}
    pairs = list(itertools.combinations(sorted(rep), 2))
    register, events = _patients([(rep[a], rep[b]) for a, b in pairs])
    got = _score(index, variant, scheme, events, register)
    want = [pub.expected_score(pub.conditions_hit(rep[a], listname)
                               | pub.conditions_hit(rep[b], listname), index, scheme)
            for a, b in pairs]
    bad = [(pairs[i], int(got.iloc[i]), want[i]) for i in range(len(pairs))
           if got.iloc[i] != want[i]]
    assert not bad, f"{len(bad)} pairs score wrong (pair, got, published): {bad[:10]}"


def test_hierarchy_pairs_by_hand():
    # Worked from the fixtures' tables by hand, Quan 2011: mild 2 + moderate/severe liver 4
    # -> 4; diabetes 0 + with complications 1 -> 1; malignancy 2 + metastatic 6 -> 6.
    # SHMI: diabetes 3 + complications -1 -> -1 -> floored 0. van Walraven: solid tumour 4 +
    # metastatic 12 -> 12; Swiss: hypertension -4 + complicated -3 -> -3.
    register, events = _patients([("K703", "K721"), ("E119", "E112"), ("C509", "C789")])
    assert _score("charlson", "quan2005", "quan2011", events, register).tolist() == [4, 1, 6]
    register, events = _patients([("E119", "E112")])
    assert _score("charlson", "shmi", "shmi", events, register).tolist() == [0]
    register, events = _patients([("C509", "C789"), ("I109", "I139")])
    assert _score("elixhauser", None, "van_walraven", events, register).tolist() == [12, 0]
    assert _score("elixhauser", None, "swiss", events, register).tolist() == [17, -3]
