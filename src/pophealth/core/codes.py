"""Coding systems: normalisation of code strings and validity patterns.

Normalisation follows R ``comorbidity``'s ``tidy.codes``: upper-case and strip every
character that is not a letter or digit. For ICD-10 a trailing filler ``X`` on a
three-character code (``I10X``; ``I10-`` becomes ``I10`` by stripping) is the
three-character code. Normalisation only ever runs on the *unique* codes of a table.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["CODE_PATTERNS", "normalise_codes", "is_valid_code", "normalise_system"]

#: Validity patterns applied to *normalised* codes, by code system. Systems not listed
#: accept any non-empty alphanumeric code.
CODE_PATTERNS: dict[str, str] = {
    # letter, two digits, up to three further characters (4th/5th characters, UK extensions)
    "icd10": r"[A-Z][0-9]{2}[0-9A-Z]{0,3}",
    # SNOMED CT concept ids: 6 to 18 digits
    "snomed": r"[0-9]{6,18}",
    # Read v2 / CTV3: five characters
    "read2": r"[0-9A-Z]{5}",
    "ctv3": r"[0-9A-Z]{5}",
    # OPCS-4: letter + 2-3 digits
    "opcs4": r"[A-Z][0-9]{2,3}",
}
_DEFAULT_PATTERN = r"[0-9A-Z]+"


def normalise_system(values) -> pd.Series:
    """Normalise code-system names: lower case, strip non-alphanumerics (``ICD-10`` -> ``icd10``)."""
    s = pd.Series(values, dtype=object)
    return s.str.lower().str.replace(r"[^0-9a-z]", "", regex=True)


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
    s = pd.Series(np.asarray(codes, dtype=object)).fillna("").astype(str)
    s = s.str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    if normalise_system([code_system]).iloc[0] == "icd10":
        s = s.str.replace(r"^([A-Z][0-9]{2})X$", r"\1", regex=True)
    return s.to_numpy(dtype=object)


def is_valid_code(normalised, code_system: str = "icd10") -> np.ndarray:
    """Boolean mask of *normalised* codes that look valid for ``code_system``.

    Examples
    --------
    >>> from pophealth.core.codes import is_valid_code
    >>> is_valid_code(["E112", "ZZZ9", "", "E1199999"]).tolist()
    [True, False, False, False]
    """
    system = normalise_system([code_system]).iloc[0]
    pattern = re.compile(CODE_PATTERNS.get(system, _DEFAULT_PATTERN))
    s = pd.Series(np.asarray(normalised, dtype=object), dtype=object).fillna("")
    return s.str.fullmatch(pattern).to_numpy(dtype=bool)
