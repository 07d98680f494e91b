"""Cohorts: high-cost and rising-risk cohorts, cost concentration, caseload selection.

Imports :mod:`pophealth.core` and :mod:`pophealth.contracts` only.

* :mod:`~pophealth.cohorts.high_cost` -- ``period_cost``, ``high_cost_cohort``,
  ``persistent_high_cost``, ``predicted_high_cost``, ``rising_risk``,
  ``next_period_comparison`` (the regression-to-the-mean comparison).
* :mod:`~pophealth.cohorts.concentration` -- ``cost_concentration``.
* :mod:`~pophealth.cohorts.caseload` -- ``SelectionRule``, ``select_caseload``.
* :mod:`~pophealth.cohorts.ranking` -- the shared tie rule (value desc, then patient id).
"""

from pophealth.cohorts.caseload import (
    DEFAULT_FACTORS,
    Condition,
    SelectionRule,
    describe_reasons,
    select_caseload,
)
from pophealth.cohorts.concentration import CostConcentration, cost_concentration
from pophealth.cohorts.high_cost import (
    RTM_CAUTION,
    high_cost_cohort,
    next_period_comparison,
    period_cost,
    persistent_high_cost,
    predicted_high_cost,
    rising_risk,
)
from pophealth.cohorts.ranking import top_fraction_mask

__all__ = [
    "DEFAULT_FACTORS",
    "RTM_CAUTION",
    "Condition",
    "CostConcentration",
    "SelectionRule",
    "cost_concentration",
    "describe_reasons",
    "high_cost_cohort",
    "next_period_comparison",
    "period_cost",
    "persistent_high_cost",
    "predicted_high_cost",
    "rising_risk",
    "select_caseload",
    "top_fraction_mask",
]
