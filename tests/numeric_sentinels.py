"""Shared check for the 'never show values' tests of the entry points' number columns.

A cell holding ``CELL`` is fed to an entry point; :func:`refusal_and_text` runs the call,
expects a :class:`SchemaError`, and returns it with every text a user could see (message,
repr, problems, traceback, warnings, log records) so that the test can assert the problem
and that no :data:`FRAGMENTS` of the sentinel appear.
"""

from __future__ import annotations

import logging
import traceback
import warnings

import pytest

from pophealth.contracts.exceptions import SchemaError

CELL = "£1,200-SENTINEL-9990000018"  # named CELL so source lines in tracebacks do not match
FRAGMENTS = ("SENTINEL", "9990000018", "1,200")


def refusal_and_text(call, caplog) -> tuple[SchemaError, str]:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SchemaError) as info:
            call()
    exc = info.value
    text = "\n".join([str(exc), repr(exc), repr(exc.problems),
                      "".join(traceback.format_exception(exc)),
                      *(str(w.message) for w in caught),
                      *(r.getMessage() for r in caplog.records)])
    return exc, text


def leaked(text: str) -> list[str]:
    """The sentinel fragments found in ``text`` (an empty list when nothing leaked)."""
    return [f for f in FRAGMENTS if f in text]
