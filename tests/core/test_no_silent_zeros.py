"""Issue 12 item 5: no silent zeros from code systems, and clear errors for the wrong shape.

Expected values are hand-computed from the tiny tables below. The four patients are the
issue's: dementia (SNOMED CT 52448006), heart failure (84114007), COPD (13645005) and
type 2 diabetes (44054006), recorded in primary care in SNOMED CT.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pophealth as ph
from pophealth.contracts.exceptions import CodelistError, DataQualityWarning, SchemaError
from pophealth.core.codes import normalise_system

IDX = "2025-04-01"
SNOMED = {"dementia": "52448006", "heart_failure": "84114007", "copd": "13645005",
          "t2dm": "44054006"}
REG = pd.DataFrame({"patient_id": [1, 2, 3, 4], "age": [81, 77, 69, 58]})


def gp_events(system="SNOMED CT") -> pd.DataFrame:
    """Patient i has the i-th of the four conditions, as one SNOMED CT event."""
    return pd.DataFrame({"patient_id": [1, 2, 3, 4], "code": list(SNOMED.values()),
                         "code_system": system,
                         "date": pd.to_datetime(["2024-05-01"] * 4)})


def snomed_list(system="snomed") -> pd.DataFrame:
    return pd.DataFrame({"condition": list(SNOMED), "code": list(SNOMED.values()),
                         "code_system": system, "match": "exact"})


def caught(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(w.message) for w in ws if issubclass(w.category, DataQualityWarning)]


# --- code-system aliases ----------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "canonical"), [
    ("SNOMED CT", "snomed"), ("SNOMED-CT", "snomed"), ("sct", "snomed"), ("snomedct", "snomed"),
    ("SNOMED", "snomed"), ("snomed", "snomed"),
    ("ICD-10", "icd10"), ("ICD10", "icd10"), ("icd10", "icd10"),
    ("OPCS-4", "opcs4"), ("OPCS4", "opcs4"),
    ("CTV3", "ctv3"), ("Read v3", "ctv3"), ("Read v2", "readv2"),
    # ICD-10-CM (US) is a different classification from ICD-10 (WHO / UK): never an alias
    ("ICD-10-CM", "icd10cm"),
])
def test_code_system_aliases(raw, canonical):
    assert normalise_system([raw]).tolist() == [canonical]


@pytest.mark.parametrize("tag", ["SNOMED CT", "SNOMED-CT", "sct", "snomedct", "SNOMED"])
def test_snomed_ct_tagged_events_match_a_snomed_list(tag):
    f = ph.flag_conditions(gp_events(tag), snomed_list("snomed"), register=REG, index_date=IDX)
    # hand: patient i has exactly the i-th condition
    assert f.to_numpy().tolist() == np.eye(4, dtype=bool).tolist()
    assert f.attrs["pophealth_report"]["systems"] == {
        "snomed": {"n_events": 4, "covered": True, "n_matched": 4}}


def test_a_list_tagged_snomed_ct_matches_events_tagged_snomed():
    f = ph.flag_conditions(gp_events("snomed"), snomed_list("SNOMED CT"), register=REG,
                           index_date=IDX)
    assert f.to_numpy().sum() == 4


def test_icd10_cm_events_never_match_an_icd10_list():
    ev = pd.DataFrame({"patient_id": [1], "code": ["I50.9"], "code_system": "ICD-10-CM"})
    with pytest.raises(CodelistError, match=r"\(icd10cm 1\); the list covers icd10"):
        ph.flag_conditions(ev, "charlson_quan2005_icd10", register=REG, index_date=IDX)


# --- flag_conditions: one list -----------------------------------------------------------------

def test_flag_conditions_raises_when_no_row_is_in_the_lists_system():
    with pytest.raises(CodelistError) as exc:
        ph.flag_conditions(gp_events(), "charlson_quan2005_icd10", register=REG, index_date=IDX)
    msg = str(exc.value)
    assert "no event row can match the list: all 4 row(s)" in msg
    assert "(snomed 4); the list covers icd10" in msg
    assert "\n" not in msg
    assert not any(code in msg for code in SNOMED.values())  # never a code


def test_flag_conditions_on_no_match_warn_and_ignore():
    f, msgs = caught(ph.flag_conditions, gp_events(), "charlson_quan2005_icd10", register=REG,
                     index_date=IDX, on_no_match="warn")
    assert f.to_numpy().sum() == 0
    assert [m for m in msgs if "no event row can match" in m and "snomed 4" in m]
    g, msgs = caught(ph.flag_conditions, gp_events(), "charlson_quan2005_icd10", register=REG,
                     index_date=IDX, on_no_match="ignore")
    assert [m for m in msgs if "snomed" in m] == []
    rep = g.attrs["pophealth_report"]
    assert (rep["n_events"], rep["n_other_system"], rep["codelist_systems"]) == (4, 4, ("icd10",))


def test_bad_on_no_match_and_threshold_are_config_errors():
    with pytest.raises(ph.ConfigError, match="on_no_match"):
        ph.flag_conditions(gp_events(), snomed_list(), register=REG, index_date=IDX,
                           on_no_match="silent")
    with pytest.raises(ph.ConfigError, match="warn_other_system"):
        ph.flag_conditions(gp_events(), snomed_list(), register=REG, index_date=IDX,
                           warn_other_system=1.5)


def test_empty_events_are_not_an_error():
    ev = gp_events().iloc[:0]
    f = ph.flag_conditions(ev, "charlson_quan2005_icd10", register=REG, index_date=IDX)
    assert f.to_numpy().sum() == 0
    assert f.attrs["pophealth_report"]["systems"] == {}


def _mixed(n_icd, n_snomed):
    rows = [(1, "I50", "icd10")] * n_icd + [(2, "84114007", "SNOMED CT")] * n_snomed
    return pd.DataFrame(rows, columns=["patient_id", "code", "code_system"])


@pytest.mark.parametrize(("n_icd", "n_snomed", "warns"), [
    (4, 1, True),    # 1/5 = 20 %: at the threshold, warns
    (5, 1, False),   # 1/6 = 16.7 %: below
    (1, 4, True),    # 4/5 = 80 %
])
def test_other_system_share_warning_at_20_percent(n_icd, n_snomed, warns):
    _, msgs = caught(ph.flag_conditions, _mixed(n_icd, n_snomed), "charlson_quan2005_icd10",
                     register=REG, index_date=IDX)
    share = [m for m in msgs if "does not cover" in m]
    expected = [f"flag_conditions(charlson_quan2005_icd10): {n_snomed} of {n_icd + n_snomed} "
                f"event row(s) ({n_snomed / (n_icd + n_snomed):.0%} >= warn_other_system=20%) "
                f"are in code system(s) the list does not cover (snomed {n_snomed}) and cannot "
                f"count; the list covers icd10 ({n_icd} row(s), {n_icd} with a code in the "
                "list)"]
    assert share == (expected if warns else [])


def test_other_system_share_threshold_is_a_keyword():
    _, msgs = caught(ph.flag_conditions, _mixed(1, 4), "charlson_quan2005_icd10",
                     register=REG, index_date=IDX, warn_other_system=None)
    assert [m for m in msgs if "does not cover" in m] == []
    _, msgs = caught(ph.flag_conditions, _mixed(5, 1), "charlson_quan2005_icd10",
                     register=REG, index_date=IDX, warn_other_system=0.1)
    assert len([m for m in msgs if "(snomed 1)" in m]) == 1


def test_report_counts_per_system_by_hand():
    ev = pd.DataFrame({
        "patient_id": [1, 1, 2, 3, 3, 4],
        # I50 and E11.2 are in Charlson (chf, diabwc); Z00 is valid ICD-10, not in the list
        "code": ["I50", "E11.2", "Z00", "84114007", "13645005", "I50"],
        "code_system": ["ICD-10", "icd10", "icd10", "SNOMED CT", "sct", None],
    })
    f, _ = caught(ph.flag_conditions, ev, "charlson_quan2005_icd10", register=REG,
                  index_date=IDX)
    rep = f.attrs["pophealth_report"]
    assert rep["systems"] == {
        "<missing>": {"n_events": 1, "covered": False, "n_matched": 0},
        "icd10": {"n_events": 3, "covered": True, "n_matched": 2},
        "snomed": {"n_events": 2, "covered": False, "n_matched": 0},
    }
    assert rep["n_other_system"] == 3


# --- score_patients: several lists; raise only when NO row can match ANY list ------------------

def test_issue_four_snomed_patients_through_score_patients_raise():
    with pytest.raises(CodelistError) as exc:
        ph.score_patients(REG, gp_events(), index_date=IDX)
    msg = str(exc.value)
    assert ("no event row can match any code list of the call: all 4 row(s) are in code "
            "system(s) snomed 4; the lists (charlson_quan2005_icd10, elixhauser_quan2005_icd10, "
            "hfrs_gilbert2018_icd10) cover icd10") in msg
    assert not any(code in msg for code in SNOMED.values())


def test_issue_four_snomed_patients_with_primary_care_lists_of_another_system_raise():
    # primary-care lists in another system only: the synthetic population's stand-in rows
    from pophealth.synthetic.lists import standin_rows
    lists = {k: ph.load_codelist(standin_rows(k), name=f"{k}_standin") for k in ("efi", "cms")}
    with pytest.raises(CodelistError, match=r"snomed 4; .* cover icd10, syntheticpc"):
        ph.score_patients(REG, gp_events(), index_date=IDX, codelists=lists)


def test_mostly_snomed_events_with_icd10_lists_warn_with_counts():
    ev = pd.concat([gp_events(), pd.DataFrame({"patient_id": [2], "code": ["I50"],
                                               "code_system": "icd10",
                                               "date": pd.to_datetime(["2024-05-01"])})],
                   ignore_index=True)
    out, msgs = caught(ph.score_patients, REG, ev, index_date=IDX)
    share = [m for m in msgs if "no code list of the call covers" in m]
    assert len(share) == 1
    assert share[0].startswith("score_patients: 4 of 5 event row(s) (80% >= "
                               "warn_other_system=20%) are in code system(s) no code list of "
                               "the call covers (snomed 4)")
    # hand: only patient 2's ICD-10 I50 counts: chf, Quan 2011 weight 2
    assert out["charlson_quan2011"].tolist() == [0, 2, 0, 0]
    reps = out.attrs["pophealth_reports"]
    assert reps["charlson"]["systems"]["snomed"] == {"n_events": 4, "covered": False,
                                                     "n_matched": 0}


def test_a_list_that_can_match_nothing_warns_when_another_list_can():
    ev = pd.DataFrame({"patient_id": [1, 2], "code": ["I50", "F00"], "code_system": "icd10",
                       "date": pd.to_datetime(["2024-05-01"] * 2)})
    out, msgs = caught(ph.score_patients, REG, ev, index_date=IDX,
                       codelists={"efi": "efi_snomed_synthetic"})
    assert ("score_patients: efi: code list efi_snomed_synthetic (covers snomed, syntheticpc) "
            "can match "
            "none of the 2 event row(s) (icd10 2), so efi is scored from no events") in msgs
    assert out["efi_deficits"].tolist() == [0, 0, 0, 0]
    assert out["charlson_quan2011"].tolist() == [2, 2, 0, 0]  # chf 2; dementia 2


def test_score_patients_matches_snomed_ct_tags_against_a_snomed_list():
    cl = snomed_list("snomed").assign(condition=["dementia", "chf", "cpd", "diab"])
    # the other 13 Charlson conditions, each with a concept id no event carries
    rest = [c for c in ph.load_index("charlson").condition_names if c not in set(cl.condition)]
    cl = pd.concat([cl, pd.DataFrame({"condition": rest, "code": "100000000",
                                      "code_system": "snomed", "match": "exact"})])
    out, msgs = caught(ph.score_patients, REG, gp_events("SNOMED CT"), index_date=IDX,
                       codelists={"charlson": cl, "elixhauser": None, "hfrs": None})
    # hand, Quan 2011: dementia 2, chf 2, cpd 1, diab 0
    assert out["charlson_quan2011"].tolist() == [2, 2, 1, 0]
    assert [m for m in msgs if "cover" in m] == []


# --- events of the wrong shape --------------------------------------------------------------

def _comorbidipy():
    return pd.DataFrame({"id": [9990000018, 9990000026], "code": ["I500", "F00"]})


def _sus_wide():
    return pd.DataFrame({"nhs_number": [9990000018], "admission_date": ["2024-05-01"],
                         "primary_diagnosis": ["I500"], "secondary_diagnosis_1": ["F00"],
                         "secondary_diagnosis_2": ["J449"], "primary_procedure": ["K401"]})


@pytest.mark.parametrize("make", [_comorbidipy, _sus_wide])
@pytest.mark.parametrize("call", ["flag_conditions", "charlson", "score_patients"])
def test_events_of_the_wrong_shape_get_a_clear_error(make, call):
    ev = make()
    with pytest.raises(SchemaError) as exc:
        if call == "flag_conditions":
            ph.flag_conditions(ev, "charlson_quan2005_icd10", register=REG, index_date=IDX)
        elif call == "charlson":
            ph.charlson(ev, register=REG, index_date=IDX)
        else:
            ph.score_patients(REG, ev, index_date=IDX)
    msg = str(exc.value)
    got = ", ".join(ev.columns)
    assert f"need columns patient_id, code, code_system; got {got} - " in msg
    assert "pophealth.engines.extracts" in msg
    assert "lack" not in msg and "\n" not in msg
    assert not any(v in msg for v in ("9990000018", "I500", "J449", "K401"))  # no values


def test_charlson_on_an_id_code_frame_without_register_still_names_the_columns():
    with pytest.raises(SchemaError, match="need columns patient_id, code, code_system; got id, "
                                          "code"):
        ph.charlson(_comorbidipy())


def test_wide_frame_column_list_is_cut_short():
    wide = pd.DataFrame({f"diag_{i:02d}": ["I500"] for i in range(20)})
    with pytest.raises(SchemaError, match=r"diag_11, \.\.\. \(20 columns\) - "):
        ph.flag_conditions(wide, "charlson_quan2005_icd10", register=REG, index_date=IDX)


def test_integer_flags_keep_their_own_error():
    names = ph.load_index("charlson").condition_names
    f = pd.DataFrame({n: [1, 0] for n in names})
    with pytest.raises(CodelistError, match="flag column 'mi' is int64, expected bool"):
        ph.charlson(f)


# --- property: per-system counts add up, whatever the order and the split ----------------------

_SYSTEMS = ["icd10", "ICD-10", "SNOMED CT", "snomed", "Read v2", None]
_CODES = ["I50", "E112", "Z00", "84114007", "XaBcd", "??"]


@st.composite
def events_tables(draw):
    n = draw(st.integers(0, 40))
    return pd.DataFrame({
        "patient_id": np.array(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)),
                               dtype=np.int64),
        "code": pd.Series(draw(st.lists(st.sampled_from(_CODES), min_size=n, max_size=n)),
                          dtype=object),
        "code_system": pd.Series(draw(st.lists(st.sampled_from(_SYSTEMS), min_size=n,
                                               max_size=n)), dtype=object),
    })


def _report(ev, register):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        f = ph.flag_conditions(ev, "charlson_quan2005_icd10", register=register,
                               index_date=IDX, max_unrecognised=1.0, on_no_match="ignore")
    return f.attrs["pophealth_report"]


def _summed(reports):
    out: dict = {}
    for r in reports:
        for k, v in r["systems"].items():
            acc = out.setdefault(k, {"n_events": 0, "covered": v["covered"], "n_matched": 0})
            acc["n_events"] += v["n_events"]
            acc["n_matched"] += v["n_matched"]
    return out


@settings(max_examples=60, deadline=None)
@given(ev=events_tables(), seed=st.integers(0, 2**16), cut=st.integers(1, 6),
       chunk=st.integers(1, 7))
def test_per_system_counts_add_up_whatever_the_order_and_split(ev, seed, cut, chunk):
    import pophealth.core.conditions as conditions

    register = pd.DataFrame({"patient_id": np.arange(1, 7, dtype=np.int64)})
    whole = _report(ev, register)
    systems = whole["systems"]
    assert sum(v["n_events"] for v in systems.values()) == whole["n_events"] == len(ev)
    assert sum(v["n_events"] for v in systems.values() if not v["covered"]) == \
        whole["n_other_system"]
    # an independent count of the rows per canonical system
    names = normalise_system(ev["code_system"]).fillna("<missing>")
    assert {k: v["n_events"] for k, v in systems.items()} == names.value_counts().to_dict()
    shuffled = ev.iloc[np.random.default_rng(seed).permutation(len(ev))]
    assert _report(shuffled, register)["systems"] == systems
    parts = [ev[ev.patient_id < cut], ev[ev.patient_id >= cut]]
    regs = [register[register.patient_id < cut], register[register.patient_id >= cut]]
    assert _summed(_report(e, r) for e, r in zip(parts, regs, strict=True)) == systems
    old = conditions._CHUNK_ROWS
    conditions._CHUNK_ROWS = chunk
    try:
        chunked = _report(ev, register)
    finally:
        conditions._CHUNK_ROWS = old
    assert chunked["systems"] == systems


# --- system names read from the data are data: unknown ones are never printed ------------------

def test_an_unknown_system_name_is_counted_but_never_printed():
    ev = pd.DataFrame({"patient_id": [1, 2, 3], "code": ["I50", "I50", "I50"],
                       "code_system": ["SENTSYS01", "9990000018", "icd10"]})
    f, msgs = caught(ph.flag_conditions, ev, "charlson_quan2005_icd10", register=REG,
                     index_date=IDX)
    rep = f.attrs["pophealth_report"]
    assert rep["systems"] == {
        "<unknown system>": {"n_events": 2, "covered": False, "n_matched": 0},
        "icd10": {"n_events": 1, "covered": True, "n_matched": 1}}
    assert any("(<unknown system> 2)" in m for m in msgs)
    with pytest.raises(CodelistError) as exc:
        ph.flag_conditions(ev.iloc[:2], "charlson_quan2005_icd10", register=REG, index_date=IDX)
    texts = [*msgs, str(exc.value), repr(rep)]
    assert not [t for t in texts if "sentsys" in t.lower() or "9990000018" in t]


def test_score_patients_counts_a_system_only_one_list_names_as_covered():
    names = ph.load_index("charlson").condition_names
    local = pd.DataFrame({"condition": names, "code": [f"L{i:03d}" for i in range(len(names))],
                          "code_system": "EMIS local", "match": "exact"})
    ev = pd.DataFrame({"patient_id": [1, 1, 2, 2, 3, 4],
                       "code": ["I50", "F00", "L001", "L004", "L001", "I50"],
                       "code_system": ["icd10", "icd10", "EMIS local", "EMIS local",
                                       "EMIS local", "SENTSYS02"]})
    # hand: 6 rows; icd10 2 (elixhauser, hfrs), emislocal 3 (charlson), unknown 1 -> 1/6
    out, msgs = caught(ph.score_patients, REG, ev, index_date=IDX,
                       codelists={"charlson": local}, lookback_days={"hfrs": None})
    assert [m for m in msgs if "cover" in m] == []
    _, msgs = caught(ph.score_patients, REG, ev, index_date=IDX, codelists={"charlson": local},
                     lookback_days={"hfrs": None}, warn_other_system=0.1)
    assert [m for m in msgs if "no code list of the call covers" in m] == [
        "score_patients: 1 of 6 event row(s) (17% >= warn_other_system=10%) are in code "
        "system(s) no code list of the call covers (<unknown system> 1) and count nowhere; "
        "the lists cover emislocal, icd10 (eFI and CMS need a primary-care list: "
        "codelists={'efi': ..., 'cms': ...})"]
    # hand, Quan 2011: L001 = chf (2), L004 = dementia (2)
    assert out["charlson_quan2011"].tolist() == [0, 4, 2, 0]
