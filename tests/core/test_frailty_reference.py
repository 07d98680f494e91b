"""Recorded frailty (latest MILDFRAIL/MODFRAIL/SEVFRAIL code) against a slow reference.

The reference loops over event rows in plain Python, straight from the rules of
:mod:`pophealth.core.frailty`: a row counts when its code system is SNOMED CT (any
spelling), its code (upper-cased, non-alphanumerics dropped) is one of the eight frailty
codes of ``pcd_snomed`` (listed here by hand from ``data/codelists``), its patient is on
the register and its date is known and on or before the index date; each patient's band
is that of the latest such row, the most severe on a tie.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pophealth.contracts.exceptions import DataQualityWarning
from pophealth.core.frailty import recorded_frailty

IDX = pd.Timestamp("2025-04-01")
#: the frailty codes of pcd_snomed (mildfrail_cod, modfrail_cod, sevfrail_cod), by hand
BAND_OF = {"1129361000000106": "mild", "1129371000000104": "mild", "925791000000100": "mild",
           "1129381000000102": "moderate", "925831000000107": "moderate",
           "1129391000000100": "severe", "1129401000000102": "severe",
           "925861000000102": "severe"}
SEVERITY = {"mild": 1, "moderate": 2, "severe": 3}
SNOMED_SPELLINGS = {"snomed", "snomedct", "sct"}


def _norm_system(s) -> str:
    if not isinstance(s, str):
        return ""
    return "".join(ch for ch in s.lower() if ch.isascii() and ch.isalnum())


def _norm_code(c) -> str:
    if not isinstance(c, str):
        return ""
    return "".join(ch for ch in c.upper() if ch.isascii() and ch.isalnum())


def reference(events: pd.DataFrame, register_ids: list) -> tuple[dict, int]:
    """patient -> (band, date) of the latest frailty code; and the undated row count."""
    on_register = set(register_ids)
    best: dict = {}
    undated = 0
    for pid, code, system, date in zip(events["patient_id"], events["code"],
                                       events["code_system"], events["date"], strict=True):
        if _norm_system(system) not in SNOMED_SPELLINGS:
            continue
        band = BAND_OF.get(_norm_code(code))
        if band is None or pid not in on_register:
            continue
        if pd.isna(date):
            undated += 1
            continue
        if date > IDX:
            continue
        key = (date, SEVERITY[band])
        if pid not in best or key > best[pid][0]:
            best[pid] = (key, band, date)
    return {p: (v[1], v[2]) for p, v in best.items()}, undated


def random_events(seed: int, n_rows: int = 600) -> tuple[pd.DataFrame, list]:
    rng = np.random.default_rng(seed)
    register_ids = sorted(rng.choice(np.arange(1000, 1400), size=60, replace=False).tolist())
    pool = register_ids + [5, 6, 7]  # three ids not on the register
    frail = list(BAND_OF)
    variants = frail + [f" {c} " for c in frail] + [c[:4] + "-" + c[4:] for c in frail]
    other = ["44054006", "84114007", "I50.0", "E11", "925791000000101", ""]
    codes = rng.choice(np.array(variants + other, dtype=object), size=n_rows)
    codes[rng.random(n_rows) < 0.03] = None
    systems = rng.choice(np.array(["snomed", "SNOMED CT", "icd10", "Read v2", None],
                                  dtype=object), size=n_rows, p=[0.4, 0.2, 0.2, 0.1, 0.1])
    days = rng.integers(-1500, 200, size=n_rows)
    dates = pd.to_datetime(IDX + pd.to_timedelta(days, unit="D"))
    dates = dates.where(rng.random(n_rows) >= 0.05)  # some NaT
    # few distinct days, so that same-day codes of one patient are common
    dates = dates.where(rng.random(n_rows) >= 0.3, IDX - pd.Timedelta(days=30))
    ev = pd.DataFrame({"patient_id": rng.choice(pool, size=n_rows), "code": codes,
                       "code_system": systems, "date": dates})
    return ev, register_ids


def check(out: pd.DataFrame, expected: dict, register_ids: list) -> None:
    assert out.index.tolist() == register_ids
    got_band = out["frailty_recorded"].astype(object).where(out["frailty_recorded"].notna(),
                                                            None).tolist()
    want_band = [expected[p][0] if p in expected else None for p in register_ids]
    assert got_band == want_band
    got_date = out["frailty_recorded_date"].tolist()
    want_date = [expected[p][1] if p in expected else pd.NaT for p in register_ids]
    assert [None if pd.isna(d) else d for d in got_date] == \
        [None if pd.isna(d) else d for d in want_date]
    src = out["frailty_recorded_source"].astype(object).where(
        out["frailty_recorded_source"].notna(), None).tolist()
    assert src == ["code" if p in expected else None for p in register_ids]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("form", ["object", "categorical", "sorted_categorical"])
def test_recorded_frailty_matches_the_row_by_row_reference(seed, form):
    ev, register_ids = random_events(seed)
    expected, undated = reference(ev, register_ids)
    assert len(expected) >= 10 and undated >= 1  # the data exercise the rules
    if form != "object":
        ev = ev.assign(code=ev["code"].astype("category"),
                       code_system=ev["code_system"].astype("category"))
    if form == "sorted_categorical":  # grouped by patient, as the job reads them
        ev = ev.sort_values("patient_id", kind="stable").reset_index(drop=True)
    reg = pd.DataFrame({"patient_id": register_ids})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        out = recorded_frailty(ev, register=reg, index_date=IDX)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    assert msgs == [f"events: {undated} frailty code row(s) without a 'date' were not used "
                    "for recorded frailty (cannot tell which is latest)"]
    check(out, expected, register_ids)


def test_frailty_code_under_another_system_or_spelling_by_hand():
    # patient 1: mild (snomed) then severe under icd10 (not a SNOMED code: ignored) ->
    # mild; patient 2: moderate spelled "SNOMED CT" with a dash in the code -> moderate;
    # patient 3: severe and mild on the same day -> severe; patient 4: only after index;
    # patient 5: only an undated code -> nothing
    ev = pd.DataFrame({
        "patient_id": [1, 1, 2, 3, 3, 4, 5],
        "code": ["925791000000100", "925861000000102", "9258-31000000107",
                 "925791000000100", "925861000000102", "925861000000102", "925861000000102"],
        "code_system": pd.Categorical(["snomed", "icd10", "SNOMED CT", "snomed", "snomed",
                                       "snomed", "snomed"]),
        "date": pd.to_datetime(["2024-01-01", "2024-06-01", "2023-01-01", "2024-02-02",
                                "2024-02-02", "2025-04-02", None])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # the undated row: counted above
        out = recorded_frailty(ev, register=pd.DataFrame({"patient_id": [1, 2, 3, 4, 5]}),
                               index_date=IDX)
    assert out["frailty_recorded"].astype(object).where(
        out["frailty_recorded"].notna(), None).tolist() == [
        "mild", "moderate", "severe", None, None]
    assert out["frailty_recorded_date"].tolist()[:3] == [
        pd.Timestamp("2024-01-01"), pd.Timestamp("2023-01-01"), pd.Timestamp("2024-02-02")]
