"""Collision-free, visible file names for per-PCN and per-practice output files.

A PCN or practice code is any text, so it cannot be a file name as it stands (``P/1``,
``..``, ``.hidden``, ``CON``, unicode, or ``p1`` next to ``P1`` on a case-insensitive file
system). Each code gets the stem ``<slug>-<hash>``:

* ``slug`` - the code's ASCII letters and digits (accents dropped: ``é`` -> ``e``), any
  other run of characters replaced by ``_``, trimmed
  to 32 characters and starting with a letter or digit (``code`` when none are left), so
  the file is readable and never hidden;
* ``hash`` - the first 12 hex digits of SHA-256 of the exact code (UTF-8), so codes that
  slug alike (``P/1`` and ``P_1``, or ``p1`` and ``P1``) still get different names.

A missing code (``None``, NaN, empty or blank) has the fixed stem ``unknown-pcn`` or
``unknown-practice``, which no code's stem can equal (those always end in ``-`` and
12 hex digits). :func:`file_stems` also checks the stems are distinct ignoring case, so a
collision is an error, never an overwrite. The run's ``index.csv`` maps every code to its
file; :func:`pophealth.jobs.read_caseload` reads files through it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["UNKNOWN_STEMS", "file_stem", "file_stems", "normalise_codes"]

#: Stems of the lists for patients with no PCN / no practice code.
UNKNOWN_STEMS = {"pcn": "unknown-pcn", "practice": "unknown-practice"}
_SLUG_MAX = 32
_HASH_HEX = 12


def normalise_codes(values) -> np.ndarray:
    """Codes as an object array of ``str``; missing (None, NaN, empty, blank) become ``""``.

    Examples
    --------
    >>> import numpy as np
    >>> from pophealth.jobs.filenames import normalise_codes
    >>> normalise_codes([None, np.nan, "", "  ", "U1", 7]).tolist()
    ['', '', '', '', 'U1', '7']
    """
    s = pd.Series(values, dtype=object)
    missing = s.isna().to_numpy()
    text = s.where(~missing, "").astype(str)
    blank = text.str.strip().eq("").to_numpy()
    out = text.to_numpy(dtype=object)
    out[missing | blank] = ""
    return out


def file_stem(code: str, kind: str = "pcn") -> str:
    """The file stem (no extension) for one normalised code (``""`` means missing).

    Examples
    --------
    >>> from pophealth.jobs.filenames import file_stem
    >>> file_stem("P/1"), file_stem("P_1")
    ('P_1-3fe612864570', 'P_1-d1641bdc80ea')
    >>> file_stem(".hidden"), file_stem(""), file_stem("", "practice")
    ('hidden-1692419006a8', 'unknown-pcn', 'unknown-practice')
    """
    if code == "":
        return UNKNOWN_STEMS[kind]
    decomposed = unicodedata.normalize("NFKD", code)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))  # é -> e
    slug = re.sub(r"[^A-Za-z0-9]+", "_", base).strip("_")[:_SLUG_MAX].strip("_")
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:_HASH_HEX]
    return f"{slug or 'code'}-{digest}"


def file_stems(codes: Iterable[str], kind: str = "pcn") -> dict:
    """``{code: stem}`` for distinct normalised codes; stems are unique ignoring case.

    Raises
    ------
    ValueError
        If two codes would share a file name (a truncated-hash collision; the message
        gives the kind and how many, not the codes).
    """
    stems = {code: file_stem(code, kind) for code in sorted(set(codes))}
    folded = pd.Series([s.casefold() for s in stems.values()], dtype=object)
    n_dup = int(folded.duplicated(keep=False).sum())
    if n_dup:
        raise ValueError(f"{kind} file names: {n_dup} code(s) map to the same file name "
                         "(rule 'unique_file_name')")
    return stems
