"""Checks on the register and activity columns that :func:`~pophealth.risk.features.make_features` reads.

Every broken rule is reported, in one line, with its table, column, rule, row count and up
to ten zero-based row positions -- never a value. What is checked, and why:

* ``register.age`` (when present): a numeric dtype -- text is refused even when it holds
  digits, since ``"80"`` silently became NaN before -- and ``0 <= age <= 120``;
* ``register.date_of_birth`` (used when there is no ``age``): a datetime dtype, and not
  after ``index_date`` (which would give a negative age);
* ``register.imd_decile`` (optional): a numeric dtype, integer 1-10 where given;
* ``activity``: :func:`~pophealth.contracts.schema.validate_activity` (``cost`` numeric,
  non-null, finite and >= 0 -- a text or missing cost used to count as 0 -- ``kind``,
  ``date``, ``length_of_stay``), after the same numeric-dtype rule on ``cost`` and
  ``length_of_stay`` so text there is reported with its count and positions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import (
    ACTIVITY_KINDS,
    ACTIVITY_REQUIRED,
    MAX_POSITIONS,
    Problem,
    as_datetime64,
    is_datetimelike,
    naive_timestamp,
    validate_activity,
)

__all__ = ["ActivityArrays", "check_feature_inputs"]


class ActivityArrays(NamedTuple):
    """The activity columns that make_features reads, checked, as numpy arrays.

    ``date`` is naive ``datetime64`` (``ns`` or ``us``; NaT never, after the checks),
    ``kind_codes`` indexes ``kinds`` (``-1`` missing never, after the checks), ``cost``
    and ``length_of_stay`` are numpy integer or float arrays, as given (not converted:
    a consumer converts the rows it uses to float64; ``length_of_stay`` is None when the
    column is absent, and NaN there means no stay recorded).
    """

    patient_id: np.ndarray
    date: np.ndarray
    kind_codes: np.ndarray
    kinds: tuple
    cost: np.ndarray
    length_of_stay: np.ndarray | None


def _problem(table: str, column: str, rule: str, mask, detail: str = "") -> Problem | None:
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    pos = tuple(int(p) for p in np.flatnonzero(mask)[:MAX_POSITIONS])
    return Problem(table, column, rule, int(mask.sum()), pos, detail)


def _is_numeric(s: pd.Series) -> bool:
    if len(s) == 0 and pd.api.types.is_object_dtype(s.dtype):
        return True  # pd.DataFrame(columns=[...]): no cell to break the rule
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _numeric_problem(table: str, column: str, s: pd.Series) -> Problem | None:
    """The non-missing cells of a column whose dtype is not numeric (text, bool, dates)."""
    if _is_numeric(s):
        return None
    return _problem(table, column, "numeric_dtype", s.notna().to_numpy(),
                    f"expected a numeric dtype, got {s.dtype}; text is refused even when it "
                    "holds digits: convert with pd.to_numeric")


def _values(s: pd.Series) -> np.ndarray:
    """A numeric column as numpy: plain int/float as they are (no copy), others float64
    with NaN for missing."""
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf":
        return s.to_numpy()
    return pd.to_numeric(s).to_numpy(dtype=float, na_value=np.nan)


def _within(values: np.ndarray, lo: float, hi: float) -> bool:
    """Whether every non-missing value is in ``[lo, hi]``: two reductions, no temporary
    (NaN is skipped by fmin/fmax; an all-NaN column gives NaN, which passes)."""
    if not len(values):
        return True
    if values.dtype.kind == "f":
        return not (np.fmin.reduce(values) < lo or np.fmax.reduce(values) > hi)
    # integers: no NaN, and no maximum to find when the type cannot exceed ``hi``
    return not (values.min() < lo or (hi < np.iinfo(values.dtype).max and values.max() > hi))


def _register_problems(register: pd.DataFrame, index_date) -> list[Problem]:
    out: list[Problem | None] = []
    if "age" in register.columns:
        bad = _numeric_problem("register", "age", register["age"])
        out.append(bad)
        if bad is None:
            age = _values(register["age"])
            if not _within(age, 0, 120):
                out.append(_problem("register", "age", "age_range", (age < 0) | (age > 120),
                                    "0 <= age <= 120"))
    elif "date_of_birth" in register.columns:
        dob = register["date_of_birth"]
        if not is_datetimelike(dob) and not (len(dob) == 0 and dob.dtype == object):
            out.append(_problem("register", "date_of_birth", "datetime_dtype",
                                dob.notna().to_numpy(),
                                f"expected a datetime dtype, got {dob.dtype}: convert with "
                                "pd.to_datetime"))
        else:
            when = np.datetime64(naive_timestamp(index_date), "us")  # wall clock
            out.append(_problem("register", "date_of_birth", "not_after_index_date",
                                as_datetime64(dob, unit="us") > when,
                                "would give a negative age"))
    if "imd_decile" in register.columns:
        bad = _numeric_problem("register", "imd_decile", register["imd_decile"])
        out.append(bad)
        if bad is None:
            imd = _values(register["imd_decile"])
            if imd.dtype.kind == "f" or not _within(imd, 1, 10):  # integers: no fraction
                imd = imd.astype(np.float64, copy=False)
                out.append(_problem("register", "imd_decile", "imd_decile_range",
                                    ~np.isnan(imd) & ((imd < 1) | (imd > 10)
                                                      | (imd != np.round(imd))),
                                    "integer 1-10, 1 = most deprived"))
    return [p for p in out if p is not None]


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise SchemaError("make_features: " + "; ".join(p.message() for p in problems),
                          [p.as_dict() for p in problems])


def check_feature_inputs(register: pd.DataFrame, activity: pd.DataFrame,
                         index_date) -> ActivityArrays:
    """Raise :class:`SchemaError` (one line, every broken rule) if the inputs are unusable.

    Returns the checked activity columns as :class:`ActivityArrays`.

    Parameters
    ----------
    register, activity : DataFrame
        As for :func:`~pophealth.risk.features.make_features`.
    index_date : date-like

    Examples
    --------
    >>> import pandas as pd
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3], "sex": ["F", "M", "F"],
    ...                     "date_of_birth": pd.to_datetime(["1950-01-01", "2028-06-01", None])})
    >>> act = pd.DataFrame({"patient_id": [1, 2], "date": pd.to_datetime(["2025-01-01"] * 2),
    ...                     "kind": ["gp", "ae"], "cost": ["40", "150"]})
    >>> check_feature_inputs(reg, act, "2025-04-01")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: make_features: register: column 'date_of_birth' breaks rule 'not_after_index_date' (would give a negative age) in 1 row(s); first positions [1]; activity: column 'cost' breaks rule 'numeric_dtype' (expected a numeric dtype, got object; text is refused even when it holds digits: convert with pd.to_numeric) in 2 row(s); first positions [0, 1]
    """
    problems = _register_problems(register, index_date)
    for col in ("cost", "length_of_stay"):
        if col in activity.columns and activity.columns.tolist().count(col) == 1:
            p = _numeric_problem("activity", col, activity[col])
            if p is not None:
                problems.append(p)
    _raise(problems)
    arrays = _plain_activity(activity)
    if arrays is not None:
        return arrays
    try:
        validate_activity(activity)
    except SchemaError as exc:  # the contract's message is one line per rule: make it one line
        raise SchemaError("make_features: " + " ".join(str(exc).split("\n  ")),
                          exc.problems) from None
    return _general_activity(activity)


def _numeric_array(s: pd.Series) -> np.ndarray | None:
    """A plain numpy int/float column as it is (None for any other dtype)."""
    if not isinstance(s.dtype, np.dtype) or s.dtype.kind not in "iuf":
        return None
    return s.to_numpy()


def _plain_activity(activity: pd.DataFrame) -> ActivityArrays | None:
    """The arrays, if the columns have the plain dtypes and every rule provably holds.

    Each rule of ``validate_activity`` is one reduction here; None means "not proved"
    (another dtype, or a broken rule), never "invalid": the caller then runs the
    contract itself.
    """
    cols = activity.columns
    if not cols.is_unique or any(c not in cols for c in ACTIVITY_REQUIRED):
        return None
    pid, date, kind = activity["patient_id"], activity["date"], activity["kind"]
    if not (isinstance(pid.dtype, np.dtype) and pid.dtype.kind in "iu"):
        return None  # integer ids have no missing value; other id dtypes: the contract
    if not (isinstance(date.dtype, np.dtype) and date.dtype in (np.dtype("M8[ns]"),
                                                                 np.dtype("M8[us]"))):
        return None  # naive ns/us datetimes fit in us: no range rule can break
    dates = date.to_numpy()
    # NaT is int64's minimum: one reduction, no mask
    if len(dates) and int(dates.view(np.int64).min()) == np.iinfo(np.int64).min:
        return None
    if not isinstance(kind.dtype, pd.CategoricalDtype):
        return None
    kinds = tuple(kind.cat.categories)
    codes = kind.cat.codes.to_numpy()
    if not all(isinstance(k, str) and k in ACTIVITY_KINDS for k in kinds) or (
            len(codes) and int(codes.min()) < 0):
        return None  # a missing kind, or a category outside the allowed kinds
    # reductions only (no per-row mask): min propagates NaN, which fails ">= 0"
    cost = _numeric_array(activity["cost"])
    if cost is None or (len(cost) and not (cost.min() >= 0 and cost.max() < np.inf)):
        return None
    los = None
    if "length_of_stay" in cols:
        los = _numeric_array(activity["length_of_stay"])
        if los is None or not _within(los, 0, np.finfo(np.float64).max):  # NaN allowed
            return None
    return ActivityArrays(pid.to_numpy(), dates, codes, kinds, cost, los)


def _general_activity(activity: pd.DataFrame) -> ActivityArrays:
    """The arrays from any dtypes the contract accepts (after validate_activity passed)."""
    codes, uniques = pd.factorize(activity["kind"], use_na_sentinel=True)
    los = (pd.to_numeric(activity["length_of_stay"]).to_numpy(dtype=float, na_value=np.nan)
           if "length_of_stay" in activity.columns else None)
    return ActivityArrays(activity["patient_id"].to_numpy(),
                          as_datetime64(activity["date"], unit="us"), codes,
                          tuple(uniques), pd.to_numeric(activity["cost"]).to_numpy(dtype=float),
                          los)
