"""Segmentation rules as data: an ordered list of named predicates, first match wins.

A rule set is three small tables (shipped as CSV under ``pophealth/data/segments/``;
copy and edit them to express a local model):

``<name>_segments.csv`` -- ``segment, order, description``
    The segments; ``order`` gives the ordered-categorical order of the output (for
    Bridges to Health, the B2H segment number: 1 healthy ... 8 frailty and dementia).
``<name>_groups.csv`` -- ``group, condition, codelist``
    Named condition groups. Each row says that ``condition`` (a condition of the code
    list ``codelist``) belongs to ``group``. Rules may name a group or any member
    condition; every condition a rule can use is declared here with its code list.
``<name>_rules.csv`` -- ``name, segment, when, window, min_age, max_age, reason, source``
    The rules in priority order (the first rule that matches a patient wins). ``when``
    is a predicate in the mini-language below; ``window`` is the look-back applied to
    every condition the rule names (``ever``, ``<n>m`` months, ``<n>y`` years or
    ``<n>d`` days; months are ``n * 365 / 12`` days rounded down, so ``24m`` = 730
    days); ``min_age``/``max_age`` are inclusive age gates in completed years (blank =
    none); ``reason`` is the human-readable text reported for patients the rule places;
    ``source`` records whether the rule is published or a local (pophealth) choice.
    The last rule must be a catch-all (``when = True``, no age gates), so every patient
    gets exactly one segment.

Mini-language for ``when`` (parsed with :mod:`ast` and interpreted over a whitelist;
nothing is ever passed to ``eval``):

* ``has(x)`` -- the patient has condition ``x`` (or any condition of group ``x``)
  inside the rule's window; ``count(x)`` -- how many of group ``x``'s conditions;
* bare names are columns of the patient table (e.g. ``age``, ``efi_band``,
  ``prior_emergency_admissions``, a boolean column such as ``complex_multimorbidity``);
* comparisons ``== != < <= > >=`` (chains allowed) and ``in [..]`` / ``not in [..]``
  against numbers or strings; a missing value never satisfies a comparison;
* ``<``/``>`` on a label column use its *order*, never the alphabet, whatever the dtype
  (ordered or unordered categorical, ``object``, ``string[pyarrow]``, Arrow): the band
  columns use their known order (``efi_band``: fit < mild < moderate < severe;
  ``hfrs_band``: low < intermediate < high; see
  :data:`pophealth.core.patients.BAND_ORDERS`), other ordered categoricals their
  category order; any other label column is refused (ConfigError), as are a literal
  that is not one of the known labels and, in the data, a label outside the order
  (SchemaError ``known_label``, with count and positions);
* a column compared with a number must hold numbers (SchemaError ``numeric``, checked
  before any rule runs);
* ``and``, ``or``, ``not``, parentheses, ``True``/``False``.

Examples
--------
>>> from pophealth.segments.rules import load_rules
>>> rules = load_rules("bridges_to_health")
>>> rules.rules[0].name, rules.rules[0].segment
('dementia', 'Frailty and dementia (long decline)')
>>> len(rules.segments)
8
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError

__all__ = ["Rule", "SegmentRules", "load_rules", "window_days", "flag_column"]

_RULE_COLUMNS = ("name", "segment", "when", "window", "min_age", "max_age", "reason", "source")
_REQUIRED_RULE = ("name", "segment", "when", "reason")
_SEGMENT_COLUMNS = ("segment", "order", "description")
_GROUP_COLUMNS = ("group", "condition", "codelist")
_FUNCS = {"has", "count"}
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.In: "in", ast.NotIn: "not in"}
_WINDOW = re.compile(r"^\s*(\d+)\s*([dmy])\s*$")


def window_days(window, *, rule: str = "?", field_name: str = "window") -> int | None:
    """Look-back in days for a window string (``None`` = ever).

    Examples
    --------
    >>> from pophealth.segments.rules import window_days
    >>> window_days("ever"), window_days("24m"), window_days("1y"), window_days("90d")
    (None, 730, 365, 90)
    """
    if window is None or (isinstance(window, float) and np.isnan(window)):
        return None
    text = str(window).strip().lower()
    if text in ("", "ever"):
        return None
    m = _WINDOW.match(text)
    if m is None or int(m.group(1)) == 0:
        raise ConfigError(
            f"rule '{rule}': field '{field_name}' is not a window "
            "(use 'ever', '<n>m', '<n>y' or '<n>d' with n >= 1)")
    n, unit = int(m.group(1)), m.group(2)
    return n if unit == "d" else n * 365 if unit == "y" else n * 365 // 12


def flag_column(condition: str, days: int | None) -> str:
    """Name of the flags column for a condition in a window (``ever`` = the bare name).

    Examples
    --------
    >>> from pophealth.segments.rules import flag_column
    >>> flag_column("cancer", None), flag_column("cancer", 730)
    ('cancer', 'cancer@730d')
    """
    return condition if days is None else f"{condition}@{days}d"


@dataclass(frozen=True)
class Rule:
    """One segment rule (see the module docstring for the fields)."""

    name: str
    segment: str
    when: str
    reason: str
    window: str = "ever"
    min_age: int | None = None
    max_age: int | None = None
    source: str = ""
    days: int | None = field(default=None, compare=False)
    tree: ast.AST = field(default=None, repr=False, compare=False)
    conditions: tuple[str, ...] = field(default=(), compare=False)  # names in has()/count()
    columns: tuple[str, ...] = field(default=(), compare=False)  # patient-table columns

    @property
    def is_catch_all(self) -> bool:
        """True when the rule matches everyone (``when = True`` and no age gates)."""
        return (isinstance(self.tree, ast.Constant) and self.tree.value is True
                and self.min_age is None and self.max_age is None)


class _Checker(ast.NodeVisitor):
    """Validate a parsed ``when`` expression against the whitelist; collect names."""

    def __init__(self, rule: str, known: set[str]):
        self.rule, self.known = rule, known
        self.conditions: list[str] = []
        self.columns: list[str] = []
        self.n_calls = 0

    def fail(self, what: str):
        raise ConfigError(f"rule '{self.rule}': field 'when' {what}")

    def boolean(self, node):
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.boolean(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.boolean(node.operand)
        elif isinstance(node, ast.Compare):
            self.operand(node.left)
            for op, right in zip(node.ops, node.comparators, strict=True):
                if type(op) not in _CMP:
                    self.fail("uses an unsupported comparison operator")
                if isinstance(op, (ast.In, ast.NotIn)):
                    if not isinstance(right, (ast.List, ast.Tuple)) or not all(
                            isinstance(e, ast.Constant) for e in right.elts):
                        self.fail("needs a list of literals after 'in'")
                else:
                    self.operand(right)
        elif isinstance(node, ast.Call):
            self.call(node, "has")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            pass
        elif isinstance(node, ast.Name):
            self.column(node)
        else:
            self.fail(f"has an unsupported expression ({type(node).__name__})")

    def column(self, node):
        if node.id in self.known:
            self.fail("uses a condition or group name without has() or count()")
        self.columns.append(node.id)

    def operand(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return
        if isinstance(node, ast.Name):
            self.column(node)
        elif isinstance(node, ast.Call):
            self.call(node, "count")
        else:
            self.fail(f"has an unsupported operand ({type(node).__name__})")

    def call(self, node, expected):
        self.n_calls += 1
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
            self.fail(f"call {self.n_calls} is not has() or count()")
        if node.func.id != expected:
            self.fail(f"call {self.n_calls}: {node.func.id}() cannot be used here "
                      "(has() is a test, count() is a number)")
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            self.fail(f"call {self.n_calls}: {node.func.id}() takes one condition or group name")
        name = node.args[0].id
        if name not in self.known:
            self.fail(f"call {self.n_calls} ({node.func.id}()) names an unknown condition or group")
        self.conditions.append(name)


def _compile(rule: str, text: str, known: set[str]) -> tuple[ast.AST, list[str], list[str]]:
    src = str(text).strip()
    if src in ("true", "TRUE"):
        src = "True"
    try:
        tree = ast.parse(src, mode="eval").body
    except SyntaxError:
        raise ConfigError(f"rule '{rule}': field 'when' is not a valid expression") from None
    checker = _Checker(rule, known)
    checker.boolean(tree)
    return tree, checker.conditions, checker.columns


def _check_codelists(grp: pd.DataFrame, name: str) -> None:
    from pophealth.core.codelists import load_codelist

    for cl in pd.unique(grp["codelist"].astype(str)):
        sel = (grp["codelist"].astype(str) == cl).to_numpy()
        try:
            conditions = set(load_codelist(cl).conditions)
        except Exception as exc:  # CodelistError, OSError
            raise ConfigError(f"{name}: groups: field 'codelist' in row(s) "
                              f"{np.flatnonzero(sel)[:10].tolist()} cannot be loaded") from exc
        bad = sel & ~grp["condition"].astype(str).isin(conditions).to_numpy()
        if bad.any():
            raise ConfigError(f"{name}: groups: field 'condition' in row(s) "
                              f"{np.flatnonzero(bad)[:10].tolist()} is not a condition of its "
                              "code list")


def _frame(data, columns: Sequence[str], required: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(list(data))
    missing = [c for c in required if c not in data.columns]
    if missing:
        raise ConfigError(f"{what}: missing column(s) {missing}")
    unknown = [c for c in data.columns if c not in columns]
    if unknown:
        raise ConfigError(f"{what}: unknown column(s) {unknown}; allowed {list(columns)}")
    return data.reset_index(drop=True)


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _age(v, rule: str, name: str) -> int | None:
    if _blank(v):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        f = np.nan
    if not np.isfinite(f) or f < 0 or f != int(f):
        raise ConfigError(f"rule '{rule}': field '{name}' must be a whole number of years >= 0")
    return int(f)


@dataclass(frozen=True)
class SegmentRules:
    """A validated, ordered rule set.

    Attributes
    ----------
    name : str
    segments : tuple of str
        Output categories in their clinical order (not the priority order).
    rules : tuple of Rule
        Priority order: the first rule that matches a patient wins.
    groups : dict
        Group -> member conditions.
    codelists : dict
        Condition -> code list names that define it.

    Examples
    --------
    The shipped Bridges to Health rules give Lynn et al.'s (2007) eight segments:

    >>> from pophealth.segments.rules import load_rules
    >>> b2h = load_rules("bridges_to_health")
    >>> b2h.name, len(b2h.segments), b2h.segments[0]
    ('bridges_to_health', 8, 'Healthy')
    """

    name: str
    segments: tuple[str, ...]
    rules: tuple[Rule, ...]
    groups: Mapping[str, tuple[str, ...]] = field(repr=False)
    codelists: Mapping[str, tuple[str, ...]] = field(repr=False)
    descriptions: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_frames(cls, rules, segments, groups, *, name: str = "custom") -> SegmentRules:
        """Build and validate a rule set from three tables (or lists of dicts).

        Raises
        ------
        ConfigError
            Naming the rule (or group/segment row) and field: unknown segment, unknown
            condition or group in ``when``, bad window, bad age gate, duplicate rule
            names, or a rule list that does not end with a catch-all.

        Examples
        --------
        >>> from pophealth.segments.rules import SegmentRules
        >>> r = SegmentRules.from_frames(
        ...     [{"name": "hf", "segment": "Ill", "when": "has(heart_failure)",
        ...       "reason": "heart failure"},
        ...      {"name": "rest", "segment": "Well", "when": "True", "reason": "other"}],
        ...     [{"segment": "Well", "order": 1}, {"segment": "Ill", "order": 2}],
        ...     [{"group": "heart_failure", "condition": "heart_failure",
        ...       "codelist": "b2h_icd10"}])
        >>> r.segments, [x.name for x in r.rules]
        (('Well', 'Ill'), ['hf', 'rest'])
        """
        seg = _frame(segments, _SEGMENT_COLUMNS, ("segment", "order"), f"{name}: segments")
        grp = _frame(groups, _GROUP_COLUMNS, _GROUP_COLUMNS, f"{name}: groups")
        rul = _frame(rules, _RULE_COLUMNS, _REQUIRED_RULE, f"{name}: rules")
        if seg["segment"].duplicated().any():
            raise ConfigError(f"{name}: segments: column 'segment' has duplicates")
        order = pd.to_numeric(seg["order"], errors="coerce")
        if order.isna().any() or order.duplicated().any():
            raise ConfigError(f"{name}: segments: column 'order' must be distinct numbers")
        seg_names = tuple(seg["segment"].astype(str).to_numpy()[np.argsort(order, kind="stable")])
        desc = {}
        if "description" in seg.columns:
            desc = dict(zip(seg["segment"].astype(str), seg["description"].fillna("").astype(str),
                            strict=True))
        members: dict[str, list[str]] = {}
        lists: dict[str, list[str]] = {}
        for i, row in enumerate(grp.itertuples(index=False)):  # config rows, not patients
            if any(_blank(v) for v in row):
                raise ConfigError(f"{name}: groups: row {i} has an empty field")
            members.setdefault(str(row.group), []).append(str(row.condition))
            cl = lists.setdefault(str(row.condition), [])
            if str(row.codelist) not in cl:
                cl.append(str(row.codelist))
        known = set(members) | set(lists)
        _check_codelists(grp, name)
        parsed = []
        names = set()
        for i, r in enumerate(rul.to_dict("records")):
            rname = "?" if _blank(r.get("name")) else str(r["name"]).strip()
            for f in _REQUIRED_RULE:
                if _blank(r.get(f)):
                    raise ConfigError(f"rule '{rname}' (row {i}): field '{f}' is empty")
            if rname in names:
                raise ConfigError(f"rule '{rname}' (row {i}): field 'name' is a duplicate")
            names.add(rname)
            if str(r["segment"]) not in seg_names:
                raise ConfigError(f"rule '{rname}': field 'segment' is not one of the segments")
            window = "ever" if _blank(r.get("window")) else str(r["window"]).strip()
            days = window_days(window, rule=rname)
            lo, hi = _age(r.get("min_age"), rname, "min_age"), _age(r.get("max_age"), rname,
                                                                     "max_age")
            if lo is not None and hi is not None and lo > hi:
                raise ConfigError(f"rule '{rname}': field 'min_age' is above 'max_age'")
            tree, conds, cols = _compile(rname, r["when"], known)
            parsed.append(Rule(
                name=rname, segment=str(r["segment"]), when=str(r["when"]).strip(),
                reason=str(r["reason"]).strip(), window=window, min_age=lo, max_age=hi,
                source="" if _blank(r.get("source")) else str(r["source"]), days=days,
                tree=tree, conditions=tuple(dict.fromkeys(conds)),
                columns=tuple(dict.fromkeys(cols))))
        if not parsed or not parsed[-1].is_catch_all:
            raise ConfigError(f"{name}: rules: the last rule must be a catch-all "
                              "(when = True, no age gates) so every patient gets a segment")
        return cls(name=name, segments=seg_names, rules=tuple(parsed),
                   groups={k: tuple(v) for k, v in members.items()},
                   codelists={k: tuple(v) for k, v in lists.items()}, descriptions=desc)

    def members(self, name: str) -> tuple[str, ...]:
        """Conditions behind a name used in ``has()``/``count()`` (a group or a condition)."""
        return self.groups.get(name, (name,))

    def flag_columns(self) -> list[tuple[str, int | None]]:
        """(condition, window days) pairs the rules need, in first-use order."""
        out = []
        for r in self.rules:
            for name in r.conditions:
                out += [(c, r.days) for c in self.members(name)]
        return list(dict.fromkeys(out))

    def prioritise(self, segments: Sequence[str]) -> SegmentRules:
        """A copy with rules re-ordered by segment priority (stable within a segment).

        ``segments`` lists segments most important first; segments not listed keep
        their relative order after the listed ones; the catch-all stays last.

        Examples
        --------
        >>> from pophealth.segments.rules import load_rules
        >>> b2h = load_rules("bridges_to_health")
        >>> local = b2h.prioritise(["Incurable cancer (short decline)"])
        >>> [r.name for r in local.rules][:3]
        ['metastatic_cancer', 'poor_prognosis_cancer', 'cancer_palliative_care']
        """
        bad = [i for i, s in enumerate(segments) if s not in self.segments]
        if bad:
            raise ConfigError(f"prioritise: position(s) {bad} are not segments of '{self.name}'")
        rank = {s: i for i, s in enumerate(segments)}
        body, last = self.rules[:-1], self.rules[-1]
        keyed = sorted(range(len(body)), key=lambda i: (rank.get(body[i].segment, len(rank)), i))
        return replace(self, rules=tuple(body[i] for i in keyed) + (last,))

    def table(self) -> pd.DataFrame:
        """The rules as a DataFrame (priority order), e.g. to document or edit them."""
        cols = list(_RULE_COLUMNS)
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in self.rules], columns=cols)


def _shipped(name: str, part: str):
    return resources.files("pophealth") / "data" / "segments" / f"{name}_{part}.csv"


def load_rules(source="bridges_to_health", *, name: str | None = None) -> SegmentRules:
    """Load a rule set: a shipped name, a directory or a ``*_rules.csv`` path, or a SegmentRules.

    A directory must hold ``<name>_rules.csv``, ``<name>_segments.csv`` and
    ``<name>_groups.csv`` (a single set of three if ``name`` is not given); a
    ``<name>_rules.csv`` path finds its two siblings.

    Examples
    --------
    >>> from pophealth.segments.rules import load_rules
    >>> b2h = load_rules()
    >>> b2h.rules[-1].name, b2h.rules[-1].segment
    ('healthy', 'Healthy')
    """
    if isinstance(source, SegmentRules):
        return source
    path = Path(str(source))
    if path.is_dir():
        found = sorted(p.name[: -len("_rules.csv")] for p in path.glob("*_rules.csv"))
        stem = name or (found[0] if len(found) == 1 else None)
        if stem is None:
            raise ConfigError(f"rules directory holds {len(found)} rule sets; pass name=")
        parts = {p: path / f"{stem}_{p}.csv" for p in ("rules", "segments", "groups")}
    elif path.name.endswith("_rules.csv"):
        stem = path.name[: -len("_rules.csv")]
        parts = {p: path.parent / f"{stem}_{p}.csv" for p in ("rules", "segments", "groups")}
    else:
        stem = str(source)
        parts = {p: _shipped(stem, p) for p in ("rules", "segments", "groups")}
        if not parts["rules"].is_file():
            raise ConfigError("unknown rule set (shipped: 'bridges_to_health'); "
                              "pass a directory or a *_rules.csv path")
    frames = {}
    for part, p in parts.items():
        if not p.is_file():
            raise ConfigError(f"rule set '{stem}': missing file {part} ({stem}_{part}.csv)")
        with p.open("r", encoding="utf-8") as fh:
            frames[part] = pd.read_csv(fh, dtype=str, keep_default_na=False)
    return SegmentRules.from_frames(frames["rules"], frames["segments"], frames["groups"],
                                    name=name or stem)
