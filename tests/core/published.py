"""Published comorbidity tables, read from the independent transcriptions in
``tests/fixtures/published/`` (never from ``src/pophealth/data``).

Each fixture CSV carries a header comment citing its source table and version. This module
only parses them: code cells are kept in the published notation (``I42.5-I42.9``,
``I43.x``, ``D65-D68.x``) and expanded here into prefixes, so a reader can hold a fixture
row against the paper.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "published"

CODE_TABLES = {
    "charlson_quan2005_icd10": "quan2005_table1_charlson_icd10.csv",
    "charlson_shmi_icd10": "shmi_v1.35_charlson_icd10.csv",
    "elixhauser_quan2005_icd10": "quan2005_table2_elixhauser_icd10.csv",
}
WEIGHT_TABLES = {"charlson": "charlson_weights.csv", "elixhauser": "elixhauser_weights.csv"}

_ONE = re.compile(r"([A-Z])(\d{2})(?:\.(\d|x))?")


def _code(token: str) -> tuple[str, str]:
    """(letter, digits) of one published code: ``I42.5`` -> (I, 425); ``I43.x`` -> (I, 43)."""
    m = _ONE.fullmatch(token)
    if m is None:
        raise ValueError(f"not a published ICD-10 code: {token!r}")
    letter, cat, sub = m.groups()
    return letter, cat + (sub if sub not in (None, "x") else "")


def expand(cell: str) -> list[str]:
    """Prefixes of one published cell, in order.

    >>> expand("I42.0, I42.5-I42.9, I43.x")
    ['I420', 'I425', 'I426', 'I427', 'I428', 'I429', 'I43']
    >>> expand("D65-D68.x, C77.x-C80.x")
    ['D65', 'D66', 'D67', 'D68', 'C77', 'C78', 'C79', 'C80']
    """
    out: list[str] = []
    for item in (part.strip() for part in cell.split(",")):
        if "-" not in item:
            letter, digits = _code(item)
            out.append(letter + digits)
            continue
        lo, hi = (s.strip() for s in item.split("-"))
        (l1, d1), (l2, d2) = _code(lo), _code(hi)
        if l1 != l2 or len(d1) != len(d2):
            raise ValueError(f"range ends differ in letter or length: {item!r}")
        width = len(d1)
        out += [f"{l1}{n:0{width}d}" for n in range(int(d1), int(d2) + 1)]
    return out


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / name, comment="#", dtype=str, keep_default_na=False)


@cache
def codes(listname: str) -> dict[str, frozenset[str]]:
    """Condition slug -> set of prefixes, for one published code table."""
    table = _read(CODE_TABLES[listname])
    out = {row.slug: frozenset(expand(row.icd10)) for row in table.itertuples()}
    if len(out) != len(table):
        raise ValueError(f"{listname}: a slug appears twice")
    return out


@cache
def weights(index: str, scheme: str) -> dict[str, int]:
    """Condition slug -> published weight for one scheme."""
    table = _read(WEIGHT_TABLES[index])
    table = table[table["scheme"] == scheme]
    if table.empty:
        raise KeyError(f"{index}: no published weights for scheme '{scheme}'")
    return dict(zip(table["slug"], table["weight"].astype(int), strict=True))


def schemes(index: str) -> tuple[str, ...]:
    return tuple(pd.unique(_read(WEIGHT_TABLES[index])["scheme"]))


@cache
def hierarchy(index: str) -> tuple[tuple[str, str], ...]:
    """(dominant, subordinate) pairs of one index."""
    table = _read("hierarchies.csv")
    table = table[table["index"] == index]
    return tuple(zip(table["dominant"], table["subordinate"], strict=True))


# Floors are part of the scheme's published scoring rule (SHMI v1.35: a negative Charlson
# total counts as 0). Every other scheme here is an unfloored sum.
FLOOR_AT_ZERO = {("charlson", "shmi"): True}


def conditions_hit(code: str, listname: str) -> set[str]:
    """Slugs whose published prefixes cover ``code`` (normalised, no dot)."""
    return {c for c, pre in codes(listname).items() if any(code.startswith(p) for p in pre)}


def expected_score(present: set[str], index: str, scheme: str) -> int:
    """Published score of a patient with exactly the conditions ``present``."""
    have = set(present)
    for dom, sub in hierarchy(index):
        if dom in have:
            have.discard(sub)
    w = weights(index, scheme)
    total = sum(w[c] for c in have)
    if FLOOR_AT_ZERO.get((index, scheme), False):
        total = max(total, 0)
    return total
