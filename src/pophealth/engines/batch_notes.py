"""Data-quality notes of several patient batches, summed into the notes of one population.

Scoring in batches issues each count-bearing warning once per batch ("3 row(s) for
patients not on the register" in batch 1, "2 ..." in batch 2). :func:`merge_notes`
gives what one call over the whole population would have said for the templates whose
counts add up (rows and patients excluded), and keeps every other distinct message
once, as a single call does. A message is text with counts, names and rules only: it is
never parsed for values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["merge_notes"]

_EXCLUDED = re.compile(r"^flag_conditions\((?P<list>[^)]*)\): excluded (?P<parts>.*)$")
_PART = re.compile(
    r"^(?P<n>\d+) row\(s\) (?:(?P<unrec>with unrecognised codes) \((?P<u>\d+) distinct\)"
    r"|(?P<what>for patients not on the register|with a missing date))$")
_OTHER = re.compile(
    r"^flag_conditions\((?P<list>[^)]*)\): (?P<a>\d+) of (?P<b>\d+) event row\(s\) \(\d+% >= "
    r"warn_other_system=(?P<w>\d+%)\) are in code system\(s\) the list does not cover "
    r"\((?P<other>[^)]*)\) and cannot count; the list covers (?P<covers>.*) \((?P<c>\d+) "
    r"row\(s\), (?P<d>\d+) with a code in the list\)$")
_NONE = re.compile(
    r"^flag_conditions\((?P<list>[^)]*)\): no event row can match the list: all (?P<b>\d+) "
    r"row\(s\) are in code system\(s\) it does not cover \((?P<other>[^)]*)\); the list "
    r"covers (?P<covers>[^;]*); (?P<tail>.*)$")
# messages whose leading integers are row/patient counts that add up over batches
_SUMMED = (
    re.compile(r"^(?P<head>[\w ]+: )(?P<a>\d+) of (?P<b>\d+)(?P<tail> patient\(s\) are under "
               r"\d+; .*)$"),
    re.compile(r"^(?P<head>events: )(?P<a>\d+)(?P<tail> frailty code row\(s\) without .*)$"),
    re.compile(r"^(?P<head>patients: no column \[[^\]]*\] \(band unknown for all )"
               r"(?P<a>\d+)(?P<tail> patient\(s\)\); .*)$"),
)


def _excluded(batches: list[list[str]]) -> tuple[dict, set]:
    """Sum the ``flag_conditions(<list>): excluded ...`` parts per code list."""
    sums: dict = {}
    used: set = set()
    for messages in batches:
        for text in dict.fromkeys(messages):
            m = _EXCLUDED.match(text)
            if not m:
                continue
            parts = [_PART.match(p) for p in m["parts"].split("; ")]
            if not all(parts):
                continue
            used.add(text)
            acc = sums.setdefault(m["list"], {"unrec": 0, "distinct": [], "for patients not on "
                                              "the register": 0, "with a missing date": 0})
            for p in parts:
                if p["unrec"]:
                    acc["unrec"] += int(p["n"])
                    acc["distinct"].append(int(p["u"]))
                else:
                    acc[p["what"]] += int(p["n"])
    return sums, used


def _system_counts(text: str, acc: dict) -> None:
    for item in text.split(", "):
        name, _, n = item.rpartition(" ")
        acc[name] = acc.get(name, 0) + int(n)


def _code_systems(batches: list[list[str]]) -> tuple[set, set]:
    """Sum the code-system warnings of a code list judged per batch (segment lists).

    A batch issues one only at or above the threshold (or when nothing can match), so
    when every batch issued one the sum is exactly the one-call message; otherwise the
    note says in how many batches the sum was taken."""
    groups: dict = {}
    used: set = set()
    for k, messages in enumerate(batches):
        for text in dict.fromkeys(messages):
            m = _OTHER.match(text) or _NONE.match(text)
            if not m:
                continue
            used.add(text)
            g = groups.setdefault((m["list"], m["covers"]), {
                "batches": set(), "a": 0, "b": 0, "c": 0, "d": 0, "other": {}, "w": None,
                "tail": None})
            g["batches"].add(k)
            _system_counts(m["other"], g["other"])
            b = int(m["b"])
            g["b"] += b
            if "w" in m.groupdict() and m.groupdict().get("w"):
                g["a"] += int(m["a"])
                g["c"] += int(m["c"])
                g["d"] += int(m["d"])
                g["w"] = m["w"]
            else:
                g["a"] += b
                g["tail"] = m["tail"]
    out = set()
    for (name, covers), g in groups.items():
        other = ", ".join(f"{k} {n}" for k, n in sorted(g["other"].items(),
                                                       key=lambda kv: (-kv[1], kv[0])))
        if g["w"] is None:
            text = (f"flag_conditions({name}): no event row can match the list: all {g['b']} "
                    f"row(s) are in code system(s) it does not cover ({other}); the list "
                    f"covers {covers}; {g['tail']}")
        else:
            text = (f"flag_conditions({name}): {g['a']} of {g['b']} event row(s) "
                    f"({g['a'] / g['b']:.0%} >= warn_other_system={g['w']}) are in code "
                    f"system(s) the list does not cover ({other}) and cannot count; the list "
                    f"covers {covers} ({g['c']} row(s), {g['d']} with a code in the list)")
        if len(g["batches"]) < len(batches):
            text += (f" [summed over the {len(g['batches'])} of {len(batches)} patient "
                     "batches that reached the threshold; the list is judged per batch]")
        out.add(text)
    return out, used


def merge_notes(batches: Iterable[Iterable[str]], *, n_patients: int) -> list[str]:
    """The sorted distinct notes of a population scored in batches, counts summed.

    Parameters
    ----------
    batches : iterable of iterable of str
        Each batch's data-quality warning messages (duplicates allowed).
    n_patients : int
        Patients over all batches: the denominator of "<a> of <n> patient(s) are under
        <age>", which a batch without such patients does not issue at all.

    Returns
    -------
    list of str
        Sorted distinct messages. The excluded-row counts of each code list
        (``flag_conditions(<list>): excluded ...``) and the patient/row counts of the
        HFRS/age, undated-frailty and missing-band messages are summed over batches;
        the number of *distinct* unrecognised codes cannot be summed (batches share
        codes), so with more than one batch it reads "at least <largest batch's>
        distinct". Any other message is kept once per distinct text.

    Examples
    --------
    >>> merge_notes([["flag_conditions(c): excluded 2 row(s) for patients not on the register",
    ...               "hfrs: 3 of 10 patient(s) are under 75; less valid"],
    ...              ["flag_conditions(c): excluded 1 row(s) for patients not on the register",
    ...               "hfrs: 1 of 5 patient(s) are under 75; less valid"],
    ...              []], n_patients=20)
    ['flag_conditions(c): excluded 3 row(s) for patients not on the register', 'hfrs: 4 of 20 patient(s) are under 75; less valid']
    """
    batches = [list(b) for b in batches]
    if len(batches) <= 1:
        return sorted(set(batches[0])) if batches else []
    out: set = set()
    sums, used = _excluded(batches)
    systems, used_systems = _code_systems(batches)
    out |= systems
    used |= used_systems
    for name, acc in sums.items():
        parts = []
        if acc["unrec"]:
            d = acc["distinct"]
            parts.append(f"{acc['unrec']} row(s) with unrecognised codes "
                         f"({'at least ' if len(d) > 1 else ''}{max(d)} distinct)")
        for what in ("for patients not on the register", "with a missing date"):
            if acc[what]:
                parts.append(f"{acc[what]} row(s) {what}")
        out.add(f"flag_conditions({name}): excluded " + "; ".join(parts))
    summed: dict = {}
    for messages in batches:
        for text in dict.fromkeys(messages):
            if text in used:
                continue
            for pattern in _SUMMED:
                m = pattern.match(text)
                if m:
                    key = (m["head"], m["tail"])
                    acc = summed.setdefault(key, [0, "b" in m.groupdict()])
                    acc[0] += int(m["a"])
                    break
            else:
                out.add(text)
    for (head, tail), (a, of) in summed.items():
        out.add(f"{head}{a} of {n_patients}{tail}" if of else f"{head}{a}{tail}")
    return sorted(out)
