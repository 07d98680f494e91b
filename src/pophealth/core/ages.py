"""Ages in completed years on an index date, vectorised over patients."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pophealth.contracts.schema import as_datetime64, is_datetimelike, naive_timestamp

__all__ = ["age_at"]


def age_at(date_of_birth, index_date) -> pd.Series:
    """Age in completed years on ``index_date`` (vectorised; missing birth dates give NaN).

    Dates follow the one convention of :mod:`pophealth.contracts.schema`: a tz-aware date
    of birth (numpy or Arrow) or ``index_date`` counts on the local calendar date of its
    own zone, so a birth stored as local midnight in summer (``00:00+01:00``) keeps its
    day. Arrow ``date32`` and ``datetime.date`` columns are accepted; other values go
    through :func:`pandas.to_datetime` first.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.core.ages import age_at
    >>> dob = pd.Series(pd.to_datetime(["2000-03-01", "2000-02-29", None]))
    >>> age_at(dob, "2024-02-29").tolist()
    [23.0, 24.0, nan]
    >>> bst = pd.Series(pd.to_datetime(["2000-07-01"])).dt.tz_localize("Europe/London")
    >>> age_at(bst, "2025-07-01").tolist()
    [25.0]
    """
    s = date_of_birth if isinstance(date_of_birth, pd.Series) else pd.Series(date_of_birth)
    if not is_datetimelike(s) and not (len(s) == 0 or s.isna().all()):
        s = pd.to_datetime(s)
    dob = as_datetime64(s, unit="us") if len(s) and s.notna().any() else \
        np.full(len(s), np.datetime64("NaT"), dtype="datetime64[us]")
    when = naive_timestamp(index_date)
    year = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    month0 = dob.astype("datetime64[M]")
    month = month0.astype(np.int64) % 12 + 1
    day = (dob.astype("datetime64[D]") - month0.astype("datetime64[D]")).astype(np.int64) + 1
    before_birthday = (month > when.month) | ((month == when.month) & (day > when.day))
    age = (when.year - year - before_birthday).astype("float64")
    age[np.isnat(dob)] = np.nan
    return pd.Series(age, index=s.index)
