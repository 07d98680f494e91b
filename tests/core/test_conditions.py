"""Spec tests for flag_conditions: tiny hand-written patients, one rule each."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import CodelistError, DataQualityWarning, SchemaError

IDX = "2025-04-01"
REG = pd.DataFrame({"patient_id": [3, 1, 2]})  # deliberately not sorted


def ev(rows):
    """rows: (patient_id, code, date or None[, code_system])"""
    df = pd.DataFrame(
        [(r[0], r[1], r[3] if len(r) > 3 else "icd10", r[2]) for r in rows],
        columns=["patient_id", "code", "code_system", "date"],
    )
    df["date"] = pd.to_datetime(df["date"])
    return df


def flags(events, codelist="charlson_quan2005_icd10", register=REG, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return ph.flag_conditions(events, codelist, register=register, index_date=IDX, **kw)


@pytest.mark.parametrize("code", ["E112", "E11.2", "e112", " E112 ", "e11.2 ", "E11-2"])
def test_code_formats_score_like_the_clean_code(code):
    f = flags(ev([(1, code, "2024-06-01")]))
    assert f.loc[1, "diabwc"]
    assert f.loc[1].sum() == 1


@pytest.mark.parametrize("code", ["F00X", "F00-", "f00x", "F00.X"])
def test_trailing_filler_on_three_character_code(code):
    f = flags(ev([(1, code, "2024-06-01")]), "hfrs_gilbert2018_icd10")
    assert f.loc[1, "F00"]
    assert f.loc[1].sum() == 1


def test_output_is_register_order_and_patients_without_events_are_all_false():
    f = flags(ev([(2, "I50", "2024-01-01")]))
    assert f.index.tolist() == [3, 1, 2]
    assert f.index.name == "patient_id"
    assert f.dtypes.eq(bool).all()
    assert f.loc[3].sum() == 0 and f.loc[1].sum() == 0
    assert f.loc[2, "chf"]
    assert list(f.columns) == list(ph.load_codelist("charlson_quan2005_icd10").conditions)


@pytest.mark.parametrize(
    ("date", "lookback", "counted"),
    [
        ("2025-04-01", None, True),    # on the index date counts
        ("2025-04-02", None, False),   # the day after never counts
        ("2000-01-01", None, True),    # no look-back: any earlier date counts
        ("2024-04-01", 365, False),    # exactly 365 days before: outside (index-365, index]
        ("2024-04-02", 365, True),     # 364 days before: inside
        # 2024 is a leap year, so 730 days before 2025-04-01 is 2023-04-02
        ("2023-04-03", 730, True),
        ("2023-04-02", 730, False),
    ],
)
def test_date_window(date, lookback, counted):
    f = flags(ev([(1, "I50", date)]), lookback_days=lookback)
    assert f.loc[1, "chf"] is np.bool_(counted)


def test_missing_date_is_excluded_and_warned():
    with pytest.warns(DataQualityWarning, match="1 row\\(s\\) with a missing date"):
        f = ph.flag_conditions(ev([(1, "I50", None), (2, "I50", "2024-01-01")]),
                               "charlson_quan2005_icd10", register=REG, index_date=IDX)
    assert not f.loc[1, "chf"] and f.loc[2, "chf"]
    assert f.attrs["pophealth_report"]["n_missing_date"] == 1


def test_no_date_column_counts_every_event_but_lookback_needs_dates():
    e = ev([(1, "I50", None)]).drop(columns="date")
    assert flags(e).loc[1, "chf"]
    with pytest.raises(SchemaError, match="date"):
        flags(e, lookback_days=365)


def test_code_mapping_to_two_conditions():
    f = flags(ev([(1, "I42.6", "2024-01-01")]), "elixhauser_quan2005_icd10")
    assert f.loc[1, ["chf", "alcohol"]].tolist() == [True, True]
    assert f.loc[1].sum() == 2


def test_other_code_systems_are_ignored_not_unrecognised():
    # one ICD-10 row (not in the list) so that some row can match: with none, it is an
    # error (tests/core/test_no_silent_zeros.py)
    e = ev([(1, "I50", "2024-01-01", "snomed"), (1, "123456", "2024-01-01", "snomed"),
            (1, "Z00", "2024-01-01")])
    f = flags(e)
    assert f.to_numpy().sum() == 0
    rep = f.attrs["pophealth_report"]
    assert rep["n_other_system"] == 2 and rep["n_unrecognised"] == 0


def test_code_system_spelling_is_normalised():
    f = flags(ev([(1, "I50", "2024-01-01", "ICD-10"), (2, "I21", "2024-01-01", " Icd10 ")]))
    assert f.loc[1, "chf"] and f.loc[2, "mi"]


def test_unrecognised_codes_are_counted_and_warned():
    e = ev([(1, "ZZZ9", "2024-01-01")] + [(2, "I50", "2024-01-01")] * 30)
    with pytest.warns(DataQualityWarning, match=r"1 row\(s\) with unrecognised codes \(1 distinct\)"):
        f = ph.flag_conditions(e, "charlson_quan2005_icd10", register=REG, index_date=IDX)
    assert f.attrs["pophealth_report"]["n_unrecognised"] == 1


@pytest.mark.parametrize("code", ["E1199999", "E11.99999", "I50XXXXX"])
def test_invalid_code_never_counts_even_when_a_list_prefix_matches(code):
    e = ev([(1, code, "2024-01-01")] + [(2, "I21", "2024-01-01")] * 40)
    f = flags(e)
    assert f.loc[1].sum() == 0
    assert f.attrs["pophealth_report"]["n_unrecognised"] == 1


def test_mostly_unrecognised_codes_are_an_error():
    e = ev([(1, "not a code", "2024-01-01"), (1, "123", "2024-01-01"), (2, "I50", "2024-01-01")])
    with pytest.raises(CodelistError, match=r"2 of 3 row\(s\).*66\.7% > max_unrecognised=5\.0%"):
        ph.flag_conditions(e, "charlson_quan2005_icd10", register=REG, index_date=IDX)
    f = flags(e, max_unrecognised=0.9)
    assert f.loc[2, "chf"]


def test_unknown_patients_are_excluded_counted_and_never_named():
    sentinel = 9990000018
    e = ev([(sentinel, "I50", "2024-01-01"), (1, "I21", "2024-01-01")])
    with pytest.warns(DataQualityWarning) as rec:
        f = ph.flag_conditions(e, "charlson_quan2005_icd10", register=REG, index_date=IDX)
    msg = " ".join(str(w.message) for w in rec)
    assert "1 row(s) for patients not on the register" in msg
    assert str(sentinel) not in msg
    assert f.attrs["pophealth_report"]["n_unknown_patient"] == 1
    assert f.loc[1, "mi"]


def test_report_conserves_rows():
    e = ev([(1, "I50", "2025-01-01"), (1, "ZZZ9", "2025-01-01"), (9, "I50", "2025-01-01"),
            (1, "I50", "2026-01-01"), (1, "I50", None), (2, "J06", "2025-01-01"),
            (2, "I50", "2025-01-01", "snomed"), (2, "I50", "2010-01-01")])
    r = flags(e, lookback_days=365, max_unrecognised=0.5).attrs["pophealth_report"]
    assert r["n_events"] == 8
    assert (r["n_other_system"], r["n_unrecognised"], r["n_unknown_patient"],
            r["n_after_index_date"], r["n_before_lookback"], r["n_missing_date"],
            r["n_not_in_list"], r["n_used"]) == (1, 1, 1, 1, 1, 1, 1, 1)


def test_empty_events_give_all_false_frame():
    e = ev([]).astype({"patient_id": "int64", "code": object, "code_system": object})
    f = flags(e)
    assert f.shape == (3, 17)
    assert not f.to_numpy().any()


def test_missing_event_column_and_duplicate_register_ids_are_errors():
    with pytest.raises(SchemaError, match="missing column 'code_system'"):
        flags(ev([(1, "I50", None)]).drop(columns="code_system"))
    with pytest.raises(SchemaError, match=r"'patient_id' breaks rule 'unique' in 2 row\(s\); first positions \[0, 2\]"):
        flags(ev([(1, "I50", None)]), register=pd.DataFrame({"patient_id": [5, 6, 5]}))


def test_mixed_id_types_are_an_error():
    with pytest.raises(SchemaError, match="same_id_type"):
        flags(ev([("1", "I50", None)]).astype({"patient_id": object}))


def test_register_as_index_named_patient_id():
    reg = pd.DataFrame({"age": [1, 2, 3]}, index=pd.Index([3, 1, 2], name="patient_id"))
    f = flags(ev([(2, "I50", "2024-01-01")]), register=reg)
    assert f.index.tolist() == [3, 1, 2] and f.loc[2, "chf"]


def test_user_csv_codelist_in_another_system(tmp_path):
    path = tmp_path / "my_list.csv"
    path.write_text("condition,code,code_system,match\n"
                    "frailty_mild,925791000000100,SNOMED,exact\n"
                    "frailty_severe,925861000000102,snomed,exact\n")
    e = ev([(1, "925791000000100", "2024-01-01", "snomed"),
            (2, "925861000000102 ", "2024-01-01", "snomed"),
            (3, "925791000000100", "2024-01-01", "icd10")])
    f = flags(e, str(path))
    assert list(f.columns) == ["frailty_mild", "frailty_severe"]
    assert f.loc[1].tolist() == [True, False]
    assert f.loc[2].tolist() == [False, True]
    assert f.loc[3].tolist() == [False, False]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"condition": ["a"], "code": ["E11"], "code_system": ["icd10"]}),
         r"missing column\(s\) \['match'\]"),
        (pd.DataFrame({"condition": ["a"], "code": ["E11"], "code_system": ["icd10"],
                       "match": ["regex"]}), "prefix_or_exact"),
        (pd.DataFrame({"condition": ["a"], "code": ["..."], "code_system": ["icd10"],
                       "match": ["prefix"]}), "non_empty"),
        (pd.DataFrame({"condition": ["a", None], "code": ["E11", "E12"],
                       "code_system": ["icd10", "icd10"], "match": ["prefix", "prefix"]}),
         r"'condition' breaks rule 'not_null' in 1 row\(s\); first positions \[1\]"),
    ],
)
def test_malformed_codelists_are_rejected(frame, match):
    with pytest.raises(CodelistError, match=match):
        ph.load_codelist(frame)


def test_unknown_codelist_name_lists_the_shipped_ones():
    with pytest.raises(CodelistError, match="unknown code list 'charlson'.*charlson_quan2005_icd10"):
        ph.load_codelist("charlson")


def test_input_frames_are_not_mutated():
    e = ev([(1, "e11.2", "2024-01-01"), (2, "I50", None)])
    before_e, before_r = e.copy(deep=True), REG.copy(deep=True)
    flags(e)
    pd.testing.assert_frame_equal(e, before_e)
    pd.testing.assert_frame_equal(REG, before_r)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lookback_days": 0}, "lookback_days must be a positive whole number"),
    ({"lookback_days": -30}, "lookback_days must be a positive whole number"),
    ({"lookback_days": 1.5}, "lookback_days must be a positive whole number"),
    ({"max_unrecognised": 1.5}, "max_unrecognised must be a fraction"),
])
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ph.ConfigError, match=match):
        flags(ev([(1, "I50", "2024-01-01")]), **kwargs)


def test_events_whose_codes_are_all_missing():
    e = ev([(1, None, "2024-01-01"), (2, None, "2024-01-01")])
    f = flags(e, max_unrecognised=1.0)
    assert not f.to_numpy().any()
    assert f.attrs["pophealth_report"]["n_unrecognised"] == 2
