"""Band comparisons in segment rules follow the band order whatever the dtype (issue 13, item 4).

The shipped Bridges to Health rules say ``efi_band >= "moderate"`` and
``hfrs_band >= "intermediate"`` at 65+. Alphabetically ``"high" < "intermediate"`` and
``"low" > "intermediate"``, so a text-typed ``hfrs_band`` once put ``high`` in Healthy and
``low`` in Frailty. The expected segments below are written by hand from the rules: an
80-year-old with no coded conditions and no admissions is in Frailty exactly when
eFI is moderate/severe or HFRS is intermediate/high, and Healthy otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.segments import assign_segments, load_rules, rule_matches
from pophealth.segments.rules import SegmentRules, flag_column

INDEX = "2025-04-01"
FRAIL = "Frailty and dementia (long decline)"
HEALTHY = "Healthy"
HFRS = ["low", "intermediate", "high"]
EFI = ["fit", "mild", "moderate", "severe"]

# hand-written: band value -> segment for an 80-year-old with nothing else recorded
HFRS_SPEC = {"low": HEALTHY, "intermediate": FRAIL, "high": FRAIL}
EFI_SPEC = {"fit": HEALTHY, "mild": HEALTHY, "moderate": FRAIL, "severe": FRAIL}


def _dtype(kind: str, labels: list[str]):
    return {
        "ordered_categorical": pd.CategoricalDtype(labels, ordered=True),
        "unordered_categorical": "category",
        "object": object,
        "string_pyarrow": "string[pyarrow]",
        "string_python": "string[python]",
        "arrow_string": pd.ArrowDtype(pa.string()),
        "arrow_large_string": pd.ArrowDtype(pa.large_string()),
    }[kind]


DTYPES = ["ordered_categorical", "unordered_categorical", "object", "string_pyarrow",
          "string_python", "arrow_string", "arrow_large_string", "arrow_dictionary"]


def _column(values: list, kind: str, labels: list[str]) -> pd.Series:
    if kind == "arrow_dictionary":
        arr = pa.array(values).dictionary_encode()
        return pd.Series(arr, dtype=pd.ArrowDtype(arr.type))
    return pd.Series(values, dtype=_dtype(kind, labels))


def _no_flags(ids) -> pd.DataFrame:
    cols = {flag_column(c, d): np.zeros(len(ids), dtype=bool)
            for c, d in load_rules().flag_columns()}
    return pd.DataFrame(cols, index=pd.Index(ids, name="patient_id"))


def _patients(hfrs: pd.Series, efi: pd.Series) -> pd.DataFrame:
    n = len(hfrs)
    return pd.DataFrame({"patient_id": np.arange(1, n + 1), "age": np.full(n, 80),
                         "prior_emergency_admissions": np.zeros(n, dtype=np.int64),
                         "hfrs_band": hfrs.reset_index(drop=True),
                         "efi_band": efi.reset_index(drop=True)})


@pytest.mark.parametrize("kind", DTYPES)
def test_hfrs_band_segments_follow_the_band_order_in_every_dtype(kind):
    values = list(HFRS_SPEC)
    pts = _patients(_column(values, kind, HFRS), _column(["fit"] * 3, kind, EFI))
    out = assign_segments(_no_flags(pts["patient_id"]), pts, index_date=INDEX)
    assert out["segment"].astype(str).tolist() == [HFRS_SPEC[v] for v in values]
    assert out["rule"].tolist() == ["healthy", "frailty_hfrs", "frailty_hfrs"]


@pytest.mark.parametrize("kind", DTYPES)
def test_efi_band_segments_follow_the_band_order_in_every_dtype(kind):
    values = list(EFI_SPEC)
    pts = _patients(_column(["low"] * 4, kind, HFRS), _column(values, kind, EFI))
    out = assign_segments(_no_flags(pts["patient_id"]), pts, index_date=INDEX)
    assert out["segment"].astype(str).tolist() == [EFI_SPEC[v] for v in values]


@pytest.mark.parametrize("kind", ["object", "string_pyarrow", "arrow_string"])
def test_missing_band_never_satisfies_a_comparison(kind):
    pts = _patients(_column([None, "high"], kind, HFRS), _column([None, None], kind, EFI))
    m = rule_matches(_no_flags(pts["patient_id"]), pts, index_date=INDEX)
    assert m["frailty_hfrs"].tolist() == [False, True]
    assert m["frailty_efi"].tolist() == [False, False]


@pytest.mark.parametrize("kind", ["object", "string_pyarrow", "unordered_categorical",
                                  "arrow_dictionary"])
def test_unknown_band_label_is_refused_with_count_and_positions(kind):
    sentinel = "HIGH-SENTINEL-9990000018"
    pts = _patients(_column(["low", sentinel, "high", sentinel], kind, HFRS),
                    _column(["fit"] * 4, kind, EFI))
    with pytest.raises(SchemaError) as info:
        assign_segments(_no_flags(pts["patient_id"]), pts, index_date=INDEX)
    assert [(p["column"], p["rule"], p["count"], p["positions"]) for p in info.value.problems] \
        == [("hfrs_band", "known_label", 2, [1, 3])]
    assert "SENTINEL" not in str(info.value) and "SENTINEL" not in repr(info.value.problems)


def test_alphabetically_ordered_categorical_band_is_refused():
    hfrs = pd.Series(pd.Categorical(["high", "low", "intermediate"], ordered=True))
    assert list(hfrs.cat.categories) == ["high", "intermediate", "low"]  # the trap
    pts = _patients(hfrs, _column(["fit"] * 3, "object", EFI))
    with pytest.raises(SchemaError, match="'hfrs_band' breaks rule 'band_order'"):
        assign_segments(_no_flags(pts["patient_id"]), pts, index_date=INDEX)


def _custom(when: str) -> SegmentRules:
    return SegmentRules.from_frames(
        [{"name": "r1", "segment": "A", "when": when, "reason": "r"},
         {"name": "rest", "segment": "B", "when": "True", "reason": "other"}],
        [{"segment": "B", "order": 1}, {"segment": "A", "order": 2}],
        [{"group": "hf", "condition": "heart_failure", "codelist": "b2h_icd10"}])


@pytest.mark.parametrize("kind", ["object", "string_pyarrow", "unordered_categorical"])
def test_ordered_comparison_on_a_column_with_no_known_order_is_refused(kind):
    pts = pd.DataFrame({"patient_id": [1, 2], "grade": _column(["b", "a"], kind, ["a", "b"])})
    flags = pd.DataFrame({"heart_failure": [False, False]},
                         index=pd.Index([1, 2], name="patient_id"))
    with pytest.raises(ConfigError, match="rule 'r1'.*'grade', which has no known order"):
        assign_segments(flags, pts, _custom("grade >= 'b'"), index_date=INDEX)


def test_ordered_categorical_without_known_order_uses_its_categories():
    grade = pd.Categorical(["b", "a", "c"], categories=["c", "b", "a"], ordered=True)
    pts = pd.DataFrame({"patient_id": [1, 2, 3], "grade": grade})
    flags = pd.DataFrame({"heart_failure": [False] * 3},
                         index=pd.Index([1, 2, 3], name="patient_id"))
    out = assign_segments(flags, pts, _custom("grade >= 'b'"), index_date=INDEX)
    assert out["rule"].tolist() == ["r1", "r1", "rest"]  # c < b < a: b and a qualify


@pytest.mark.parametrize("when", ["hfrs_band >= 'High'", "hfrs_band == 'hi'",
                                  "hfrs_band in ['severe']"])
def test_band_literal_outside_the_known_labels_is_refused(when):
    pts = _patients(_column(["low"], "object", HFRS), _column(["fit"], "object", EFI))
    flags = pd.DataFrame({"heart_failure": [False]}, index=pd.Index([1], name="patient_id"))
    with pytest.raises(ConfigError, match="rule 'r1'.*not one of its categories"):
        assign_segments(flags, pts, _custom(when), index_date=INDEX)


def test_band_literal_on_the_left_is_flipped_correctly():
    pts = _patients(_column(HFRS, "string_pyarrow", HFRS), _column(["fit"] * 3, "object", EFI))
    flags = pd.DataFrame({"heart_failure": [False] * 3},
                         index=pd.Index([1, 2, 3], name="patient_id"))
    # "intermediate" < hfrs_band  <=>  hfrs_band > "intermediate": only "high"
    out = assign_segments(flags, pts, _custom("'intermediate' < hfrs_band"), index_date=INDEX)
    assert out["rule"].tolist() == ["rest", "rest", "r1"]


def test_two_band_columns_with_different_orders_cannot_be_compared():
    pts = _patients(_column(["low"], "object", HFRS), _column(["fit"], "object", EFI))
    flags = pd.DataFrame({"heart_failure": [False]}, index=pd.Index([1], name="patient_id"))
    with pytest.raises(ConfigError, match="different orders"):
        assign_segments(flags, pts, _custom("hfrs_band > efi_band"), index_date=INDEX)


# By hand, index date 2025-04-01, window (2024-04-01 00:00, 2025-04-01 00:00] on the wall
# clock of each column's own zone (BST = UTC+1):
#                            London column            UTC column (the same instants)
#   gp 00:30 BST  1 Apr 2024  in  (100)               23:30 31 Mar 2024 -> out
#   gp 12:00 BST  1 Jun 2024  in  (10)                11:00  1 Jun 2024 -> in
#   ae 00:30 BST  1 Apr 2025  out (after the index)   23:30 31 Mar 2025 -> in  (1)
# London: n_ae 0, n_gp 2, cost 110. UTC column: n_ae 1, n_gp 1, cost 11 (what the UTC
# rule would wrongly give for the London column too).
_UTIL_LONDON = pd.Series(pd.to_datetime(["2024-04-01 00:30", "2024-06-01 12:00",
                                         "2025-04-01 00:30"])).dt.tz_localize("Europe/London")


@pytest.mark.parametrize(("dates", "expected"), [
    (_UTIL_LONDON, [0, 2, 110.0]),
    (_UTIL_LONDON.astype(pd.ArrowDtype(pa.timestamp("us", tz="Europe/London"))),
     [0, 2, 110.0]),
    (_UTIL_LONDON.dt.tz_convert("UTC"), [1, 1, 11.0]),
    (_UTIL_LONDON.astype(pd.ArrowDtype(pa.timestamp("ns", tz="UTC"))), [1, 1, 11.0]),
], ids=["numpy_london", "arrow_london", "numpy_utc", "arrow_utc"])
def test_utilisation_features_window_is_on_local_wall_clock_time(dates, expected):
    from pophealth.segments import utilisation_features

    act = pd.DataFrame({"patient_id": [1, 1, 1], "kind": ["gp", "gp", "ae"],
                        "cost": [100.0, 10.0, 1.0], "date": dates})
    out = utilisation_features(act, pd.DataFrame({"patient_id": [1]}), index_date=INDEX)
    assert out.loc[1, ["n_ae", "n_gp", "cost"]].tolist() == expected


@pytest.mark.parametrize("kind", DTYPES)
def test_frailty_stratum_lists_every_band_in_band_order_whatever_the_dtype(kind):
    from pophealth.segments import strata

    pts = pd.DataFrame({"age": [70, 80, 50, 90],
                        "hfrs_band": _column(["high", "low", "low", None], kind, HFRS)})
    out = strata(pts)["frailty_stratum"]
    assert list(out.cat.categories) == ["under 65", "low", "intermediate", "high"]
    assert out.cat.ordered
    assert out.astype(object).tolist()[:3] == ["high", "low", "under 65"]
    assert pd.isna(out.iloc[3])
