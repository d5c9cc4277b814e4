"""Remediation: OSV advisories, version matching, patch series, ``+fs.N`` builds, OpenVEX.

See ``docs/remediation.md``.  The I/O entry points live in
:mod:`fromsource.remediate.store` (advisories in the database),
:mod:`fromsource.remediate.feed` (published remediated releases) and
:mod:`fromsource.remediate.run` (building a series through the pipeline).
"""

from fromsource.remediate.match import VersionAdvisories, classify, is_affected
from fromsource.remediate.openvex import (
    RemediatedRelease,
    VexStatement,
    openvex_document,
    remediation_statements,
)
from fromsource.remediate.osv import Advisory, load_advisories, parse_advisory
from fromsource.remediate.plan import RemediationPlan, next_revision, plan_remediation
from fromsource.remediate.series import PatchSeries, SeriesPatch, find_series, list_series

__all__ = [
    "Advisory",
    "PatchSeries",
    "RemediatedRelease",
    "RemediationPlan",
    "SeriesPatch",
    "VersionAdvisories",
    "VexStatement",
    "classify",
    "find_series",
    "is_affected",
    "list_series",
    "load_advisories",
    "next_revision",
    "openvex_document",
    "parse_advisory",
    "plan_remediation",
    "remediation_statements",
]
