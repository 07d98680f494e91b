"""The ``numeric`` rule: a column that must hold numbers (cost, age, risk, counts).

Every public entry point that does arithmetic on a column checks it here *first*, so a
value such as ``"£1,200"`` is reported as ``column 'cost' breaks rule 'numeric' in 1
row(s); first positions [0]`` instead of reaching ``float()`` (whose message quotes the
value, which may be an identifier).

A value breaks the rule when it is present and is not a real number: strings (even
``"1200"``: text in a number column means the extract was mis-typed), booleans, dates
and other objects. Missing values (``None``, ``NaN``, ``pd.NA``) do not break it; the
caller decides what missing means. Messages carry column, rule, count and positions,
never values.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import MAX_POSITIONS, Problem

__all__ = ["numeric_mask", "validate_numeric", "numeric_values"]


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


def _numeric_dtype(dtype) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if isinstance(dtype, pd.CategoricalDtype):
        return _numeric_dtype(dtype.categories.dtype)
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def numeric_mask(s) -> np.ndarray:
    """Boolean mask of the rows that break the ``numeric`` rule (present, not a number).

    Vectorised on the dtype: a numeric column needs no per-row work; a text, boolean or
    date column breaks the rule in every non-missing row; only an ``object`` column is
    inspected cell by cell.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.numeric import numeric_mask
    >>> numeric_mask(pd.Series([1.5, None, "12", 3], dtype=object)).tolist()
    [False, False, True, False]
    >>> numeric_mask(pd.Series([True, False])).tolist()
    [True, True]
    """
    s = s if isinstance(s, pd.Series) else pd.Series(s)
    if _numeric_dtype(s.dtype):
        return np.zeros(len(s), dtype=bool)
    present = s.notna().to_numpy(dtype=bool)
    if pd.api.types.is_object_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
        if pd.api.types.infer_dtype(s, skipna=True) in {"integer", "floating",
                                                        "mixed-integer-float", "empty"}:
            return np.zeros(len(s), dtype=bool)
        ok = np.fromiter(map(_is_number, s.to_numpy()), dtype=bool, count=len(s))
        return present & ~ok
    return present


def validate_numeric(frame: pd.DataFrame, columns: Iterable[str], *, table: str,
                     optional: Iterable[str] = ()) -> pd.DataFrame:
    """Check that ``columns`` (all required) and ``optional`` (where present) hold numbers.

    Parameters
    ----------
    frame : DataFrame
    columns : iterable of str
        Columns that must be present and numeric (a missing one is reported with rule
        ``missing_column``).
    table : str
        Table name used in messages (``"activity"``, ``"patients"`` ...).
    optional : iterable of str
        Columns checked only when present.

    Returns
    -------
    DataFrame
        ``frame`` itself, so the call can be chained.

    Raises
    ------
    SchemaError
        One line per broken column: column, rule ``numeric``, row count and up to ten
        zero-based positions - never the values.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.numeric import validate_numeric
    >>> act = pd.DataFrame({"cost": [10.0, "n/a", 3.0, "12"]})
    >>> validate_numeric(act, ["cost"], table="activity")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: activity failed validation (1 problem(s)):
      activity: column 'cost' breaks rule 'numeric' in 2 row(s); first positions [1, 3]
    """
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}")
    problems: list[Problem] = []
    wanted: dict = {}
    for c in columns:
        wanted.setdefault(c, True)
    for c in optional:
        wanted.setdefault(c, False)  # a column named twice is checked (and reported) once
    for column, required in wanted.items():
        if column not in frame.columns:
            if required:
                problems.append(Problem(table, str(column), "missing_column", 0, ()))
            continue
        problem = _problem(frame[column], table, str(column))
        if problem is not None:
            problems.append(problem)
    _raise(table, problems)
    return frame


def _problem(s, table: str, column: str) -> Problem | None:
    if isinstance(s, pd.DataFrame):  # duplicated column name
        return Problem(table, column, "duplicate_column", 0, ())
    bad = numeric_mask(s)
    count = int(bad.sum())
    if not count:
        return None
    pos = tuple(int(p) for p in np.flatnonzero(bad)[:MAX_POSITIONS])
    return Problem(table, column, "numeric", count, pos)


def _raise(table: str, problems: list[Problem]) -> None:
    if problems:
        lines = [p.message() for p in problems]
        raise SchemaError(
            f"{table} failed validation ({len(lines)} problem(s)):\n  " + "\n  ".join(lines),
            [p.as_dict() for p in problems])


def numeric_values(values, *, table: str, column: str) -> np.ndarray:
    """A column or array-like checked with the ``numeric`` rule, as ``float64`` (NaN = missing).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.numeric import numeric_values
    >>> numeric_values(pd.Series([1, None, 2.5], dtype="Float64"),
    ...                table="costs", column="cost").tolist()
    [1.0, nan, 2.5]
    >>> numeric_values(["£9"], table="costs", column="cost")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: costs failed validation (1 problem(s)):
      costs: column 'cost' breaks rule 'numeric' in 1 row(s); first positions [0]
    """
    s = values if isinstance(values, pd.Series) else pd.Series(
        values if hasattr(values, "dtype") else np.asarray(values, dtype=object))
    problem = _problem(s, table, column)
    _raise(table, [problem] if problem is not None else [])
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("float64")
    if isinstance(s.dtype, pd.ArrowDtype):
        import pyarrow as pa

        arr = s.array.__arrow_array__().cast(pa.float64())
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    return pd.to_numeric(s).astype("float64").to_numpy(na_value=np.nan)
