"""Code lists: which codes define which condition.

A code list is a table with columns ``condition, code, code_system, match`` (and an
optional ``description``), one row per code or code prefix. ``match`` is ``prefix``
(any code starting with ``code``) or ``exact``. Codes are stored normalised (see
:func:`pophealth.core.codes.normalise_codes`). The shipped lists live in
``pophealth/data/codelists/*.csv`` with provenance in ``data/provenance.csv``; users
load their own (SNOMED, CTV3, local codes) from a CSV with the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import CodelistError
from pophealth.core.codes import normalise_codes, normalise_system

__all__ = ["Codelist", "load_codelist", "list_codelists"]

_COLUMNS = ("condition", "code", "code_system", "match")
_MATCHES = frozenset({"prefix", "exact"})


def _data_dir():
    return resources.files("pophealth") / "data"


def list_codelists() -> list[str]:
    """Names of the code lists shipped with pophealth.

    Examples
    --------
    >>> import pophealth as ph
    >>> "charlson_quan2005_icd10" in ph.list_codelists()
    True
    """
    folder = _data_dir() / "codelists"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv"))


@dataclass(frozen=True)
class Codelist:
    """A validated code list.

    Attributes
    ----------
    name : str
        Identifier (file stem for shipped lists).
    table : DataFrame
        Columns ``condition, code, code_system, match`` with normalised codes and systems.
    conditions : tuple of str
        Condition names in first-appearance order: the column order of flags.

    Examples
    --------
    Quan et al. (2005) define the Charlson index on 17 conditions:

    >>> from pophealth.core.codelists import load_codelist
    >>> cl = load_codelist("charlson_quan2005_icd10")
    >>> cl.name, len(cl.conditions), cl.conditions[:2]
    ('charlson_quan2005_icd10', 17, ('mi', 'chf'))
    """

    name: str
    table: pd.DataFrame = field(repr=False)
    conditions: tuple[str, ...]

    @property
    def code_systems(self) -> tuple[str, ...]:
        """Normalised code systems the list covers."""
        return tuple(pd.unique(self.table["code_system"]))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "custom") -> Codelist:
        """Validate and normalise a code-list table (see module docstring).

        Examples
        --------
        >>> import pandas as pd
        >>> from pophealth.core.codelists import Codelist
        >>> cl = Codelist.from_frame(pd.DataFrame({
        ...     "condition": ["diabetes", "diabetes"], "code": ["E10", "e11.9"],
        ...     "code_system": ["ICD10", "icd10"], "match": ["prefix", "exact"]}))
        >>> cl.table["code"].tolist(), cl.conditions
        (['E10', 'E119'], ('diabetes',))
        """
        missing = [c for c in _COLUMNS if c not in frame.columns]
        if missing:
            raise CodelistError(f"code list '{name}': missing column(s) {missing}")
        t = frame.loc[:, list(_COLUMNS)].copy()
        for col in _COLUMNS:
            bad = t[col].isna().to_numpy()
            if bad.any():
                raise CodelistError(
                    f"code list '{name}': column '{col}' breaks rule 'not_null' in "
                    f"{int(bad.sum())} row(s); first positions {np.flatnonzero(bad)[:10].tolist()}"
                )
        t["condition"] = t["condition"].astype(str).str.strip()
        t["code_system"] = normalise_system(t["code_system"]).to_numpy()
        t["match"] = t["match"].astype(str).str.strip().str.lower()
        bad = ~t["match"].isin(_MATCHES).to_numpy()
        if bad.any():
            raise CodelistError(
                f"code list '{name}': column 'match' breaks rule 'prefix_or_exact' in "
                f"{int(bad.sum())} row(s); first positions {np.flatnonzero(bad)[:10].tolist()}"
            )
        codes = t["code"].astype(str).to_numpy(dtype=object)
        systems = t["code_system"].to_numpy(dtype=object)
        norm = np.empty(len(t), dtype=object)
        for system in pd.unique(systems):
            sel = systems == system
            norm[sel] = normalise_codes(codes[sel], system)
        t["code"] = norm
        empty = (t["code"] == "").to_numpy() | (t["condition"] == "").to_numpy()
        if empty.any():
            raise CodelistError(
                f"code list '{name}': rule 'non_empty' broken in {int(empty.sum())} row(s); "
                f"first positions {np.flatnonzero(empty)[:10].tolist()}"
            )
        t = t.drop_duplicates().reset_index(drop=True)
        conditions = tuple(pd.unique(t["condition"]))
        return cls(name=name, table=t, conditions=conditions)

    def match(self, codes: np.ndarray, system: str) -> tuple[np.ndarray, np.ndarray]:
        """Match *normalised unique* codes of one system against the list.

        Returns
        -------
        code_idx, condition_idx : numpy.ndarray
            Pairs (position in ``codes``, position in :attr:`conditions`), sorted and unique.
        """
        t = self.table[self.table["code_system"] == system]
        cond_pos = {c: i for i, c in enumerate(self.conditions)}
        s = pd.Series(codes, dtype=object)
        pairs = []
        exact = t[t["match"] == "exact"]
        if len(exact):
            left = pd.DataFrame({"code": s, "i": np.arange(len(s))})
            m = left.merge(exact[["code", "condition"]], on="code", how="inner")
            pairs.append(m[["i", "condition"]])
        prefix = t[t["match"] == "prefix"]
        lengths = prefix["code"].str.len()
        for length in sorted(pd.unique(lengths)):
            keys = prefix.loc[lengths == length, ["code", "condition"]]
            left = pd.DataFrame({"code": s.str[:length], "i": np.arange(len(s))})
            left = left[s.str.len().to_numpy() >= length]
            m = left.merge(keys, on="code", how="inner")
            pairs.append(m[["i", "condition"]])
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        allp = pd.concat(pairs, ignore_index=True)
        ci = allp["condition"].map(cond_pos).to_numpy(dtype=np.int64)
        key = np.unique(allp["i"].to_numpy(dtype=np.int64) * len(self.conditions) + ci)
        return key // len(self.conditions), key % len(self.conditions)


def load_codelist(source, *, name: str | None = None) -> Codelist:
    """Load a shipped code list by name, a user CSV by path, or wrap a DataFrame.

    Parameters
    ----------
    source : str, path or DataFrame or Codelist
        A name from :func:`list_codelists`, a path to a CSV with columns
        ``condition, code, code_system, match``, or such a DataFrame.
    name : str, optional
        Name to give a DataFrame/CSV list (defaults to the file stem).

    Raises
    ------
    CodelistError
        Unknown name, missing columns, empty codes or an unknown ``match`` rule.

    Examples
    --------
    >>> import pophealth as ph
    >>> cl = ph.load_codelist("charlson_quan2005_icd10")
    >>> len(cl.conditions)
    17
    """
    if isinstance(source, Codelist):
        return source
    if isinstance(source, pd.DataFrame):
        return Codelist.from_frame(source, name or "custom")
    path = Path(str(source))
    if path.suffix.lower() == ".csv" or path.exists():
        if not path.exists():
            raise CodelistError(f"code list file not found: {path}")
        return Codelist.from_frame(pd.read_csv(path, dtype=str), name or path.stem)
    key = str(source)
    if key not in list_codelists():
        raise CodelistError(
            f"unknown code list '{key}'; shipped lists: {', '.join(list_codelists())}"
        )
    return _load_shipped(key)


@cache
def _load_shipped(key: str) -> Codelist:
    """Parse a shipped list once per process (its table must not be mutated)."""
    with (_data_dir() / "codelists" / f"{key}.csv").open("r", encoding="utf-8") as fh:
        return Codelist.from_frame(pd.read_csv(fh, dtype=str, keep_default_na=False), key)
