"""HFRS, eFI, Cambridge Multimorbidity Score and condition counts against published tables.

The expected values come from independent transcriptions of the primary sources in
``tests/fixtures/published/`` (each file's header cites the paper, table and how it was read),
never from the shipped CSVs under ``src/pophealth/data``. Every weight is checked through the
public scoring function (behaviour), and the shipped definition files are compared in full
(every code, every weight, both directions), so a swapped, dropped, added or mistyped entry fails.
A difference is a finding to resolve against the primary source, not a fixture to edit.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pophealth as ph
from pophealth.contracts.exceptions import ConfigError
from pophealth.core.indices import hfrs_band

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "published"
IDX = "2025-04-01"


def _fixture(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / name, comment="#", keep_default_na=False)


def _shipped(sub: str, name: str) -> pd.DataFrame:
    with (resources.files("pophealth") / "data" / sub / f"{name}.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False)


HFRS = _fixture("hfrs_gilbert2018.csv")
EFI = _fixture("efi_clegg2016.csv")
CMS = _fixture("cms_payne2020.csv")
MM = _fixture("multimorbidity_definitions.csv").set_index("measure")

HFRS_POINTS = dict(zip(HFRS["code"], HFRS["points"], strict=True))


# ----------------------------------------------------------------------------- the fixtures


def test_fixtures_match_the_published_totals():
    # Gilbert 2018: 109 three-character codes, points 0.1 to 7.1 (sum 173.2, methods reference).
    assert len(HFRS) == 109
    assert HFRS["code"].is_unique
    assert HFRS["code"].str.fullmatch(r"[A-Z]\d\d").all()
    assert (HFRS["points"].min(), HFRS["points"].max()) == (0.1, 7.1)
    assert round(HFRS["points"].sum(), 1) == 173.2
    # Clegg 2016: 36 deficits; Payne 2020: 20 conditions, general-outcome maximum 16.33.
    assert len(EFI) == 36 and EFI["deficit"].is_unique and EFI["pophealth_condition"].is_unique
    assert len(CMS) == 20 and CMS["pophealth_condition"].is_unique
    assert round(CMS["general"].sum(), 2) == 16.33


# ----------------------------------------------------------------------------- HFRS


def _hfrs_one(*codes: str) -> pd.Series:
    reg = pd.DataFrame({"patient_id": [1], "age": [80]})
    ev = pd.DataFrame({"patient_id": 1, "code": list(codes), "code_system": "icd10"})
    return ph.hfrs(ev, register=reg, index_date=IDX, lookback_days=None).loc[1]


@pytest.mark.parametrize(("code", "points"), sorted(HFRS_POINTS.items()))
def test_every_hfrs_code_scores_its_published_points(code, points):
    """One patient aged 80 with one code: the score is exactly that code's points."""
    out = _hfrs_one(code)
    assert out["hfrs"] == points
    # any 4th character belongs to the same 3-character group and counts once
    assert _hfrs_one(code, f"{code}.9", f"{code}1")["hfrs"] == points


def test_hfrs_all_109_codes_on_one_patient_sum_to_173_2():
    out = _hfrs_one(*HFRS["code"])
    assert out["hfrs"] == 173.2
    assert out["hfrs_band"] == "high"


@pytest.mark.parametrize("code", ["F02", "F04", "G82", "R30", "R34", "W20", "S02", "N40", "I68"])
def test_hfrs_neighbouring_codes_outside_the_table_score_zero(code):
    assert code not in HFRS_POINTS
    assert _hfrs_one(code)["hfrs"] == 0.0


def test_hfrs_vectorised_many_patients_each_get_their_codes_points():
    """109 patients, patient i has code i only: the scores are the published points in order."""
    n = len(HFRS)
    reg = pd.DataFrame({"patient_id": np.arange(n), "age": 80})
    ev = pd.DataFrame({"patient_id": np.arange(n), "code": HFRS["code"], "code_system": "icd10"})
    out = ph.hfrs(ev, register=reg, index_date=IDX, lookback_days=None)
    assert out["hfrs"].tolist() == HFRS["points"].tolist()


def test_shipped_hfrs_weights_equal_the_published_table_in_full():
    w = _shipped("weights", "hfrs")
    assert set(w["scheme"]) == {"gilbert2018"}
    shipped = dict(zip(w["condition"], w["weight"], strict=True))
    assert len(w) == len(shipped) == 109
    assert sorted(set(shipped) - set(HFRS_POINTS)) == []
    assert sorted(set(HFRS_POINTS) - set(shipped)) == []
    wrong = sorted(c for c in HFRS_POINTS if shipped[c] != HFRS_POINTS[c])
    assert wrong == []


def test_shipped_hfrs_codelist_is_exactly_one_prefix_per_published_code():
    cl = _shipped("codelists", "hfrs_gilbert2018_icd10")
    assert len(cl) == 109
    assert (cl["condition"] == cl["code"]).all()
    assert set(cl["match"]) == {"prefix"}
    assert set(cl["code_system"]) == {"icd10"}
    assert set(cl["code"]) == set(HFRS_POINTS)


@pytest.mark.parametrize(
    ("score", "band"),
    [(0.0, "low"), (4.99, "low"), (5.0, "intermediate"), (15.0, "intermediate"),
     (15.01, "high"), (173.2, "high")],
)
def test_hfrs_band_edges(score, band):
    # Gilbert 2018: low < 5, intermediate 5-15, high > 15
    assert list(hfrs_band([score])) == [band]


@pytest.mark.parametrize(
    ("codes", "score", "band"),
    [(("F05", "M79", "F32", "R50"), 4.9, "low"),            # 3.2 + 1.1 + 0.5 + 0.1
     (("R31", "E87"), 5.3, "intermediate"),                 # 3.0 + 2.3
     (("G30", "W19", "R45"), 8.4, "intermediate"),          # 4.0 + 3.2 + 1.2
     (("F00", "I69", "W19", "E55"), 15.0, "intermediate"),  # 7.1 + 3.7 + 3.2 + 1.0
     (("F00", "G81", "R29"), 15.1, "high")],                # 7.1 + 4.4 + 3.6
)
def test_hfrs_band_through_the_score(codes, score, band):
    out = _hfrs_one(*codes)
    assert (out["hfrs"], out["hfrs_band"]) == (score, band)


def test_hfrs_band_rejects_missing_scores_naming_positions():
    with pytest.raises(ConfigError, match=r"1 missing at position\(s\) 1$"):
        hfrs_band([1.0, np.nan, 20.0])


# ----------------------------------------------------------------------------- eFI


def _norm(label: str) -> str:
    """Case/punctuation-insensitive name; a trailing parenthetical gloss is not part of it."""
    label = label.split(" (")[0]
    return " ".join(label.lower().replace("&", " and ").replace("/", " / ").split())


def test_shipped_efi_deficits_are_the_36_published_deficits():
    conds = _shipped("conditions", "efi")
    assert len(conds) == 36
    assert set(conds["condition"]) == set(EFI["pophealth_condition"])
    assert set(ph.load_index("efi").condition_names) == set(EFI["pophealth_condition"])
    label = dict(zip(conds["condition"], conds["label"], strict=True))
    wrong = [r.deficit for r in EFI.itertuples()
             if _norm(label[r.pophealth_condition]) != _norm(r.deficit)]
    assert wrong == []


def _published_efi_band(value: float) -> str:
    # Clegg 2016: fit 0-0.12, mild >0.12-0.24, moderate >0.24-0.36, severe >0.36
    if value <= 0.12:
        return "fit"
    if value <= 0.24:
        return "mild"
    if value <= 0.36:
        return "moderate"
    return "severe"


def test_efi_is_deficits_over_36_with_published_bands_for_every_count():
    names = list(EFI["pophealth_condition"])
    # row k has the first k deficits (in the fixture's order) present: k = 0..36
    flags = pd.DataFrame({n: np.arange(37) > i for i, n in enumerate(names)})
    out = ph.efi(flags)
    k = np.arange(37)
    assert out["efi_deficits"].tolist() == k.tolist()
    np.testing.assert_allclose(out["efi"].to_numpy(), k / 36, rtol=0, atol=1e-15)
    assert out["efi_band"].tolist() == [_published_efi_band(x / 36) for x in k]
    # the hand-worked cut-points: 4/36 fit, 5/36 mild, 8/36 mild, 9/36 moderate, 13/36 severe
    assert out["efi_band"].iloc[[4, 5, 8, 9, 12, 13]].tolist() == [
        "fit", "mild", "mild", "moderate", "moderate", "severe"]


@pytest.mark.parametrize("deficit", list(EFI["pophealth_condition"]))
def test_each_efi_deficit_alone_is_one_36th(deficit):
    flags = pd.DataFrame({n: [n == deficit] for n in EFI["pophealth_condition"]})
    out = ph.efi(flags)
    assert out.loc[0, "efi_deficits"] == 1
    assert out.loc[0, "efi"] == 1 / 36


# ----------------------------------------------------------------------------- CMS


@pytest.mark.parametrize("scheme", ["general", "mortality"])
def test_shipped_cms_weights_equal_the_published_table_in_full(scheme):
    w = _shipped("weights", "cms")
    assert set(w["scheme"]) == {"general", "mortality"}
    ws = w[w["scheme"] == scheme]
    shipped = dict(zip(ws["condition"], ws["weight"], strict=True))
    published = dict(zip(CMS["pophealth_condition"], CMS[scheme], strict=True))
    assert len(ws) == 20
    assert set(shipped) == set(published)
    assert sorted(c for c in published if shipped[c] != published[c]) == []
    assert set(_shipped("conditions", "cms")["condition"]) == set(published)


@pytest.mark.parametrize("scheme", ["general", "mortality"])
@pytest.mark.parametrize("condition", list(CMS["pophealth_condition"]))
def test_each_cms_condition_alone_scores_its_published_weight(condition, scheme):
    flags = pd.DataFrame({n: [n == condition] for n in CMS["pophealth_condition"]})
    expected = CMS.set_index("pophealth_condition").loc[condition, scheme]
    assert ph.cambridge_score(flags, weights=scheme).iloc[0] == pytest.approx(expected, abs=1e-9)


def test_cms_general_all_20_conditions_is_the_published_maximum():
    flags = pd.DataFrame({n: [True, False] for n in CMS["pophealth_condition"]})
    assert ph.cambridge_score(flags).tolist() == pytest.approx([16.33, 0.0], abs=1e-9)


# ----------------------------------------------------------------------------- counts


def test_condition_count_counts_every_true_flag():
    f = pd.DataFrame({f"c{j}": [j < k for k in range(6)] for j in range(5)})
    assert ph.condition_count(f).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("present", "systems", "multi", "complex_"),
    [
        ((), {}, False, False),
        (("a",), {}, False, False),
        (("a", "b"), {}, True, False),                                    # 2 conditions
        (("a", "b", "c"), {"a": "x", "b": "x", "c": "y"}, True, False),   # 3 in 2 systems
        (("a", "b", "c"), {"a": "x", "b": "y", "c": "z"}, True, True),    # 3 in 3 systems
        (("a", "b"), {"a": "x", "b": "y"}, True, False),                  # 2 in 2 systems
        (("a", "b", "c", "d"), {"a": "x", "b": "x", "c": "x", "d": "y"}, True, False),
    ],
)
def test_multimorbidity_definitions(present, systems, multi, complex_):
    names = ["a", "b", "c", "d"]
    bs = {n: systems.get(n, f"own_{n}") for n in names}
    f = pd.DataFrame({n: [n in present] for n in names})
    out = ph.multimorbidity(f, body_systems=bs).iloc[0]
    n_sys = len({bs[n] for n in present})
    assert out["n_conditions"] == len(present)
    assert out["n_body_systems"] == n_sys
    assert out["multimorbidity"] == multi
    assert out["complex_multimorbidity"] == complex_
    # and the same verdicts from the published thresholds in the fixture
    assert multi == (len(present) >= MM.loc["multimorbidity", "min_conditions"])
    assert complex_ == (len(present) >= MM.loc["complex_multimorbidity", "min_conditions"]
                        and n_sys >= MM.loc["complex_multimorbidity", "min_body_systems"])
