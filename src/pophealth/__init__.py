"""pophealth: population health management for English NHS Local Care Partnerships."""

from pophealth.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    PopHealthError,
    SchemaError,
)
from pophealth.schema import validate_activity, validate_events, validate_register

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "CodelistError",
    "ConfigError",
    "DataQualityWarning",
    "PopHealthError",
    "SchemaError",
    "validate_activity",
    "validate_events",
    "validate_register",
]
