"""Coding systems: normalisation of code strings and validity patterns.

Normalisation follows R ``comorbidity``'s ``tidy.codes``: upper-case and strip every
character that is not a letter or digit. For ICD-10 a trailing filler ``X`` on a
three-character code (``I10X``; ``I10-`` becomes ``I10`` by stripping) is the
three-character code. Normalisation only ever runs on the *unique* codes of a table.

Code-system names are normalised the same way (lower case, letters and digits only) and
then mapped through :data:`SYSTEM_ALIASES`, so an extract that tags its rows
``"SNOMED CT"`` matches a code list tagged ``snomed``. ICD-10-CM (the US clinical
modification) is deliberately *not* an alias of ``icd10``: its codes below three
characters differ from ICD-10 (WHO / the UK 5th edition used in SUS+, HES and ECDS), so
``"ICD-10-CM"`` stays ``icd10cm`` and never matches an ICD-10 list (the
flag report then counts those rows as in a system the list does not cover).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["CODE_PATTERNS", "SYSTEM_ALIASES", "KNOWN_SYSTEMS", "normalise_codes",
           "is_valid_code", "normalise_system", "canonical_system"]

#: Validity patterns applied to *normalised* codes, by code system. Systems not listed
#: accept any non-empty alphanumeric code.
CODE_PATTERNS: dict[str, str] = {
    # letter, two digits, up to three further characters (4th/5th characters, UK extensions)
    "icd10": r"[A-Z][0-9]{2}[0-9A-Z]{0,3}",
    # SNOMED CT concept ids: 6 to 18 digits
    "snomed": r"[0-9]{6,18}",
    # Read v2 / CTV3: five characters
    "readv2": r"[0-9A-Z]{5}",
    "ctv3": r"[0-9A-Z]{5}",
    # OPCS-4: letter + 2-3 digits
    "opcs4": r"[A-Z][0-9]{2,3}",
}
_DEFAULT_PATTERN = r"[0-9A-Z]+"


#: Spellings of a code system (already lower-cased, letters and digits only) -> the
#: canonical name pophealth uses. ``icd10cm`` is deliberately absent (see module notes).
SYSTEM_ALIASES: dict[str, str] = {
    "snomedct": "snomed", "sct": "snomed", "snomedctuk": "snomed", "snomeduk": "snomed",
    "icd10uk": "icd10", "icd10who": "icd10",
    "opcs": "opcs4", "opcs4": "opcs4",
    "ctv3": "ctv3", "readv3": "ctv3", "read3": "ctv3",
    "readv2": "readv2", "read2": "readv2", "read": "readv2",
}

#: Canonical code-system names pophealth may print in reports, warnings and errors. A
#: system name read from the events that is not one of these (nor a system of the code
#: list in use) is data of unknown content (a shifted column could hold identifiers), so
#: it is counted under a placeholder, never printed.
KNOWN_SYSTEMS: frozenset[str] = frozenset(
    {*CODE_PATTERNS, *SYSTEM_ALIASES.values(), "icd10cm", "icd9", "icd9cm", "dmd",
     "syntheticpc"})


def normalise_system(values) -> pd.Series:
    """Normalise code-system names to pophealth's canonical names.

    Lower case, strip every character that is not a letter or digit, then map known
    spellings through :data:`SYSTEM_ALIASES` (vectorised; call it on unique names).
    Missing names stay missing.

    Parameters
    ----------
    values : array-like of str
        Code-system names as written in an extract or code list.

    Returns
    -------
    pandas.Series of object
        Canonical names (unknown systems keep their lower-cased alphanumeric form).

    Examples
    --------
    >>> from pophealth.core.codes import normalise_system
    >>> normalise_system(["SNOMED CT", "sct", "ICD-10", "OPCS-4", "Read v3", "Read v2",
    ...                   "ICD-10-CM"]).tolist()
    ['snomed', 'snomed', 'icd10', 'opcs4', 'ctv3', 'readv2', 'icd10cm']
    """
    s = pd.Series(values, dtype=object)
    s = s.str.lower().str.replace(r"[^0-9a-z]", "", regex=True)
    return s.replace(SYSTEM_ALIASES)


def normalise_codes(codes, code_system: str = "icd10") -> np.ndarray:
    """Normalise code strings (vectorised; call it on unique codes).

    Parameters
    ----------
    codes : array-like of str
        Raw codes; missing values become empty strings.
    code_system : str
        Coding system; ICD-10 also drops a filler ``X`` after three characters.

    Returns
    -------
    numpy.ndarray of object
        Normalised codes.

    Examples
    --------
    >>> from pophealth.core.codes import normalise_codes
    >>> normalise_codes(["E11.2", " e112 ", "I10X", "I10-", "i50.9"]).tolist()
    ['E112', 'E112', 'I10', 'I10', 'I509']
    """
    values = np.asarray(codes, dtype=object).ravel().tolist()
    icd10 = canonical_system(code_system) == "icd10"
    if all(isinstance(x, str) for x in values):
        # plain strings (the usual case): the same rules per distinct code, without the
        # fixed cost of pandas' string methods (chunks bring a few new codes at a time)
        out = [_NOT_CODE.sub("", x.upper()) for x in values]
        if icd10:
            out = [_ICD10_FILLER.sub(r"\1", x) for x in out]
        return np.array(out, dtype=object)
    s = pd.Series(np.asarray(values, dtype=object)).fillna("").astype(str)
    s = s.str.upper().str.replace(_NOT_CODE, "", regex=True)
    if icd10:
        s = s.str.replace(_ICD10_FILLER, r"\1", regex=True)
    return s.to_numpy(dtype=object)


_NOT_CODE = re.compile(r"[^0-9A-Z]")
_ICD10_FILLER = re.compile(r"^([A-Z][0-9]{2})X$")
_NOT_SYSTEM = re.compile(r"[^0-9a-z]")


def canonical_system(name: str) -> str:
    """One code-system name as :func:`normalise_system` gives it (without pandas).

    Examples
    --------
    >>> from pophealth.core.codes import canonical_system
    >>> canonical_system("SNOMED CT"), canonical_system("ICD-10")
    ('snomed', 'icd10')
    """
    key = _NOT_SYSTEM.sub("", str(name).lower())
    return SYSTEM_ALIASES.get(key, key)


def is_valid_code(normalised, code_system: str = "icd10") -> np.ndarray:
    """Boolean mask of *normalised* codes that look valid for ``code_system``.

    Examples
    --------
    >>> from pophealth.core.codes import is_valid_code
    >>> is_valid_code(["E112", "ZZZ9", "", "E1199999"]).tolist()
    [True, False, False, False]
    """
    pattern = re.compile(CODE_PATTERNS.get(canonical_system(code_system), _DEFAULT_PATTERN))
    values = np.asarray(normalised, dtype=object).ravel().tolist()
    if all(isinstance(x, str) for x in values):
        return np.fromiter((pattern.fullmatch(x) is not None for x in values), dtype=bool,
                           count=len(values))
    s = pd.Series(np.asarray(values, dtype=object), dtype=object).fillna("")
    return s.str.fullmatch(pattern).to_numpy(dtype=bool)
