"""Area statistics for LSOAs, PCNs, practices and IMD deciles.

:func:`aggregate_by_area` turns patient-level data (the register, which is the
denominator, joined to outcome flags) into counts by area and strata. The statistics
then work on those counts; they live in small modules and are re-exported here:

============================== ==============================================
:func:`crude_rate`             events per population, exact Poisson / Byar
:func:`proportion`             Wilson score
:func:`dsr`                    ESP2013 direct standardisation, Dobson limits
:func:`isr`                    indirect standardisation (observed/expected)
:func:`sii`                    slope and relative index of inequality
:func:`suppress`               disclosure control (1-7 suppressed, round to 5)
:func:`funnel_limits`          funnel-plot control limits
:func:`ci_long`                one row per confidence level
:func:`age_band`, :func:`esp2013`  ESP2013 age bands and weights
============================== ==============================================

Counts from :func:`aggregate_by_area` are *not* disclosure-controlled (they feed the
statistics); the statistics control their published counts by default.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas._table import Checks
from pophealth.areas.agebands import ESP2013_BANDS, UNKNOWN, age_band
from pophealth.contracts.exceptions import ConfigError, DataQualityWarning
from pophealth.core.ages import age_at

__all__ = ["aggregate_by_area"]


def aggregate_by_area(
    patients: pd.DataFrame,
    *,
    by: str = "lsoa",
    numerator: str | Sequence[str] | None = None,
    strata: Sequence[str] = ("age_band", "sex"),
    index_date=None,
) -> pd.DataFrame:
    """Count patients (denominator) and events (numerator) per area x strata.

    Parameters
    ----------
    patients : DataFrame
        One row per registered patient (the register is the denominator), with the
        area column, the strata and the numerator column(s).
    by : str, default "lsoa"
        Area column: ``"lsoa"``, ``"pcn"``, ``"practice"``, ``"imd_decile"``, ...
        Missing or blank areas go to an explicit ``"unknown"`` area (never dropped);
        their count is given in a DataQualityWarning and ``attrs["unknown_area"]``.
    numerator : str or sequence of str, optional
        Boolean columns (patients with the outcome are counted) or numeric columns
        (summed, e.g. number of admissions). Missing values count as 0 (with a
        warning). Several columns give a long table with a ``measure`` column.
        ``None`` gives populations only.
    strata : sequence of str, default ("age_band", "sex")
        Stratifying columns. ``"age_band"`` (ESP2013 bands) is derived from ``age``
        or, with ``index_date``, from ``date_of_birth`` when not already a column.
        Missing stratum values become ``"unknown"``.
    index_date : date-like, optional
        Needed only to derive age bands from ``date_of_birth``.

    Returns
    -------
    DataFrame
        ``area_type`` (= ``by``), ``area``, the strata, [``measure``], ``numerator``,
        ``denominator``; keys are strings in natural order (``"unknown"`` last);
        one row per observed combination. Counts are unrounded.

    Raises
    ------
    SchemaError
        Missing columns, duplicated patient_id, negative or non-numeric numerators.
    ConfigError
        ``age_band`` requested but neither ``age`` nor ``date_of_birth`` +
        ``index_date`` available.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas import aggregate_by_area
    >>> reg = pd.DataFrame({"patient_id": [1, 2, 3, 4], "sex": ["F", "M", "F", "F"],
    ...                     "age": [3, 47, 71, 72], "lsoa": ["E01", "E01", None, "E02"],
    ...                     "admitted": [False, True, True, False]})
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     aggregate_by_area(reg, numerator="admitted", strata=("age_band",))
      area_type     area age_band  numerator  denominator
    0      lsoa      E01      0-4          0            1
    1      lsoa      E01    45-49          1            1
    2      lsoa      E02    70-74          0            1
    3      lsoa  unknown    70-74          1            1
    """
    strata = [strata] if isinstance(strata, str) else list(strata)
    measures = [] if numerator is None else (
        [numerator] if isinstance(numerator, str) else list(numerator))
    derive_band = "age_band" in strata and "age_band" not in getattr(patients, "columns", [])
    c = Checks("aggregate_by_area", patients)
    needed = [by, *measures, *[s for s in strata if not (s == "age_band" and derive_band)]]
    if not c.require(needed):
        c.finish()
    if "patient_id" in patients.columns:
        c.add("patient_id", "unique", patients["patient_id"].duplicated(keep=False).to_numpy())
    sums: dict[str, np.ndarray] = {}
    for m in measures:
        s = patients[m]
        if pd.api.types.is_bool_dtype(s.dtype) or (
                s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "boolean"):
            arr = s.astype("boolean").astype("Float64").to_numpy(dtype="float64",
                                                                   na_value=np.nan)
        else:
            arr = c.numeric(m, allow_missing=True)
        c.add(m, "non_negative", arr < 0)
        sums[m] = arr
    c.finish()
    for m, arr in sums.items():
        missing = np.isnan(arr)
        if missing.any():
            warnings.warn(f"aggregate_by_area: column '{m}' has {int(missing.sum())} missing "
                          "value(s), counted as 0", DataQualityWarning, stacklevel=2)
            sums[m] = np.where(missing, 0.0, arr)

    key_cols = {"area": _area_values(patients[by])}
    for s in strata:
        key_cols[s] = _band_values(patients, index_date) if (s == "age_band" and derive_band) \
            else patients[s]
    codes, labels = [], []
    for name, col in key_cols.items():
        code, lab = _factorize(col, ordered_labels=ESP2013_BANDS if name == "age_band" else None)
        codes.append(code)
        labels.append(lab)
    n_unknown = int((codes[0] == len(labels[0]) - 1).sum()) if labels[0][-1] == UNKNOWN else 0
    if n_unknown:
        warnings.warn(f"aggregate_by_area: {n_unknown} patient(s) with unknown {by} kept in "
                      f"area '{UNKNOWN}'", DataQualityWarning, stacklevel=2)
    dims = tuple(len(lab) for lab in labels)
    flat = np.ravel_multi_index(tuple(codes), dims) if codes[0].size else np.zeros(0, np.int64)
    cells, inverse = np.unique(flat, return_inverse=True)
    keys = np.unravel_index(cells, dims)
    base = pd.DataFrame({"area_type": pd.array([by] * len(cells), dtype="string")})
    for (name, _), key, lab in zip(key_cols.items(), keys, labels, strict=True):
        base[name] = pd.array(np.asarray(lab, dtype=object)[key], dtype="string")
    denominator = np.bincount(inverse, minlength=len(cells))
    frames = []
    for m in measures or [None]:
        part = base.copy()
        if m is not None:
            if len(measures) > 1:
                part["measure"] = m
            total = np.bincount(inverse, weights=sums[m], minlength=len(cells))
            whole = np.all(total == np.round(total))
            part["numerator"] = total.astype("int64") if whole else total
        part["denominator"] = denominator.astype("int64")
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["unknown_area"] = n_unknown
    return out


# ----------------------------------------------------------------------------- helpers


def _area_values(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col
    s = col.astype("string").str.strip()
    return s.mask(s == "")


def _band_values(patients: pd.DataFrame, index_date) -> pd.Series:
    if "age" in patients.columns:
        return age_band(patients["age"])
    if "date_of_birth" in patients.columns:
        if index_date is None:
            raise ConfigError("aggregate_by_area: index_date is needed to derive age_band "
                              "from date_of_birth (no 'age' column)")
        return age_band(age_at(patients["date_of_birth"], index_date).set_axis(patients.index))
    raise ConfigError("aggregate_by_area: strata include 'age_band' but there is no "
                      "'age_band', 'age' or 'date_of_birth' column")


def _factorize(col: pd.Series, ordered_labels=None) -> tuple[np.ndarray, list[str]]:
    """Integer codes in natural order of the values, with missing -> trailing 'unknown'."""
    s = col.astype(object).where(col.notna(), None) if isinstance(
        col.dtype, pd.CategoricalDtype) else col
    if ordered_labels is not None:
        labels = [*ordered_labels, UNKNOWN]
        code = pd.Index(labels).get_indexer(s.astype("string").fillna(UNKNOWN).to_numpy())
        extra = code < 0
        if extra.any():  # labels outside ESP2013: keep them, sorted, before 'unknown'
            return _factorize(s.astype("string"), None)
        return code.astype(np.int64), labels
    code, uniques = pd.factorize(s, sort=True)
    lab = [_label(u) for u in uniques]
    if (code < 0).any() or UNKNOWN in lab:
        if UNKNOWN in lab:
            idx = lab.index(UNKNOWN)
            code = np.where(code == idx, -1, np.where(code > idx, code - 1, code))
            lab.pop(idx)
        code = np.where(code < 0, len(lab), code)
        lab.append(UNKNOWN)
    return np.asarray(code, dtype=np.int64), lab


def _label(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
