"""Age-standardised rates and ratios: DSR (ESP2013, Dobson limits) and ISR.

* :func:`dsr` - directly standardised rate, as ``PHEindicatormethods::calculate_dsr``::

      DSR = sum_i(x_i w_i / n_i) / sum_i(w_i) * multiplier
      var = sum_i(x_i (w_i / n_i)**2) / sum_i(w_i)**2
      limit = DSR + sqrt(var / O) * (O_limit - O) * multiplier      (Dobson et al. 1991)

  with ``O = sum_i x_i`` and ``O_limit`` Byar's limits of ``O``. Value and limits are
  not reported (``statistic`` "dsr NA for total count < 10") when ``O < 10``.
  The weights are summed over the *whole* standard population: an age band with no
  population in an area contributes 0 (a DataQualityWarning gives the count), and a
  band with events but no population is an error.

* :func:`isr` - indirectly standardised ratio ``O / E * multiplier`` with
  ``E = sum_i n_i * (x_ref_i / n_ref_i)``; exact Poisson limits of ``O`` when
  ``O < 10``, Byar's otherwise, divided by ``E``.

Disclosure control (on by default) makes every published column a function of
rounded counts only. The total ``O`` used for the DSR's limits and the ISR is the
published total (rounded to 5, 1-7 suppressed). The age-band counts, which are never
published, are rounded before standardising: events by controlled rounding to
multiples of 5 that add up to the published total
(:func:`pophealth.areas.disclosure.controlled_round`), populations to the nearest 5
(never to 0 when a band has people), and the reference events (pooled or given)
likewise. Values, limits and ``expected`` are rounded to ``decimals``. A reader can therefore work back
at most to rounded counts, never to a count that is not published. A DSR is only
given when its published total is at least 15, which guarantees a true total of at
least 10 (the Fingertips rule) without the decision revealing more than the
published total does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pophealth.areas._table import (
    Checks,
    add_intervals,
    as_by,
    check_multiplier,
    finish,
    label_multiplier,
    parse_levels,
    statistic_counts,
)
from pophealth.areas.agebands import UNKNOWN, esp2013
from pophealth.areas.disclosure import (
    DEFAULT_BASE,
    DEFAULT_THRESHOLD,
    controlled_round,
    round_to_base,
)
from pophealth.areas.intervals import byar_limits, poisson_limits
from pophealth.contracts.exceptions import ConfigError, DataQualityWarning, SchemaError

__all__ = ["dsr", "isr", "MIN_DSR_COUNT"]

AREA_KEYS = ("area_type", "area")
#: DSRs with fewer total events than this are not reported (Fingertips rule).
MIN_DSR_COUNT = 10


def _standard(standard) -> pd.DataFrame:
    if isinstance(standard, str):
        if standard.lower() != "esp2013":
            raise ConfigError(f"standard must be 'esp2013' or a DataFrame; got {standard!r}")
        return esp2013()[["age_band", "weight"]]
    if isinstance(standard, pd.DataFrame) and {"age_band", "weight"} <= set(standard.columns):
        std = standard[["age_band", "weight"]].copy()
        w = pd.to_numeric(std["weight"], errors="coerce").to_numpy(dtype="float64")
        if np.any(~(w >= 0)) or std["age_band"].duplicated().any() or w.sum() <= 0:
            raise ConfigError("standard: weights must be >= 0 with a positive total and age "
                              "bands unique")
        return std
    raise ConfigError("standard must be 'esp2013' or a DataFrame with age_band and weight")


def _stratified(where, table, by, age_band, numerator, denominator, bands, *, fill_x=False):
    """Validate and return (group keys frame, group code, band code, x, n) for known bands."""
    c = Checks(where, table)
    if not c.require([*by, age_band, numerator, denominator]):
        c.finish()
    x = c.numeric(numerator, allow_missing=fill_x)
    n = c.numeric(denominator)
    c.add(numerator, "non_negative", x < 0)
    c.add(denominator, "non_negative", n < 0)
    labels = table[age_band].astype("string").to_numpy(dtype=object, na_value=UNKNOWN)
    band_code = pd.Index(list(bands)).get_indexer(labels)
    unknown = labels == UNKNOWN
    c.add(age_band, "age_band_in_standard", (band_code < 0) & ~unknown,
          "labels must match the standard population's age_band")
    c.finish()
    x = np.where(np.isnan(x), 0.0, x)
    if unknown.any():
        warnings.warn(
            f"{where}: {int(unknown.sum())} row(s) with unknown age band excluded "
            f"({int(n[unknown].sum())} population, {int(x[unknown].sum())} events)",
            DataQualityWarning, stacklevel=3)
    keep = ~unknown
    keys = table.loc[keep, by].reset_index(drop=True) if by else pd.DataFrame(index=range(
        int(keep.sum())))
    if by:
        group = keys.groupby(by, sort=True, observed=True, dropna=False).ngroup().to_numpy()
        groups = keys.assign(_g=group).drop_duplicates("_g").sort_values("_g")[by]
        groups = groups.reset_index(drop=True)
    else:
        group = np.zeros(int(keep.sum()), dtype=np.int64)
        groups = pd.DataFrame(index=range(1))
    return groups, group, band_code[keep], x[keep], n[keep]


def _grid(group, band, values, n_groups, n_bands) -> np.ndarray:
    flat = np.bincount(group * n_bands + band, weights=values, minlength=n_groups * n_bands)
    return flat.reshape(n_groups, n_bands)


def dsr(
    table: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = AREA_KEYS,
    age_band: str = "age_band",
    numerator: str = "numerator",
    denominator: str = "denominator",
    standard: str | pd.DataFrame = "esp2013",
    multiplier: float = 100_000,
    confidence: float | Sequence[float] = 0.95,
    disclosure_control: bool = True,
    threshold: int = DEFAULT_THRESHOLD,
    base: int = DEFAULT_BASE,
    margins: str | Sequence[Sequence[str]] | None = "auto",
    decimals: int | None = None,
) -> pd.DataFrame:
    """Directly standardised rate with Dobson confidence limits.

    Parameters
    ----------
    table : DataFrame
        Events and populations by group and ``age_band`` (ESP2013 labels ``"0-4"`` ...
        ``"90+"``), e.g. from :func:`pophealth.areas.aggregate_by_area`. Other strata
        (e.g. sex) not in ``by`` are summed within age band. Missing numerators count
        as 0; rows with age band ``"unknown"`` are excluded with a warning.
    by : str, sequence of str or None, default ("area_type", "area")
        Grouping columns; ``None`` standardises the whole table as one group.
    standard : "esp2013" or DataFrame
        Standard population (columns ``age_band``, ``weight``).
    multiplier, confidence, disclosure_control, threshold, base, margins, decimals
        As for :func:`pophealth.areas.rates.crude_rate`; with disclosure control the
        DSR is computed from age-band counts rounded to 5 (see the module notes).

    Returns
    -------
    DataFrame
        Grouping columns, ``numerator`` (total events), ``denominator`` (total
        population), ``value``, ``lower_ci``, ``upper_ci`` (plus further levels),
        ``confidence``, ``statistic`` (``"dsr per 100,000"`` or ``"dsr NA for total
        count < 10"``), ``method`` (``"Dobson"``) and ``suppressed``.

    Examples
    --------
    A constant rate of 1 % in every band gives a DSR of 1,000 per 100,000:

    >>> import pandas as pd
    >>> from pophealth.areas.agebands import ESP2013_BANDS
    >>> from pophealth.areas.standardised import dsr
    >>> t = pd.DataFrame({"area": "X", "age_band": ESP2013_BANDS,
    ...                   "numerator": 10, "denominator": 1000})
    >>> dsr(t, by="area", disclosure_control=False)[["area", "numerator", "value",
    ...     "lower_ci", "upper_ci", "statistic"]].round(1)
      area  numerator   value  lower_ci  upper_ci        statistic
    0    X        190  1000.0     855.4    1161.0  dsr per 100,000
    """
    by = as_by(by)
    levels = parse_levels(confidence)
    mult = check_multiplier(multiplier)
    std = _standard(standard)
    bands = std["age_band"].astype(str).tolist()
    w = std["weight"].to_numpy(dtype="float64")
    groups, g, b, x, n = _stratified("dsr", table, by, age_band, numerator, denominator,
                                     bands, fill_x=True)
    shape = (len(groups), len(bands))
    X = _grid(g, b, x, *shape)
    N = N_true = _grid(g, b, n, *shape)
    empty = N <= 0
    orphan = empty & (X > 0)
    if orphan.any():
        raise SchemaError(
            f"dsr: column '{numerator}' breaks rule 'events_need_population' in "
            f"{int(orphan.sum())} group x age band cell(s) (events with zero population)")
    present = np.bincount(g, minlength=shape[0]) > 0
    n_empty = int((empty & present[:, None]).sum())
    if n_empty:
        warnings.warn(f"dsr: {n_empty} group x age band cell(s) have no population and "
                      "contribute 0 to the standardised rate", DataQualityWarning, stacklevel=2)
    total_w = w.sum()
    obs_true = X.sum(axis=1)
    control = dict(control=disclosure_control, threshold=threshold, base=base)
    obs = statistic_counts(obs_true, **control)
    if disclosure_control:
        X = controlled_round(X, obs, base)
        N = round_to_base(N, base, keep_positive=True)
        min_count = int(np.ceil((MIN_DSR_COUNT + base / 2) / base) * base)
        na_label = f"dsr NA for published total count < {min_count}"
    else:
        min_count = MIN_DSR_COUNT
        na_label = f"dsr NA for total count < {MIN_DSR_COUNT}"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(N <= 0, 0.0, w / N)
    value = (X * ratio).sum(axis=1) / total_w * mult
    var = (X * ratio**2).sum(axis=1) / total_w**2
    ok = obs >= min_count
    out = groups.copy()
    out["numerator"] = obs_true
    out["denominator"] = N_true.sum(axis=1)
    out["value"] = np.where(ok, value, np.nan)

    def limits(level):
        lo, hi = byar_limits(obs, level)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.sqrt(var / obs) * mult
        return (np.where(ok, value + scale * (lo - obs), np.nan),
                np.where(ok, value + scale * (hi - obs), np.nan))

    add_intervals(out, levels, limits)
    out["statistic"] = np.where(ok, f"dsr per {label_multiplier(mult)}", na_label)
    out["method"] = "Dobson"
    out["suppressed"] = pd.array(
        np.where(ok | np.isnan(obs), None, na_label.replace("dsr NA for ", "")), dtype="string")
    basis = (f"age-band counts rounded to {base} and the published total "
             f"(1-{threshold} suppressed, others rounded to {base})")
    return finish(out, where="dsr", by=by, counts=("numerator", "denominator"),
                  disclosure_control=disclosure_control, threshold=threshold, base=base,
                  margins=margins, decimals=decimals, multiplier=mult, basis=basis)


def isr(
    table: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = AREA_KEYS,
    age_band: str = "age_band",
    numerator: str = "numerator",
    denominator: str = "denominator",
    reference: pd.DataFrame | None = None,
    multiplier: float = 1,
    confidence: float | Sequence[float] = 0.95,
    disclosure_control: bool = True,
    threshold: int = DEFAULT_THRESHOLD,
    base: int = DEFAULT_BASE,
    margins: str | Sequence[Sequence[str]] | None = "auto",
    decimals: int | None = None,
) -> pd.DataFrame:
    """Indirectly standardised ratio (observed / expected) by group.

    Parameters
    ----------
    table : DataFrame
        Events and populations by group and age band (any band labels).
    reference : DataFrame, optional
        Reference events and populations by band (columns ``age_band``, and
        ``numerator``/``denominator`` named as in ``table``). Default: the whole
        ``table`` pooled, i.e. each group is compared with all groups together.
    multiplier : float, default 1
        1 gives a ratio, 100 an SMR-style index.
    confidence, disclosure_control, threshold, base, margins, decimals
        As for :func:`pophealth.areas.rates.crude_rate`; with disclosure control the
        ratio is the published total over an expected count computed from band
        counts rounded to 5 (see the module notes).

    Returns
    -------
    DataFrame
        Area table with an extra ``expected`` column; ``method`` is
        ``"exact Poisson"`` (O < 10) or ``"Byar"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.areas.standardised import isr
    >>> t = pd.DataFrame({"area": ["A", "A", "B", "B"], "age_band": ["0-4", "5-9"] * 2,
    ...                   "numerator": [30, 10, 10, 10], "denominator": [1000, 1000] * 2})
    >>> isr(t, by="area", disclosure_control=False)[
    ...     ["area", "numerator", "expected", "value", "lower_ci", "upper_ci"]].round(3)
      area  numerator  expected  value  lower_ci  upper_ci
    0    A         40      30.0  1.333     0.952     1.816
    1    B         20      30.0  0.667     0.407     1.030
    """
    by = as_by(by)
    levels = parse_levels(confidence)
    mult = check_multiplier(multiplier)
    labels = pd.Index(pd.unique(table[age_band].astype("string").dropna())) if (
        isinstance(table, pd.DataFrame) and age_band in table.columns) else pd.Index([])
    ref_source = table if reference is None else reference
    ref_labels = ref_source[age_band].astype(str) if age_band in ref_source.columns else None
    bands = list(dict.fromkeys(list(labels) + ([] if ref_labels is None else
                                               list(pd.unique(ref_labels)))))
    groups, g, b, x, n = _stratified("isr", table, by, age_band, numerator, denominator, bands)
    k, nb = len(groups), len(bands)
    X, N = _grid(g, b, x, k, nb), _grid(g, b, n, k, nb)
    if reference is None:
        rx, rn = X.sum(axis=0), N.sum(axis=0)
    else:
        _, _, rb, rxv, rnv = _stratified("isr reference", reference, [], age_band, numerator,
                                         denominator, bands)
        rx = np.bincount(rb, weights=rxv, minlength=nb)
        rn = np.bincount(rb, weights=rnv, minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw_rate = np.where(rn > 0, rx / rn, np.nan)
    needs = (n > 0) & np.isnan(raw_rate[b])
    if needs.any():
        raise SchemaError(f"isr: column '{age_band}' breaks rule 'band_in_reference' in "
                          f"{int(needs.sum())} row(s) (population in a band with no reference "
                          "population)")
    obs_true = X.sum(axis=1)
    control = dict(control=disclosure_control, threshold=threshold, base=base)
    obs = statistic_counts(obs_true, **control)
    if disclosure_control:
        N = round_to_base(N, base, keep_positive=True)
        rx = controlled_round(rx[None, :], [round_to_base(rx.sum(), base)], base)[0]
        # pooled: the reference population is the sum of the rounded group populations
        rn = N.sum(axis=0) if reference is None else round_to_base(rn, base,
                                                                    keep_positive=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_rate = np.where(rn > 0, rx / rn, 0.0)
    exp_ = (N * ref_rate).sum(axis=1)
    out = groups.copy()
    out["numerator"] = obs_true
    out["denominator"] = np.bincount(g, weights=n, minlength=k)
    out["expected"] = exp_
    with np.errstate(divide="ignore", invalid="ignore"):
        out["value"] = np.where(exp_ > 0, obs / exp_ * mult, np.nan)

        def limits(level):
            lo, hi, _ = poisson_limits(obs, level)
            return (np.where(exp_ > 0, lo / exp_ * mult, np.nan),
                    np.where(exp_ > 0, hi / exp_ * mult, np.nan))

        add_intervals(out, levels, limits)
    stat = "indirectly standardised ratio"
    out["statistic"] = stat if mult == 1 else f"{stat} x {label_multiplier(mult)}"
    out["method"] = poisson_limits(obs, levels[0])[2]
    basis = (f"the published total (1-{threshold} suppressed, others rounded to {base}) "
             f"and age-band counts rounded to {base}")
    return finish(out, where="isr", by=by, counts=("numerator", "denominator"),
                  disclosure_control=disclosure_control, threshold=threshold, base=base,
                  margins=margins, decimals=decimals, multiplier=mult, basis=basis)
