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
    """Base class of every error raised deliberately by pophealth.

    Examples
    --------
    One ``except`` catches every deliberate pophealth error:

    >>> from pophealth.contracts.exceptions import CodelistError, PopHealthError
    >>> from pophealth.core.codelists import load_codelist
    >>> try:
    ...     load_codelist("no_such_list")
    ... except PopHealthError as exc:
    ...     type(exc).__name__
    'CodelistError'
    """


class SchemaError(PopHealthError, ValueError):
    """Input table breaks its data contract (missing column, wrong dtype, impossible value).

    Attributes
    ----------
    problems : list of dict
        One entry per broken rule with keys ``column``, ``rule``, ``count`` and
        ``positions`` (up to 10 zero-based row positions). Never holds values.

    Examples
    --------
    The second event has no code: the problem names the column, the rule, the count and
    the row position, never a value.

    >>> import pandas as pd
    >>> from pophealth.contracts.exceptions import SchemaError
    >>> from pophealth.contracts.schema import validate_events
    >>> events = pd.DataFrame({"patient_id": [1, 2], "code": ["I21", None],
    ...                        "code_system": "icd10"})
    >>> try:
    ...     validate_events(events)
    ... except SchemaError as exc:
    ...     [(p["column"], p["rule"], p["count"], p["positions"]) for p in exc.problems]
    [('code', 'not_null', 1, [1])]
    """

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class CodelistError(PopHealthError, ValueError):
    """A code list or index definition is malformed, or input codes are mostly unrecognised.

    Examples
    --------
    >>> from pophealth.core.codelists import load_codelist
    >>> load_codelist("no_such_list")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.CodelistError: unknown code list 'no_such_list'; ...
    """


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
    """Data were usable but something was excluded or looked wrong; the message gives counts.

    Don't silence it: the counts it carries are also in the result's report (e.g.
    ``flags.attrs["pophealth_reports"]``), and a job records them as notes in its
    manifest. To collect rather than print them, record them in a scoped block.

    Examples
    --------
    One event is for a patient not on the register: it is excluded and counted.

    >>> import warnings
    >>> import pandas as pd
    >>> from pophealth.contracts.exceptions import DataQualityWarning
    >>> from pophealth.core.conditions import flag_conditions
    >>> register = pd.DataFrame({"patient_id": [1, 2]})
    >>> events = pd.DataFrame({"patient_id": [1, 9], "code": ["I21", "I21"],
    ...                        "code_system": "icd10", "date": pd.Timestamp("2024-01-01")})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", DataQualityWarning)
    ...     flags = flag_conditions(events, "charlson_quan2005_icd10", register=register,
    ...                             index_date="2025-04-01")
    >>> flags["mi"].tolist(), any(issubclass(w.category, DataQualityWarning) for w in caught)
    ([True, False], True)
    """


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
