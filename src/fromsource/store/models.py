"""Database tables (SQLAlchemy 2 typed mappings).

The schema is created and changed only by the Alembic migrations beside this
module; these classes must match them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every table."""


class FileRow(Base):
    """One published distribution file in one repository."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("repo", "filename", name="uq_files_repo_filename"),
        Index("ix_files_repo_project", "repo", "project"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    requires_python: Mapped[str | None] = mapped_column(String(255), nullable=True)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provenance_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sbom_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    build_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    upload_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TokenRow(Base):
    """A pull or admin token; the secret is stored only as a hash."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    repos: Mapped[list[str]] = mapped_column(JSON)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BuildRow(Base):
    """One requested build and what became of it."""

    __tablename__ = "builds"
    __table_args__ = (
        Index("ix_builds_key", "key"),
        Index("ix_builds_project", "project"),
        Index("ix_builds_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    project: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    repo: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id"), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """The process running the build (fromsource.build.owner; migration 0003)."""


class AdvisoryRow(Base):
    """One OSV advisory as imported, per affected project."""

    __tablename__ = "advisories"
    __table_args__ = (Index("ix_advisories_project", "project"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    aliases: Mapped[list[str]] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    modified: Mapped[str] = mapped_column(String(64), default="")


class StateRow(Base):
    """Small named counters; ``generation`` goes up on every visible change."""

    __tablename__ = "state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class ClaimRow(Base):
    """Who builds a release right now: one row per (repo, project, version), with a lease.

    Written only by :mod:`fromsource.workers.claims` (migration 0002).
    """

    __tablename__ = "build_claims"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    repo: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(255))
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    build_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PolicyRuleRow(Base):
    """A block, allow or cooldown rule (fromsource.policy.rules; migration 0004)."""

    __tablename__ = "policy_rules"
    __table_args__ = (Index("ix_policy_rules_project", "project"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(255))
    specifier: Mapped[str] = mapped_column(String(255), default="")
    days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(255), default="")


class PolicyAuditRow(Base):
    """One audited policy decision or rule change (fromsource.policy.audit; migration 0004)."""

    __tablename__ = "policy_audit"
    __table_args__ = (
        Index("ix_policy_audit_project", "project"),
        Index("ix_policy_audit_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16), default="")
    project: Mapped[str] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255), nullable=True)
    repo: Mapped[str | None] = mapped_column(String(64), nullable=True)
    filename: Mapped[str | None] = mapped_column(String(512), nullable=True)
    rule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mal_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(255), default="")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    """The policy generation the decision was made under."""


class BuildJobRow(Base):
    """A lock's closure requested through ``POST /api/builds`` (fromsource.build.jobs;
    migration 0005).  *plan* holds the files, targets and every pinned package's entry."""

    __tablename__ = "build_jobs"
    __table_args__ = (Index("ix_build_jobs_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(255))
    repo: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WorkerRow(Base):
    """A ``fromsource worker`` process and the build targets it has, refreshed by its sweeper
    (fromsource.workers.registry; migration 0006).  *targets* holds each target's JSON
    (:meth:`fromsource.build.targets.Target.to_json`, with its wheel tag)."""

    __tablename__ = "workers"
    __table_args__ = (Index("ix_workers_last_seen", "last_seen"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refresh_seconds: Mapped[float] = mapped_column(Float)
    """Seconds between two refreshes of the row (the worker's lease)."""
