"""Publishing a distribution file: blobs first, then one transaction.

A crash at any point leaves either nothing visible or everything: blobs are
written atomically before the row that points at them exists, and the row,
its metadata pointers and the change counter commit together.  Blobs left
behind by a crash before the commit are orphans that ``fsck`` removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits
from fromsource.config import REPOSITORIES
from fromsource.dist.distinfo import check_wheel
from fromsource.dist.names import Sha256, parse_filename
from fromsource.dist.sdistinfo import check_sdist
from fromsource.errors import (
    ImmutableFileError,
    NotPublishedError,
    PublishError,
    PublishStorageError,
    StoreError,
)
from fromsource.store.blobs import BlobStore, sha256_file
from fromsource.store.db import Database, bump_generation
from fromsource.store.models import FileRow


@dataclass(frozen=True)
class WheelMetadata:
    """What a wheel's METADATA says that the index needs."""

    raw: bytes
    name: str
    version: str
    requires_python: str | None


def read_wheel_metadata(path: Path, limits: OutputLimits = DEFAULT_LIMITS) -> WheelMetadata:
    """The core metadata of the wheel at *path*, once the wheel passed :func:`check_wheel`.

    Raises InvalidDistributionError when the wheel is not a zip, does not
    have exactly one ``.dist-info`` folder named for the filename's release,
    its WHEEL file is missing or wrong, or METADATA's name/version disagree
    with the filename; OversizedError when METADATA, WHEEL or entry_points.txt
    is over its cap in *limits*.
    """
    info = check_wheel(path, limits)
    return WheelMetadata(info.metadata, info.name, info.version, info.requires_python)


@dataclass(frozen=True)
class Published:
    """The outcome of a publish: the row id and whether it was already there."""

    file_id: int
    filename: str
    sha256: Sha256
    already_present: bool


def publish_file(
    db: Database,
    blobs: BlobStore,
    path: Path,
    repo: str,
    *,
    provenance: bytes | None = None,
    sbom: bytes | None = None,
    build_id: int | None = None,
    now: datetime | None = None,
    limits: OutputLimits = DEFAULT_LIMITS,
) -> Published:
    """Publish the wheel or sdist at *path* into *repo*.

    Idempotent for identical bytes; a different file under an existing
    filename raises ImmutableFileError (files are immutable, as on PyPI).  A
    wheel is checked first (:func:`~fromsource.dist.distinfo.check_wheel`, within
    *limits*), an sdist too (:func:`~fromsource.dist.sdistinfo.check_sdist`: its
    PKG-INFO must name the filename's release, and gives ``requires-python``):
    one that fails is refused before any blob is written.  A blob
    store that fails raises PublishStorageError; PublishError for an unknown
    *repo*.  Nothing is visible after any of these.
    """
    if repo not in REPOSITORIES:
        raise PublishError(
            f"cannot publish into {repo!r}: files go into one of {', '.join(REPOSITORIES)}",
            repo=repo,
        )
    parsed = parse_filename(path.name)
    meta = read_wheel_metadata(path, limits) if parsed.kind == "wheel" else None
    requires_python = meta.requires_python if meta else check_sdist(path, limits).requires_python
    digest, _size = sha256_file(path)

    with db.session() as session:
        existing = session.scalar(
            sa.select(FileRow).where(FileRow.repo == repo, FileRow.filename == path.name)
        )
    if existing is not None:
        return _existing(existing, digest, repo)

    try:
        stored, size = blobs.put_file(path, expected=digest)
        metadata_digest = blobs.put_bytes(meta.raw) if meta else None
        provenance_digest = blobs.put_bytes(provenance) if provenance else None
        sbom_digest = blobs.put_bytes(sbom) if sbom else None
    except StoreError as exc:
        raise PublishStorageError(
            f"{path.name} was not published in {repo}: {exc.message}",
            filename=path.name,
            repo=repo,
        ) from exc

    row = FileRow(
        repo=repo,
        project=parsed.project,
        version=str(parsed.version),
        filename=path.name,
        kind=parsed.kind,
        sha256=stored,
        size=size,
        requires_python=requires_python,
        yanked=False,
        metadata_sha256=metadata_digest,
        provenance_sha256=provenance_digest,
        sbom_sha256=sbom_digest,
        build_id=build_id,
        upload_time=now or datetime.now(UTC),
    )
    try:
        with db.session() as session, session.begin():
            session.add(row)
            bump_generation(session)
    except IntegrityError:
        # Another publisher won the race for this filename.
        with db.session() as session:
            existing = session.scalar(
                sa.select(FileRow).where(FileRow.repo == repo, FileRow.filename == path.name)
            )
        if existing is None:  # pragma: no cover - the constraint named this row
            raise
        return _existing(existing, digest, repo)
    return Published(row.id, path.name, stored, already_present=False)


def _existing(row: FileRow, digest: Sha256, repo: str) -> Published:
    if row.sha256 != digest:
        raise ImmutableFileError(
            f"{row.filename} is already published in {repo} with sha256 {row.sha256}; "
            "published files are immutable: build a new version (or +fs.N) instead",
            filename=row.filename,
            repo=repo,
        )
    return Published(row.id, row.filename, Sha256(row.sha256), already_present=True)


def set_yanked(db: Database, repo: str, filename: str, reason: str | None, yanked: bool) -> None:
    """Yank or un-yank one file (PEP 592); NotPublishedError when it is not in *repo*."""
    with db.session() as session, session.begin():
        row = session.scalar(
            sa.select(FileRow).where(FileRow.repo == repo, FileRow.filename == filename)
        )
        if row is None:
            raise NotPublishedError(
                f"{filename} is not published in {repo}; check the filename and the repository",
                filename=filename,
                repo=repo,
            )
        row.yanked = yanked
        row.yanked_reason = reason if yanked else None
        bump_generation(session)
