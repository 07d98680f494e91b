"""Contracts: the table contracts every part relies on, the exceptions, the NHS number.

The bottom of the house: imports nothing else of pophealth.

* :mod:`~pophealth.contracts.schema` -- ``validate_register``, ``validate_events``,
  ``validate_activity``: clear errors naming column, rule, count and positions (never
  values), and counts of what was excluded.
* :mod:`~pophealth.contracts.exceptions` -- ``PopHealthError`` and its kinds,
  ``DataQualityWarning``.
* :mod:`~pophealth.contracts.nhs_number` -- Modulus 11 check, synthetic numbers from the
  never-issued 999 range.
* :mod:`~pophealth.contracts.numeric` -- ``validate_numeric``: the ``numeric`` rule every
  entry point applies to its number columns before any arithmetic.
* :mod:`~pophealth.contracts.ordinal` -- ordered comparisons on band/label columns in their
  known order, whatever the dtype (never alphabetical).
"""

from pophealth.contracts.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    PopHealthError,
    SchemaError,
)
from pophealth.contracts.nhs_number import is_valid_nhs_number, make_nhs_numbers
from pophealth.contracts.numeric import validate_numeric
from pophealth.contracts.schema import (
    normalise_sex,
    parse_index_date,
    validate_activity,
    validate_events,
    validate_register,
)

__all__ = [
    "CodelistError",
    "ConfigError",
    "DataQualityWarning",
    "PopHealthError",
    "SchemaError",
    "is_valid_nhs_number",
    "make_nhs_numbers",
    "normalise_sex",
    "parse_index_date",
    "validate_activity",
    "validate_events",
    "validate_numeric",
    "validate_register",
]
