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
    """A job configuration or argument combination is invalid.

    Attributes
    ----------
    parameter : str or None
        The keyword argument that resolves the error, when one does (e.g. ``"overwrite"``
        for an existing output); the message then ends ``(pass overwrite=True)``. The
        command line uses it to name its own flag (``--overwrite``) instead.
    value : object
        The value to pass for ``parameter``.
    reason : str
        The message without the ``(pass ...)`` hint.

    Examples
    --------
    >>> err = ConfigError("output exists", parameter="overwrite", value=True)
    >>> str(err), err.reason, err.parameter
    ('output exists (pass overwrite=True)', 'output exists', 'overwrite')
    """

    def __init__(self, message: str, *, parameter: str | None = None,
                 value: object = True) -> None:
        hint = f" (pass {parameter}={value!r})" if parameter else ""
        super().__init__(message + hint)
        self.reason = message
        self.parameter = parameter
        self.value = value


class DataQualityWarning(UserWarning):
    """Data were usable but something was excluded or looked wrong; the message gives counts."""


def user_stacklevel() -> int:
    """``stacklevel`` for :func:`warnings.warn` that points at the first caller outside pophealth.

    Computed from the current call stack, so a warning raised deep inside the library
    (e.g. ``charlson(events)`` -> ``flag_conditions``) is attributed to the user's line.
    """
    import os
    import sys

    # the package root (this module lives in pophealth/contracts/), with a separator so a
    # sibling directory such as 'pophealth_notebooks' is not mistaken for the library
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package_dir):
        frame = frame.f_back
        level += 1
    return level
