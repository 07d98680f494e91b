"""Segments: each patient in one population segment, and summaries per segment.

Rule-based Bridges to Health segmentation (rules are data: ``data/segments/``), strata,
per-segment summaries and data-driven clusters. Imports :mod:`pophealth.core` and
:mod:`pophealth.contracts` only.

* :mod:`~pophealth.segments.bridges` -- ``segment_flags``, ``assign_segments``,
  ``rule_matches``, ``bridges_to_health``.
* :mod:`~pophealth.segments.rules` -- ``SegmentRules``, ``load_rules``.
* :mod:`~pophealth.segments.tables` -- ``strata``, ``segment_summary``.
* :mod:`~pophealth.segments.clusters` -- ``cluster_segments``, ``utilisation_features``.
"""

from pophealth.segments.bridges import (
    assign_segments,
    bridges_to_health,
    rule_matches,
    segment_flags,
)
from pophealth.segments.clusters import ClusterSegments, cluster_segments, utilisation_features
from pophealth.segments.rules import SegmentRules, load_rules
from pophealth.segments.tables import (
    AGE_STRATA,
    MULTIMORBIDITY_STRATA,
    segment_summary,
    strata,
)

__all__ = [
    "AGE_STRATA",
    "MULTIMORBIDITY_STRATA",
    "ClusterSegments",
    "SegmentRules",
    "assign_segments",
    "bridges_to_health",
    "cluster_segments",
    "load_rules",
    "rule_matches",
    "segment_flags",
    "segment_summary",
    "strata",
    "utilisation_features",
]
