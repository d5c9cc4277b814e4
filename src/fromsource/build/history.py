"""The build history: rows of the ``builds`` table, read and written as values.

A build goes queued → running → succeeded | failed | skipped.  Its log
grows while it runs (so ``fromsource builds show`` of a running build shows
how far it got); ``details`` holds the facts as JSON (sdist, pinned build
dependencies, sandbox, wheel, step timings, failure category, work tree).
``owner`` names the process that runs it (:mod:`fromsource.build.owner`), so
that a build whose process died can be closed (:mod:`fromsource.build.lost`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from fromsource.build.owner import this_process
from fromsource.store.db import Database
from fromsource.store.models import BuildRow

__all__ = [
    "BuildRecord",
    "create_build",
    "find_failed",
    "find_succeeded",
    "get_build",
    "latest_succeeded",
    "list_builds",
    "log_digest",
    "open_builds",
    "update_build",
    "version_builds",
]


@dataclass(frozen=True)
class BuildRecord:
    """One row of the build history."""

    id: int
    key: str | None
    project: str
    version: str
    repo: str
    status: str
    error: str | None
    log: str
    details: Mapping[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    file_id: int | None
    owner: str | None = None

    @classmethod
    def from_row(cls, row: BuildRow) -> BuildRecord:
        """Copy the columns of *row* into a value."""
        return cls(
            row.id,
            row.key,
            row.project,
            row.version,
            row.repo,
            row.status,
            row.error,
            row.log or "",
            dict(row.details or {}),
            row.created_at,
            row.started_at,
            row.finished_at,
            row.file_id,
            row.owner,
        )

    @property
    def seconds(self) -> float | None:
        """How long the build ran, when it has finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self, *, with_log: bool = True) -> dict[str, Any]:
        """A JSON-ready mapping with stable keys."""
        data: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "project": self.project,
            "version": self.version,
            "repo": self.repo,
            "status": self.status,
            "category": self.details.get("category"),
            "error": self.error,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "seconds": self.seconds,
            "file_id": self.file_id,
            "owner": self.owner,
            "details": dict(self.details),
        }
        if with_log:
            data["log"] = self.log
        return data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def create_build(
    db: Database, project: str, version: str, repo: str, *, now: datetime | None = None
) -> int:
    """Record a queued build, owned by the calling process; return its id."""
    row = BuildRow(
        project=project,
        version=version,
        repo=repo,
        status="queued",
        log="",
        details={},
        created_at=now or datetime.now(UTC),
        owner=this_process().to_text(),
    )
    with db.session() as session, session.begin():
        session.add(row)
    return row.id


def update_build(db: Database, build_id: int, **fields: Any) -> None:
    """Set columns of build *build_id* (status, error, log, details, key, times, file_id).

    Setting the status to ``running`` also records the calling process as the
    build's owner: whoever runs a build owns it.
    """
    if fields.get("status") == "running" and "owner" not in fields:
        fields["owner"] = this_process().to_text()
    with db.session() as session, session.begin():
        row = session.get(BuildRow, build_id)
        if row is None:
            return
        for name, value in fields.items():
            setattr(row, name, value)


def get_build(db: Database, build_id: int) -> BuildRecord | None:
    """Build *build_id*, or None."""
    with db.session() as session:
        row = session.get(BuildRow, build_id)
        return BuildRecord.from_row(row) if row else None


def find_succeeded(db: Database, key: str) -> BuildRecord | None:
    """The earliest successful build with *key*, or None."""
    with db.session() as session:
        row = session.scalar(
            sa.select(BuildRow)
            .where(BuildRow.key == key, BuildRow.status == "succeeded")
            .order_by(BuildRow.id)
            .limit(1)
        )
        return BuildRecord.from_row(row) if row else None


def find_failed(db: Database, key: str, categories: Collection[str]) -> BuildRecord | None:
    """The newest build with *key* that failed with one of *categories*, or None.

    Builds that only repeated an earlier failure (``remembered_from``) do
    not count: the answer is the build that actually ran.
    """
    with db.session() as session:
        rows = session.scalars(
            sa.select(BuildRow)
            .where(BuildRow.key == key, BuildRow.status == "failed")
            .order_by(BuildRow.id.desc())
        )
        for row in rows:
            details = row.details or {}
            if details.get("category") in categories and "remembered_from" not in details:
                return BuildRecord.from_row(row)
    return None


def latest_succeeded(db: Database, project: str, version: str, repo: str) -> BuildRecord | None:
    """The newest successful build of *project* *version* in *repo* that produced a file."""
    with db.session() as session:
        row = session.scalar(
            sa.select(BuildRow)
            .where(
                BuildRow.project == project,
                BuildRow.version == version,
                BuildRow.repo == repo,
                BuildRow.status == "succeeded",
                BuildRow.file_id.is_not(None),
            )
            .order_by(BuildRow.id.desc())
            .limit(1)
        )
        return BuildRecord.from_row(row) if row else None


def version_builds(
    db: Database, project: str, version: str, repos: Collection[str], *, limit: int = 200
) -> list[BuildRecord]:
    """The builds of *project* *version* into any of *repos*, newest first (at most *limit*)."""
    query = (
        sa.select(BuildRow)
        .where(BuildRow.project == project, BuildRow.version == version, BuildRow.repo.in_(repos))
        .order_by(BuildRow.id.desc())
        .limit(limit)
    )
    with db.session() as session:
        return [BuildRecord.from_row(r) for r in session.scalars(query)]


def open_builds(db: Database) -> list[BuildRecord]:
    """Builds still ``queued`` or ``running``, oldest first."""
    query = (
        sa.select(BuildRow).where(BuildRow.status.in_(("queued", "running"))).order_by(BuildRow.id)
    )
    with db.session() as session:
        return [BuildRecord.from_row(r) for r in session.scalars(query)]


def list_builds(
    db: Database,
    *,
    project: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[BuildRecord]:
    """The newest builds first, optionally of one project or status."""
    query = sa.select(BuildRow).order_by(BuildRow.id.desc()).limit(limit)
    if project:
        query = query.where(BuildRow.project == project)
    if status:
        query = query.where(BuildRow.status == status)
    with db.session() as session:
        return [BuildRecord.from_row(r) for r in session.scalars(query)]


def log_digest(details: Mapping[str, Any]) -> str | None:
    """The sha256 of a build's full log blob (``details["log"]``), None if none was kept.

    The row keeps only the end of the log; the pipeline stores the whole
    sandbox output (cut at its cap) as this blob.
    """
    log = details.get("log")
    digest = log.get("sha256") if isinstance(log, Mapping) else None
    return digest if isinstance(digest, str) and digest else None
