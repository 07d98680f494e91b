"""Risk: features, risk models, tiers, evaluation and model files.

Imports :mod:`pophealth.core` and :mod:`pophealth.contracts` only; scikit-learn and
lifelines are loaded by the modules that need them, and the model classes are loaded on
first use (``pophealth.risk.RiskModel`` imports :mod:`~pophealth.risk.models`, and with it
scikit-learn, only when asked for), so that importing this part stays fast.

* :mod:`~pophealth.risk.features` -- ``make_features`` from the patient table (inputs
  checked first by :mod:`~pophealth.risk.feature_inputs`).
* :mod:`~pophealth.risk.models` -- ``RiskModel`` (calibrated gradient boosting or
  logistic regression), ``CoxRiskModel``, ``survival_target``.
* :mod:`~pophealth.risk.tiers` -- ``risk_tiers`` and ``top_fraction``.
* :mod:`~pophealth.risk.evaluation` -- ``evaluate_risk``, calibration, subgroup audit.
* :mod:`~pophealth.risk.model_io` -- ``save_model``, ``load_model``, ``read_model_metadata``
  (no pickle: the model is plain data, see :mod:`~pophealth.risk.model_state`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pophealth.risk.evaluation import (
    calibration_intercept_slope,
    calibration_table,
    evaluate_risk,
    risk_groups,
)
from pophealth.risk.features import BASE_FEATURES, make_features
from pophealth.risk.model_io import load_model, read_model_metadata, save_model
from pophealth.risk.tiers import risk_tiers, top_fraction

if TYPE_CHECKING:  # the names below are loaded on first use (see __getattr__)
    from pophealth.risk.models import CoxRiskModel, RiskModel, survival_target

#: Names loaded on first use: name -> module (these need scikit-learn at class definition).
_LAZY = {
    "CoxRiskModel": "pophealth.risk.models",
    "RiskModel": "pophealth.risk.models",
    "survival_target": "pophealth.risk.models",
}

__all__ = [
    "BASE_FEATURES",
    "CoxRiskModel",
    "RiskModel",
    "calibration_intercept_slope",
    "calibration_table",
    "evaluate_risk",
    "load_model",
    "make_features",
    "read_model_metadata",
    "risk_groups",
    "risk_tiers",
    "save_model",
    "survival_target",
    "top_fraction",
]


def __getattr__(name: str):
    """Load a model class on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pophealth.risk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
