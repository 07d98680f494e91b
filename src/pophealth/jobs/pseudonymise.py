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
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError

__all__ = ["MIN_KEY_BYTES", "load_key", "key_fingerprint", "pseudonymise"]

#: Shortest accepted key.
MIN_KEY_BYTES = 32
_FINGERPRINT_LABEL = b"pophealth key fingerprint v1"


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
        If the variable is unset, not hex or too short. The message names the
        variable, never its value.

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
    if not env_var or not isinstance(env_var, str):
        raise ConfigError("pseudonymisation key: no environment variable named")
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
