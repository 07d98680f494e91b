"""pophealth: population health management for English NHS Local Care Partnerships.

``import pophealth as ph`` gives the public API; this module only re-exports names from
the parts, which are subpackages with imports pointing down only::

    cli, demo          the command line and the built-in demonstration
    jobs               the scheduled stratification job
    engines            Parquet/Arrow I/O, streaming, Spark
    plots              matplotlib helpers, one module per part
    segments, risk, cohorts, areas    the analyses
    synthetic          synthetic populations with ground truth
    core               codes, code lists, flags, indices, patient table, batch function
    contracts          table contracts, exceptions, NHS number

Every public name is loaded on first use (PEP 562 ``__getattr__``): ``import pophealth``
reads no data and imports neither pandas nor scikit-learn, lifelines, scipy or matplotlib,
so ``pophealth --version`` and ``import pophealth as ph`` are quick; ``ph.charlson`` imports
:mod:`pophealth.core` when first used, ``ph.RiskModel`` scikit-learn. The ``TYPE_CHECKING``
block below states the same names for type checkers and editors.

See the README's Architecture section.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pophealth._version import __version__

if TYPE_CHECKING:  # the same names as _LAZY, for type checkers and editors
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
    from pophealth.contracts import (
        CodelistError,
        ConfigError,
        DataQualityWarning,
        PopHealthError,
        SchemaError,
        normalise_sex,
        parse_index_date,
        validate_activity,
        validate_events,
        validate_register,
    )
    from pophealth.core import (
        Codelist,
        apply_hierarchy,
        cambridge_score,
        charlson,
        condition_count,
        efi,
        elixhauser,
        flag_conditions,
        hfrs,
        list_codelists,
        load_codelist,
        load_index,
        multimorbidity,
        patient_table,
        score_patients,
    )
    from pophealth.engines import (
        read_ecds,
        read_gp_events,
        read_gp_register,
        read_sus_apc,
        read_sus_op,
        score_dataset,
    )
    from pophealth.jobs import (
        JobConfig,
        JobResult,
        key_fingerprint,
        pseudonymise,
        read_caseload,
        run_job,
    )
    from pophealth.risk import (
        CoxRiskModel,
        RiskModel,
        calibration_intercept_slope,
        calibration_table,
        evaluate_risk,
        load_model,
        make_features,
        read_model_metadata,
        risk_groups,
        risk_tiers,
        save_model,
        survival_target,
    )
    from pophealth.segments import (
        ClusterSegments,
        SegmentRules,
        assign_segments,
        bridges_to_health,
        cluster_segments,
        load_rules,
        rule_matches,
        segment_flags,
        segment_summary,
        strata,
        utilisation_features,
    )
    from pophealth.synthetic import (
        Population,
        make_population,
        read_population,
        write_population,
    )

#: Public name -> the part (subpackage) that defines it; loaded on first use.
_LAZY = {
    "ESP2013_BANDS": "pophealth.areas",
    "age_band": "pophealth.areas",
    "aggregate_by_area": "pophealth.areas",
    "ci_long": "pophealth.areas",
    "crude_rate": "pophealth.areas",
    "dsr": "pophealth.areas",
    "esp2013": "pophealth.areas",
    "funnel_limits": "pophealth.areas",
    "isr": "pophealth.areas",
    "proportion": "pophealth.areas",
    "sii": "pophealth.areas",
    "suppress": "pophealth.areas",
    "RTM_CAUTION": "pophealth.cohorts",
    "CostConcentration": "pophealth.cohorts",
    "SelectionRule": "pophealth.cohorts",
    "cost_concentration": "pophealth.cohorts",
    "high_cost_cohort": "pophealth.cohorts",
    "next_period_comparison": "pophealth.cohorts",
    "period_cost": "pophealth.cohorts",
    "persistent_high_cost": "pophealth.cohorts",
    "predicted_high_cost": "pophealth.cohorts",
    "rising_risk": "pophealth.cohorts",
    "select_caseload": "pophealth.cohorts",
    "CodelistError": "pophealth.contracts",
    "ConfigError": "pophealth.contracts",
    "DataQualityWarning": "pophealth.contracts",
    "PopHealthError": "pophealth.contracts",
    "SchemaError": "pophealth.contracts",
    "validate_activity": "pophealth.contracts",
    "validate_events": "pophealth.contracts",
    "validate_register": "pophealth.contracts",
    "Codelist": "pophealth.core",
    "apply_hierarchy": "pophealth.core",
    "cambridge_score": "pophealth.core",
    "charlson": "pophealth.core",
    "condition_count": "pophealth.core",
    "efi": "pophealth.core",
    "elixhauser": "pophealth.core",
    "flag_conditions": "pophealth.core",
    "hfrs": "pophealth.core",
    "list_codelists": "pophealth.core",
    "load_codelist": "pophealth.core",
    "load_index": "pophealth.core",
    "multimorbidity": "pophealth.core",
    "patient_table": "pophealth.core",
    "score_patients": "pophealth.core",
    "score_dataset": "pophealth.engines",
    "read_ecds": "pophealth.engines",
    "read_gp_events": "pophealth.engines",
    "read_gp_register": "pophealth.engines",
    "read_sus_apc": "pophealth.engines",
    "read_sus_op": "pophealth.engines",
    "normalise_sex": "pophealth.contracts",
    "parse_index_date": "pophealth.contracts",
    "JobConfig": "pophealth.jobs",
    "JobResult": "pophealth.jobs",
    "key_fingerprint": "pophealth.jobs",
    "pseudonymise": "pophealth.jobs",
    "read_caseload": "pophealth.jobs",
    "run_job": "pophealth.jobs",
    "CoxRiskModel": "pophealth.risk",
    "RiskModel": "pophealth.risk",
    "calibration_intercept_slope": "pophealth.risk",
    "calibration_table": "pophealth.risk",
    "evaluate_risk": "pophealth.risk",
    "load_model": "pophealth.risk",
    "make_features": "pophealth.risk",
    "read_model_metadata": "pophealth.risk",
    "risk_groups": "pophealth.risk",
    "risk_tiers": "pophealth.risk",
    "save_model": "pophealth.risk",
    "survival_target": "pophealth.risk",
    "ClusterSegments": "pophealth.segments",
    "SegmentRules": "pophealth.segments",
    "assign_segments": "pophealth.segments",
    "bridges_to_health": "pophealth.segments",
    "cluster_segments": "pophealth.segments",
    "load_rules": "pophealth.segments",
    "rule_matches": "pophealth.segments",
    "segment_flags": "pophealth.segments",
    "segment_summary": "pophealth.segments",
    "strata": "pophealth.segments",
    "utilisation_features": "pophealth.segments",
    "Population": "pophealth.synthetic",
    "make_population": "pophealth.synthetic",
    "read_population": "pophealth.synthetic",
    "write_population": "pophealth.synthetic",
}

#: The parts, importable as attributes (``ph.areas``) like any subpackage.
_PARTS = frozenset({"areas", "cohorts", "contracts", "core", "engines", "jobs", "plots",
                    "risk", "segments", "synthetic"})

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
    "read_ecds",
    "read_gp_events",
    "read_gp_register",
    "read_sus_apc",
    "read_sus_op",
    "normalise_sex",
    "parse_index_date",
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
    "patient_table",
    "read_population",
    "Population",
    "make_population",
    "write_population",
    "validate_activity",
    "validate_events",
    "validate_register",
]


def __getattr__(name: str):
    """Load a public name (or a part) on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _PARTS:
        value = importlib.import_module(f"pophealth.{name}")
    else:
        raise AttributeError(f"module 'pophealth' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
