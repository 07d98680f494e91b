"""``import pophealth as ph`` keeps every public name it had before the subpackage layout.

BEFORE is the ``pophealth.__all__`` of release 0.1.0 (commit 99e7068, flat modules),
written out here so that a name dropped from the root cannot go unnoticed.
"""

from __future__ import annotations

import importlib

import pytest

import pophealth as ph

BEFORE = """
__version__ ESP2013_BANDS age_band aggregate_by_area ci_long crude_rate dsr esp2013
funnel_limits isr proportion sii suppress Codelist CodelistError ConfigError
DataQualityWarning PopHealthError SchemaError apply_hierarchy cambridge_score charlson
condition_count efi elixhauser flag_conditions hfrs list_codelists load_codelist load_index
multimorbidity score_dataset calibration_intercept_slope calibration_table evaluate_risk
risk_groups make_features load_model read_model_metadata save_model CoxRiskModel RiskModel
survival_target risk_tiers RTM_CAUTION CostConcentration SelectionRule cost_concentration
high_cost_cohort next_period_comparison period_cost persistent_high_cost predicted_high_cost
rising_risk select_caseload JobConfig JobResult read_caseload run_job key_fingerprint
pseudonymise ClusterSegments cluster_segments utilisation_features SegmentRules load_rules
segment_summary strata assign_segments bridges_to_health rule_matches segment_flags
score_patients Population make_population write_population validate_activity
validate_events validate_register
""".split()


def test_all_names_of_0_1_0_are_still_exported():
    assert len(BEFORE) == 79
    missing = sorted(set(BEFORE) - set(ph.__all__))
    assert missing == []
    assert all(hasattr(ph, name) for name in ph.__all__)


def test_no_duplicate_exports():
    assert len(ph.__all__) == len(set(ph.__all__))


@pytest.mark.parametrize("part", ["contracts", "core", "segments", "risk", "cohorts", "areas",
                                  "jobs", "engines", "synthetic", "plots"])
def test_root_names_are_the_parts_own_objects(part):
    """Each part re-exports its public names, and the root hands out the same objects."""
    mod = importlib.import_module(f"pophealth.{part}")
    assert mod.__all__, part
    for name in mod.__all__:
        assert hasattr(mod, name), f"pophealth.{part}.{name}"
        if name in ph.__all__:
            assert getattr(ph, name) is getattr(mod, name), name


def test_version_comes_from_package_metadata():
    from importlib.metadata import version

    assert ph.__version__ == version("pophealth")
