"""Five-year age bands of the 2013 European Standard Population (ESP2013).

The 19 bands are ``0-4``, ``5-9``, ..., ``85-89`` and ``90+`` (Eurostat 2013 with
``0`` and ``1-4`` merged and ``90-94`` and ``95+`` merged), the bands OHID/Fingertips
and ``PHEindicatormethods::esp2013`` use. The weights (sum 100,000) are shipped as data
in ``data/standard_populations/esp2013.csv`` with a provenance row in
``data/provenance.csv``.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import SchemaError

__all__ = ["ESP2013_BANDS", "UNKNOWN", "age_band", "esp2013"]

#: Labels of the 19 ESP2013 bands, youngest first.
ESP2013_BANDS: tuple[str, ...] = tuple(f"{a}-{a + 4}" for a in range(0, 90, 5)) + ("90+",)
#: Label used for a missing area or stratum value; such patients are kept, never dropped.
UNKNOWN = "unknown"


def esp2013() -> pd.DataFrame:
    """Return the 2013 European Standard Population as a table.

    Returns
    -------
    DataFrame
        Columns ``age_band`` (ordered categorical of :data:`ESP2013_BANDS`),
        ``lower_age``, ``upper_age`` (``<NA>`` for ``90+``) and ``weight``
        (summing to 100,000).

    Examples
    --------
    >>> from pophealth.areas.agebands import esp2013
    >>> esp = esp2013()
    >>> len(esp), int(esp["weight"].sum())
    (19, 100000)
    >>> esp.tail(1)
       age_band  lower_age  upper_age  weight
    18      90+         90       <NA>    1000
    """
    path = files("pophealth").joinpath("data", "standard_populations", "esp2013.csv")
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype={"age_band": str})
    table["upper_age"] = table["upper_age"].astype("Int64")
    table["lower_age"] = table["lower_age"].astype("int64")
    table["weight"] = table["weight"].astype("int64")
    table["age_band"] = pd.Categorical(table["age_band"], categories=ESP2013_BANDS, ordered=True)
    return table


def age_band(age) -> pd.Series:
    """Map ages in whole years to ESP2013 band labels.

    Parameters
    ----------
    age : array-like or Series of numbers
        Ages in completed years; missing values map to ``"unknown"``.

    Returns
    -------
    Series
        Ordered categorical with the 19 ESP2013 bands plus ``"unknown"`` (last).

    Raises
    ------
    SchemaError
        If any age is negative (count and positions are reported, never values).

    Examples
    --------
    >>> from pophealth.areas.agebands import age_band
    >>> age_band([0, 4, 5, 89, 90, 104, None]).tolist()
    ['0-4', '0-4', '5-9', '85-89', '90+', '90+', 'unknown']
    """
    index = age.index if isinstance(age, pd.Series) else None
    values = pd.to_numeric(pd.Series(age, index=index), errors="coerce").astype("float64")
    arr = values.to_numpy(na_value=np.nan)
    negative = arr < 0
    if negative.any():
        pos = np.flatnonzero(negative)[:10].tolist()
        raise SchemaError(
            f"age: column 'age' breaks rule 'non_negative' in {int(negative.sum())} row(s); "
            f"first positions {pos}",
            [{"column": "age", "rule": "non_negative", "count": int(negative.sum()),
              "positions": pos}],
        )
    missing = np.isnan(arr)
    codes = np.minimum(np.floor(np.where(missing, 0, arr) / 5), 18).astype(np.int64)
    codes[missing] = 19
    categories = list(ESP2013_BANDS) + [UNKNOWN]
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=categories, ordered=True),
        index=values.index,
        name="age_band",
    )
