"""Type-safe comparison of a column with a literal, as segment and caseload rules need it.

``compare_column(s, ">=", "intermediate", column="hfrs_band", known=...)`` answers in the
band's order whatever the column's dtype (see :mod:`pophealth.contracts.ordinal`); a
number literal checks the column with the ``numeric`` rule first (see
:mod:`pophealth.contracts.numeric`); a missing value never satisfies a comparison.
Errors name the column and rule, never a cell value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError
from pophealth.contracts.numeric import _numeric_dtype, numeric_values
from pophealth.contracts.ordinal import column_order, ordinal_codes

__all__ = ["COMPARISONS", "ORDERED", "compare_column", "is_number_literal"]

#: The comparison operators, by their text.
COMPARISONS = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
               ">": np.greater, ">=": np.greater_equal}
#: Operators that need an order.
ORDERED = frozenset({"<", "<=", ">", ">="})


def is_number_literal(value) -> bool:
    """True for int/float literals (not bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def _where(context: str) -> str:
    return f"{context}: " if context else ""


def compare_column(s: pd.Series, op: str, value, *, column: str,
                   known: Mapping[str, Sequence[str]], table: str = "patients",
                   context: str = "") -> np.ndarray:
    """Boolean mask of the rows where ``s <op> value`` holds (missing never holds).

    Parameters
    ----------
    s : Series
        The column.
    op : str
        One of ``== != < <= > >=``.
    value : number, str or bool
        The literal.
    column : str
        The column's name (looked up in ``known`` and used in messages).
    known : mapping
        Known label orders by column name, lowest first (e.g. ``efi_band``).
    table, context : str
        For messages (``context`` e.g. ``"rule 'frailty_efi': field 'when'"``).

    Raises
    ------
    SchemaError
        A number literal against a column with non-numbers (rule ``numeric``); a label
        outside a known order in an ordered comparison (``known_label``); an ordered
        categorical that contradicts a known order (``band_order``).
    ConfigError
        An ordered comparison on a column with no known order; a label literal that is
        not one of the column's known labels; a text literal against a number column.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.compare import compare_column
    >>> bands = {"hfrs_band": ("low", "intermediate", "high")}
    >>> s = pd.Series(["high", "low", None, "intermediate"], dtype="string[pyarrow]")
    >>> compare_column(s, ">=", "intermediate", column="hfrs_band", known=bands).tolist()
    [True, False, False, True]
    """
    if op not in COMPARISONS:
        raise ConfigError(f"{_where(context)}unknown comparison operator for column "
                          f"'{column}'")
    fn = COMPARISONS[op]
    if is_number_literal(value):
        x = numeric_values(s, table=table, column=column)
        with np.errstate(invalid="ignore"):
            return np.asarray(fn(x, value), dtype=bool) & ~np.isnan(x)
    if isinstance(value, str):
        if _numeric_dtype(s.dtype):
            raise ConfigError(f"{_where(context)}compares values of incompatible types "
                              f"(number column '{column}' with a text literal)")
        if op in ORDERED or column in known:
            order = column_order(s, column, known, table=table, context=context)
            if value not in order:
                raise ConfigError(f"{_where(context)}compares column '{column}' with a literal "
                                  "that is not one of its categories")
            if op in ORDERED:
                detail = ("allowed: " + " < ".join(order)) if column in known else ""
                codes = ordinal_codes(s, order, table=table, column=column, detail=detail)
                return (codes >= 0) & fn(codes, order.index(value))
        hit = (s == value)
        hit = hit.fillna(False) if hasattr(hit, "fillna") else hit
        return np.asarray(hit, dtype=bool) & s.notna().to_numpy(dtype=bool)
    if isinstance(value, (bool, np.bool_)) and op in ("==", "!="):
        if not pd.api.types.is_bool_dtype(s.dtype):
            raise ConfigError(f"{_where(context)}compares column '{column}' with True/False "
                              "but it is not boolean")
        present = s.notna().to_numpy(dtype=bool)
        return present & fn(s.fillna(False).to_numpy(dtype=bool), bool(value))
    raise ConfigError(f"{_where(context)}compares column '{column}' with an unsupported literal")
