"""Population segments: rule-based (Bridges to Health), strata and per-segment summaries.

* :func:`segment_flags` -- the condition flags a rule set needs, one column per
  (condition, window): ``cancer`` (ever) and ``cancer@730d`` (last 24 months).
* :func:`assign_segments` -- each register patient to exactly one segment (ordered
  rules, first match wins) with the ``reason`` and ``rule`` that placed them.
* :func:`bridges_to_health` -- both steps with the shipped Bridges to Health rules
  (Lynn et al. 2007, as used by NHS segmentation; see ``data/segments/``).
* :func:`strata` and :func:`segment_summary` (from :mod:`pophealth.segments.tables`) --
  strata as ordered categoricals; count, share, cost share, emergency admissions per
  1,000 and mean risk per segment (optionally per PCN/LSOA).
* :func:`cluster_segments` (from :mod:`pophealth.segments.clusters`) -- data-driven segments.

Rules are data (:mod:`pophealth.segments.rules`). Every step is vectorised over patients: the only Python
loops run over rules and conditions.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.compare import COMPARISONS, compare_column, is_number_literal
from pophealth.contracts.exceptions import (
    ConfigError,
    DataQualityWarning,
    SchemaError,
    user_stacklevel,
)
from pophealth.contracts.numeric import numeric_mask, numeric_values, validate_numeric
from pophealth.contracts.ordinal import column_order, ordinal_codes
from pophealth.contracts.schema import is_stringlike
from pophealth.core.codelists import Codelist, load_codelist
from pophealth.core.conditions import flag_conditions, register_ids
from pophealth.core.frailty import recorded_frailty
from pophealth.core.patients import BAND_ORDERS
from pophealth.segments.rules import (
    Rule,
    SegmentRules,
    flag_column,
    load_rules,
)
from pophealth.segments.tables import (
    _ages,
)

__all__ = ["segment_flags", "assign_segments", "rule_matches", "bridges_to_health"]



def segment_flags(events: pd.DataFrame, rules=None, *, register, index_date,
                  extra_codelists: Sequence = (), max_unrecognised: float = 0.05,
                  warn_other_system: float | None = 0.2,
                  on_no_match: str = "warn", threads: int | None = None) -> pd.DataFrame:
    """Flags for every (condition, window) a rule set uses.

    Parameters
    ----------
    events : DataFrame
        Coded events (``patient_id, code, code_system, date``).
    rules : SegmentRules, str or path, optional
        Default: the shipped Bridges to Health rules.
    register : DataFrame
        The denominator (``patient_id`` column or index).
    index_date : date-like
    extra_codelists : sequence
        More code lists (names, paths or frames) whose conditions of the same name are
        OR-ed in, e.g. a primary-care (SNOMED) list next to the shipped ICD-10 one.
    max_unrecognised : float, default 0.05
        As for :func:`~pophealth.core.conditions.flag_conditions`, for every list. A
        caller scoring patient batches passes ``1.0`` and decides once on the whole
        population's summed counts (:mod:`pophealth.engines.pipeline`).
    warn_other_system : float or None, default 0.2
        Warn when this share of event rows is in code systems that NO list of the rule
        set covers (the lists are read as one list, ``<list>+<list>``, so an ICD-10 list
        is not judged against the SNOMED CT rows another list of the set reads). ``None``
        leaves the judgement to a batch caller, on the summed report.
    on_no_match : {"warn", "raise", "ignore"}, default "warn"
        When no event row is in a system the rule set covers.
    threads : int, optional
        Passed to :func:`~pophealth.core.conditions.flag_conditions` (event chunks
        processed concurrently; default 2, a batch worker process passes 1).

    Returns
    -------
    DataFrame
        Boolean, indexed by ``patient_id`` in register order; columns ``<condition>``
        (ever) and ``<condition>@<days>d`` (windowed). ``attrs["pophealth_reports"]``
        holds the rule set's flag report under ``"segments"`` (row counts per code
        system, excluded rows), for batch callers to sum.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments import segment_flags
    >>> reg = pd.DataFrame({"patient_id": [1, 2]})
    >>> ev = pd.DataFrame({"patient_id": [1, 2], "code": ["C78.7", "C78.7"],
    ...                    "code_system": "icd10",
    ...                    "date": pd.to_datetime(["2024-10-01", "2020-01-01"])})
    >>> f = segment_flags(ev, register=reg, index_date="2025-04-01")
    >>> f[["metastatic_cancer@730d", "cancer"]]
                metastatic_cancer@730d  cancer
    patient_id
    1                             True    True
    2                            False    True
    """
    rules = load_rules("bridges_to_health" if rules is None else rules)
    ids = register_ids(register)
    needed = rules.flag_columns()
    out: dict[str, np.ndarray] = {}
    caught_messages: dict[str, None] = {}
    report = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        for days in dict.fromkeys(d for _, d in needed):
            conds = [c for c, d in needed if d == days]
            lists = list(dict.fromkeys(cl for c in conds for cl in rules.codelists[c]))
            # the rule set's lists (one per code system, say) are read as ONE list: the
            # code-system rule then judges the events against the systems the set covers
            # together, not each list against the rows of the others' systems
            f = flag_conditions(events, _union(lists + list(extra_codelists)),
                                register=register, index_date=index_date, lookback_days=days,
                                on_no_match=on_no_match, max_unrecognised=max_unrecognised,
                                warn_other_system=warn_other_system, threads=threads)
            # the row counts are the same for every window: one report for the set
            report = f.attrs.get("pophealth_report") if report is None else report
            for c in conds:
                col = flag_column(c, days)
                # a condition no list defines for these events stays False
                out[col] = (f[c].to_numpy(dtype=bool) if c in f.columns
                            else np.zeros(len(ids), dtype=bool))
    for w in caught:
        if issubclass(w.category, DataQualityWarning):
            caught_messages.setdefault(str(w.message), None)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for msg in caught_messages:
        warnings.warn(msg, DataQualityWarning, stacklevel=user_stacklevel())
    table = pd.DataFrame(out, index=ids)
    table.attrs["pophealth_reports"] = {"segments": report} if report is not None else {}
    return table


def _union(sources: list) -> Codelist:
    """One code list of all the rows of ``sources`` (names, paths, frames or lists), named
    ``<name>+<name>...``; a condition in several lists is matched by any of their codes."""
    parts = [load_codelist(s) for s in sources]
    if len(parts) == 1:
        return parts[0]
    table = pd.concat([p.table for p in parts], ignore_index=True).drop_duplicates()
    return Codelist(name="+".join(dict.fromkeys(p.name for p in parts)),
                    table=table.reset_index(drop=True),
                    conditions=tuple(dict.fromkeys(c for p in parts for c in p.conditions)))


# --- evaluation of one rule -------------------------------------------------------------------


class _Env:
    """Values a rule can see, aligned to register order."""

    def __init__(self, flags: pd.DataFrame, table: pd.DataFrame, rules: SegmentRules):
        self.flags, self.table, self.rules = flags, table, rules

    def count(self, rule: Rule, name: str) -> np.ndarray:
        total = np.zeros(len(self.flags), dtype=np.int64)
        for c in self.rules.members(name):
            col = flag_column(c, rule.days)
            if col not in self.flags.columns:
                raise SchemaError(f"flags: missing column '{col}' needed by rule '{rule.name}' "
                                  "(field 'when'); build flags with segment_flags()")
            total += self.flags[col].to_numpy(dtype=bool)
        return total

    def column(self, rule: Rule, name: str) -> pd.Series:
        if name not in self.table.columns:
            raise SchemaError(f"patients: missing column '{name}' needed by rule "
                              f"'{rule.name}' (field 'when')")
        return self.table[name]


def _operand(node, env: _Env, rule: Rule):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.column(rule, node.id)
    return env.count(rule, node.args[0].id)  # count()


_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">="}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _compare_pair(left, op, right, rule: Rule, n: int) -> np.ndarray:
    """One comparison; a column against a literal goes through
    :func:`~pophealth.contracts.compare.compare_column` (band order, ``numeric`` rule)."""
    context = f"rule '{rule.name}': field 'when'"
    if isinstance(op, (ast.In, ast.NotIn)):
        values = [e.value for e in right.elts]
        base = left if isinstance(left, pd.Series) else pd.Series(left)
        for v in values:
            if isinstance(base, pd.Series) and base.name in BAND_ORDERS and isinstance(v, str) \
                    and v not in BAND_ORDERS[base.name]:
                raise ConfigError(f"{context}: compares column '{base.name}' with a literal "
                                  "that is not one of its categories")
        hit = base.isin(values).to_numpy(dtype=bool)
        known = base.notna().to_numpy(dtype=bool)
        return known & (hit if isinstance(op, ast.In) else ~hit)
    text = _OP_TEXT[type(op)]
    left_col, right_col = isinstance(left, pd.Series), isinstance(right, pd.Series)
    if left_col != right_col:  # column vs literal (either side)
        col, lit, text = (left, right, text) if left_col else (right, left, _FLIP[text])
        if isinstance(lit, np.ndarray):  # count() vs column
            return _compare_arrays(numeric_values(col, table="patients", column=str(col.name)),
                                   text, lit.astype(float), n, rule)
        return compare_column(col, text, lit, column=str(col.name), known=BAND_ORDERS,
                              context=context)
    if left_col and right_col:
        return _compare_columns(left, text, right, rule, n)
    return _compare_arrays(left, text, right, n, rule)  # count() / literals


def _compare_columns(left: pd.Series, text: str, right: pd.Series, rule: Rule,
                     n: int) -> np.ndarray:
    context = f"rule '{rule.name}': field 'when'"
    numeric = [not numeric_mask(x).any() and not is_stringlike(x) for x in (left, right)]
    if all(numeric):
        a = numeric_values(left, table="patients", column=str(left.name))
        b = numeric_values(right, table="patients", column=str(right.name))
        return _compare_arrays(a, text, b, n, rule) & ~np.isnan(a) & ~np.isnan(b)
    if any(numeric):
        raise ConfigError(f"{context}: compares values of incompatible types "
                          "(a number column with a text column)")
    orders = [column_order(x, str(x.name), BAND_ORDERS, context=context) for x in (left, right)]
    if orders[0] != orders[1]:
        raise ConfigError(f"{context}: compares columns '{left.name}' and '{right.name}', "
                          "which have different orders")
    a, b = (ordinal_codes(x, orders[0], column=str(x.name)) for x in (left, right))
    return (a >= 0) & (b >= 0) & COMPARISONS[text](a, b)


def _compare_arrays(a, text: str, b, n: int, rule: Rule) -> np.ndarray:
    try:
        with np.errstate(invalid="ignore"):
            res = np.asarray(COMPARISONS[text](a, b), dtype=bool)
    except TypeError:
        raise ConfigError(f"rule '{rule.name}': field 'when' compares values of "
                          "incompatible types (e.g. a number column with a string)") from None
    return np.broadcast_to(res, (n,)).copy()


def _evaluate(node, env: _Env, rule: Rule, n: int) -> np.ndarray:
    if isinstance(node, ast.BoolOp):
        parts = [_evaluate(v, env, rule, n) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) \
            else np.logical_or.reduce(parts)
    if isinstance(node, ast.UnaryOp):
        return ~_evaluate(node.operand, env, rule, n)
    if isinstance(node, ast.Constant):
        return np.full(n, bool(node.value))
    if isinstance(node, ast.Call):  # has()
        return env.count(rule, node.args[0].id) > 0
    if isinstance(node, ast.Name):
        col = env.column(rule, node.id)
        if not (pd.api.types.is_bool_dtype(col.dtype)):
            raise ConfigError(f"rule '{rule.name}': field 'when' uses column '{node.id}' as a "
                              "test but it is not boolean")
        return col.fillna(False).to_numpy(dtype=bool)
    out = np.ones(n, dtype=bool)  # Compare (chains are AND-ed)
    left = _operand(node.left, env, rule)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = right_node if isinstance(op, (ast.In, ast.NotIn)) else \
            _operand(right_node, env, rule)
        out &= _compare_pair(left, op, right, rule, n)
        left = right
    return out


def _numeric_columns(rules: SegmentRules) -> list[str]:
    """Patient columns the rules compare with numbers (and ``age`` for age gates)."""
    cols = []
    for rule in rules.rules:
        if rule.min_age is not None or rule.max_age is not None:
            cols.append("age")
        for node in ast.walk(rule.tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            numbers = any(isinstance(x, ast.Call) or (isinstance(x, ast.Constant)
                          and is_number_literal(x.value)) for x in operands)
            if numbers:
                cols += [x.id for x in operands if isinstance(x, ast.Name)]
    return list(dict.fromkeys(cols))


def _check_patients(register: pd.DataFrame, rules: SegmentRules) -> None:
    """A DataFrame whose number columns hold numbers (rule ``numeric``)."""
    if not isinstance(register, pd.DataFrame):
        raise SchemaError("patients: expected a DataFrame (one row per patient)")
    validate_numeric(register, [], table="patients", optional=_numeric_columns(rules))


def _patient_table(register: pd.DataFrame, rules: SegmentRules) -> pd.DataFrame:
    """The register in register order, its number columns checked first (rule ``numeric``);
    band columns the rules need but the table lacks are unknown for everyone (warned)."""
    _check_patients(register, rules)
    # positions = register order (ids via register_ids); a new frame on the same columns
    # (reset_index would copy every column of the patient table)
    table = register.set_axis(pd.RangeIndex(len(register)), axis=0, copy=False)
    if _uses(rules, "frailty_recorded") and "frailty_recorded" not in table.columns:
        # no recorded-frailty column: nothing recorded (bridges_to_health derives it from
        # the events first; see pophealth.core.frailty)
        table = table.assign(frailty_recorded=pd.Categorical(
            [None] * len(table), categories=list(BAND_ORDERS["frailty_recorded"]), ordered=True))
    absent = [c for c in BAND_ORDERS if c != "frailty_recorded" and _uses(rules, c)
              and c not in table.columns]
    if absent:
        # e.g. GP data with no eFI deficit list: the band is unknown for everyone, so the
        # rules that need it select nobody - said out loud, never a silent 'fit'
        names = sorted({r.name for r in rules.rules for c in absent if c in r.columns})
        warnings.warn(f"patients: no column {absent} (band unknown for all "
                      f"{len(table)} patient(s)); rule(s) {names} can select nobody",
                      DataQualityWarning, stacklevel=user_stacklevel())
        table = table.assign(**{c: pd.Categorical([None] * len(table),
                                                  categories=list(BAND_ORDERS[c]), ordered=True)
                                for c in absent})
    return table


def _uses(rules: SegmentRules, column: str) -> bool:
    return any(column in r.columns for r in rules.rules)


def _aligned_flags(flags, ids: pd.Index) -> pd.DataFrame:
    if not isinstance(flags, pd.DataFrame):
        raise SchemaError("flags: expected a DataFrame indexed by patient_id")
    if flags.index.equals(ids):
        return flags
    if flags.index.has_duplicates:
        dup = flags.index.duplicated(keep=False)
        raise SchemaError(f"flags: index 'patient_id' breaks rule 'unique' in "
                          f"{int(dup.sum())} row(s); first positions "
                          f"{np.flatnonzero(dup)[:10].tolist()}")
    pos = flags.index.get_indexer(ids)
    miss = pos < 0
    if miss.any():
        raise SchemaError(f"flags: {int(miss.sum())} register patient(s) have no flags row; "
                          f"first register positions {np.flatnonzero(miss)[:10].tolist()}")
    return flags.iloc[pos]


def _matches(flags, table, rules: SegmentRules, index_date, *, stop_when_done: bool):
    """Yield each rule's boolean match over patients (age gates applied), in priority order."""
    n = len(table)
    env = _Env(flags, table, rules)
    ages = _ages(table, index_date) if any(
        r.min_age is not None or r.max_age is not None for r in rules.rules) else None
    done = np.zeros(n, dtype=bool)
    for rule in rules.rules:
        if stop_when_done and done.all():
            yield np.zeros(n, dtype=bool)
            continue
        hit = _evaluate(rule.tree, env, rule, n)
        if rule.min_age is not None:
            hit = hit & (ages >= rule.min_age)
        if rule.max_age is not None:
            hit = hit & (ages <= rule.max_age)
        done |= hit
        yield hit


def rule_matches(flags: pd.DataFrame, register: pd.DataFrame, rules=None, *,
                 index_date) -> pd.DataFrame:
    """Which rules each patient meets, ignoring precedence (one boolean column per rule).

    Shows the overlap that the priority order resolves, e.g. how many people meeting
    an organ-failure rule were placed in the frailty segment first.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments import rule_matches, segment_flags
    >>> bands = dict(categories=["fit", "mild", "moderate", "severe"], ordered=True)
    >>> pts = pd.DataFrame({"patient_id": [1], "age": [80], "prior_emergency_admissions": [2],
    ...     "efi_band": pd.Categorical(["severe"], **bands),
    ...     "hfrs_band": pd.Categorical(["low"], categories=["low", "intermediate", "high"],
    ...                                 ordered=True)})
    >>> ev = pd.DataFrame({"patient_id": [1], "code": ["J44.1"], "code_system": "icd10",
    ...                    "date": pd.to_datetime(["2024-05-01"])})
    >>> flags = segment_flags(ev, register=pts, index_date="2025-04-01")
    >>> m = rule_matches(flags, pts, index_date="2025-04-01")
    >>> m.columns[m.iloc[0]].tolist()
    ['frailty_efi', 'organ_failure_with_emergency_admission', 'long_term_condition', 'recent_emergency_admission', 'healthy']
    """
    rules = load_rules("bridges_to_health" if rules is None else rules)
    ids = register_ids(register)
    flags = _aligned_flags(flags, ids)
    table = _patient_table(register, rules)
    cols = {r.name: hit for r, hit in zip(
        rules.rules, _matches(flags, table, rules, index_date, stop_when_done=False),
        strict=True)}
    return pd.DataFrame(cols, index=ids)


def assign_segments(flags: pd.DataFrame, register: pd.DataFrame, rules=None, *,
                    index_date) -> pd.DataFrame:
    """Place every register patient in exactly one segment (first matching rule wins).

    Parameters
    ----------
    flags : DataFrame
        Boolean condition flags indexed by ``patient_id`` covering every register
        patient (see :func:`segment_flags`; windowed columns are ``<condition>@<days>d``).
    register : DataFrame
        The patients (``patient_id`` column or index) with the columns the rules name
        (e.g. ``age``, ``efi_band``, ``hfrs_band``, ``prior_emergency_admissions``).
    rules : SegmentRules, str or path, optional
        Default: the shipped Bridges to Health rules (:func:`load_rules`).
    index_date : date-like
        Used for age gates when the table has ``date_of_birth`` but no ``age``.

    Returns
    -------
    DataFrame
        Indexed by ``patient_id`` in register order: ``segment`` (ordered categorical
        in the rule set's segment order), ``reason`` (the firing rule's text) and
        ``rule`` (its name).

    Raises
    ------
    SchemaError
        A flags or patient column a rule needs is missing, or register patients are
        missing from ``flags`` (with counts and positions).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments.rules import SegmentRules
    >>> from pophealth.segments import assign_segments
    >>> rules = SegmentRules.from_frames(
    ...     [{"name": "frail", "segment": "Frail", "when": "efi_band >= 'moderate'",
    ...       "min_age": 65, "reason": "eFI moderate or severe"},
    ...      {"name": "hf_admitted", "segment": "Organ failure",
    ...       "when": "has(heart_failure) and admissions >= 1", "reason": "HF + admission"},
    ...      {"name": "rest", "segment": "Other", "when": "True", "reason": "no rule matched"}],
    ...     [{"segment": "Other", "order": 1}, {"segment": "Organ failure", "order": 2},
    ...      {"segment": "Frail", "order": 3}],
    ...     [{"group": "heart_failure", "condition": "heart_failure",
    ...       "codelist": "b2h_icd10"}])
    >>> efi = pd.Categorical(["severe", "fit", "moderate"],
    ...                      categories=["fit", "mild", "moderate", "severe"], ordered=True)
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3], "age": [80, 70, 50],
    ...                     "efi_band": efi, "admissions": [0, 2, 1]})
    >>> flags = pd.DataFrame({"heart_failure": [True, True, False]},
    ...                      index=pd.Index([1, 2, 3], name="patient_id"))
    >>> assign_segments(flags, reg, rules, index_date="2025-04-01")
                      segment           reason         rule
    patient_id
    1                   Frail  eFI moderate or severe        frail
    2           Organ failure          HF + admission  hf_admitted
    3                   Other         no rule matched         rest
    """
    rules = load_rules("bridges_to_health" if rules is None else rules)
    ids = register_ids(register)
    n = len(ids)
    table = _patient_table(register, rules)
    flags = _aligned_flags(flags, ids)
    matches = _matches(flags, table, rules, index_date, stop_when_done=True)
    chosen = np.full(n, -1, dtype=np.int64)
    for i, hit in enumerate(matches):
        chosen[(chosen < 0) & hit] = i
    seg_code = {s: j for j, s in enumerate(rules.segments)}
    rule_seg = np.array([seg_code[r.segment] for r in rules.rules], dtype=np.int64)
    return pd.DataFrame({
        "segment": pd.Categorical.from_codes(rule_seg[chosen], categories=list(rules.segments),
                                             ordered=True),
        "reason": np.array([r.reason for r in rules.rules], dtype=object)[chosen],
        "rule": np.array([r.name for r in rules.rules], dtype=object)[chosen],
    }, index=ids)


def bridges_to_health(patients: pd.DataFrame, events: pd.DataFrame, *, index_date,
                      rules=None, extra_codelists: Sequence = (),
                      max_unrecognised: float = 0.05, warn_other_system: float | None = 0.2,
                      on_no_match: str = "warn", threads: int | None = None) -> pd.DataFrame:
    """Bridges to Health segments (Lynn et al. 2007) with the shipped NHS-style rules.

    Segments, most severe first: frailty and dementia (dementia ever; eFI moderate or
    severe, or HFRS intermediate or high, at 65+); organ failure (end-stage renal
    failure; CKD 4 with 4+ emergency admissions; severe liver disease; heart failure,
    COPD, ILD, chronic respiratory failure, cirrhosis or CKD 4 with an emergency
    admission in 12 months); incurable cancer (metastatic or poor-prognosis cancer, or
    cancer with palliative care, in 24 months); disability; long-term conditions (ever;
    depression/anxiety in 24 months); maternal and infant health (pregnancy codes in
    12 months, or age under 1); acutely ill (emergency admission in 12 months); healthy.
    See ``data/segments/bridges_to_health_rules.csv`` for every rule and its source.

    Parameters
    ----------
    patients : DataFrame
        Patient table indexed by (or with a column) ``patient_id`` holding ``age``,
        ``efi_band``, ``hfrs_band`` and ``prior_emergency_admissions`` (12 months), e.g.
        from :func:`pophealth.core.patient_table` after :func:`pophealth.score_patients`.
        ``frailty_recorded`` (recorded frailty band) is used when present; otherwise it
        is derived from ``events`` (latest MILDFRAIL/MODFRAIL/SEVFRAIL code, else an
        ``efi_recorded`` column; :func:`pophealth.core.frailty.recorded_frailty`).
    events : DataFrame
        Coded events, GP (``snomed``) and hospital (``icd10``) rows in one table with
        ``code_system`` per row: flagged with the ``b2h_icd10`` and ``b2h_snomed`` code
        lists (plus ``extra_codelists``).
    index_date : date-like
    rules : SegmentRules, str or path, optional
        An edited or re-prioritised copy of the shipped rules.
    extra_codelists : sequence
        Lists whose same-named conditions are added (e.g. ``"cms_snomed_synthetic"``).
    max_unrecognised, warn_other_system, on_no_match, threads
        As for :func:`segment_flags`.

    Returns
    -------
    DataFrame
        ``segment``, ``reason``, ``rule``, indexed by ``patient_id`` (see
        :func:`assign_segments`); ``attrs["pophealth_reports"]`` as for
        :func:`segment_flags`.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.segments import bridges_to_health
    >>> bands = dict(categories=["fit", "mild", "moderate", "severe"], ordered=True)
    >>> pts = pd.DataFrame({"age": [84, 60, 30, 0], "prior_emergency_admissions": [0, 1, 0, 0],
    ...     "efi_band": pd.Categorical(["moderate", "fit", "fit", "fit"], **bands),
    ...     "hfrs_band": pd.Categorical(["low"] * 4, categories=["low", "intermediate",
    ...                                  "high"], ordered=True)},
    ...     index=pd.Index([1, 2, 3, 4], name="patient_id"))
    >>> ev = pd.DataFrame({"patient_id": [2], "code": ["I50.0"], "code_system": "icd10",
    ...                    "date": pd.to_datetime(["2023-05-01"])})
    >>> bridges_to_health(pts, ev, index_date="2025-04-01")["rule"].tolist()
    ['frailty_efi', 'organ_failure_with_emergency_admission', 'healthy', 'infant']
    """
    rules = load_rules("bridges_to_health" if rules is None else rules)
    _check_patients(patients, rules)  # number columns checked before any work
    if _uses(rules, "frailty_recorded") and "frailty_recorded" not in patients.columns:
        rec = recorded_frailty(events, register=patients, index_date=index_date)
        patients = patients.assign(frailty_recorded=rec["frailty_recorded"].array)
    flags = segment_flags(events, rules, register=patients, index_date=index_date,
                          extra_codelists=extra_codelists, max_unrecognised=max_unrecognised,
                          warn_other_system=warn_other_system, on_no_match=on_no_match,
                          threads=threads)
    out = assign_segments(flags, patients, rules, index_date=index_date)
    out.attrs["pophealth_reports"] = flags.attrs["pophealth_reports"]
    return out
