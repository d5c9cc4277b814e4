"""Planning the next +fs.N (pure)."""

from __future__ import annotations

import pytest
from packaging.version import Version

from fromsource.errors import RemediateError
from fromsource.remediate.plan import next_revision, plan_remediation
from fromsource.remediate.series import find_series


def test_next_revision() -> None:
    assert next_revision([], "2.0.0") == 1
    published = ["2.0.0+fs.1", "2.0.0+fs.3", "2.0.1+fs.7", "2.0.0", "2.0.0+other.9", "bad!"]
    assert next_revision(published, "2.0.0") == 4
    assert next_revision(published, Version("2.0")) == 4  # PEP 440 equal release
    assert next_revision(published, "2.0.1") == 8


def test_plan_for_the_shipped_flask_series() -> None:
    series = find_series("flask", "2.0.0")
    assert series is not None
    plan = plan_remediation(series, ["2.0.0+fs.1"])
    assert str(plan.version) == "2.0.0+fs.2" and plan.local_label == "fs.2"
    assert plan.requirement == "flask==2.0.0"
    [info] = plan.patch_infos
    assert info.name == series.patches[0].name and info.sha256 == series.patches[0].sha256
    assert "CVE-2023-30861" in info.fixes
    assert plan_remediation(series, [], revision=5).local_label == "fs.5"
    with pytest.raises(RemediateError, match="already published"):
        plan_remediation(series, ["2.0.0+fs.1"], revision=1)
    with pytest.raises(RemediateError, match="1 or more"):
        plan_remediation(series, [], revision=0)
