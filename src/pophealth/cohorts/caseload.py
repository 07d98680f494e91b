"""MDT caseload selection from ordered, named rules, with plain-language reasons.

Selection by ``top_fraction`` and the caseload ``rank`` follow the tie rule of
:mod:`pophealth.cohorts.ranking` (value descending, then ``patient_id`` ascending).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pophealth.cohorts.ranking import (
    _check_fraction,
    _group_codes,
    _ids_codes,
    _rank_within,
    top_fraction_mask,
)
from pophealth.contracts.compare import compare_column, is_number_literal
from pophealth.contracts.exceptions import ConfigError
from pophealth.contracts.numeric import validate_numeric
from pophealth.core.patients import BAND_ORDERS

__all__ = ["Condition", "SelectionRule", "DEFAULT_FACTORS", "describe_reasons",
           "select_caseload"]


_OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in")


@dataclass(frozen=True)
class Condition:
    """One test on a patient-table column, e.g. ``Condition("age", ">=", 18)``."""

    column: str
    op: str
    value: object

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"condition on '{self.column}': unknown op '{self.op}' "
                              f"(allowed: {', '.join(_OPS)})")
        if self.op in ("in", "not in") and not isinstance(self.value, (list, tuple)):
            raise ConfigError(f"condition on '{self.column}': '{self.op}' needs a list")

    def mask(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean mask over ``table`` rows (missing values never match).

        ``<``/``>`` on a band column (``efi_band``, ``hfrs_band``) use the band order
        whatever the dtype; on another label column they need an ordered categorical; a
        number threshold needs a number column (rule ``numeric``). See
        :func:`pophealth.contracts.compare.compare_column`.
        """
        s = table[self.column]
        context = f"condition on '{self.column}'"
        present = s.notna().to_numpy(dtype=bool)
        if self.op in ("in", "not in"):
            order = BAND_ORDERS.get(self.column)
            if order is not None and any(isinstance(v, str) and v not in order
                                         for v in self.value):
                raise ConfigError(f"{context}: '{self.op}' lists a label that is not one of "
                                  "the column's categories")
            hit = s.isin(list(self.value)).to_numpy(dtype=bool)
            return present & (hit if self.op == "in" else ~hit)
        return compare_column(s, self.op, self.value, column=self.column, known=BAND_ORDERS,
                              table="patients", context=context)


@dataclass(frozen=True)
class SelectionRule:
    """A named caseload rule: who is eligible (``where``, all must hold) and optionally
    the top fraction of the eligible by ``rank_column`` within each ``by`` group.

    Examples
    --------
    >>> from pophealth.cohorts.caseload import SelectionRule
    >>> SelectionRule.from_dict({"name": "top 2% risk per practice", "top_fraction": 0.02,
    ...                          "by": "practice", "where": [["age", ">=", 18]]}).where
    (Condition(column='age', op='>=', value=18),)
    """

    name: str
    where: tuple = ()
    top_fraction: float | None = None
    rank_column: str = "risk"
    by: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a selection rule needs a name")
        if self.top_fraction is None and not self.where:
            raise ConfigError(f"rule '{self.name}' selects everyone: give where or top_fraction")
        if self.top_fraction is not None:
            _check_fraction(self.top_fraction)

    @classmethod
    def from_dict(cls, d: Mapping) -> SelectionRule:
        """Build from a mapping (e.g. a TOML table); ``where`` items are
        ``[column, op, value]`` lists or ``{column, op, value}`` tables."""
        allowed = {"name", "where", "top_fraction", "rank_column", "by"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ConfigError(f"selection rule: unknown key(s) {unknown}")
        where = []
        for item in d.get("where", ()):
            if isinstance(item, Mapping):
                extra = sorted(set(item) - {"column", "op", "value"})
                if extra:
                    raise ConfigError(f"rule '{d.get('name')}': unknown condition key(s) {extra}")
                where.append(Condition(item["column"], item["op"], item["value"]))
            else:
                where.append(Condition(*item))
        kwargs = {k: d[k] for k in ("top_fraction", "rank_column", "by") if k in d}
        return cls(name=str(d.get("name", "")), where=tuple(where), **kwargs)

    def columns(self) -> set:
        """Patient-table columns the rule reads."""
        cols = {c.column for c in self.where}
        if self.top_fraction is not None:
            cols.add(self.rank_column)
            if self.by:
                cols.add(self.by)
        return cols


#: Plain-language factors for caseload reasons, in priority order: (column, op,
#: threshold, template). ``{value}`` is the patient's value (numbers as integers).
DEFAULT_FACTORS: tuple = (
    ("prior_emergency_admissions", ">=", 1, "{value} emergency admission(s) in the last 12 months"),
    ("efi_band", "in", ["moderate", "severe"], "{value} frailty (eFI)"),
    ("hfrs_band", "in", ["high"], "high Hospital Frailty Risk Score"),
    ("n_conditions", ">=", 4, "{value} long-term conditions"),
    ("prior_ae_attendances", ">=", 3, "{value} A&E attendances in the last 12 months"),
    ("age", ">=", 85, "aged {value}"),
    ("prior_cost", ">=", 5000, "hospital and GP costs of GBP {value} in the last 12 months"),
)


def describe_reasons(table: pd.DataFrame, *, factors: Sequence = DEFAULT_FACTORS,
                     rule: pd.Series | None = None, max_factors: int = 3) -> pd.Series:
    """Plain-language reasons: the selecting rule and up to ``max_factors`` factors.

    Factors are tried in the given (priority) order; missing columns are skipped.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts.caseload import describe_reasons
    >>> t = pd.DataFrame({"prior_emergency_admissions": [3, 0], "age": [90, 40]})
    >>> describe_reasons(t, rule=pd.Series(["top 2% risk", "frailty"])).tolist()
    ['selected by: top 2% risk; factors: 3 emergency admission(s) in the last 12 months; aged 90', 'selected by: frailty']
    """
    validate_numeric(table, [], table="patients", optional=[
        column for column, _, threshold, _ in factors if is_number_literal(threshold)])
    n = len(table)
    texts, masks = [], []
    for column, op, threshold, template in factors:
        if column not in table.columns:
            continue
        m = Condition(column, op, threshold).mask(table)
        s = table[column]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            val = np.floor(s.fillna(0).to_numpy(dtype=np.float64) + 0.5).astype(np.int64)
            val = val.astype(str)
        else:
            val = s.astype(str).to_numpy()
        head, placeholder, tail = template.partition("{value}")
        if placeholder:
            text = head + val.astype(object) + tail
        else:
            text = np.full(n, template, dtype=object)
        texts.append(text)
        masks.append(m)
    parts = np.full(n, "", dtype=object)
    count = np.zeros(n, dtype=np.int64)
    for text, m in zip(texts, masks, strict=True):
        use = m & (count < max_factors)
        sep = np.where(count > 0, "; ", "")
        parts = np.where(use, parts + sep + text, parts)
        count += use
    if rule is not None:
        head = "selected by: " + pd.Series(rule).astype(str).to_numpy().astype(object)
    else:
        head = np.full(n, "", dtype=object)
    factors_txt = np.where(count > 0, "factors: " + parts, "")
    joiner = np.where((count > 0) & (rule is not None), "; ", "")
    return pd.Series(head + joiner + factors_txt, index=table.index, name="reasons")


def select_caseload(patients: pd.DataFrame, rules: Sequence, *, rank_by: str = "risk",
                    group_by: str = "pcn", factors: Sequence | None = DEFAULT_FACTORS
                    ) -> pd.DataFrame:
    """Select an MDT caseload with ordered, named rules (a person is in if any rule picks them).

    Parameters
    ----------
    patients : DataFrame
        One row per patient, indexed by ``patient_id`` (risk, tier, segment, practice, pcn,
        utilisation, scores ...).
    rules : sequence of SelectionRule or mapping
        Each rule's ``where`` conditions restrict who is eligible; with ``top_fraction``
        it then takes the top ``ceil(fraction * n_eligible)`` of each ``by`` group by
        ``rank_column`` (module tie rule). E.g. "top 2 % risk per practice" and
        "segment in (frailty, organ failure) with >= 2 emergency admissions".
    rank_by : str, default "risk"
        Column that orders the caseload (descending, ties by patient_id ascending).
    group_by : str, default "pcn"
        The caseload unit: ``rank`` restarts at 1 in each group.
    factors : sequence, optional
        Plain-language factors for ``reasons`` (see :data:`DEFAULT_FACTORS`); ``None``
        gives the rule only.

    Returns
    -------
    DataFrame
        The selected patients' rows of ``patients`` plus ``rank``, ``rule`` (the first
        rule, in the given order, that selected them), ``selected_by`` (every rule that
        did, "; "-joined) and ``reasons``; sorted by ``group_by`` then ``rank``.
        ``attrs["rule_counts"]`` gives how many each rule selected.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.cohorts.caseload import select_caseload
    >>> p = pd.DataFrame({"pcn": "N1", "practice": ["A", "A", "A", "B"],
    ...                   "risk": [0.9, 0.2, 0.1, 0.3], "segment": ["healthy", "frailty",
    ...                   "healthy", "healthy"], "prior_emergency_admissions": [0, 2, 0, 0]},
    ...                  index=pd.Index([1, 2, 3, 4], name="patient_id"))
    >>> rules = [{"name": "top risk", "top_fraction": 0.3, "by": "practice"},
    ...          {"name": "frail, 2+ admissions", "where": [["segment", "in", ["frailty"]],
    ...           ["prior_emergency_admissions", ">=", 2]]}]
    >>> select_caseload(p, rules, factors=None)[["practice", "risk", "rank", "rule"]]
               practice  risk  rank                  rule
    patient_id
    1                 A   0.9     1              top risk
    4                 B   0.3     2              top risk
    2                 A   0.2     3  frail, 2+ admissions
    """
    rules = [r if isinstance(r, SelectionRule) else SelectionRule.from_dict(r) for r in rules]
    if not rules:
        raise ConfigError("select_caseload: no rules given")
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError("select_caseload: rule names must be unique")
    needed = {rank_by, group_by}.union(*(r.columns() for r in rules))
    missing = sorted(needed - set(patients.columns))
    if missing:
        raise ConfigError(f"select_caseload: patient table lacks column(s) {missing}")
    numbers = [rank_by] + [r.rank_column for r in rules if r.top_fraction is not None] + [
        c.column for r in rules for c in r.where if is_number_literal(c.value)]
    validate_numeric(patients, list(dict.fromkeys(numbers)), table="patients",
                     optional=[c for c, _, v, _ in (factors or ()) if is_number_literal(v)])
    ids = patients.index
    n = len(patients)
    hits = np.zeros((n, len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        ok = np.ones(n, dtype=bool)
        for cond in rule.where:
            ok &= cond.mask(patients)
        if rule.top_fraction is not None:
            groups = patients[rule.by].to_numpy() if rule.by else None
            ok, _, _ = top_fraction_mask(patients[rule.rank_column].to_numpy(), ids=ids,
                                         fraction=rule.top_fraction, groups=groups,
                                         eligible=ok)
        hits[:, j] = ok
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    sel = patients.iloc[np.flatnonzero(any_hit)].copy()
    h = hits[any_hit]
    name_arr = np.array(names, dtype=object)
    sel["rule"] = name_arr[first[any_hit]]
    selected_by = np.full(len(sel), "", dtype=object)
    for j in range(len(rules)):
        sep = np.where(selected_by == "", "", "; ")
        selected_by = np.where(h[:, j], selected_by + sep + names[j], selected_by)
    sel["selected_by"] = selected_by
    rank, _ = _rank_within(sel[rank_by].to_numpy(dtype=np.float64, na_value=np.nan),
                           _ids_codes(sel.index), _group_codes(sel[group_by].to_numpy(),
                                                               len(sel)),
                           np.ones(len(sel), dtype=bool))
    sel["rank"] = rank
    sel["reasons"] = describe_reasons(sel, factors=factors or (), rule=sel["rule"])
    sel = sel.sort_values([group_by, "rank"], kind="stable")
    sel.attrs["rule_counts"] = {name: int(hits[:, j].sum()) for j, name in enumerate(names)}
    sel.attrs["tie_rule"] = f"{rank_by} desc, patient_id asc"
    return sel
