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

Validators raise :class:`~pophealth.contracts.exceptions.SchemaError` listing *every* broken
rule with its column, rule name, row count and up to ten zero-based row positions.
They never put cell values in messages, because values may be identifiers.
Plain ``object``, ``string[pyarrow]``, Arrow-backed and categorical string columns
are all accepted; dates may be ``datetime64`` of any unit, tz-aware (numpy or Arrow, any
zone), Arrow ``timestamp``/``date32``/``date64``, or ``object`` columns of
:class:`datetime.date` (what ``pyarrow.Table.to_pandas()`` makes of ``date32``).

**One date convention.** Tz-aware dates are compared on the local wall-clock time of
their own zone; a column in UTC keeps UTC dates. The zone is dropped and the clock reading
kept (numpy ``tz_localize(None)``, Arrow ``pyarrow.compute.local_timestamp``), so a value
stored as 00:30 BST on 1 July (``2024-07-01 00:30+01:00``, Europe/London) is on 1 July, and a
date of birth stored as local midnight stays on its day. English NHS dates are recorded in
UK local time; converting to UTC first would move every summer midnight to the day before.
Naive values are taken as they are; a tz-aware ``index_date`` is made naive the same way
(:func:`naive_timestamp`). :func:`as_datetime64` applies the convention to columns, and
every part compares dates through these two functions.

A zero-row frame with the required columns is valid whatever their dtypes
(``pd.DataFrame(columns=[...])`` gives ``object``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError

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
    "naive_timestamp",
    "parse_index_date",
    "NHS_SEX_CODES",
    "normalise_sex",
]

REGISTER_REQUIRED = ("patient_id", "sex", "lsoa", "practice")
EVENTS_REQUIRED = ("patient_id", "code", "code_system")
ACTIVITY_REQUIRED = ("patient_id", "date", "kind", "cost")
#: Sex codes accepted in ``register.sex``: female, male, indeterminate, not known.
SEX_CODES = frozenset({"F", "M", "I", "U"})
#: NHS Data Dictionary sex codes (Person Stated Gender Code / Sex) -> ``SEX_CODES``:
#: 1 male, 2 female, 9 indeterminate (unable to be classified), 0 not known.
NHS_SEX_CODES = {"1": "M", "2": "F", "9": "I", "0": "U"}
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
#: Rules about a column as a whole (no row count in the message).
_COLUMN_RULES = frozenset({"missing_column", "duplicate_column"})


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
        detail = f" ({self.detail})" if self.detail else ""
        head = f"{self.table}: column '{self.column}' breaks rule '{self.rule}'{detail}"
        if self.rule in _COLUMN_RULES:
            return head
        where = f"; first positions {list(self.positions)}" if self.positions else ""
        return f"{head} in {self.count} row(s){where}"

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
        return (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or getattr(pa.types, "is_string_view", lambda _: False)(t)
        )
    if pd.api.types.is_object_dtype(dtype):
        return pd.api.types.infer_dtype(s, skipna=True) in {"string", "empty"}
    return False


def is_datetimelike(s: pd.Series) -> bool:
    """True for numpy/pandas datetime64 columns, Arrow timestamp/date columns and
    ``object`` columns of :class:`datetime.date` (Arrow ``date32`` after ``to_pandas()``)."""
    dtype = s.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        return pa.types.is_timestamp(t) or pa.types.is_date(t)
    if _is_object_dates(s):
        return True
    return pd.api.types.is_datetime64_any_dtype(dtype)


def _is_object_dates(s: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(s.dtype) and s.notna().any()
            and pd.api.types.infer_dtype(s, skipna=True) == "date")


def _datetime_values(s: pd.Series, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Tz-naive wall-clock ``datetime64[unit]`` array (NaT for missing) and a mask of the
    values that do not fit that unit's range (set to NaT rather than wrapped around)."""
    if isinstance(s.dtype, pd.ArrowDtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = s.array.__arrow_array__()
        if not isinstance(arr, pa.ChunkedArray):
            arr = pa.chunked_array([arr], type=arr.type)
        t = arr.type
        if pa.types.is_timestamp(t) and t.tz is not None:
            arr = pc.local_timestamp(arr)  # wall-clock time, as tz_localize(None) gives
        elif pa.types.is_date32(t):
            arr = arr.cast(pa.timestamp("s"))
        elif pa.types.is_date64(t):
            arr = arr.cast(pa.timestamp("ms"))
        native = arr.to_numpy()
    elif _is_object_dates(s):
        native = np.array(s.astype(object).where(s.notna(), None).to_numpy(),
                          dtype="datetime64[D]")
    else:
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_localize(None)  # wall-clock time of the column's own zone
        native = s.to_numpy()
    native = np.asarray(native)
    if native.dtype == object:  # all-null Arrow columns can come back as objects
        native = pd.to_datetime(native).to_numpy()
    target = np.dtype(f"datetime64[{unit}]")
    nat = np.isnat(native)
    oob = np.zeros(len(native), dtype=bool)
    native_unit = np.datetime_data(native.dtype)[0]
    factor = np.timedelta64(1, native_unit) / np.timedelta64(1, unit)
    if factor > 1:  # coarser -> finer: values beyond int64 range of the finer unit would wrap
        limit = np.iinfo(np.int64).max // int(factor)
        ints = native.view(np.int64)
        oob = ~nat & ((ints > limit) | (ints < -limit))
        native = np.where(oob, np.datetime64("NaT"), native)
    return native.astype(target), oob


def as_datetime64(s: pd.Series, unit: str = "ns") -> np.ndarray:
    """Return a tz-naive wall-clock ``datetime64[unit]`` numpy array (NaT for missing).

    Tz-aware columns (numpy or Arrow, any zone) keep the local wall-clock time of their
    own zone with the zone dropped (the module's one date convention; a UTC column keeps
    UTC times); naive columns are taken as they are; Arrow ``date32``/``date64`` and ``object``
    columns of :class:`datetime.date` become midnight of that day. Dates that do not fit
    ``datetime64[unit]`` (for ``ns``: before 1677 or after 2262, e.g. a ``9999-12-31``
    sentinel; use ``unit="us"`` to keep them) raise :class:`SchemaError` with their
    positions instead of wrapping round.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.schema import as_datetime64
    >>> bst = pd.Series(pd.to_datetime(["2024-07-01 00:30"])).dt.tz_localize("Europe/London")
    >>> as_datetime64(bst)
    array(['2024-07-01T00:30:00.000000000'], dtype='datetime64[ns]')
    >>> as_datetime64(bst.dt.tz_convert("UTC"))
    array(['2024-06-30T23:30:00.000000000'], dtype='datetime64[ns]')
    """
    values, oob = _datetime_values(s, unit)
    if oob.any():
        name = "<unnamed>" if s.name is None else str(s.name)
        p = Problem("as_datetime64", name, "datetime_range", int(oob.sum()),
                    tuple(int(i) for i in np.flatnonzero(oob)[:MAX_POSITIONS]),
                    "dates must fall between 1677 and 2262")
        raise SchemaError(p.message(), [p.as_dict()])
    return values


_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}"                                   # calendar date, extended form
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"        # optional time
    r"(?:Z|[+-]\d{2}:?\d{2})?)?")                           # optional offset


def parse_index_date(value, what: str = "index_date") -> pd.Timestamp:
    """An ``index_date`` argument as a :class:`pandas.Timestamp`, ISO 8601 strings only.

    Strings must be ISO 8601 extended form, ``YYYY-MM-DD`` with an optional time and UTC
    offset (``2025-04-01``, ``2025-04-01T09:30``, ``2025-04-01 00:30+01:00``). Any other
    layout -- ``01/04/2025``, ``1 April 2025``, ``20250401`` -- is a one-line
    :class:`SchemaError`, never a guess: pandas would read ``01/04/2025`` month first as
    4 January. :class:`datetime.date`, :class:`datetime.datetime`,
    :class:`pandas.Timestamp` and :class:`numpy.datetime64` values are taken as they are.
    Missing values and numbers are errors. The zone of a tz-aware value is kept; callers
    drop it with :func:`naive_timestamp` (the module's wall-clock rule).

    Parameters
    ----------
    value : str, date, datetime, Timestamp or datetime64
    what : str
        The argument's name for the error message.

    Returns
    -------
    Timestamp

    Raises
    ------
    SchemaError
        Not an ISO 8601 string, an impossible date, a number or missing. The message
        names the argument and the rule, never the value.

    Examples
    --------
    >>> from pophealth.contracts.schema import parse_index_date
    >>> parse_index_date("2025-04-01")
    Timestamp('2025-04-01 00:00:00')
    >>> parse_index_date("01/04/2025")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: index_date breaks rule 'iso_8601_date': write dates as YYYY-MM-DD, e.g. 2025-04-01; other layouts are ambiguous and never guessed
    """
    import datetime as dt

    rule = "iso_8601_date"
    fix = ("write dates as YYYY-MM-DD, e.g. 2025-04-01; other layouts are ambiguous "
           "and never guessed")
    if isinstance(value, str):
        text = value.strip()
        if not _ISO_8601.fullmatch(text):
            raise SchemaError(f"{what} breaks rule '{rule}': {fix}",
                              [{"column": what, "rule": rule, "count": 1, "positions": []}])
        try:
            ts = pd.Timestamp(text)
        except ValueError:
            raise SchemaError(f"{what} breaks rule 'valid_date': not a calendar date",
                              [{"column": what, "rule": "valid_date", "count": 1,
                                "positions": []}]) from None
    elif isinstance(value, (dt.date, np.datetime64)):  # Timestamp and datetime are dates
        ts = pd.Timestamp(value)
    else:
        raise SchemaError(f"{what} breaks rule 'date_type': expected an ISO 8601 string or a "
                          f"date, got {type(value).__name__}",
                          [{"column": what, "rule": "date_type", "count": 1, "positions": []}])
    if pd.isna(ts):
        raise SchemaError(f"{what} breaks rule 'not_null': a date is required",
                          [{"column": what, "rule": "not_null", "count": 1, "positions": []}])
    return ts


def naive_timestamp(value) -> pd.Timestamp:
    """A date-like as a tz-naive :class:`pandas.Timestamp` on its local wall-clock time.

    The module's one date convention applied to a single value (e.g. an ``index_date``):
    a tz-aware value keeps the clock reading of its own zone and drops the zone; a naive
    value is returned as it is. Strings go through :func:`parse_index_date` (ISO 8601
    only: ``01/04/2025`` is an error, never 4 January).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.schema import naive_timestamp
    >>> naive_timestamp("2024-07-01 00:30+01:00"), naive_timestamp("2024-07-01")
    (Timestamp('2024-07-01 00:30:00'), Timestamp('2024-07-01 00:00:00'))
    >>> naive_timestamp(pd.Timestamp("2024-06-30 23:30", tz="UTC"))
    Timestamp('2024-06-30 23:30:00')
    """
    ts = parse_index_date(value)
    return ts.tz_localize(None) if ts.tz is not None else ts


def _as_timestamp(index_date) -> np.datetime64:
    return np.datetime64(naive_timestamp(index_date), "us")


def _is_integerlike(s: pd.Series) -> bool:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.api.types.is_integer_dtype(dtype.categories.dtype)
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


def _float_values(s: pd.Series) -> np.ndarray:
    """``float64`` array of a numeric column, NaN for missing (Arrow decimals included)."""
    if isinstance(s.dtype, pd.ArrowDtype):
        import pyarrow as pa

        arr = s.array.__arrow_array__()
        arr = arr.cast(pa.float64())
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return pd.to_numeric(s).astype("float64").to_numpy(na_value=np.nan)


def _untyped_empty(s: pd.Series) -> bool:
    """A zero-row ``object`` column, as ``pd.DataFrame(columns=[...])`` makes: no cell can
    break a dtype rule, so it is accepted as any type."""
    return len(s) == 0 and pd.api.types.is_object_dtype(s.dtype)


def _normalise_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


# ----------------------------------------------------------------------------- rule engine


class _Checker:
    def __init__(self, table: str, frame: pd.DataFrame, known: Iterable[str] = ()) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise SchemaError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}")
        self.table = table
        self.frame = frame
        self.known = frozenset(known)
        self.problems: list[Problem] = []
        cols = frame.columns
        self.duplicated = set(cols[cols.duplicated()])
        for col in dict.fromkeys(cols[cols.duplicated()]):
            n = int((cols == col).sum())
            self.problems.append(Problem(table, str(col), "duplicate_column", 0, (),
                                         f"appears {n} times"))

    def has(self, column: str) -> bool:
        """Column present exactly once (duplicated columns are reported, not checked)."""
        return column in self.frame.columns and column not in self.duplicated

    def add(self, column: str, rule: str, mask, detail: str = "") -> None:
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        if count:
            pos = tuple(int(p) for p in np.flatnonzero(mask)[:MAX_POSITIONS])
            self.problems.append(Problem(self.table, column, rule, count, pos, detail))

    def add_column(self, column: str, rule: str, detail: str = "") -> None:
        self.problems.append(Problem(self.table, column, rule, len(self.frame), (), detail))

    def near(self, name: str) -> str | None:
        """A present column that looks like a misspelling of ``name`` (names only)."""
        candidates = [str(k) for k in self.frame.columns if str(k) not in self.known]
        for k in candidates:
            if _normalise_name(k) == _normalise_name(name):
                return k
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
        return close[0] if close else None

    def missing(self, column: str, *alternatives: str) -> None:
        names = (column, *alternatives)
        hints = [k for k in map(self.near, names) if k is not None]
        detail = f"did you mean {hints[0]!r}?" if hints else ""
        self.problems.append(Problem(self.table, "|".join(names), "missing_column", 0, (),
                                     detail))

    def require(self, columns: Iterable[str]) -> bool:
        missing = [c for c in columns if c not in self.frame.columns]
        for c in missing:
            self.missing(c)
        return not missing

    def stringlike(self, column: str) -> bool:
        if not self.has(column):
            return False
        if not is_stringlike(self.frame[column]):
            self.add_column(column, "dtype", f"expected strings, got {self.frame[column].dtype}")
            return False
        return True

    def identifier(self, column: str) -> bool:
        if not self.has(column):
            return False
        s = self.frame[column]
        if not (is_stringlike(s) or _is_integerlike(s) or _untyped_empty(s)):
            self.add_column(column, "dtype", f"expected integer or string ids, got {s.dtype}")
            return False
        self.add(column, "not_null", s.isna().to_numpy())
        return True

    def datetime(self, column: str, *, required: bool = False) -> np.ndarray | None:
        if not self.has(column):
            return None
        s = self.frame[column]
        if _untyped_empty(s):
            return np.empty(0, dtype="datetime64[us]")
        if not is_datetimelike(s):
            self.add_column(column, "dtype", f"expected datetime64, got {s.dtype}")
            return None
        values, oob = _datetime_values(s, "us")
        self.add(column, "datetime_range", oob)
        if required:
            self.add(column, "not_null", np.isnat(values) & ~oob)
        return values

    def numeric(self, column: str) -> np.ndarray | None:
        if not self.has(column):
            return None
        s = self.frame[column]
        if _untyped_empty(s):
            return np.empty(0, dtype="float64")
        if not _is_numeric(s):
            self.add_column(column, "dtype", f"expected numbers, got {s.dtype}")
            return None
        return _float_values(s)

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
    if isinstance(s.dtype, pd.CategoricalDtype):
        # a categorical (Parquet dictionary) column: its own codes, no hashing of the rows
        codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
    else:
        codes, uniques = pd.factorize(s.astype(object) if isinstance(s.dtype, pd.ArrowDtype)
                                      else s)
    bad_unique = np.array([u not in allowed for u in uniques], dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    valid = codes >= 0
    out[valid] = bad_unique[codes[valid]]
    return out


# ----------------------------------------------------------------------------- sex codes


def normalise_sex(values, column: str = "sex", *, errors: str = "raise") -> pd.Series:
    """Sex codes as the register contract's ``F``/``M``/``I``/``U``.

    Accepts the contract's own letters and the NHS Data Dictionary codes (Person Stated
    Gender Code / Sex: ``1`` male, ``2`` female, ``9`` indeterminate, ``0`` not known),
    as strings or integers (CSV extracts often arrive as numbers). Surrounding spaces and
    letter case are ignored. Works on the unique values only.

    Parameters
    ----------
    values : array-like or Series
    column : str
        The column's name for error messages.
    errors : {"raise", "coerce"}
        ``"coerce"`` gives ``None`` for missing and unknown codes instead of raising
        (the caller counts them).

    Returns
    -------
    Series
        ``object`` strings in :data:`SEX_CODES`, on the input's index if it had one.

    Raises
    ------
    SchemaError
        Missing or unknown codes, naming the column, rule, count and first positions
        (never the values).

    Examples
    --------
    >>> from pophealth.contracts.schema import normalise_sex
    >>> normalise_sex(["1", "2", "9", "0", "f", 2]).tolist()
    ['M', 'F', 'I', 'U', 'F', 'F']
    """
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    codes, uniques = pd.factorize(s.astype(object))
    keys = [str(u).strip().upper() for u in uniques]
    keys = [k[:-2] if k.endswith(".0") else k for k in keys]  # 1.0 from a float column
    table = {**{k: k for k in SEX_CODES}, **NHS_SEX_CODES}
    mapped = np.array([table.get(k) for k in keys] + [None], dtype=object)
    out = mapped[codes]  # code -1 (missing) picks the trailing None
    if errors == "coerce":
        return pd.Series(out, index=s.index, name=s.name, dtype=object)
    c = _Checker(column, pd.DataFrame(index=range(len(s))))
    c.add(column, "not_null", codes < 0)
    c.add(column, "sex_code", (codes >= 0) & pd.isna(out),
          "allowed: F, M, I, U or NHS Data Dictionary 1, 2, 9, 0")
    c.finish()
    return pd.Series(out, index=s.index, name=s.name, dtype=object)


# ----------------------------------------------------------------------------- validators

_REGISTER_KNOWN = (*REGISTER_REQUIRED, "date_of_birth", "age", "pcn", "imd_decile", "ethnicity",
                   "date_of_death", "registered_from", "registered_to")
_EVENTS_KNOWN = (*EVENTS_REQUIRED, "date", "setting")
_ACTIVITY_KNOWN = (*ACTIVITY_REQUIRED, "length_of_stay")


def validate_register(register: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Check a register against its contract; return it unchanged if valid.

    Rules: required columns present (and not duplicated); ``patient_id`` integer or
    string, non-null and unique; ``sex`` a string in ``SEX_CODES`` (no case-folding);
    ``age`` numeric in 0-120; ``date_of_birth``/``date_of_death``/``registered_*``
    datetimes; death not before birth; every row has an age or a date of birth;
    ``imd_decile`` an integer 1-10 where given.

    Parameters
    ----------
    register : DataFrame
        One row per patient; see the module docstring for the columns.
    index_date : date-like, optional
        If given, dates of birth after it are errors. (Deaths and registration dates
        after it are not: a later extract legitimately holds them.)

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
    pophealth.contracts.exceptions.SchemaError: register failed validation (1 problem(s)):
      register: column 'age' breaks rule 'age_range' (0 <= age <= 120) in 1 row(s); first positions [1]
    """
    if index_date is not None:
        parse_index_date(index_date)  # ISO 8601 only, checked even when no date column
    c = _Checker("register", register, _REGISTER_KNOWN)
    c.require(REGISTER_REQUIRED)
    if "date_of_birth" not in register.columns and "age" not in register.columns:
        c.missing("date_of_birth", "age")
    if c.identifier("patient_id"):
        pid = register["patient_id"]
        c.add("patient_id", "unique", pid.duplicated(keep=False).to_numpy() & pid.notna().to_numpy())
    if c.has("sex") and _is_integerlike(register["sex"]):
        c.add_column("sex", "dtype", "expected strings F, M, I, U; NHS Data Dictionary codes "
                     "1/2/9/0 are converted by pophealth.normalise_sex or read_gp_register")
    elif c.stringlike("sex"):
        sex = register["sex"]
        c.add("sex", "not_null", sex.isna().to_numpy())
        bad = _in_set(sex, SEX_CODES)
        nhs = bad & ~_in_set(sex, frozenset(NHS_SEX_CODES))  # "1"/"2"/"9"/"0" as given
        hint = ("; NHS Data Dictionary codes 1/2/9/0 are converted by "
                "pophealth.normalise_sex or read_gp_register" if nhs.any() else "")
        c.add("sex", "sex_code", bad, "allowed: F, M, I, U" + hint)
    for col in ("lsoa", "practice", "pcn", "ethnicity"):
        c.stringlike(col)
    age = c.numeric("age")
    if age is not None:
        c.add("age", "age_range", (age < 0) | (age > 120), "0 <= age <= 120")
    dob = c.datetime("date_of_birth")
    c.after_index("date_of_birth", dob, index_date)
    if age is not None and dob is not None:
        c.add("date_of_birth|age", "not_null", np.isnan(age) & np.isnat(dob))
    elif age is not None and not c.has("date_of_birth"):
        c.add("age", "not_null", np.isnan(age))
    elif dob is not None and not c.has("age"):
        c.add("date_of_birth", "not_null", np.isnat(dob))
    dod = c.datetime("date_of_death")
    if dob is not None and dod is not None:
        c.add("date_of_death", "death_after_birth", dod < dob)
    c.datetime("registered_from")
    c.datetime("registered_to")
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
    ``date`` is optional and may be missing in some rows; if ``index_date`` is given,
    dates after it are errors. ``setting``, where given, must be in ``EVENT_SETTINGS``.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> ev = pd.DataFrame({"patient_id": [1, 1], "code": ["E11.2", "I50"],
    ...                    "code_system": ["icd10", "icd10"]})
    >>> ph.validate_events(ev) is ev
    True
    """
    if index_date is not None:
        parse_index_date(index_date)  # ISO 8601 only, checked even when no date column
    c = _Checker("events", events, _EVENTS_KNOWN)
    c.require(EVENTS_REQUIRED)
    c.identifier("patient_id")
    for col in ("code", "code_system"):
        if c.stringlike(col):
            c.add(col, "not_null", events[col].isna().to_numpy())
    if c.stringlike("setting"):
        c.add("setting", "setting_code", _in_set(events["setting"], EVENT_SETTINGS),
              "allowed: " + ", ".join(sorted(EVENT_SETTINGS)))
    date = c.datetime("date")
    c.after_index("date", date, index_date)
    c.finish()
    return events


def validate_activity(activity: pd.DataFrame, *, index_date=None) -> pd.DataFrame:
    """Check an activity (contacts with costs) table; return it unchanged if valid.

    Rules: ``date`` a non-null datetime (not after ``index_date`` if given); ``kind`` in
    ``ACTIVITY_KINDS``; ``cost`` numeric, non-null, finite and >= 0; ``length_of_stay``
    finite and >= 0 where given.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> act = pd.DataFrame({"patient_id": [1], "date": pd.to_datetime(["2024-01-02"]),
    ...                     "kind": ["ae"], "cost": [-5.0]})
    >>> ph.validate_activity(act)
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: activity failed validation (1 problem(s)):
      activity: column 'cost' breaks rule 'cost_non_negative' in 1 row(s); first positions [0]
    """
    if index_date is not None:
        parse_index_date(index_date)  # ISO 8601 only, checked even when no date column
    c = _Checker("activity", activity, _ACTIVITY_KNOWN)
    c.require(ACTIVITY_REQUIRED)
    c.identifier("patient_id")
    if c.stringlike("kind"):
        c.add("kind", "not_null", activity["kind"].isna().to_numpy())
        c.add("kind", "activity_kind", _in_set(activity["kind"], ACTIVITY_KINDS),
              "allowed: " + ", ".join(sorted(ACTIVITY_KINDS)))
    cost = c.numeric("cost")
    if cost is not None:
        c.add("cost", "not_null", np.isnan(cost))
        c.add("cost", "finite", np.isinf(cost))
        c.add("cost", "cost_non_negative", cost < 0)
    los = c.numeric("length_of_stay")
    if los is not None:
        c.add("length_of_stay", "finite", np.isinf(los))
        c.add("length_of_stay", "non_negative", los < 0)
    date = c.datetime("date", required=True)
    c.after_index("date", date, index_date)
    c.finish()
    return activity
