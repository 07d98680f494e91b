"""Comorbidity and frailty indices computed from condition flags.

Every definition is data under ``pophealth/data`` (code list, weights per scheme,
hierarchy, condition metadata; provenance in ``data/provenance.csv``). Each index
function accepts either a flags frame (output of :func:`pophealth.flag_conditions`
with the index's code list) or an events frame together with ``register=`` and
``index_date=``, and returns a named Series (or a DataFrame of score and band)
indexed like the register.

Scores are a weighted sum over conditions computed in exact integer arithmetic
(weights are scaled to integers, e.g. HFRS x10), with hierarchy masks applied to the
score: a subordinate condition (e.g. diabetes without complications) adds nothing
when its dominant condition (diabetes with complications) is present.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    user_stacklevel,
)
from pophealth.core.ages import age_at
from pophealth.core.arrays import is_arrow_source
from pophealth.core.conditions import flag_conditions, require_event_columns

__all__ = [
    "IndexDefinition",
    "load_index",
    "apply_hierarchy",
    "weighted_score",
    "charlson",
    "elixhauser",
    "hfrs",
    "hfrs_band",
    "efi",
    "cambridge_score",
    "condition_count",
    "multimorbidity",
]

_DEFAULT_CODELISTS = {
    "charlson": {"quan2005": "charlson_quan2005_icd10", "shmi": "charlson_shmi_icd10"},
    "elixhauser": {"quan2005": "elixhauser_quan2005_icd10"},
    "hfrs": {"gilbert2018": "hfrs_gilbert2018_icd10"},
    "efi": {},
    "cms": {},
}
HFRS_BANDS = ("low", "intermediate", "high")
EFI_BANDS = ("fit", "mild", "moderate", "severe")
EFI_N_DEFICITS = 36


def _read(sub: str, name: str) -> pd.DataFrame | None:
    path = resources.files("pophealth") / "data" / sub / f"{name}.csv"
    if not path.is_file():
        return None
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False)


@dataclass(frozen=True)
class IndexDefinition:
    """An index as data: weights per scheme, hierarchy and condition metadata.

    Attributes
    ----------
    name : str
        ``charlson``, ``elixhauser``, ``hfrs``, ``efi`` or ``cms``.
    weights : DataFrame
        Columns ``scheme, condition, weight``.
    hierarchy : tuple of (dominant, subordinate)
    conditions : DataFrame
        Columns ``condition, label, body_system`` (may be empty for HFRS).
    floor_at_zero : dict
        Scheme -> whether negative totals are set to 0 (SHMI Charlson).
    codelists : dict
        Code-list variant -> shipped code-list name.
    """

    name: str
    weights: pd.DataFrame = field(repr=False)
    hierarchy: tuple[tuple[str, str], ...]
    conditions: pd.DataFrame = field(repr=False)
    floor_at_zero: dict
    codelists: dict

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(pd.unique(self.weights["scheme"]))

    @property
    def condition_names(self) -> tuple[str, ...]:
        if len(self.conditions):
            return tuple(self.conditions["condition"])
        return tuple(pd.unique(self.weights["condition"]))

    def weight_vector(self, scheme: str) -> pd.Series:
        """Weights of ``scheme`` as a Series indexed by condition."""
        if scheme not in self.schemes:
            raise ConfigError(
                f"{self.name}: unknown weights '{scheme}'; available: {', '.join(self.schemes)}"
            )
        w = self.weights[self.weights["scheme"] == scheme]
        return pd.Series(w["weight"].to_numpy(dtype=float), index=w["condition"].to_numpy())

    def body_systems(self) -> pd.Series:
        return pd.Series(
            self.conditions["body_system"].to_numpy(), index=self.conditions["condition"]
        )


def load_index(name: str) -> IndexDefinition:
    """Load a shipped index definition.

    The weight and condition tables are parsed once per process; each call returns its
    own copies, so editing them never changes another call's (or a score's) weights.

    Examples
    --------
    >>> import pophealth as ph
    >>> d = ph.load_index("charlson")
    >>> d.schemes
    ('charlson1987', 'quan2011', 'shmi')
    >>> d.weight_vector("quan2011")["aids"]
    np.float64(4.0)
    """
    d = _load_index(name)
    return IndexDefinition(
        name=d.name, weights=None if d.weights is None else d.weights.copy(),
        hierarchy=d.hierarchy, conditions=d.conditions.copy(),
        floor_at_zero=dict(d.floor_at_zero), codelists=dict(d.codelists))


@cache
def _load_index(name: str) -> IndexDefinition:
    """:func:`load_index` parsed once per process, for this module's read-only use."""
    if name not in _DEFAULT_CODELISTS:
        raise ConfigError(f"unknown index '{name}'; available: {', '.join(_DEFAULT_CODELISTS)}")
    weights = _read("weights", name)
    hier = _read("hierarchies", name)
    conds = _read("conditions", name)
    rules = _read("weights", "score_rules")
    rules = rules[rules["index"] == name]
    floor = {
        r.scheme: str(r.floor_at_zero).strip().lower() == "true" for r in rules.itertuples()
    }
    return IndexDefinition(
        name=name,
        weights=weights,
        hierarchy=tuple(zip(hier["dominant"], hier["subordinate"], strict=True))
        if hier is not None
        else (),
        conditions=conds
        if conds is not None
        else pd.DataFrame(columns=["condition", "label", "body_system"]),
        floor_at_zero=floor,
        codelists=dict(_DEFAULT_CODELISTS[name]),
    )


# ----------------------------------------------------------------------------- helpers


def _is_events(data) -> bool:
    if is_arrow_source(data):  # Arrow tables and batch sources are events (flags are pandas)
        return True
    return isinstance(data, pd.DataFrame) and {"patient_id", "code"} <= set(data.columns)


def _flags_for(defn: IndexDefinition, data, variant, register, index_date, lookback_days,
               codelist=None) -> pd.DataFrame:
    """Flags frame for ``defn`` from flags or from events."""
    if _is_events(data):
        if register is None or index_date is None:
            raise ConfigError(
                f"{defn.name}: events were passed, so register= and index_date= are required"
            )
        if codelist is None:
            if variant not in defn.codelists:
                raise ConfigError(
                    f"{defn.name}: no shipped code list for variant '{variant}'; pass "
                    f"codelist= (available variants: {', '.join(defn.codelists) or 'none'})"
                )
            codelist = defn.codelists[variant]
        return flag_conditions(data, codelist, register=register, index_date=index_date,
                               lookback_days=lookback_days)
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"{defn.name}: expected a flags or events DataFrame")
    cols = {str(c) for c in data.columns}
    if len(cols) and not cols & set(defn.condition_names) and not any(
            pd.api.types.is_bool_dtype(dt) for dt in data.dtypes):
        # neither flags (no condition column, nothing boolean) nor complete events: an
        # events-shaped frame such as comorbidipy's (id, code) or a wide SUS+ extract
        require_event_columns(data, f"{defn.name}: events")
    return data


def _flag_matrix(flags: pd.DataFrame, names, index: str, *,
                 missing: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """The flags as a boolean array plus, for each of ``names``, its column position.

    Plain numpy-bool frames (what :func:`flag_conditions` returns) are used without a
    copy; other boolean dtypes are checked for missing values and copied. A position
    of -1 marks a name absent from ``flags`` (allowed only with ``missing="absent"``).
    """
    cols = list(flags.columns)
    absent = [c for c in names if c not in cols]
    if absent and missing == "error":
        raise CodelistError(
            f"{index}: flags lack {len(absent)} condition column(s): {', '.join(absent)}"
        )
    present = [c for c in dict.fromkeys(names) if c in cols]
    for c in present:
        dtype = flags[c].dtype
        if not pd.api.types.is_bool_dtype(dtype):
            raise CodelistError(f"{index}: flag column '{c}' is {dtype}, expected bool")
    dtypes = flags.dtypes
    if len(set(cols)) == len(cols) and all(dt == np.dtype(bool) for dt in dtypes):
        array, where = flags.to_numpy(), {c: i for i, c in enumerate(cols)}  # a view
    else:
        array = np.zeros((len(flags), len(present)), dtype=bool, order="F")
        for i, c in enumerate(present):
            col = flags[c]
            if col.isna().any():
                raise CodelistError(f"{index}: flag column '{c}' has missing values")
            array[:, i] = col.to_numpy(dtype=bool)
        where = {c: i for i, c in enumerate(present)}
    return array, np.array([where.get(c, -1) for c in names], dtype=np.int64)


def _coverage(flags: pd.DataFrame, names, index: str, missing: str) -> tuple[list[str], str]:
    """Conditions of ``names`` absent from ``flags`` and how to treat them.

    Flags made by :func:`flag_conditions` carry their code list's name
    (``attrs["pophealth_report"]``): a condition that list has no codes for is absent
    from the flags, so it is *not covered* and is scored absent with a warning (never
    silently). A hand-made frame without a column raises unless ``missing="absent"``.
    Returns the absent names and the phrase that says why they are absent.
    """
    absent = [c for c in names if c not in flags.columns]
    if absent and len(absent) == len(names):
        raise CodelistError(f"{index}: flags have none of the {len(names)} condition "
                            f"column(s) of {index}; pass flags made with its code list")
    report = flags.attrs.get("pophealth_report")
    if absent and isinstance(report, dict) and report.get("codelist"):
        return absent, f"not covered by code list {report['codelist']}"
    if absent and missing == "error":
        raise CodelistError(
            f"{index}: flags lack {len(absent)} condition column(s): {', '.join(absent)}"
        )
    return absent, "not supplied"


def _integer_weights(w: np.ndarray) -> tuple[np.ndarray, int]:
    for d in range(7):
        scaled = w * 10**d
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-9):
            return np.round(scaled).astype(np.int64), 10**d
    raise CodelistError("weights need more than 6 decimal places")


def weighted_score(
    flags: np.ndarray,
    weights: np.ndarray,
    hierarchy: tuple[tuple[int, int], ...] = (),
    *,
    floor_at_zero: bool = False,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """Exact weighted sum of boolean columns with hierarchy masks (vectorised core).

    Parameters
    ----------
    flags : (n, m) bool array
    weights : (k,) array
        Weight of condition ``j``; condition ``j`` is column ``columns[j]`` of ``flags``
        (``columns`` defaults to ``0..k-1``; -1 means absent, i.e. all False).
    hierarchy : pairs of condition positions (dominant, subordinate)
    floor_at_zero : bool
        Set negative totals to 0.
    columns : (k,) int array, optional

    Returns
    -------
    numpy.ndarray
        int64 when all weights are integers, otherwise float64 (exact to the
        weights' decimal places).

    Examples
    --------
    >>> import numpy as np
    >>> from pophealth.core.indices import weighted_score
    >>> f = np.array([[True, True], [False, True]])
    >>> weighted_score(f, np.array([2, 1]), ((0, 1),)).tolist()
    [2, 1]
    """
    flags = np.asarray(flags, dtype=bool)
    n = flags.shape[0]
    wi, scale = _integer_weights(np.asarray(weights, dtype=float))
    k = len(wi)
    columns = np.arange(k) if columns is None else np.asarray(columns, dtype=np.int64)
    bound = int(np.abs(wi).sum())
    acc_t = np.int16 if bound < 2**15 else (np.int32 if bound < 2**31 else np.int64)
    acc = np.zeros(n, dtype=acc_t)
    masked = {sub: dom for dom, sub in hierarchy}
    for j in range(k):
        if wi[j] == 0 or columns[j] < 0:
            continue
        col = flags[:, columns[j]]
        if j in masked and columns[masked[j]] >= 0:
            col = col & ~flags[:, columns[masked[j]]]
        acc += col.view(np.int8) * acc_t(wi[j])
    if floor_at_zero:
        np.maximum(acc, 0, out=acc)
    if scale == 1:
        return acc.astype(np.int64)
    return np.round(acc / scale, 6)


def apply_hierarchy(flags: pd.DataFrame, index: str = "charlson") -> pd.DataFrame:
    """Return flags with subordinate conditions cleared where the dominant one is present.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> f = pd.DataFrame({"diab": [True, True], "diabwc": [True, False]})
    >>> ph.apply_hierarchy(f, "charlson")["diab"].tolist()
    [False, True]
    """
    defn = _load_index(index)
    out = flags.copy()
    for dom, sub in defn.hierarchy:
        if dom in out.columns and sub in out.columns:
            out[sub] = out[sub].to_numpy(dtype=bool) & ~out[dom].to_numpy(dtype=bool)
    return out


def _score(defn: IndexDefinition, flags: pd.DataFrame, scheme: str, hierarchy: bool,
           name: str, *, missing: str = "error") -> pd.Series:
    w = defn.weight_vector(scheme)
    names = list(w.index)
    mat, columns = _flag_matrix(flags, names, defn.name, missing=missing)
    pos = {c: i for i, c in enumerate(names)}
    hier = tuple((pos[d], pos[s]) for d, s in defn.hierarchy if d in pos and s in pos)
    score = weighted_score(mat, w.to_numpy(), hier if hierarchy else (),
                           floor_at_zero=defn.floor_at_zero.get(scheme, False),
                           columns=columns)
    return pd.Series(score, index=flags.index, name=name)


def _ages(flags: pd.DataFrame, age, register, index_date) -> pd.Series | None:
    """Ages aligned to ``flags.index`` from ``age`` or the register."""
    if age is None and register is not None:
        reg = register.set_index("patient_id") if "patient_id" in register.columns else register
        if "age" in reg.columns:
            age = reg["age"]
        elif "date_of_birth" in reg.columns and index_date is not None:
            age = age_at(reg["date_of_birth"], index_date)  # local dates (contracts.schema)
    if age is None:
        return None
    age = pd.Series(age)
    if not age.index.equals(flags.index):
        if len(age) == len(flags) and isinstance(age.index, pd.RangeIndex):
            age = pd.Series(age.to_numpy(), index=flags.index)
        else:
            age = age.reindex(flags.index)
    if age.isna().any():
        raise ConfigError(f"age: missing for {int(age.isna().sum())} patient(s)")
    return age.astype(float)


# ----------------------------------------------------------------------------- indices


def charlson(
    data: pd.DataFrame,
    *,
    weights: str = "quan2011",
    variant: str = "quan2005",
    register: pd.DataFrame | None = None,
    index_date=None,
    lookback_days: int | None = None,
    age_points: bool = False,
    age: pd.Series | None = None,
    hierarchy: bool = True,
) -> pd.Series:
    """Charlson Comorbidity Index.

    Parameters
    ----------
    data : DataFrame
        Flags from :func:`flag_conditions` with a Charlson code list (17 columns
        ``mi chf pvd cevd dementia cpd rheumd pud mld diab diabwc hp rend canc msld
        metacanc aids``), or events (then ``register`` and ``index_date`` are needed).
    weights : {"quan2011", "charlson1987", "shmi"}
        Quan 2011 (AIDS/HIV = 4), original Charlson 1987, or NHS Digital SHMI v1.35
        (diabetes with complications = -1; totals floored at 0).
    variant : {"quan2005", "shmi"}
        ICD-10 mapping used when ``data`` are events.
    age_points : bool
        Add +1 per decade from 50 (50-59 = 1 ... >=80 = 4); needs ``age`` or a register
        with ``age``/``date_of_birth``.
    hierarchy : bool
        Score mild liver, uncomplicated diabetes and any malignancy as 0 when moderate/
        severe liver, diabetes with complications or metastatic tumour is present.

    Returns
    -------
    Series
        Named ``charlson_<weights>`` (``..._age`` with age points), int64, indexed like
        the register.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "age": [55, 85]})
    >>> ev = pd.DataFrame({"patient_id": [1, 1, 2], "code": ["E11.9", "E11.2", "B20"],
    ...                    "code_system": "icd10"})
    >>> ph.charlson(ev, register=reg, index_date="2025-04-01").tolist()
    [1, 4]
    >>> ph.charlson(ev, register=reg, index_date="2025-04-01", age_points=True).tolist()
    [2, 8]
    """
    defn = _load_index("charlson")
    flags = _flags_for(defn, data, variant, register, index_date, lookback_days)
    s = _score(defn, flags, weights, hierarchy, f"charlson_{weights}")
    if age_points:
        a = _ages(flags, age, register, index_date)
        if a is None:
            raise ConfigError("charlson: age_points=True needs age= or a register with age")
        pts = np.clip((np.floor(a.to_numpy()) - 40) // 10, 0, 4).astype(np.int64)
        s = pd.Series(s.to_numpy() + pts, index=s.index, name=f"{s.name}_age")
    return s


def elixhauser(
    data: pd.DataFrame,
    *,
    weights: str = "van_walraven",
    register: pd.DataFrame | None = None,
    index_date=None,
    lookback_days: int | None = None,
    hierarchy: bool = True,
) -> pd.Series:
    """Elixhauser comorbidity score (Quan 2005 ICD-10 mapping, 31 conditions).

    ``weights`` is ``"van_walraven"`` (2009) or ``"swiss"`` (Sharma 2021). The
    hierarchy scores uncomplicated hypertension/diabetes and solid tumour as 0 when the
    complicated form / metastatic cancer is present.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> reg = pd.DataFrame({"patient_id": [1]})
    >>> ev = pd.DataFrame({"patient_id": [1], "code": ["I42.6"], "code_system": "icd10"})
    >>> ph.elixhauser(ev, register=reg, index_date="2025-04-01").tolist()  # chf 7 + alcohol 0
    [7]
    """
    defn = _load_index("elixhauser")
    flags = _flags_for(defn, data, "quan2005", register, index_date, lookback_days)
    return _score(defn, flags, weights, hierarchy, f"elixhauser_{weights}")


def _check_age(name: str, ages: pd.Series | None, minimum: int) -> None:
    if ages is None:
        warnings.warn(
            f"{name}: ages not supplied, so the precondition age >= {minimum} (the "
            "population the score was developed on) was not checked",
            DataQualityWarning, stacklevel=user_stacklevel(),
        )
        return
    young = int((ages < minimum).sum())
    if young:
        warnings.warn(
            f"{name}: {young} of {len(ages)} patient(s) are under {minimum}; the score was "
            f"developed and validated on people aged {minimum}+ and is less valid for them",
            DataQualityWarning, stacklevel=user_stacklevel(),
        )


def hfrs(
    data: pd.DataFrame,
    *,
    register: pd.DataFrame | None = None,
    index_date=None,
    lookback_days: int | None = 730,
    age: pd.Series | None = None,
) -> pd.DataFrame:
    """Hospital Frailty Risk Score (Gilbert et al., Lancet 2018).

    109 three-character ICD-10 groups with weights 0.1-7.1; each group counts once per
    patient whatever the number or 4th characters of its codes. Bands: ``low`` (< 5),
    ``intermediate`` (5-15), ``high`` (> 15). Developed for people aged 75+: a
    :class:`DataQualityWarning` says how many patients are younger (or that age was
    not supplied). From events the default look-back is 2 years (730 days).

    Returns
    -------
    DataFrame
        ``hfrs`` (float) and ``hfrs_band`` (ordered categorical), indexed like the register.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> reg = pd.DataFrame({"patient_id": [1, 2], "age": [80, 90]})
    >>> ev = pd.DataFrame({"patient_id": [1, 1, 1, 2], "code": ["F001", "F009", "F00", "R54"],
    ...                    "code_system": "icd10"})
    >>> ph.hfrs(ev, register=reg, index_date="2025-04-01", lookback_days=None)
                hfrs hfrs_band
    patient_id
    1            7.1     intermediate
    2            2.2          low
    """
    defn = _load_index("hfrs")
    flags = _flags_for(defn, data, "gilbert2018", register, index_date, lookback_days)
    _check_age("hfrs", _ages(flags, age, register, index_date), 75)
    score = _score(defn, flags, "gilbert2018", False, "hfrs").astype(float)
    band = hfrs_band(score.to_numpy())
    return pd.DataFrame({"hfrs": score, "hfrs_band": band}, index=score.index)


def hfrs_band(scores) -> pd.Categorical:
    """HFRS risk band of each score (Gilbert et al., Lancet 2018).

    Published bands: ``low`` below 5, ``intermediate`` from 5 to 15 inclusive, ``high``
    above 15.

    Parameters
    ----------
    scores : array-like of float
        HFRS values; missing values are not allowed.

    Returns
    -------
    pandas.Categorical
        Ordered categories ``low < intermediate < high``.

    Examples
    --------
    >>> from pophealth.core.indices import hfrs_band
    >>> list(hfrs_band([4.99, 5.0, 15.0, 15.01]))
    ['low', 'intermediate', 'intermediate', 'high']
    """
    values = np.asarray(scores, dtype=float)
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        raise ConfigError(
            f"hfrs_band: scores must not be missing; {missing.size} missing at position(s) "
            f"{', '.join(map(str, missing[:10].tolist()))}{' ...' if missing.size > 10 else ''}"
        )
    codes = (values >= 5).astype(np.int8) + (values > 15)
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(list(HFRS_BANDS),
                                                                      ordered=True))


def efi(flags: pd.DataFrame, *, missing_deficits: str = "error") -> pd.DataFrame:
    """electronic Frailty Index (Clegg et al., Age Ageing 2016).

    eFI = deficits present / 36. Bands are computed on the integer deficit count (k/36
    never equals a published cut-point): <= 4 ``fit``, 5-8 ``mild``, 9-12 ``moderate``,
    >= 13 ``severe``.

    Parameters
    ----------
    flags : DataFrame
        Boolean columns named by the 36 deficit slugs (see
        ``load_index("efi").condition_names``), e.g. from :func:`flag_conditions` with a
        primary-care code list.
    missing_deficits : {"error", "absent"}
        ``"absent"`` treats deficit columns not supplied as absent for everyone (the
        documented shortcut some studies take for polypharmacy) and warns naming them.
        Flags made by :func:`flag_conditions` always score the deficits their code list
        covers: a partial list such as ``efi_snomed`` (14 of 36 deficits) gives a
        :class:`DataQualityWarning` "eFI from 14 of 36 deficits: under-estimates
        frailty" naming the deficits not covered.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> names = ph.load_index("efi").condition_names
    >>> f = pd.DataFrame({n: [i < 5, i < 13] for i, n in enumerate(names)})
    >>> ph.efi(f)
       efi_deficits       efi efi_band
    0             5  0.138889     mild
    1            13  0.361111   severe
    """
    defn = _load_index("efi")
    names = defn.condition_names
    if missing_deficits not in {"error", "absent"}:
        raise ConfigError("efi: missing_deficits must be 'error' or 'absent'")
    absent, why = _coverage(flags, names, "efi", missing_deficits)
    if absent:
        warnings.warn(
            f"efi: eFI from {len(names) - len(absent)} of {len(names)} deficits: "
            f"under-estimates frailty (index and band); {len(absent)} deficit(s) {why}, "
            f"counted as absent for everyone: {', '.join(absent)}",
            DataQualityWarning, stacklevel=user_stacklevel(),
        )
    mat, columns = _flag_matrix(flags, names, "efi", missing="absent" if absent else "error")
    count = weighted_score(mat, np.ones(len(names)), columns=columns)
    band = pd.cut(count, [-1, 4, 8, 12, np.inf], labels=list(EFI_BANDS))
    return pd.DataFrame(
        {"efi_deficits": count, "efi": count / EFI_N_DEFICITS,
         "efi_band": pd.Categorical(band, categories=list(EFI_BANDS), ordered=True)},
        index=flags.index,
    )


def cambridge_score(flags: pd.DataFrame, *, weights: str = "general",
                    missing_conditions: str = "error") -> pd.Series:
    """Cambridge Multimorbidity Score (Payne et al., CMAJ 2020), 20 conditions.

    ``weights="general"`` is the general-outcome score (maximum 16.33);
    ``"mortality"`` the 1-year mortality weights.

    Coverage: flags made by :func:`flag_conditions` score the conditions their code
    list covers; the others (``cms_snomed`` has no open list for cancer, constipation,
    painful condition, alcohol problems, irritable bowel syndrome and hearing loss) are
    scored absent with a :class:`DataQualityWarning` naming them and the weight left
    out, since the score then under-estimates. On a hand-made frame a missing column
    raises :class:`CodelistError` unless ``missing_conditions="absent"`` (then the same
    warning). CMS is defined on primary-care records: ``cms_snomed`` matches SNOMED CT
    rows only, and hospital (ICD-10) rows are counted in the flags' report as another
    code system, not as CMS conditions.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> names = ph.load_index("cms").condition_names
    >>> f = pd.DataFrame({n: [n in ("dementia", "copd")] for n in names})
    >>> ph.cambridge_score(f).tolist()
    [3.96]
    """
    defn = _load_index("cms")
    if missing_conditions not in {"error", "absent"}:
        raise ConfigError("cambridge_score: missing_conditions must be 'error' or 'absent'")
    w = defn.weight_vector(weights)
    absent, why = _coverage(flags, list(w.index), "cms", missing_conditions)
    if absent:
        left = w[absent].sum()
        warnings.warn(
            f"cambridge_score: CMS from {len(w) - len(absent)} of {len(w)} conditions: "
            f"under-estimates multimorbidity; {len(absent)} condition(s) {why}, scored as "
            f"absent for everyone (weight {left:.2f} of {w.sum():.2f} left out): "
            f"{', '.join(absent)}", DataQualityWarning, stacklevel=user_stacklevel(),
        )
    return _score(defn, flags, weights, False, f"cms_{weights}",
                  missing="absent" if absent else "error")


def condition_count(flags: pd.DataFrame) -> pd.Series:
    """Number of True flags per patient (all columns count).

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> ph.condition_count(pd.DataFrame({"a": [True, False], "b": [True, False]})).tolist()
    [2, 0]
    """
    cols = list(flags.columns)
    mat, columns = _flag_matrix(flags, cols, "condition_count")
    return pd.Series(weighted_score(mat, np.ones(len(cols)), columns=columns), index=flags.index,
                     name="n_conditions")


def multimorbidity(flags: pd.DataFrame, *, body_systems: pd.Series | dict | str | None = None,
                   ) -> pd.DataFrame:
    """Condition count, multimorbidity (>= 2) and complex multimorbidity.

    Complex multimorbidity = >= 3 conditions affecting >= 3 body systems (Harrison et
    al. 2014). ``body_systems`` maps condition -> body system; pass an index name
    (``"charlson"``, ``"elixhauser"``, ``"efi"``, ``"cms"``) to use its shipped map.
    Without a map, each condition is its own system. When ``body_systems`` names an
    index and the flags come from a code list that covers only some of its conditions
    (e.g. ``cms_snomed``: 14 of 20), a :class:`DataQualityWarning` names the conditions
    not covered, since the counts then under-count.

    Examples
    --------
    >>> import pandas as pd
    >>> import pophealth as ph
    >>> f = pd.DataFrame({"mi": [True, True], "chf": [True, True], "cpd": [True, False],
    ...                   "diab": [False, True]})
    >>> ph.multimorbidity(f, body_systems="charlson")
       n_conditions  multimorbidity  n_body_systems  complex_multimorbidity
    0             3            True               2                   False
    1             3            True               2                   False
    """
    cols = list(flags.columns)
    if isinstance(body_systems, str):
        index = body_systems
        body_systems = _load_index(index).body_systems()
        report = flags.attrs.get("pophealth_report")
        absent = [c for c in body_systems.index if c not in flags.columns]
        if absent and isinstance(report, dict) and report.get("codelist"):
            warnings.warn(
                f"multimorbidity: counted over {len(body_systems) - len(absent)} of "
                f"{len(body_systems)} {index} conditions: under-counts; {len(absent)} "
                f"condition(s) not covered by code list {report['codelist']}: "
                f"{', '.join(absent)}", DataQualityWarning, stacklevel=user_stacklevel(),
            )
    systems = pd.Series(cols, index=cols) if body_systems is None else pd.Series(body_systems)
    unmapped = [c for c in cols if c not in systems.index]
    if unmapped:
        raise ConfigError(f"multimorbidity: no body system for column(s) {', '.join(unmapped)}")
    mat, columns = _flag_matrix(flags, cols, "multimorbidity")
    n_cond = weighted_score(mat, np.ones(len(cols)), columns=columns)
    codes, uniq = pd.factorize(systems.reindex(cols).to_numpy())
    per_system = np.zeros((len(flags), len(uniq)), dtype=bool)
    for j, s in enumerate(codes):
        per_system[:, s] |= mat[:, columns[j]]
    n_sys = per_system.sum(axis=1).astype(np.int64)
    return pd.DataFrame(
        {"n_conditions": n_cond, "multimorbidity": n_cond >= 2, "n_body_systems": n_sys,
         "complex_multimorbidity": (n_cond >= 3) & (n_sys >= 3)},
        index=flags.index,
    )
