"""pophealth: population health management for English NHS Local Care Partnerships.

``import pophealth as ph`` gives the public API: validation of register/events/activity
tables, condition flags from coded events, comorbidity and frailty indices, synthetic
populations and area statistics. See the README for the data flow.
"""

from pophealth.areas import (
    ESP2013_BANDS,
    age_band,
    aggregate_by_area,
    ci_long,
    crude_rate,
    dsr,
    esp2013,
    funnel_limits,
    isr,
    proportion,
    sii,
    suppress,
)
from pophealth.clusters import ClusterSegments, cluster_segments, utilisation_features
from pophealth.codelists import Codelist, list_codelists, load_codelist
from pophealth.cohorts import (
    RTM_CAUTION,
    CostConcentration,
    SelectionRule,
    cost_concentration,
    high_cost_cohort,
    next_period_comparison,
    period_cost,
    persistent_high_cost,
    predicted_high_cost,
    rising_risk,
    select_caseload,
)
from pophealth.conditions import flag_conditions
from pophealth.evaluation import (
    calibration_intercept_slope,
    calibration_table,
    evaluate_risk,
    risk_groups,
)
from pophealth.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    PopHealthError,
    SchemaError,
)
from pophealth.features import make_features
from pophealth.indices import (
    apply_hierarchy,
    cambridge_score,
    charlson,
    condition_count,
    efi,
    elixhauser,
    hfrs,
    load_index,
    multimorbidity,
)
from pophealth.jobs import JobConfig, JobResult, read_caseload, run_job
from pophealth.model_io import load_model, read_model_metadata, save_model
from pophealth.pipeline import score_patients
from pophealth.pseudonymise import key_fingerprint, pseudonymise
from pophealth.risk import CoxRiskModel, RiskModel, survival_target
from pophealth.schema import validate_activity, validate_events, validate_register
from pophealth.segment_rules import SegmentRules, load_rules
from pophealth.segment_tables import segment_summary, strata
from pophealth.segments import assign_segments, bridges_to_health, rule_matches, segment_flags
from pophealth.streaming import score_dataset
from pophealth.synthetic import Population, make_population, write_population
from pophealth.tiers import risk_tiers

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ESP2013_BANDS",
    "age_band",
    "aggregate_by_area",
    "ci_long",
    "crude_rate",
    "dsr",
    "esp2013",
    "funnel_limits",
    "isr",
    "proportion",
    "sii",
    "suppress",
    "Codelist",
    "CodelistError",
    "ConfigError",
    "DataQualityWarning",
    "PopHealthError",
    "SchemaError",
    "apply_hierarchy",
    "cambridge_score",
    "charlson",
    "condition_count",
    "efi",
    "elixhauser",
    "flag_conditions",
    "hfrs",
    "list_codelists",
    "load_codelist",
    "load_index",
    "multimorbidity",
    "score_dataset",
    "calibration_intercept_slope",
    "calibration_table",
    "evaluate_risk",
    "risk_groups",
    "make_features",
    "load_model",
    "read_model_metadata",
    "save_model",
    "CoxRiskModel",
    "RiskModel",
    "survival_target",
    "risk_tiers",
    "RTM_CAUTION",
    "CostConcentration",
    "SelectionRule",
    "cost_concentration",
    "high_cost_cohort",
    "next_period_comparison",
    "period_cost",
    "persistent_high_cost",
    "predicted_high_cost",
    "rising_risk",
    "select_caseload",
    "JobConfig",
    "JobResult",
    "read_caseload",
    "run_job",
    "key_fingerprint",
    "pseudonymise",
    "ClusterSegments",
    "cluster_segments",
    "utilisation_features",
    "SegmentRules",
    "load_rules",
    "segment_summary",
    "strata",
    "assign_segments",
    "bridges_to_health",
    "rule_matches",
    "segment_flags",
    "score_patients",
    "Population",
    "make_population",
    "write_population",
    "validate_activity",
    "validate_events",
    "validate_register",
]
