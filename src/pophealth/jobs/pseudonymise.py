"""Keyed pseudonyms (HMAC-SHA256) for patient identifiers in outputs.

Output from pophealth is **pseudonymised, not anonymised**: whoever holds the key can
re-link a pseudo id to the person, so the output remains personal data (ICO guidance,
2025). Plain or salted SHA-256 of an NHS number is not enough - every valid NHS number
can be enumerated in minutes - hence a secret key.

* The key is at least 32 random bytes, given as hex in an environment variable whose
  *name* is configured (``secrets.token_hex(32)`` makes one). It is never read from a
  config file and never written anywhere.
* :func:`key_fingerprint` is an HMAC of a fixed label under the key: it identifies the key
  (so a run manifest shows when the key changed, which breaks linkage to earlier lists)
  without revealing it.
* The library offers no reverse mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError

__all__ = ["MIN_KEY_BYTES", "check_key_env", "load_key", "key_fingerprint", "pseudonymise"]

#: Shortest accepted key.
MIN_KEY_BYTES = 32
_FINGERPRINT_LABEL = b"pophealth key fingerprint v1"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")


def _looks_like_key(text: str) -> bool:
    """True for text that may be key material: 16+ hex digits in a row, or a 20+
    character base64/base32-like run holding both digits and letters."""
    if _HEX_RUN.search(text):
        return True
    for token in re.split(r"[^A-Za-z0-9+/=-]+", text.replace("_", " ")):
        if (len(token) >= 20 and any(c.isdigit() for c in token)
                and any(c.isalpha() for c in token)):
            return True
    return False


def check_key_env(name, where: str = "key_env") -> str:
    """Return ``name`` if it is a plausible environment variable name, else raise.

    A name is ``[A-Z_][A-Z0-9_]{0,63}`` and must not look like key material (16+ hex
    digits in a row, or a long base64-like run), so a key pasted in place of its
    variable's name is refused - and the message never repeats what was given.

    Examples
    --------
    >>> from pophealth.jobs.pseudonymise import check_key_env
    >>> check_key_env("POPHEALTH_KEY")
    'POPHEALTH_KEY'
    >>> check_key_env("ab" * 32)
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: key_env must be an environment variable name (A-Z, 0-9 and _, at most 64 characters), never the key itself; the value given (64 characters) is not shown
    """
    if (not isinstance(name, str) or not _ENV_NAME.fullmatch(name)
            or _looks_like_key(name)):
        size = f"{len(name)} characters" if isinstance(name, str) else type(name).__name__
        raise ConfigError(f"{where} must be an environment variable name (A-Z, 0-9 and _, "
                          "at most 64 characters), never the key itself; the value given "
                          f"({size}) is not shown")
    return name


def load_key(env_var: str, *, environ: Mapping[str, str] | None = None) -> bytes:
    """Read the pseudonymisation key (hex, >= 32 bytes) from an environment variable.

    Parameters
    ----------
    env_var : str
        Name of the variable (the name goes in config; the key never does).
    environ : mapping, optional
        Where to look (default ``os.environ``); tests pass a dict.

    Raises
    ------
    ConfigError
        If ``env_var`` is not a plausible variable name (see :func:`check_key_env`;
        then it is not repeated), or the variable is unset, not hex or too short. The
        message names the variable, never its value.

    Examples
    --------
    >>> from pophealth.jobs.pseudonymise import load_key
    >>> len(load_key("PH_KEY", environ={"PH_KEY": "ab" * 32}))
    32
    >>> load_key("PH_KEY", environ={})
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: pseudonymisation key: environment variable PH_KEY is not set (expected >= 32 bytes as hex, e.g. from secrets.token_hex(32))
    """
    env = os.environ if environ is None else environ
    check_key_env(env_var, "pseudonymisation key: the environment variable name")
    text = env.get(env_var)
    hint = "(expected >= 32 bytes as hex, e.g. from secrets.token_hex(32))"
    if not text:
        raise ConfigError(f"pseudonymisation key: environment variable {env_var} is not set "
                          f"{hint}")
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigError(f"pseudonymisation key in {env_var} is not hex {hint}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"pseudonymisation key in {env_var} is too short: {len(key)} bytes "
                          f"{hint}")
    return key


def key_fingerprint(key: bytes) -> str:
    """A short public identifier of the key: HMAC-SHA256(key, fixed label), 16 hex digits.

    Examples
    --------
    >>> from pophealth.jobs.pseudonymise import key_fingerprint
    >>> key_fingerprint(bytes(32))
    '0286d4d1d1dda14c'
    """
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def _normalise(values) -> np.ndarray:
    s = pd.Series(values, copy=False)
    if s.isna().any():
        raise ConfigError(f"pseudonymise: {int(s.isna().sum())} missing identifier(s)")
    if pd.api.types.is_float_dtype(s):
        raise ConfigError("pseudonymise: identifiers must be integers or strings, not floats")
    text = s.astype(str).str.replace(r"[\s-]", "", regex=True)
    return text.to_numpy(dtype=object)


def pseudonymise(values, key: bytes, *, length: int = 32) -> np.ndarray:
    """HMAC-SHA256 pseudonyms of identifiers (NHS numbers or patient ids).

    Identifiers are normalised first (text, spaces and hyphens removed, so
    ``"943 476 5919"`` and ``9434765919`` agree).

    Parameters
    ----------
    values : array-like
        Identifiers; missing values are an error.
    key : bytes
        At least :data:`MIN_KEY_BYTES` bytes (see :func:`load_key`).
    length : int, default 32
        Hex digits kept (32 = 128 bits; 16-64 allowed).

    Returns
    -------
    numpy.ndarray of str (object)

    Notes
    -----
    HMAC has no vectorised form in numpy, so this calls the C ``hmac.digest`` once per
    identifier (about 0.4 M per second per core). Pseudonymise only the rows you output.

    Examples
    --------
    >>> from pophealth.jobs.pseudonymise import pseudonymise
    >>> key = bytes(range(32))
    >>> a = pseudonymise(["943 476 5919", 9434765919], key, length=16)
    >>> a[0] == a[1], len(a[0])
    (True, 16)
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"pseudonymise: key must be at least {MIN_KEY_BYTES} bytes")
    if not 16 <= int(length) <= 64:
        raise ConfigError("pseudonymise: length must be between 16 and 64 hex digits")
    text = _normalise(values)
    digest = hmac.digest
    key = bytes(key)
    # one C call per identifier; there is no batch HMAC in the standard library
    out = [digest(key, t.encode("utf-8"), "sha256").hex()[:length] for t in text]
    return np.array(out, dtype=object)
