"""Vulnerability findings: local versions matched as their public part minus attested fixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.dist.names import normalize
from fromsource.errors import VerifyError
from fromsource.verify.vulns import by_project, findings, read_advisories

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "advisories"

OSV = """\
id: PYSEC-2099-1
summary: Cookie leak
aliases: [CVE-2099-1, GHSA-xxxx-yyyy-zzzz]
affected:
- package: {name: demo-pkg, ecosystem: PyPI}
  ranges:
  - type: ECOSYSTEM
    events:
    - introduced: '0'
    - fixed: 1.2.0
    - introduced: 2.0.0
    - fixed: 2.0.3
"""


@pytest.fixture
def advisories(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "demo-pkg").mkdir()
    (tmp_path / "demo-pkg" / "PYSEC-2099-1.yaml").write_text(OSV)
    return read_advisories(tmp_path)


def test_plain_and_local_versions(advisories) -> None:  # type: ignore[no-untyped-def]
    (plain,) = findings("demo-pkg", "1.0", advisories)
    assert plain.state == "affected" and plain.fixed_in == ("1.2.0", "2.0.3")
    assert plain.aliases == ("CVE-2099-1", "GHSA-xxxx-yyyy-zzzz")
    # A local version is matched as its public part (pip-audit would skip it).
    (local,) = findings("demo-pkg", "1.0+fs.1", advisories)
    assert local.state == "affected"
    # ... minus what its attested patches fix, by id or by alias.
    (fixed,) = findings("demo-pkg", "1.0+fs.1", advisories, fixes=("CVE-2099-1",))
    assert fixed.state == "fixed-by-patch"
    assert findings("demo-pkg", "1.2.0", advisories) == ()
    assert findings("demo-pkg", "2.0.1", advisories)[0].fixed_in == ("2.0.3",)
    assert findings("other", "1.0", advisories) == ()


def test_remediated_versions_are_named(advisories) -> None:  # type: ignore[no-untyped-def]
    remediations = {"1.0+fs.1": frozenset({"PYSEC-2099-1"}), "1.0+fs.2": frozenset({"X"})}
    (finding,) = findings("demo-pkg", "1.0", advisories, remediations=remediations)
    assert finding.remediated_in == ("1.0+fs.1",)


def test_by_project_groups(advisories) -> None:  # type: ignore[no-untyped-def]
    assert list(by_project(advisories)) == ["demo-pkg"]


def test_bad_advisory_folder(tmp_path: Path) -> None:
    with pytest.raises(VerifyError):
        read_advisories(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(VerifyError, match="bad.json"):
        read_advisories(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared advisory snapshot is not here")
def test_shared_snapshot_flask() -> None:
    grouped = by_project(read_advisories(SHARED / "flask"))
    found = findings("flask", "2.0.0+fs.1", grouped[normalize("flask")], fixes=("CVE-2023-30861",))
    states = {f.id: f.state for f in found}
    assert states["PYSEC-2023-62"] == "fixed-by-patch"
