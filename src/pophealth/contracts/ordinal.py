"""Ordered comparisons on label columns (bands such as ``efi_band``) in their true order.

``"high" >= "intermediate"`` is False alphabetically; a band compared as text silently puts
people in the wrong segment or caseload. Here a label column is turned into integer
positions in a *known* order before any ``<``/``>`` comparison, whatever its dtype (ordered
or unordered categorical, ``object``, ``string[pyarrow]``, Arrow string or dictionary):

* a column whose name has a known order (passed in ``known``, e.g. ``efi_band`` ->
  fit < mild < moderate < severe) uses that order; an ordered categorical of it whose
  categories contradict that order is refused (``band_order``);
* any other ordered categorical uses its category order;
* anything else has no order and is refused (:class:`ConfigError`) -- never compared as text;
* a present label outside the order is refused with rule ``known_label``, its count and
  positions (never the label: it is a cell value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.contracts.schema import MAX_POSITIONS, Problem

__all__ = ["column_order", "ordinal_codes"]


def column_order(s: pd.Series, column: str, known: Mapping[str, Sequence[str]], *,
                 table: str = "patients", context: str = "") -> tuple[str, ...]:
    """The order in which ``<``/``>`` compare the labels of ``s``.

    Parameters
    ----------
    s : Series
        The label column.
    column : str
        Its name (looked up in ``known``).
    known : mapping
        Column name -> labels from lowest to highest.
    table, context : str
        Used in error messages (e.g. ``"rule 'frailty_efi'"``).

    Raises
    ------
    SchemaError
        An ordered categorical of a known column orders its categories differently.
    ConfigError
        The column has no known order and is not an ordered categorical.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.ordinal import column_order
    >>> bands = {"hfrs_band": ("low", "intermediate", "high")}
    >>> column_order(pd.Series(["high"], dtype="string[pyarrow]"), "hfrs_band", bands)
    ('low', 'intermediate', 'high')
    >>> column_order(pd.Series(["b"]), "grade", bands, context="rule 'r'")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: rule 'r': ordered comparison on column 'grade', which has no known order (make it an ordered categorical)
    """
    dtype = s.dtype
    ordered_cat = isinstance(dtype, pd.CategoricalDtype) and bool(dtype.ordered)
    if column in known:
        order = tuple(str(x) for x in known[column])
        if ordered_cat:
            cats = [str(c) for c in dtype.categories]
            ranks = [order.index(c) for c in cats if c in order]
            if any(c not in order for c in cats) or ranks != sorted(ranks):
                p = Problem(table, column, "band_order", len(s), (),
                            "ordered categories contradict the known order "
                            + " < ".join(order))
                raise SchemaError(p.message(), [p.as_dict()])
        return order
    if ordered_cat:
        return tuple(dtype.categories)
    where = f"{context}: " if context else ""
    raise ConfigError(f"{where}ordered comparison on column '{column}', which has no known "
                      "order (make it an ordered categorical)")


def ordinal_codes(s: pd.Series, order: Sequence, *, table: str = "patients",
                  column: str | None = None, detail: str = "") -> np.ndarray:
    """Integer position of each label in ``order`` (``-1`` where missing).

    Works on the unique labels only (one factorize pass), so it is vectorised over rows
    and Arrow dictionary columns are not decoded row by row.

    ``detail`` is added to the message of a ``known_label`` problem; pass only
    library-defined text (e.g. the known band order), never labels read from the data.

    Raises
    ------
    SchemaError
        Rule ``known_label``: present labels not in ``order``, with count and positions.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.contracts.ordinal import ordinal_codes
    >>> s = pd.Series(["high", None, "low", "intermediate"], dtype="string[pyarrow]")
    >>> ordinal_codes(s, ("low", "intermediate", "high")).tolist()
    [2, -1, 0, 1]
    """
    codes, uniques = pd.factorize(s)
    lookup = {v: i for i, v in enumerate(order)}
    mapped = np.array([lookup.get(u, -2) for u in uniques.astype(object)], dtype=np.int64)
    out = np.full(len(s), -1, dtype=np.int64)
    present = codes >= 0
    out[present] = mapped[codes[present]]
    bad = out == -2
    if bad.any():
        name = column if column is not None else ("<unnamed>" if s.name is None else str(s.name))
        pos = tuple(int(p) for p in np.flatnonzero(bad)[:MAX_POSITIONS])
        p = Problem(table, name, "known_label", int(bad.sum()), pos, detail)
        raise SchemaError(p.message(), [p.as_dict()])
    return out
