"""Tests for rule-based segmentation (Bridges to Health), strata, summaries and clusters.

Spec tests use tiny hand-made patients whose expected segment and firing rule were
worked out by hand from data/segments/bridges_to_health_rules.csv.
"""

from __future__ import annotations

import shutil
from importlib import resources

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.segments import (
    assign_segments,
    bridges_to_health,
    rule_matches,
    segment_flags,
    segment_summary,
    strata,
)
from pophealth.segments.clusters import cluster_segments, utilisation_features
from pophealth.segments.rules import SegmentRules, flag_column, load_rules, window_days

matplotlib.use("Agg")

INDEX = "2025-04-01"
EFI = pd.CategoricalDtype(["fit", "mild", "moderate", "severe"], ordered=True)
HFRS = pd.CategoricalDtype(["low", "intermediate", "high"], ordered=True)
FRAIL = "Frailty and dementia (long decline)"
ORGAN = "Organ failure (limited reserve)"
CANCER = "Incurable cancer (short decline)"
DISAB = "Disability"
LTC = "Long-term conditions (stable)"
MATERNAL = "Maternal and infant health"
ACUTE = "Acutely ill, likely to recover"
HEALTHY = "Healthy"
B2H_ORDER = [HEALTHY, MATERNAL, ACUTE, LTC, DISAB, CANCER, ORGAN, FRAIL]


def b2h_one(codes=(), *, age=50, efi="fit", hfrs="low", admissions=0, rules=None):
    """Segment one patient given (code, date) pairs; returns (segment, rule, reason)."""
    pts = pd.DataFrame({"age": [age], "prior_emergency_admissions": [admissions],
                        "efi_band": pd.Categorical([efi], dtype=EFI),
                        "hfrs_band": pd.Categorical([hfrs], dtype=HFRS)},
                       index=pd.Index([7], name="patient_id"))
    codes = list(codes)
    ev = pd.DataFrame({"patient_id": [7] * len(codes), "code": [c for c, _ in codes],
                       "code_system": "icd10",
                       "date": pd.to_datetime([d for _, d in codes])})
    out = bridges_to_health(pts, ev, index_date=INDEX, rules=rules)
    row = out.iloc[0]
    return row["segment"], row["rule"], row["reason"]


# --- each Bridges to Health rule --------------------------------------------------------------

SPEC = [
    # (id, codes, kwargs, expected segment, expected rule)
    ("dementia_ever", [("F03", "2010-01-01")], {"age": 70}, FRAIL, "dementia"),
    ("efi_moderate_70", [], {"age": 70, "efi": "moderate"}, FRAIL, "frailty_efi"),
    ("efi_severe_64_age_gate", [], {"age": 64, "efi": "severe"}, HEALTHY, "healthy"),
    ("efi_mild_not_frail", [], {"age": 80, "efi": "mild"}, HEALTHY, "healthy"),
    ("hfrs_intermediate_65", [], {"age": 65, "hfrs": "intermediate"}, FRAIL, "frailty_hfrs"),
    ("hfrs_high_64_age_gate", [], {"age": 64, "hfrs": "high"}, HEALTHY, "healthy"),
    ("esrf_dialysis", [("Z99.2", "2015-01-01")], {}, ORGAN, "end_stage_renal_failure"),
    ("ckd4_four_admissions", [("N18.4", "2020-01-01")], {"admissions": 4}, ORGAN,
     "ckd4_frequent_emergency_admissions"),
    ("ckd4_one_admission", [("N18.4", "2020-01-01")], {"admissions": 1}, ORGAN,
     "organ_failure_with_emergency_admission"),
    ("ckd4_no_admission_is_ltc", [("N18.4", "2020-01-01")], {}, LTC, "long_term_condition"),
    ("varices_severe_liver", [("I85.0", "2019-01-01")], {}, ORGAN, "severe_liver_disease"),
    ("hf_with_admission", [("I50.0", "2018-01-01")], {"admissions": 1}, ORGAN,
     "organ_failure_with_emergency_admission"),
    ("hf_without_admission", [("I50.0", "2018-01-01")], {}, LTC, "long_term_condition"),
    ("copd_with_admission", [("J44.1", "2024-12-01")], {"admissions": 2}, ORGAN,
     "organ_failure_with_emergency_admission"),
    ("metastatic_recent", [("C78.7", "2024-06-01")], {}, CANCER, "metastatic_cancer"),
    ("metastatic_old_is_ltc", [("C78.7", "2022-01-01")], {}, LTC, "long_term_condition"),
    ("lung_cancer_recent", [("C34.9", "2025-03-01")], {}, CANCER, "poor_prognosis_cancer"),
    ("breast_cancer_palliative", [("C50.9", "2024-01-01"), ("Z51.5", "2025-02-01")], {},
     CANCER, "cancer_palliative_care"),
    ("breast_cancer_alone_is_ltc", [("C50.9", "2024-01-01")], {}, LTC, "long_term_condition"),
    ("learning_disability", [("F71", "2001-01-01")], {"age": 30}, DISAB, "disability"),
    ("wheelchair", [("Z99.3", "2021-01-01")], {}, DISAB, "disability"),
    ("hypertension", [("I10", "2012-01-01")], {}, LTC, "long_term_condition"),
    ("depression_recent", [("F32.9", "2024-01-01")], {}, LTC, "depression_anxiety_recent"),
    ("depression_old", [("F32.9", "2020-01-01")], {}, HEALTHY, "healthy"),
    ("pregnancy_recent", [("O80", "2024-12-01")], {"age": 30}, MATERNAL, "pregnancy"),
    ("pregnancy_13_months_ago", [("O80", "2024-03-01")], {"age": 30}, HEALTHY, "healthy"),
    ("pregnancy_age_gate", [("O80", "2024-12-01")], {"age": 56}, HEALTHY, "healthy"),
    ("infant", [], {"age": 0}, MATERNAL, "infant"),
    ("emergency_admission_only", [], {"admissions": 1}, ACUTE, "recent_emergency_admission"),
    ("nothing", [], {}, HEALTHY, "healthy"),
    ("code_after_index_date_ignored", [("F03", "2025-06-01")], {"age": 80}, HEALTHY, "healthy"),
]


@pytest.mark.parametrize(("codes", "kwargs", "segment", "rule"),
                         [s[1:] for s in SPEC], ids=[s[0] for s in SPEC])
def test_each_b2h_rule(codes, kwargs, segment, rule):
    seg, fired, reason = b2h_one(codes, **kwargs)
    assert (seg, fired) == (segment, rule)
    table = load_rules().table().set_index("name")
    assert reason == table.loc[rule, "reason"]


def test_window_boundary_is_exclusive_at_730_days():
    edge = pd.Timestamp(INDEX) - pd.Timedelta(days=730)
    assert b2h_one([("C78.7", str(edge.date()))])[1] == "long_term_condition"
    inside = edge + pd.Timedelta(days=1)
    assert b2h_one([("C78.7", str(inside.date()))])[1] == "metastatic_cancer"


# --- precedence -------------------------------------------------------------------------------

PRECEDENCE = [
    ("frailty_over_organ_and_cancer",
     [("F03", "2015-01-01"), ("C78.7", "2025-01-01"), ("I50.0", "2020-01-01")],
     {"age": 82, "admissions": 2}, FRAIL, "dementia"),
    ("organ_over_cancer", [("I50.0", "2020-01-01"), ("C78.7", "2025-01-01")],
     {"admissions": 1}, ORGAN, "organ_failure_with_emergency_admission"),
    ("cancer_over_disability", [("C78.7", "2025-01-01"), ("F71", "2000-01-01")], {},
     CANCER, "metastatic_cancer"),
    ("disability_over_ltc", [("F71", "2000-01-01"), ("I10", "2020-01-01")], {}, DISAB,
     "disability"),
    ("ltc_over_maternal", [("I10", "2020-01-01"), ("O80", "2025-01-01")], {"age": 35}, LTC,
     "long_term_condition"),
    ("maternal_over_acute", [], {"age": 0, "admissions": 1}, MATERNAL, "infant"),
    ("ltc_over_acute", [("E11.9", "2020-01-01")], {"admissions": 1}, LTC,
     "long_term_condition"),
    ("efi_before_hfrs_within_segment", [], {"age": 70, "efi": "severe", "hfrs": "high"}, FRAIL,
     "frailty_efi"),
]


@pytest.mark.parametrize(("codes", "kwargs", "segment", "rule"),
                         [s[1:] for s in PRECEDENCE], ids=[s[0] for s in PRECEDENCE])
def test_precedence_most_severe_first(codes, kwargs, segment, rule):
    assert b2h_one(codes, **kwargs)[:2] == (segment, rule)


def test_segment_output_is_ordered_categorical_in_b2h_order():
    pts = pd.DataFrame({"patient_id": [1, 2], "age": [40, 90],
                        "prior_emergency_admissions": [0, 0],
                        "efi_band": pd.Series(["fit", "severe"], dtype=EFI),
                        "hfrs_band": pd.Series(["low", "low"], dtype=HFRS)})
    ev = pd.DataFrame({"patient_id": [], "code": [], "code_system": [], "date": []})
    out = bridges_to_health(pts, ev.astype({"date": "datetime64[ns]"}), index_date=INDEX)
    assert out["segment"].cat.ordered
    assert list(out["segment"].cat.categories) == B2H_ORDER
    assert (out["segment"] > HEALTHY).tolist() == [False, True]
    assert list(out.columns) == ["segment", "reason", "rule"]
    assert out.index.name == "patient_id" and out.index.tolist() == [1, 2]


def test_local_priority_via_prioritise():
    local = load_rules().prioritise([CANCER])
    codes = [("F03", "2015-01-01"), ("C78.7", "2025-01-01")]
    assert b2h_one(codes, age=82)[:2] == (FRAIL, "dementia")
    assert b2h_one(codes, age=82, rules=local)[:2] == (CANCER, "metastatic_cancer")
    assert local.rules[-1].name == "healthy"


def test_local_priority_by_editing_the_rule_file(tmp_path):
    src = resources.files("pophealth") / "data" / "segments"
    for part in ("rules", "segments", "groups"):
        with resources.as_file(src / f"bridges_to_health_{part}.csv") as p:
            shutil.copy(p, tmp_path / f"local_{part}.csv")
    rules = pd.read_csv(tmp_path / "local_rules.csv", dtype=str, keep_default_na=False)
    # move the disability rule to the top: a local system that puts disability first
    moved = pd.concat([rules[rules["name"] == "disability"], rules[rules["name"] != "disability"]])
    moved.to_csv(tmp_path / "local_rules.csv", index=False)
    local = load_rules(tmp_path)
    assert local.name == "local"
    codes = [("F71", "2000-01-01"), ("F03", "2020-01-01")]
    assert b2h_one(codes, age=60)[:2] == (FRAIL, "dementia")
    assert b2h_one(codes, age=60, rules=local)[:2] == (DISAB, "disability")


def test_extra_codelist_adds_primary_care_codes():
    pts = pd.DataFrame({"patient_id": [1], "age": [60], "prior_emergency_admissions": [1],
                        "efi_band": pd.Series(["fit"], dtype=EFI),
                        "hfrs_band": pd.Series(["low"], dtype=HFRS)})
    # anxiety/depression has a synthetic_pc stand-in code in cms_snomed_synthetic (DEPR_COD
    # covers depression only); b2h_snomed knows nothing of it, the extra list adds it
    cl = pd.read_csv(resources.files("pophealth") / "data" / "codelists" / "cms_snomed_synthetic.csv")
    code = cl.loc[(cl["condition"] == "anxiety_depression") & (cl["code_system"] == "synthetic_pc"),
                  "code"].iloc[0]
    ev = pd.DataFrame({"patient_id": [1], "code": [code], "code_system": "synthetic_pc",
                       "date": pd.to_datetime(["2024-06-01"])})
    without = bridges_to_health(pts, ev, index_date=INDEX)
    with_pc = bridges_to_health(pts, ev, index_date=INDEX, extra_codelists=["cms_snomed_synthetic"])
    assert without["rule"].iloc[0] == "recent_emergency_admission"
    assert with_pc["rule"].iloc[0] == "depression_anxiety_recent"


# --- mini-language on a custom rule set --------------------------------------------------------

def custom(rules, groups=None):
    segs = [{"segment": s, "order": i} for i, s in enumerate(["Other", "A", "B"])]
    groups = groups if groups is not None else [
        {"group": "hf", "condition": "heart_failure", "codelist": "b2h_icd10"},
        {"group": "resp", "condition": "copd", "codelist": "b2h_icd10"},
        {"group": "resp", "condition": "asthma", "codelist": "b2h_icd10"}]
    return SegmentRules.from_frames(rules + [{"name": "rest", "segment": "Other", "when": "True",
                                              "reason": "rest"}], segs, groups, name="t")


def test_mini_language_operators():
    rules = custom([
        {"name": "two_resp", "segment": "B", "when": "count(resp) >= 2", "reason": "r1"},
        {"name": "chain", "segment": "A", "when": "18 <= age < 30 and not has(hf)",
         "reason": "r2"},
        {"name": "member", "segment": "A", "when": "sex in ['F'] or (flag and age != 90)",
         "reason": "r3"},
    ])
    flags = pd.DataFrame({"heart_failure": [False, False, True, False, False],
                          "copd": [True, False, False, False, False],
                          "asthma": [True, False, False, False, False]},
                         index=pd.Index([1, 2, 3, 4, 5], name="patient_id"))
    reg = pd.DataFrame({"patient_id": [1, 2, 3, 4, 5], "age": [50, 25, 25, 60, np.nan],
                        "sex": ["M", "M", "F", "M", None],
                        "flag": pd.array([False, False, False, True, True], dtype="boolean")})
    out = assign_segments(flags, reg, rules, index_date=INDEX)
    # 1: two resp; 2: 25 and no HF; 3: HF blocks 'chain', sex F; 4: flag and age 60;
    # 5: age missing -> comparisons false, so 'member' fails on 'age != 90' too
    assert out["rule"].tolist() == ["two_resp", "chain", "member", "member", "rest"]


def test_rule_matches_shows_overlap_and_first_true_is_assigned():
    pts = pd.DataFrame({"patient_id": [1], "age": [80], "prior_emergency_admissions": [2],
                        "efi_band": pd.Series(["severe"], dtype=EFI),
                        "hfrs_band": pd.Series(["high"], dtype=HFRS)})
    ev = pd.DataFrame({"patient_id": [1], "code": ["I50.0"], "code_system": "icd10",
                       "date": pd.to_datetime(["2020-01-01"])})
    flags = segment_flags(ev, register=pts, index_date=INDEX)
    m = rule_matches(flags, pts, index_date=INDEX)
    assert m.columns[m.iloc[0]].tolist() == [
        "frailty_efi", "frailty_hfrs", "organ_failure_with_emergency_admission",
        "long_term_condition", "recent_emergency_admission", "healthy"]


# --- properties -------------------------------------------------------------------------------

B2H = load_rules()
FLAG_COLS = [flag_column(c, d) for c, d in B2H.flag_columns()]


@st.composite
def populations(draw):
    n = draw(st.integers(1, 40))
    ids = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    # sparse flags (0-3 per patient) so that every rule, not just the first few, is reached
    present = draw(st.lists(st.sets(st.sampled_from(FLAG_COLS), max_size=3), min_size=n,
                            max_size=n))
    flags = pd.DataFrame({c: [c in p for p in present] for c in FLAG_COLS},
                         index=pd.Index(ids, name="patient_id"))
    reg = pd.DataFrame({
        "patient_id": ids,
        "age": draw(st.lists(st.integers(0, 105), min_size=n, max_size=n)),
        "prior_emergency_admissions": draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)),
        "efi_band": pd.Categorical(draw(st.lists(st.sampled_from(["fit"] * 3 + ["moderate"]),
                                                 min_size=n, max_size=n)), dtype=EFI),
        "hfrs_band": pd.Categorical(draw(st.lists(st.sampled_from(["low"] * 3 + ["high"]),
                                                  min_size=n, max_size=n)), dtype=HFRS),
    })
    perm = draw(st.permutations(range(n)))
    return flags, reg, list(perm)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
def test_every_patient_gets_exactly_one_segment_and_row_order_does_not_matter(pop):
    flags, reg, perm = pop
    out = assign_segments(flags, reg, B2H, index_date=INDEX)
    assert out.index.tolist() == reg["patient_id"].tolist()
    assert out["segment"].notna().all()
    assert set(out["rule"]) <= {r.name for r in B2H.rules}
    # the assigned rule is the first rule the patient meets
    m = rule_matches(flags, reg, B2H, index_date=INDEX)
    first = m.columns[m.to_numpy().argmax(axis=1)]
    assert out["rule"].tolist() == list(first)
    seg_of = {r.name: r.segment for r in B2H.rules}
    assert out["segment"].astype(str).tolist() == [seg_of[r] for r in out["rule"]]
    # shuffled register rows (and shuffled flags rows) give the same per-patient answer
    shuffled = assign_segments(flags.iloc[perm[::-1]], reg.iloc[perm], B2H, index_date=INDEX)
    assert shuffled.index.tolist() == reg["patient_id"].iloc[perm].tolist()
    pd.testing.assert_frame_equal(shuffled.loc[out.index], out)


def test_inputs_not_modified():
    flags = pd.DataFrame({c: [True, False] for c in FLAG_COLS},
                         index=pd.Index([1, 2], name="patient_id"))
    reg = pd.DataFrame({"patient_id": [1, 2], "age": [70, 20],
                        "prior_emergency_admissions": [0, 1],
                        "efi_band": pd.Series(["fit", "fit"], dtype=EFI),
                        "hfrs_band": pd.Series(["low", "low"], dtype=HFRS)})
    f0, r0 = flags.copy(), reg.copy()
    assign_segments(flags, reg, index_date=INDEX)
    pd.testing.assert_frame_equal(flags, f0)
    pd.testing.assert_frame_equal(reg, r0)


# --- validation errors: name the rule and field, never the value ------------------------------

BAD_RULES = [
    ({"when": "has(hf_typo_zz)"}, "when", "hf_typo_zz"),
    ({"when": "has(hf)", "window": "24 moons"}, "window", "moons"),
    ({"when": "has(hf)", "window": "0m"}, "window", "0m"),
    ({"when": "has(hf)", "segment": "Nowhere_zz"}, "segment", "Nowhere_zz"),
    ({"when": "__import__('os').system('zz')"}, "when", "zz"),
    ({"when": "age.real > 3"}, "when", "real"),
    ({"when": "heart_failure"}, "when", "heart_failure"),  # condition used without has()
    ({"when": "count(hf)"}, "when", "(hf)"),  # a number is not a test
    ({"when": "has(hf"}, "when", "has(hf"),
    ({"when": "has(hf)", "min_age": "sixty_zz"}, "min_age", "sixty_zz"),
    ({"when": "has(hf)", "min_age": 70, "max_age": 60}, "min_age", "70"),
]


@pytest.mark.parametrize(("change", "field", "value"), BAD_RULES,
                         ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_RULES)])
def test_rule_validation_names_rule_and_field_not_value(change, field, value):
    rule = {"name": "my_rule_x", "segment": "A", "reason": "why"} | change
    with pytest.raises(ConfigError) as err:
        custom([rule])
    msg = str(err.value)
    assert "my_rule_x" in msg and f"'{field}'" in msg
    assert value not in msg


def test_rule_set_must_end_with_catch_all():
    segs = [{"segment": "A", "order": 1}]
    grp = [{"group": "hf", "condition": "heart_failure", "codelist": "b2h_icd10"}]
    with pytest.raises(ConfigError, match="catch-all"):
        SegmentRules.from_frames([{"name": "x", "segment": "A", "when": "has(hf)",
                                   "reason": "r"}], segs, grp)


def test_duplicate_rule_and_unknown_column_and_bad_group_rows():
    with pytest.raises(ConfigError, match="'name' is a duplicate"):
        custom([{"name": "rest", "segment": "A", "when": "True", "reason": "r"}])
    with pytest.raises(ConfigError, match="unknown column"):
        custom([{"name": "x", "segment": "A", "when": "True", "reason": "r", "colour": "red"}])
    with pytest.raises(ConfigError, match=r"groups: field 'condition' in row\(s\) \[1\]") as err:
        custom([], groups=[{"group": "g", "condition": "copd", "codelist": "b2h_icd10"},
                           {"group": "g", "condition": "not_a_condition_zz",
                            "codelist": "b2h_icd10"}])
    assert "not_a_condition_zz" not in str(err.value)


def test_window_days():
    assert [window_days(w) for w in ("ever", "", "24m", "12m", "6m", "2y", "30d")] == \
        [None, None, 730, 365, 182, 730, 30]


def test_missing_patient_column_and_missing_flags():
    rules = custom([{"name": "old", "segment": "A", "when": "frailty_score > 3",
                     "reason": "r"}])
    flags = pd.DataFrame({"heart_failure": [True]}, index=pd.Index([1], name="patient_id"))
    with pytest.raises(SchemaError, match="'frailty_score'.*rule 'old'"):
        assign_segments(flags, pd.DataFrame({"patient_id": [1]}), rules, index_date=INDEX)
    rules = custom([{"name": "recent_hf", "segment": "A", "when": "has(hf)", "window": "24m",
                     "reason": "r"}])
    with pytest.raises(SchemaError, match=r"'heart_failure@730d'.*rule 'recent_hf'"):
        assign_segments(flags, pd.DataFrame({"patient_id": [1]}), rules, index_date=INDEX)
    with pytest.raises(SchemaError, match=r"1 register patient\(s\) have no flags row; "
                                          r"first register positions \[1\]"):
        assign_segments(flags, pd.DataFrame({"patient_id": [1, 99]}), custom([]),
                        index_date=INDEX)


def test_bad_category_literal_and_type_mismatch():
    flags = pd.DataFrame({"heart_failure": [True]}, index=pd.Index([1], name="patient_id"))
    reg = pd.DataFrame({"patient_id": [1], "age": [70],
                        "efi_band": pd.Series(["fit"], dtype=EFI)})
    bad = custom([{"name": "b1", "segment": "A", "when": "efi_band >= 'very_zz'",
                   "reason": "r"}])
    with pytest.raises(ConfigError, match="rule 'b1'.*not one of its categories") as err:
        assign_segments(flags, reg, bad, index_date=INDEX)
    assert "very_zz" not in str(err.value)
    bad = custom([{"name": "b2", "segment": "A", "when": "age > 'old'", "reason": "r"}])
    with pytest.raises(ConfigError, match="rule 'b2'.*incompatible types"):
        assign_segments(flags, reg, bad, index_date=INDEX)


def test_age_gate_from_date_of_birth():
    rules = custom([{"name": "older", "segment": "A", "when": "True", "min_age": 65,
                     "reason": "r"}])
    flags = pd.DataFrame({"heart_failure": [False, False]},
                         index=pd.Index([1, 2], name="patient_id"))
    reg = pd.DataFrame({"patient_id": [1, 2],
                        "date_of_birth": pd.to_datetime(["1960-04-01", "1960-04-02"])})
    out = assign_segments(flags, reg, rules, index_date=INDEX)
    assert out["rule"].tolist() == ["older", "rest"]  # 65 on the index date vs 64


# --- strata and summaries ---------------------------------------------------------------------

def test_strata_boundaries():
    p = pd.DataFrame({"age": [17, 18, 64, 65, 84, 85, np.nan],
                      "imd_decile": [1, 2, 3, 10, 11, np.nan, 6],
                      "n_conditions": [0, 1, 3, 4, 2, np.nan, 9],
                      "efi_band": pd.Series(["fit", "fit", "severe", "mild", "severe", "fit",
                                             None], dtype=EFI)})
    s = strata(p)
    assert s["age_stratum"].astype(object).fillna("NA").tolist() == [
        "0-17", "18-44", "45-64", "65-74", "75-84", "85+", "NA"]
    assert s["imd_quintile"].cat.codes.tolist() == [0, 0, 1, 4, -1, -1, 2]
    assert list(s["imd_quintile"].cat.categories) == [1, 2, 3, 4, 5]
    assert s["multimorbidity_stratum"].astype(object).fillna("NA").tolist() == [
        "0", "1", "2-3", "4+", "2-3", "NA", "4+"]
    assert s["frailty_stratum"].astype(object).fillna("NA").tolist() == [
        "under 65", "under 65", "under 65", "mild", "severe", "fit", "NA"]
    for c in s.columns:
        assert s[c].cat.ordered, c


def test_segment_summary_by_area():
    seg = pd.Categorical(["H", "F", "H", "H", "F"], categories=["H", "L", "F"], ordered=True)
    p = pd.DataFrame({"pcn": ["P1", "P1", "P2", "P2", "P2"], "segment": seg,
                      "prior_cost": [100.0, 300.0, 50.0, 50.0, 900.0],
                      "prior_emergency_admissions": [0, 1, 0, 1, 3],
                      "risk": [0.1, 0.5, 0.2, np.nan, 0.9]})
    s = segment_summary(p, by=["pcn", "segment"], risk="risk")
    assert s.index.tolist() == [("P1", "H"), ("P1", "L"), ("P1", "F"),
                                ("P2", "H"), ("P2", "L"), ("P2", "F")]
    assert s["n"].tolist() == [1, 0, 1, 2, 0, 1]
    np.testing.assert_allclose(s["share"], [0.5, 0, 0.5, 2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(s["cost_share"], [0.25, 0, 0.75, 0.1, 0, 0.9])
    np.testing.assert_allclose(s["emergency_admissions_per_1000"],
                               [0, np.nan, 1000, 500, np.nan, 3000])
    np.testing.assert_allclose(s["mean_risk"], [0.1, np.nan, 0.5, 0.2, np.nan, 0.9])
    with pytest.raises(SchemaError, match="missing column"):
        segment_summary(p, by="segment", cost="next_year_cost")


# --- clusters ---------------------------------------------------------------------------------

def cluster_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    grp = rng.integers(0, 3, n)
    X = pd.DataFrame({"n_emergency": rng.poisson(np.array([0.05, 0.5, 2.0])[grp]),
                      "n_gp": rng.poisson(np.array([2, 6, 12])[grp]),
                      "copd": rng.random(n) < np.array([0.01, 0.1, 0.5])[grp]},
                     index=pd.Index(np.arange(n) * 3 + 1, name="patient_id"))
    cost = pd.Series(rng.gamma(2, np.array([100, 800, 4000])[grp]), index=X.index)
    return X, cost


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_cluster_determinism_and_cost_order(method):
    X, cost = cluster_data()
    a = cluster_segments(X, n_segments=3, random_state=1, cost=cost, method=method)
    b = cluster_segments(X, n_segments=3, random_state=1, cost=cost, method=method)
    pd.testing.assert_series_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.profile, b.profile)
    assert a.labels.index.equals(X.index)
    assert a.labels.cat.ordered and list(a.labels.cat.categories) == [1, 2, 3]
    means = cost.groupby(a.labels, observed=False).mean().to_numpy()
    assert np.all(np.diff(means) > 0)
    np.testing.assert_allclose(a.profile["mean_cost"], means)
    assert a.profile["n"].sum() == len(X)
    np.testing.assert_allclose(a.profile["cost_share"].sum(), 1.0)
    pd.testing.assert_series_equal(a.predict(X), a.labels)


def test_cluster_cost_column_and_errors():
    X, cost = cluster_data()
    X = X.assign(cost=cost)
    res = cluster_segments(X, n_segments=2, random_state=0, cost="cost", age="n_gp")
    assert "cost" not in res.profile.columns and "mean_age" in res.profile.columns
    with pytest.raises(SchemaError, match=r"features: column\(s\) \['cost'\] have negative"):
        cluster_segments(X.assign(cost=-X["cost"]), n_segments=2, random_state=0, cost="cost")
    with pytest.raises(SchemaError, match=r"1 row\(s\) have missing values; first positions \[3\]"):
        cluster_segments(X.assign(n_gp=X["n_gp"].where(X.index != 10)), n_segments=2,
                         random_state=0, cost="cost")
    with pytest.raises(ConfigError, match="n_segments"):
        cluster_segments(X, n_segments=1, random_state=0, cost="cost")


def test_utilisation_features_window():
    act = pd.DataFrame({"patient_id": [1, 1, 1, 2], "kind": ["gp", "gp", "ae", "gp"],
                        "cost": [40.0, 40.0, 150.0, 40.0],
                        "date": pd.to_datetime(["2025-04-01", "2024-04-01", "2024-04-02",
                                                "2025-04-02"])})
    out = utilisation_features(act, pd.DataFrame({"patient_id": [2, 1]}), index_date=INDEX)
    assert out.index.tolist() == [2, 1]
    assert out.loc[1].tolist() == [1, 1, 190.0]  # 2024-04-01 is 365 days before: outside
    assert out.loc[2].tolist() == [0, 0, 0.0]  # after the index date


# --- synthetic population ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_segments():
    import warnings

    from pophealth.core.batch import score_patients
    from pophealth.core.patients import patient_table
    from pophealth.synthetic import SYNTHETIC_LISTS, make_population

    pop = make_population(20_000, random_state=3, index_date=INDEX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_patients(pop.register, pop.events, index_date=pop.index_date,
                                codelists=SYNTHETIC_LISTS)
        pts = patient_table(pop.register, scores, pop.activity, index_date=pop.index_date)
        seg = bridges_to_health(pts, pop.events, index_date=pop.index_date,
                                extra_codelists=["cms_snomed_synthetic"])
    return pts.join(seg)


def test_synthetic_population_segments(synthetic_segments):
    p = synthetic_segments
    assert p["segment"].notna().all() and len(p) == 20_000
    s = segment_summary(p)
    assert s["n"].sum() == 20_000
    np.testing.assert_allclose(s["share"].sum(), 1.0)
    overall = p["prior_cost"].mean()
    # the high-need segments are small but expensive per head in the synthetic data
    for seg in (FRAIL, ORGAN):
        assert s.loc[seg, "share"] < 0.15
        assert s.loc[seg, "mean_cost"] > 3 * overall
    assert s.loc[HEALTHY, "mean_cost"] < overall


def test_plots(synthetic_segments):
    import matplotlib.pyplot as plt

    from pophealth.plots import plot_segment_cost, plot_segment_pyramid

    p = synthetic_segments
    fig, (a1, a2) = plt.subplots(1, 2)
    assert plot_segment_pyramid(p, ax=a1) is a1
    widths = sum(abs(r.get_width()) for r in a1.patches)
    assert widths == pytest.approx(p["sex"].isin(["M", "F"]).sum())
    assert plot_segment_cost(segment_summary(p), ax=a2) is a2
    # long names are wrapped onto several lines; the text is unchanged
    assert [t.get_text().replace("\n", " ") for t in a2.get_yticklabels()] == B2H_ORDER
    plt.close(fig)
