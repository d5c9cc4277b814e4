"""Which release to build, where its sdist is, and whether it is already published.

The lookups a build makes before anything is fetched, against the upstream
index (:func:`pick_version` and, per target Python, :func:`pick_versions`;
:func:`find_sdist`) and our own repository (:func:`published_wheel`,
:func:`published_wheels`, :func:`published_requires`).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import sys_tags
from packaging.version import Version

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits
from fromsource.build.deps import best_wheel
from fromsource.build.targets import Target, supported_tags
from fromsource.build.upstream import Upstream
from fromsource.build.upstream_pages import dist_of, python_ok
from fromsource.dist.metadata import requires_dist
from fromsource.errors import BuildError, UpstreamError
from fromsource.indexclient import ProjectFile, redact
from fromsource.store.blobs import BlobStore
from fromsource.store.catalog import FileInfo, project_files
from fromsource.store.db import Database

__all__ = [
    "find_sdist",
    "parse_requirement",
    "pick_version",
    "pick_versions",
    "pinned_version",
    "published_requires",
    "published_wheel",
    "published_wheels",
]


def parse_requirement(text: str) -> Requirement:
    """*text* as a requirement; BuildError naming it when it is not one."""
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise BuildError(f"{text!r} is not a requirement such as flask==2.0.0 ({exc})") from exc

def pinned_version(requirement: Requirement) -> str | None:
    """The version *requirement* pins (``==1.0``, ``===1.0``), or None for a range."""
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def pick_versions(
    upstream: Upstream, requirement: Requirement, pythons: Sequence[str]
) -> dict[str, str]:
    """For each of *pythons* (full versions), the version to build for *requirement*: the
    pinned one, else the newest match with an sdist whose Requires-Python admits it.

    The project page is read once.  A Python no release admits is left out;
    raises UpstreamError (category ``not-found``) when none is admitted.
    """
    pinned = pinned_version(requirement)
    if pinned is not None:
        return dict.fromkeys(pythons, pinned)
    found: dict[str, Version] = {}
    for file in upstream.project_files(requirement.name):
        dist = dist_of(file, requirement.name)
        if dist is None or dist.kind != "sdist" or file.yanked:
            continue
        if not requirement.specifier.contains(dist.version):
            continue
        for python in pythons:
            if python_ok(file, python) and (python not in found or dist.version > found[python]):
                found[python] = dist.version
    if not found:
        raise UpstreamError(
            f"no release of {requirement.name} matching {requirement.specifier or 'any version'} "
            f"with an sdist on {redact(upstream.base_url)}",
            category="not-found",
        )
    return {python: str(version) for python, version in found.items()}


def pick_version(
    upstream: Upstream, requirement: Requirement, pythons: Sequence[str] | None = None
) -> str:
    """The version to build for *requirement*: the pinned one, else the newest match with an
    sdist whose Requires-Python admits one of *pythons* (full versions; default: the running
    Python's).

    Raises UpstreamError (category ``not-found``) when nothing matches.
    """
    pinned = pinned_version(requirement)
    if pinned is not None:
        return pinned
    wanted = list(pythons) if pythons else [".".join(platform.python_version_tuple()[:2])]
    return str(max(Version(v) for v in pick_versions(upstream, requirement, wanted).values()))


def find_sdist(upstream: Upstream, project: str, version: str) -> ProjectFile:
    """The sdist of the release; UpstreamError with category no-sdist or not-found."""
    try:
        return upstream.find_sdist(project, version)
    except UpstreamError as exc:
        if set(exc.facts) != {"project", "version"}:
            raise
        wanted = Version(version)
        exists = any(
            (dist := dist_of(f, project)) is not None and dist.version == wanted
            for f in upstream.project_files(project)
        )
        category = "no-sdist" if exists else "not-found"
        raise UpstreamError(exc.message, category=category, **exc.facts) from exc


def published_wheels(db: Database, repo: str, project: str, version: str) -> list[FileInfo]:
    """Every wheel of *project* *version* published in *repo*."""
    wanted = Version(version)
    return [
        info
        for info in project_files(db, repo, project)
        if info.kind == "wheel" and Version(info.version) == wanted
    ]


def published_wheel(
    db: Database, repo: str, project: str, version: str, target: Target | None = None
) -> FileInfo | None:
    """The wheel of *project* *version* in *repo* that *target* would install, if any
    (default: the running interpreter).

    A wheel for another platform or interpreter does not count.
    """
    candidates = published_wheels(db, repo, project, version)
    tags = list(supported_tags(target)) if target is not None else list(sys_tags())
    index = best_wheel([c.filename for c in candidates], tags)
    return None if index is None else candidates[index]


def published_requires(
    blobs: BlobStore, info: FileInfo, limits: OutputLimits = DEFAULT_LIMITS
) -> tuple[str, ...]:
    """The Requires-Dist of a published wheel, from its ``.metadata`` blob (empty without one)."""
    if info.metadata_sha256 and blobs.exists(info.metadata_sha256):
        return requires_dist(blobs.read_bytes(info.metadata_sha256, limit=limits.metadata_bytes))
    return ()
