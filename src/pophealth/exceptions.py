"""Exception and warning types raised by pophealth.

Every message names columns, rules, counts and row *positions*, never cell values,
because values may be patient identifiers.
"""

from __future__ import annotations

__all__ = [
    "PopHealthError",
    "SchemaError",
    "CodelistError",
    "ConfigError",
    "DataQualityWarning",
]


class PopHealthError(Exception):
    """Base class of every error raised deliberately by pophealth."""


class SchemaError(PopHealthError, ValueError):
    """Input table breaks its data contract (missing column, wrong dtype, impossible value).

    Attributes
    ----------
    problems : list of dict
        One entry per broken rule with keys ``column``, ``rule``, ``count`` and
        ``positions`` (up to 10 zero-based row positions). Never holds values.
    """

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class CodelistError(PopHealthError, ValueError):
    """A code list or index definition is malformed, or input codes are mostly unrecognised."""


class ConfigError(PopHealthError, ValueError):
    """A job configuration or argument combination is invalid."""


class DataQualityWarning(UserWarning):
    """Data were usable but something was excluded or looked wrong; the message gives counts."""
