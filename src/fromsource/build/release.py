"""Which release to build, where its sdist is, and whether it is already published.

The lookups a build makes before anything is fetched, against the upstream
index (:func:`pick_version`, :func:`find_sdist`) and our own repository
(:func:`published_wheel`, :func:`published_requires`).
"""

from __future__ import annotations

import platform

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.version import Version

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits
from fromsource.build.context import requires_dist
from fromsource.build.deps import best_wheel
from fromsource.build.upstream import Upstream
from fromsource.build.upstream_pages import UpstreamFile, dist_of, python_ok, redact
from fromsource.errors import UpstreamError
from fromsource.store.blobs import BlobStore
from fromsource.store.catalog import FileInfo, project_files
from fromsource.store.db import Database

__all__ = ["find_sdist", "pick_version", "published_requires", "published_wheel"]


def pick_version(upstream: Upstream, requirement: Requirement) -> str:
    """The version to build for *requirement*: the pinned one, else the newest match with an sdist.

    Raises UpstreamError (category ``not-found``) when nothing matches.
    """
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    python = ".".join(platform.python_version_tuple()[:2])
    versions = []
    for file in upstream.project_files(requirement.name):
        dist = dist_of(file, requirement.name)
        if dist is None or dist.kind != "sdist" or file.yanked or not python_ok(file, python):
            continue
        if requirement.specifier.contains(dist.version):
            versions.append(dist.version)
    if not versions:
        raise UpstreamError(
            f"no release of {requirement.name} matching {requirement.specifier or 'any version'} "
            f"with an sdist on {redact(upstream.base_url)}",
            category="not-found",
        )
    return str(max(versions))


def find_sdist(upstream: Upstream, project: str, version: str) -> UpstreamFile:
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


def published_wheel(db: Database, repo: str, project: str, version: str) -> FileInfo | None:
    """A wheel of *project* *version* in *repo* that this interpreter can use, if any.

    A wheel for another platform (built by another worker) does not count.
    """
    wanted = Version(version)
    candidates = [
        info
        for info in project_files(db, repo, project)
        if info.kind == "wheel" and Version(info.version) == wanted
    ]
    index = best_wheel([c.filename for c in candidates], list(sys_tags()))
    return None if index is None else candidates[index]


def published_requires(
    blobs: BlobStore, info: FileInfo, limits: OutputLimits = DEFAULT_LIMITS
) -> tuple[str, ...]:
    """The Requires-Dist of a published wheel, from its ``.metadata`` blob (empty without one)."""
    if info.metadata_sha256 and blobs.exists(info.metadata_sha256):
        return requires_dist(blobs.read_bytes(info.metadata_sha256, limit=limits.metadata_bytes))
    return ()
