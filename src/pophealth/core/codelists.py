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

__all__ = ["Codelist", "from_opencodelists", "load_codelist", "list_codelists"]

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
        return self.matcher(system).match(codes)

    def matcher(self, system: str) -> CodeMatcher:
        """The list's rules for one code system, prepared for repeated :meth:`match` calls."""
        t = self.table[(self.table["code_system"] == system).to_numpy()]
        cond = pd.Index(self.conditions).get_indexer(t["condition"]).astype(np.int64)
        return CodeMatcher(t["code"].to_numpy(dtype=object), cond,
                           (t["match"] == "exact").to_numpy(), len(self.conditions))


class CodeMatcher:
    """Code-list rules of one code system, matched one hash lookup per code and rule kind.

    Exact rules look a code up whole; prefix rules of length ``L`` look up its first
    ``L`` characters. A rule code standing for several conditions expands through a
    CSR table. Built once (:meth:`Codelist.matcher`), it matches any number of batches of
    codes with no per-call set-up beyond the lookups.
    """

    def __init__(self, codes: np.ndarray, conditions: np.ndarray, exact: np.ndarray,
                 n_conditions: int) -> None:
        self.n_conditions = n_conditions
        lengths = np.fromiter((len(c) for c in codes.tolist()), dtype=np.int64,
                              count=len(codes))
        self.groups = []  # (prefix length or None for exact, keys, CSR start, count, conds)
        kinds = [(exact, None)] + [(~exact & (lengths == n), int(n))
                                   for n in sorted(set(lengths[~exact].tolist()))]
        for rows, length in kinds:
            if not rows.any():
                continue
            keys, inv = np.unique(codes[rows], return_inverse=True)
            order = np.argsort(inv, kind="stable")
            count = np.bincount(inv, minlength=len(keys))
            self.groups.append((length, pd.Index(keys, dtype=object),
                                np.cumsum(count) - count, count, conditions[rows][order]))

    def match(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (position in ``codes``, condition position), sorted and unique."""
        values = np.asarray(codes, dtype=object).ravel().tolist()
        if not values or not self.groups:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        lengths = np.fromiter((len(c) for c in values), dtype=np.int64, count=len(values))
        found_i, found_c = [], []
        for length, keys, start, count, conds in self.groups:
            if length is None:
                where = np.arange(len(values))
                probe = values
            else:
                where = np.flatnonzero(lengths >= length)
                probe = [values[i][:length] for i in where.tolist()]
            if not len(where):
                continue
            hit = keys.get_indexer(pd.Index(probe, dtype=object))
            ok = hit >= 0
            i, h = where[ok], hit[ok]
            reps = count[h]
            offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
            found_i.append(np.repeat(i, reps))
            found_c.append(conds[np.repeat(start[h], reps) + offs])
        if not found_i:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        n = self.n_conditions
        key = np.unique(np.concatenate(found_i).astype(np.int64) * n + np.concatenate(found_c))
        return key // n, key % n


def _position_error(name: str, column: str, rule: str, bad: np.ndarray) -> CodelistError:
    return CodelistError(
        f"code list '{name}': column '{column}' breaks rule '{rule}' in {int(bad.sum())} "
        f"row(s); first positions {np.flatnonzero(bad)[:10].tolist()}")


def from_opencodelists(frame: pd.DataFrame, *, name: str, system: str | None,
                       condition: str | None = None, category: str | None = None,
                       match: str = "exact") -> pd.DataFrame:
    """Turn an OpenCodelists download into the code-list table (``condition, code, ...``).

    OpenCodelists (https://www.opencodelists.org) downloads are CSVs with a ``code``
    column and a ``term`` column (other columns ignored), or the same plus a category
    column that splits the list into several conditions. One condition per list is
    named with ``condition=``; the category form takes the condition of every row from
    the column named by ``category=`` (default ``"category"`` when that column exists).

    Parameters
    ----------
    frame : DataFrame
        The download, read as strings.
    name : str
        List name used in error messages.
    system : str
        Code system of every row (``"snomed"``, ``"icd10"``, ``"ctv3"``, ...); a
        download does not say it, so it is required.
    condition, category : str, optional
        Exactly one: the condition name for a single-condition list, or the column
        holding each row's condition.
    match : {"exact", "prefix"}, default "exact"
        OpenCodelists lists spell out every code, so ``exact`` is right for SNOMED CT
        and for ICD-10 lists that include their 4-character children.

    Raises
    ------
    CodelistError
        No ``system``; neither or both of ``condition``/``category``; a missing
        ``code`` or category column; empty codes or categories (count and positions,
        never values).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.core.codelists import from_opencodelists
    >>> dl = pd.DataFrame({"code": ["84114007", "10335000"],
    ...                    "term": ["Heart failure", "Chronic right-sided heart failure"]})
    >>> from_opencodelists(dl, name="hf", system="snomed", condition="hf")[
    ...     ["condition", "code", "code_system", "match"]]
      condition      code code_system  match
    0        hf  84114007      snomed  exact
    1        hf  10335000      snomed  exact
    """
    if system is None or not str(system).strip():
        raise CodelistError(
            f"code list '{name}': no column 'code_system'; pass system= (e.g. "
            "system='snomed') for an OpenCodelists download")
    if "code" not in frame.columns:
        raise CodelistError(
            f"code list '{name}': missing column 'code' (an OpenCodelists download has "
            "columns code,term[,category]); found no column named 'code'")
    if category is None and condition is None and "category" in frame.columns:
        category = "category"
    if (category is None) == (condition is None):
        raise CodelistError(
            f"code list '{name}': pass exactly one of condition= (one condition for the "
            "whole list) or category= (the column naming each row's condition)")
    if category is not None:
        if category not in frame.columns:
            raise CodelistError(f"code list '{name}': missing category column '{category}' "
                                "(named by category=)")
        cond = frame[category]
        bad = (cond.isna() | (cond.astype(str).str.strip() == "")).to_numpy()
        if bad.any():
            raise _position_error(name, category, "non_empty", bad)
        cond = cond.astype(str).str.strip().to_numpy(dtype=object)
    else:
        if not str(condition).strip():
            raise CodelistError(f"code list '{name}': condition= is empty")
        cond = np.full(len(frame), str(condition).strip(), dtype=object)
    out = pd.DataFrame({"condition": cond, "code": frame["code"].to_numpy(dtype=object),
                        "code_system": str(system), "match": match})
    if "term" in frame.columns:
        out["description"] = frame["term"].to_numpy(dtype=object)
    return out


def load_codelist(source, *, name: str | None = None, system: str | None = None,
                  condition: str | None = None, category: str | None = None,
                  match: str = "exact") -> Codelist:
    """Load a shipped code list by name, a user CSV by path, or wrap a DataFrame.

    Two table forms are read: pophealth's own (``condition, code, code_system, match``)
    and an OpenCodelists download (``code, term`` with ``system=`` and ``condition=``,
    or ``code, term, <category column>`` with ``system=`` and optionally ``category=``;
    see :func:`from_opencodelists`). So any list published on OpenCodelists plugs in
    without editing the file.

    Parameters
    ----------
    source : str, path or DataFrame or Codelist
        A name from :func:`list_codelists`, a path to a CSV, or a DataFrame.
    name : str, optional
        Name to give a DataFrame/CSV list (defaults to the file stem).
    system, condition, category, match : optional
        For an OpenCodelists download only (a table without ``code_system``): the code
        system, and the condition name or the category column (see
        :func:`from_opencodelists`). Passing them for a table in pophealth's own form
        is an error (they would silently disagree with its columns).

    Raises
    ------
    CodelistError
        Unknown name, missing columns, empty codes or an unknown ``match`` rule; for a
        download, a missing ``system=``/``condition=``/category column.

    Examples
    --------
    >>> import pophealth as ph
    >>> cl = ph.load_codelist("charlson_quan2005_icd10")
    >>> len(cl.conditions)
    17

    An OpenCodelists download (``code,term``) of a SNOMED CT list:

    >>> import pandas as pd
    >>> dl = pd.DataFrame({"code": ["84114007"], "term": ["Heart failure"]})
    >>> ph.load_codelist(dl, system="snomed", condition="hf").conditions
    ('hf',)
    """
    if isinstance(source, Codelist):
        return source
    if isinstance(source, pd.DataFrame):
        return _from_table(source, name or "custom", system, condition, category, match)
    path = Path(str(source))
    if path.suffix.lower() == ".csv" or path.exists():
        if not path.exists():
            raise CodelistError(f"code list file not found: {path}")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return _from_table(frame, name or path.stem, system, condition, category, match)
    key = str(source)
    if key not in list_codelists():
        raise CodelistError(
            f"unknown code list '{key}'; shipped lists: {', '.join(list_codelists())}"
        )
    if any(v is not None for v in (system, condition, category)):
        raise CodelistError(f"code list '{key}': system=/condition=/category= apply to "
                            "OpenCodelists downloads, not to a shipped list")
    # a private copy: the per-process parse is shared, so a caller editing the returned
    # table (say, to add local codes) must not change what the next call loads
    shipped = _load_shipped(key)
    return Codelist(name=shipped.name, table=shipped.table.copy(), conditions=shipped.conditions)


def _from_table(frame: pd.DataFrame, name: str, system, condition, category,
                match: str) -> Codelist:
    if "code_system" in frame.columns:
        given = [k for k, v in (("system", system), ("condition", condition),
                                ("category", category)) if v is not None]
        if given:
            raise CodelistError(
                f"code list '{name}': has column 'code_system' (pophealth form) but "
                f"{', '.join(g + '=' for g in given)} was given; drop the argument or the column")
        return Codelist.from_frame(frame, name)
    return Codelist.from_frame(
        from_opencodelists(frame, name=name, system=system, condition=condition,
                           category=category, match=match), name)


@cache
def _load_shipped(key: str) -> Codelist:
    """Parse a shipped list once per process; never hand this object out (see
    :func:`load_codelist`, which returns a copy of its table)."""
    with (_data_dir() / "codelists" / f"{key}.csv").open("r", encoding="utf-8") as fh:
        return Codelist.from_frame(pd.read_csv(fh, dtype=str, keep_default_na=False), key)
