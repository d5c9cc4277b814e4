"""Read-side queries: which projects and files a repository holds.

Returns frozen values (:class:`FileInfo`), never ORM rows, so the page
renderer stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fromsource.config import VIRTUAL_REPOSITORIES
from fromsource.dist.names import ProjectName, Sha256
from fromsource.store.db import Database
from fromsource.store.models import FileRow


@dataclass(frozen=True)
class FileInfo:
    """A published file as the index shows it."""

    id: int
    repo: str
    project: ProjectName
    version: str
    filename: str
    kind: str
    sha256: Sha256
    size: int
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None
    metadata_sha256: Sha256 | None
    provenance_sha256: Sha256 | None
    sbom_sha256: Sha256 | None
    build_id: int | None
    upload_time: datetime

    @classmethod
    def from_row(cls, row: FileRow) -> FileInfo:
        """Copy the columns of *row* into a value."""
        return cls(
            id=row.id,
            repo=row.repo,
            project=ProjectName(row.project),
            version=row.version,
            filename=row.filename,
            kind=row.kind,
            sha256=Sha256(row.sha256),
            size=row.size,
            requires_python=row.requires_python,
            yanked=row.yanked,
            yanked_reason=row.yanked_reason,
            metadata_sha256=Sha256(row.metadata_sha256) if row.metadata_sha256 else None,
            provenance_sha256=Sha256(row.provenance_sha256) if row.provenance_sha256 else None,
            sbom_sha256=Sha256(row.sbom_sha256) if row.sbom_sha256 else None,
            build_id=row.build_id,
            upload_time=row.upload_time,
        )


def backing_repos(repo: str) -> tuple[str, ...]:
    """The real repositories behind *repo*, in priority order."""
    return VIRTUAL_REPOSITORIES.get(repo, (repo,))


def list_projects(db: Database, repo: str) -> list[ProjectName]:
    """Sorted normalized names of every project with a file in *repo*."""
    with db.session() as session:
        names = session.scalars(
            sa.select(FileRow.project).where(FileRow.repo.in_(backing_repos(repo))).distinct()
        )
        return sorted(ProjectName(n) for n in names)


def project_files(db: Database, repo: str, project: str) -> list[FileInfo]:
    """Every file of *project* in *repo* (for a virtual repo, all backing repos).

    When two backing repositories hold the same filename the first one wins.
    """
    repos = backing_repos(repo)
    with db.session() as session:
        rows = session.scalars(
            sa.select(FileRow).where(FileRow.repo.in_(repos), FileRow.project == project)
        ).all()
    seen: dict[str, FileInfo] = {}
    for row in sorted(rows, key=lambda r: repos.index(r.repo)):
        seen.setdefault(row.filename, FileInfo.from_row(row))
    return list(seen.values())


def find_file(db: Database, repo: str, project: str, filename: str) -> FileInfo | None:
    """The file *filename* of *project* as *repo* shows it, or None."""
    for info in project_files(db, repo, project):
        if info.filename == filename:
            return info
    return None


def all_files(db: Database) -> list[FileInfo]:
    """Every published file in every repository (fsck, the UI)."""
    with db.session() as session:
        return [FileInfo.from_row(r) for r in session.scalars(sa.select(FileRow))]
