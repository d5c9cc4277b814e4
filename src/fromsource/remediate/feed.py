"""Reading what ``python-remediated`` holds: releases and the patches each was built with.

The I/O side of the OpenVEX feed and of ``advisories list``: the catalog
gives the published files; a file's provenance (when a blob store is given)
says which patches went into it, and the shipped series is the fallback.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from packaging.version import InvalidVersion, Version

from fromsource.bounded import DEFAULT_LIMITS
from fromsource.dist.names import fs_revision
from fromsource.errors import FromsourceError
from fromsource.provenance.dsse import parse_envelope
from fromsource.provenance.pep740 import from_pep740
from fromsource.provenance.statement import parse_statement
from fromsource.remediate.openvex import RemediatedRelease
from fromsource.remediate.series import find_series
from fromsource.store.blobs import BlobStore
from fromsource.store.catalog import FileInfo, list_projects, project_files
from fromsource.store.db import Database, aware

__all__ = ["REMEDIATED_REPO", "published_releases", "release_patches"]

REMEDIATED_REPO = "python-remediated"

Patches = tuple[tuple[str, tuple[str, ...]], ...]


def _patches_from_provenance(blobs: BlobStore, info: FileInfo) -> Patches | None:
    if info.provenance_sha256 is None:
        return None
    try:
        # The store keeps the DSSE envelope; the index wraps it in PEP 740 when serving.
        raw = blobs.read_bytes(info.provenance_sha256, limit=DEFAULT_LIMITS.document_bytes)
        document = json.loads(raw)
        envelope = (from_pep740(document) if "attestation_bundles" in document
                    else parse_envelope(document))
        attestation = parse_statement(base64.b64decode(envelope["payload"]))
    except (FromsourceError, ValueError, KeyError, TypeError):
        return None
    return tuple((p.name, tuple(p.fixes)) for p in attestation.patches)


def release_patches(
    files: list[FileInfo], *, blobs: BlobStore | None = None, series_root: Path | None = None
) -> Patches:
    """The patches one remediated version was built with: from the provenance of its
    files when *blobs* is given and one of them has it, else from the shipped series."""
    if blobs is not None:
        for info in sorted(files, key=lambda f: f.filename):
            found = _patches_from_provenance(blobs, info)
            if found is not None:
                return found
    if not files:
        return ()
    series = find_series(files[0].project, files[0].version, root=series_root)
    if series is None:
        return ()
    return tuple((p.name, p.fixes) for p in series.patches)


def published_releases(
    db: Database, blobs: BlobStore | None = None, *, series_root: Path | None = None,
    project: str | None = None,
) -> list[RemediatedRelease]:
    """Every ``+fs.N`` version in ``python-remediated`` (or only *project*'s) with its patches.

    Sorted by project then version.  Yanked files are left out; a version
    whose files are all yanked is not listed.
    """
    projects = [project] if project else list_projects(db, REMEDIATED_REPO)
    releases: list[RemediatedRelease] = []
    for name in projects:
        by_version: dict[str, list[FileInfo]] = {}
        for info in project_files(db, REMEDIATED_REPO, name):
            if not info.yanked:
                by_version.setdefault(info.version, []).append(info)
        for version, files in by_version.items():
            try:
                if fs_revision(Version(version)) is None:
                    continue
            except InvalidVersion:
                continue
            releases.append(RemediatedRelease(
                project=files[0].project,
                version=version,
                published=min(aware(f.upload_time) for f in files),
                patches=release_patches(files, blobs=blobs, series_root=series_root),
            ))
    return sorted(releases, key=lambda r: (r.project, Version(r.version)))
