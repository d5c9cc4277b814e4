"""Known vulnerabilities of verified and unverified packages, for the report.

Pure: matching itself is ``fromsource.remediate.match.classify`` (OSV
semantics; a local ``X.Y.Z+fs.N`` is matched as ``X.Y.Z``, and advisories
whose id or alias its attested patches fix are moved to *fixed*).  Here the
result becomes report values, with the upstream versions that fix each
advisory and the remediated versions on the index whose attested patches do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from packaging.version import InvalidVersion, Version

from fromsource.dist.names import ProjectName, normalize
from fromsource.errors import RemediateError, VerifyError
from fromsource.remediate.match import classify
from fromsource.remediate.osv import Advisory, load_advisories
from fromsource.verify.model import VulnerabilityFinding

__all__ = ["by_project", "findings", "read_advisories"]


def read_advisories(folder: Path) -> list[Advisory]:
    """The OSV advisories (JSON or YAML) below *folder*; VerifyError naming a bad file."""
    if not folder.is_dir():
        raise VerifyError(f"{folder}: --advisories must be a folder of OSV files",
                          path=str(folder))
    try:
        return load_advisories(folder)
    except RemediateError as exc:
        raise VerifyError(f"{exc.message}; fix or remove that file", path=str(folder)) from exc


def by_project(advisories: Iterable[Advisory]) -> dict[ProjectName, list[Advisory]]:
    """Advisories grouped by each PyPI project they name (so many packages match fast)."""
    grouped: dict[ProjectName, list[Advisory]] = {}
    for advisory in advisories:
        for project in advisory.projects:
            grouped.setdefault(project, []).append(advisory)
    return grouped


def _later_fixes(advisory: Advisory, project: str, version: Version) -> tuple[str, ...]:
    public = Version(version.public)
    later: list[tuple[Version, str]] = []
    for text in advisory.fixed_versions(project):
        try:
            parsed = Version(text)
        except InvalidVersion:
            continue
        if parsed > public:
            later.append((parsed, text))
    return tuple(text for _v, text in sorted(later))


def findings(
    project: str,
    version: str,
    advisories: Sequence[Advisory],
    fixes: Collection[str] = (),
    remediations: Mapping[str, Collection[str]] | None = None,
) -> tuple[VulnerabilityFinding, ...]:
    """The advisories about *project* at *version*, affecting or fixed by its attested patches.

    *fixes* are the ids the version's attested patches fix (empty unless the
    package verified); *remediations* maps remediated versions on the index
    to the ids their attested patches fix.  Unparseable versions match nothing.
    """
    try:
        parsed = Version(version)
    except InvalidVersion:
        return ()
    split = classify(advisories, project, parsed, fixes=fixes)
    out: list[VulnerabilityFinding] = []
    groups: tuple[tuple[Literal["affected", "fixed-by-patch"], tuple[Advisory, ...]], ...] = (
        ("affected", split.affecting),
        ("fixed-by-patch", split.fixed),
    )
    for state, group in groups:
        for advisory in group:
            remediated = tuple(
                v for v, ids in sorted((remediations or {}).items())
                if advisory.ids & frozenset(ids) and v != version
            )
            out.append(
                VulnerabilityFinding(
                    id=advisory.id,
                    aliases=advisory.aliases,
                    summary=advisory.title,
                    state=state,
                    fixed_in=_later_fixes(advisory, normalize(project), parsed),
                    remediated_in=remediated,
                )
            )
    return tuple(out)
