"""Slow, obviously-correct reference implementations used to check the vectorised core.

Plain Python loops over patients and events, written straight from the rules in the
issue text; no numpy tricks. Never import this from the library.
"""

from __future__ import annotations

import math
import re
import string

import pandas as pd
import published

ALNUM = set(string.ascii_uppercase + string.digits)
PATTERNS = {"icd10": r"[A-Z][0-9]{2}[0-9A-Z]{0,3}"}


def ref_normalise(code, system: str) -> str:
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return ""
    out = "".join(ch for ch in str(code).upper() if ch in ALNUM)
    if system == "icd10" and len(out) == 4 and out[3] == "X" and re.fullmatch(r"[A-Z][0-9]{2}", out[:3]):
        out = out[:3]
    return out


def ref_valid(code: str, system: str) -> bool:
    return re.fullmatch(PATTERNS.get(system, r"[0-9A-Z]+"), code) is not None


def ref_system(s) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return ""
    return "".join(ch for ch in str(s).lower() if ch.isascii() and ch.isalnum())


def ref_flags(events: pd.DataFrame, codelist: pd.DataFrame, register_ids, index_date,
              lookback_days=None) -> pd.DataFrame:
    """Per-patient loop: which conditions does each register patient have?"""
    conditions = list(dict.fromkeys(codelist["condition"]))
    entries = list(codelist[["condition", "code", "code_system", "match"]].itertuples(index=False))
    index_date = pd.Timestamp(index_date)
    by_patient: dict = {}
    for row in events.to_dict("records"):
        by_patient.setdefault(row["patient_id"], []).append(row)
    out = {}
    for pid in register_ids:
        have = dict.fromkeys(conditions, False)
        for ev in by_patient.get(pid, []):
            if "date" in ev:
                d = ev["date"]
                if d is None or pd.isna(d):
                    continue
                d = pd.Timestamp(d)
                if d > index_date:
                    continue
                if lookback_days is not None and d <= index_date - pd.Timedelta(days=lookback_days):
                    continue
            system = ref_system(ev["code_system"])
            code = ref_normalise(ev["code"], system)
            if not ref_valid(code, system):
                continue
            for cond, entry_code, entry_system, match in entries:
                if entry_system != system:
                    continue
                hit = code.startswith(entry_code) if match == "prefix" else code == entry_code
                if hit:
                    have[cond] = True
        out[pid] = have
    frame = pd.DataFrame.from_dict(out, orient="index", columns=conditions).astype(bool)
    frame.index.name = "patient_id"
    return frame


def ref_score(flags: pd.DataFrame, weights: dict, hierarchy, floor_at_zero=False) -> list:
    """Per-patient loop: weighted sum with subordinate conditions cleared."""
    scores = []
    for _, row in flags.iterrows():
        present = {c for c in weights if bool(row[c])}
        for dom, sub in hierarchy:
            if dom in present and sub in present:
                present.discard(sub)
        total = sum(weights[c] for c in present)
        if floor_at_zero:
            total = max(total, 0)
        scores.append(round(total, 6))
    return scores


def published_codelist(listname: str) -> pd.DataFrame:
    """A published code table (tests/fixtures/published) as a code-list frame.

    The reference side of the property tests reads Charlson/Elixhauser code lists from
    the independent transcriptions, never from the library's shipped CSVs.
    """
    rows = [(cond, code, "icd10", "prefix")
            for cond, prefixes in published.codes(listname).items() for code in sorted(prefixes)]
    return pd.DataFrame(rows, columns=["condition", "code", "code_system", "match"])

