"""Data contracts for pophealth's input tables and their validators.

The contracts (see ``DESIGN.md``):

======== ============================ ===================================================
table    grain                        required columns
======== ============================ ===================================================
register one row per patient          patient_id (unique), sex, date_of_birth or age,
                                      lsoa, practice
events   one row per coded event      patient_id, code, code_system
activity one row per contact          patient_id, date, kind, cost (GBP >= 0)
======== ============================ ===================================================

Validators raise :class:`~pophealth.exceptions.SchemaError` listing *every* broken
rule with its column, rule name, row count and up to ten zero-based row positions.
They never put cell values in messages, because values may be identifiers.
Plain ``object``, ``string[pyarrow]``, Arrow-backed and categorical string columns
are all accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pophealth.exceptions import SchemaError

__all__ = [
    "REGISTER_REQUIRED",
    "EVENTS_REQUIRED",
    "ACTIVITY_REQUIRED",
    "SEX_CODES",
    "ACTIVITY_KINDS",
    "EVENT_SETTINGS",
    "validate_register",
    "validate_events",
    "validate_activity",
    "is_stringlike",
    "is_datetimelike",
    "as_datetime64",
]

REGISTER_REQUIRED = ("patient_id", "sex", "lsoa", "practice")
EVENTS_REQUIRED = ("patient_id", "code", "code_system")
ACTIVITY_REQUIRED = ("patient_id", "date", "kind", "cost")
#: Sex codes accepted in ``register.sex``: female, male, indeterminate, not known.
SEX_CODES = frozenset({"F", "M", "I", "U"})
ACTIVITY_KINDS = frozenset(
    {
        "emergency_admission",
        "elective_admission",
        "ae",
        "outpatient",
        "gp",
        "community",
        "mental_health",
        "other",
    }
)
EVENT_SETTINGS = frozenset({"primary", "inpatient", "outpatient", "ae", "community"})
MAX_POSITIONS = 10


@dataclass(frozen=True)
class Problem:
    """One broken rule: never carries values."""

    table: str
    column: str
    rule: str
    count: int
    positions: tuple[int, ...]
    detail: str = ""

    def message(self) -> str:
        where = f"; first positions {list(self.positions)}" if self.positions else ""
        detail = f" ({self.detail})" if self.detail else ""
        return (
            f"{self.table}: column '{self.column}' breaks rule '{self.rule}'{detail} "
            f"in {self.count} row(s){where}"
        )

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "column": self.column,
            "rule": self.rule,
            "count": self.count,
            "positions": list(self.positions),
        }


# ----------------------------------------------------------------------------- dtype helpers


def is_stringlike(s: pd.Series) -> bool:
    """True for object/str/string/Arrow-string columns and categoricals of strings."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        return len(cats) == 0 or is_stringlike(pd.Series(cats))
    if isinstance(dtype, pd.StringDtype):
        return True
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        if pa.types.is_dictionary(t):
            t = t.value_type
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if dtype == object:
        return pd.api.types.infer_dtype(s, skipna=True) in {"string", "empty"}
    return False


def is_datetimelike(s: pd.Series) -> bool:
    """True for numpy/pandas datetime64 columns and Arrow timestamp/date columns."""
    dtype = s.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        return pa.types.is_timestamp(t) or pa.types.is_date(t)
    return pd.api.types.is_datetime64_any_dtype(dtype)


def as_datetime64(s: pd.Series) -> np.ndarray:
    """Return a tz-naive ``datetime64[ns]`` numpy array (NaT for missing)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if isinstance(s.dtype, pd.ArrowDtype):
        s = pd.to_datetime(s.astype("datetime64[ns]" if not _is_tz_arrow(s) else object))
    return pd.to_datetime(s).to_numpy(dtype="datetime64[ns]")


def _is_tz_arrow(s: pd.Series) -> bool:
    import pyarrow as pa

    t = s.dtype.pyarrow_dtype
    return pa.types.is_timestamp(t) and t.tz is not None


def _as_timestamp(index_date) -> np.datetime64:
    return np.datetime64(pd.Timestamp(index_date).tz_localize(None), "ns")


def _is_integerlike(s: pd.Series) -> bool:
    dtype = s.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return pa.types.is_integer(dtype.pyarrow_dtype)
    return pd.api.types.is_integer_dtype(dtype)


def _is_numeric(s: pd.Series) -> bool:
    dtype = s.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


# ----------------------------------------------------------------------------- rule engine


class _Checker:
    def __init__(self, table: str, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise SchemaError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}")
        self.table = table
        self.frame = frame
        self.problems: list[Problem] = []

    def add(self, column: str, rule: str, mask, detail: str = "") -> None:
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        if count:
            pos = tuple(int(p) for p in np.flatnonzero(mask)[:MAX_POSITIONS])
            self.problems.append(Problem(self.table, column, rule, count, pos, detail))

    def add_column(self, column: str, rule: str, detail: str = "") -> None:
        self.problems.append(Problem(self.table, column, rule, len(self.frame), (), detail))

    def require(self, columns: Iterable[str]) -> bool:
        missing = [c for c in columns if c not in self.frame.columns]
        for c in missing:
            near = [k for k in map(str, self.frame.columns) if k.strip().lower() == c]
            hint = f"did you mean '{near[0]}'?" if near else ""
            self.problems.append(Problem(self.table, c, "missing_column", 0, (), hint))
        return not missing

    def stringlike(self, column: str) -> bool:
        if column not in self.frame.columns:
            return False
        if not is_stringlike(self.frame[column]):
            self.add_column(column, "dtype", f"expected strings, got {self.frame[column].dtype}")
            return False
        return True

    def identifier(self, column: str) -> bool:
        s = self.frame[column]
        if not (is_stringlike(s) or _is_integerlike(s)):
            self.add_column(column, "dtype", f"expected integer or string ids, got {s.dtype}")
            return False
        self.add(column, "not_null", s.isna().to_numpy())
        return True

    def datetime(self, column: str, *, required: bool = False) -> np.ndarray | None:
        if column not in self.frame.columns:
            return None
        s = self.frame[column]
        if not is_datetimelike(s):
            self.add_column(column, "dtype", f"expected datetime64, got {s.dtype}")
            return None
        values = as_datetime64(s)
        if required:
            self.add(column, "not_null", np.isnat(values))
        return values

    def numeric(self, column: str) -> np.ndarray | None:
        if column not in self.frame.columns:
            return None
        s = self.frame[column]
        if not _is_numeric(s):
            self.add_column(column, "dtype", f"expected numbers, got {s.dtype}")
            return None
        return pd.to_numeric(s).astype("float64").to_numpy(na_value=np.nan)

    def after_index(self, column: str, values: np.ndarray | None, index_date) -> None:
        if values is None or index_date is None:
            return
        self.add(column, "not_after_index_date", values > _as_timestamp(index_date))

    def finish(self) -> None:
        if self.problems:
            lines = [p.message() for p in self.problems]
            raise SchemaError(
                f"{self.table} failed validation ({len(lines)} problem(s)):\n  " + "\n  ".join(lines),
                [p.as_dict() for p in self.problems],
            )


def _in_set(s: pd.Series, allowed: frozenset) -> np.ndarray:
    """Boolean mask of non-null values not in ``allowed``, computed on unique values."""
    codes, uniques = pd.factorize(s.astype(object) if isinstance(s.dtype, pd.ArrowDtype) else s)
    bad_unique = np.array([u not in allowed for u in uniques], dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    valid = codes >= 0
    out[valid] = bad_unique[codes[valid]]
    return out


# ----------------------------------------------------------------------------- validators


def validate_register(register: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Check a register against its contract; return it unchanged if valid.

    Parameters
    ----------
    register : DataFrame
        One row per patient; see the module docstring for the columns.
    index_date : date-like, optional
        If given, dates of birth after it are errors.

    Returns
    -------
    DataFrame
        The same object, so the call can be chained.

    Raises
    ------
    SchemaError
        Listing every broken rule with column, rule, count and up to ten positions.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "sex": ["F", "M"], "age": [70, 45],
    ...                     "lsoa": ["X01", "X01"], "practice": ["P1", "P1"]})
    >>> ph.validate_register(reg) is reg
    True
    >>> bad = reg.assign(age=[70, 130])
    >>> ph.validate_register(bad)
    Traceback (most recent call last):
    ...
    pophealth.exceptions.SchemaError: register failed validation (1 problem(s)):
      register: column 'age' breaks rule 'age_range' (0 <= age <= 120) in 1 row(s); first positions [1]
    """
    c = _Checker("register", register)
    c.require(REGISTER_REQUIRED)
    if "date_of_birth" not in register.columns and "age" not in register.columns:
        c.problems.append(Problem("register", "date_of_birth|age", "missing_column", 0, ()))
    if "patient_id" in register.columns and c.identifier("patient_id"):
        dup = register["patient_id"].duplicated(keep=False).to_numpy()
        c.add("patient_id", "unique", dup & register["patient_id"].notna().to_numpy())
    if c.stringlike("sex") if "sex" in register.columns else False:
        sex = register["sex"]
        c.add("sex", "not_null", sex.isna().to_numpy())
        c.add("sex", "sex_code", _in_set(sex, SEX_CODES), "allowed: F, M, I, U")
    for col in ("lsoa", "practice", "pcn", "ethnicity"):
        if col in register.columns:
            c.stringlike(col)
    age = c.numeric("age")
    if age is not None:
        c.add("age", "age_range", (age < 0) | (age > 120), "0 <= age <= 120")
    dob = c.datetime("date_of_birth")
    c.after_index("date_of_birth", dob, index_date)
    dod = c.datetime("date_of_death")
    if dob is not None and dod is not None:
        c.add("date_of_death", "death_after_birth", dod < dob)
    c.datetime("registered_from")
    c.datetime("registered_to")
    if "imd_decile" in register.columns:
        imd = c.numeric("imd_decile")
        if imd is not None:
            bad = ~np.isnan(imd) & ((imd < 1) | (imd > 10) | (imd != np.round(imd)))
            c.add("imd_decile", "imd_decile_range", bad, "integer 1-10, 1 = most deprived")
    c.finish()
    return register


def validate_events(events: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Check a coded-events table against its contract; return it unchanged if valid.

    Events legitimately repeat ``patient_id``. Codes are *not* checked against code
    lists here (``flag_conditions`` counts unrecognised codes); null codes are errors.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> ev = pd.DataFrame({"patient_id": [1, 1], "code": ["E11.2", "I50"],
    ...                    "code_system": ["icd10", "icd10"]})
    >>> ph.validate_events(ev) is ev
    True
    """
    c = _Checker("events", events)
    c.require(EVENTS_REQUIRED)
    if "patient_id" in events.columns:
        c.identifier("patient_id")
    for col in ("code", "code_system"):
        if col in events.columns and c.stringlike(col):
            c.add(col, "not_null", events[col].isna().to_numpy())
    if "setting" in events.columns and c.stringlike("setting"):
        c.add("setting", "setting_code", _in_set(events["setting"], EVENT_SETTINGS),
              "allowed: " + ", ".join(sorted(EVENT_SETTINGS)))
    date = c.datetime("date")
    c.after_index("date", date, index_date)
    c.finish()
    return events


def validate_activity(activity: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Check an activity (contacts with costs) table; return it unchanged if valid.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> act = pd.DataFrame({"patient_id": [1], "date": pd.to_datetime(["2024-01-02"]),
    ...                     "kind": ["ae"], "cost": [-5.0]})
    >>> ph.validate_activity(act)
    Traceback (most recent call last):
    ...
    pophealth.exceptions.SchemaError: activity failed validation (1 problem(s)):
      activity: column 'cost' breaks rule 'cost_non_negative' in 1 row(s); first positions [0]
    """
    c = _Checker("activity", activity)
    c.require(ACTIVITY_REQUIRED)
    if "patient_id" in activity.columns:
        c.identifier("patient_id")
    if "kind" in activity.columns and c.stringlike("kind"):
        c.add("kind", "not_null", activity["kind"].isna().to_numpy())
        c.add("kind", "activity_kind", _in_set(activity["kind"], ACTIVITY_KINDS),
              "allowed: " + ", ".join(sorted(ACTIVITY_KINDS)))
    cost = c.numeric("cost")
    if cost is not None:
        c.add("cost", "not_null", np.isnan(cost))
        c.add("cost", "cost_non_negative", cost < 0)
    los = c.numeric("length_of_stay")
    if los is not None:
        c.add("length_of_stay", "non_negative", los < 0)
    date = c.datetime("date", required=True)
    c.after_index("date", date, index_date)
    c.finish()
    return activity
