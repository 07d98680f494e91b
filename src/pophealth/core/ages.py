"""Ages in completed years on an index date, vectorised over patients."""

from __future__ import annotations

import pandas as pd

__all__ = ["age_at"]


def age_at(date_of_birth, index_date) -> pd.Series:
    """Age in completed years on ``index_date`` (vectorised; missing birth dates give NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.core.ages import age_at
    >>> dob = pd.Series(pd.to_datetime(["2000-03-01", "2000-02-29", None]))
    >>> age_at(dob, "2024-02-29").tolist()
    [23.0, 24.0, nan]
    """
    dob = pd.to_datetime(pd.Series(date_of_birth))
    when = pd.Timestamp(index_date)
    years = when.year - dob.dt.year
    before_birthday = (dob.dt.month > when.month) | (
        (dob.dt.month == when.month) & (dob.dt.day > when.day)
    )
    return (years - before_birthday.astype("float64")).astype("float64")
