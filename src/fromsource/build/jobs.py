"""Build jobs: a lock's closure requested through the management API, and its progress.

``POST /api/builds`` with a lock or requirements file plans the closure
(:func:`fromsource.build.closure.plan_closure`), stores the plan as a job
(:func:`create_job`) and queues one build request per release to build.
A job's progress is never stored: :func:`job_status` reads it from the
claims and build rows of its releases (and the published files), so any
replica answers ``GET /api/builds?job=ID`` the same, and a release built by
another request counts for every job that wants it.  :func:`settle_entry`
is the pure rule.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from packaging.tags import sys_tags
from packaging.version import InvalidVersion, Version

from fromsource.build.closure import ClosurePlan, PlanEntry
from fromsource.build.coverage import SCHEMA_VERSION, CoverageReport, PackageCoverage
from fromsource.store.catalog import backing_repos
from fromsource.store.db import Database, aware
from fromsource.store.models import BuildJobRow, BuildRow, ClaimRow, FileRow
from fromsource.workers.claims import ClaimView, Target

__all__ = [
    "BuildFacts",
    "Job",
    "JobStatus",
    "create_job",
    "get_job",
    "job_status",
    "settle_entry",
    "unbuilt",
]


@dataclass(frozen=True)
class Job:
    """A stored build job: who asked, when, and its plan."""

    id: str
    created_at: datetime
    created_by: str
    repo: str
    format: str
    files: tuple[str, ...]
    targets: tuple[str, ...]
    entries: tuple[PlanEntry, ...]


@dataclass(frozen=True)
class BuildFacts:
    """What :func:`settle_entry` needs of a build row."""

    id: int
    status: str
    error: str | None
    category: str | None
    wheel: str | None
    created_at: datetime


@dataclass(frozen=True)
class JobStatus:
    """A job's progress: its coverage report so far, and whether it has settled."""

    job: Job
    report: CoverageReport

    @property
    def state(self) -> str:
        """``done`` when no package is queued or running, else ``running``."""
        counts = self.report.counts()
        return "running" if counts["queued"] or counts["running"] else "done"

    def queued(self) -> list[str]:
        """The requirements (``name==version``) of the packages still ``queued``."""
        return [
            plan_entry.requirement
            for plan_entry, package in zip(self.job.entries, self.report.packages, strict=True)
            if package.status == "queued" and plan_entry.requirement is not None
        ]

    def counts(self) -> dict[str, int]:
        """done (built or already built) / running / queued / failed / skipped."""
        counts = self.report.counts()
        return {
            "done": counts["built"] + counts["already-built"],
            "running": counts["running"],
            "queued": counts["queued"],
            "failed": counts["failed"],
            "skipped": counts["skipped"],
        }

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys and ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "job": self.job.id,
            "state": self.state,
            "created_at": self.job.created_at.isoformat(),
            "created_by": self.job.created_by,
            "repo": self.job.repo,
            "counts": self.counts(),
            "report": self.report.to_json(),
        }


def create_job(
    db: Database,
    plan: ClosurePlan,
    *,
    repo: str,
    created_by: str,
    now: datetime | None = None,
) -> Job:
    """Store *plan* as a new job with a random id; returns it."""
    job = Job(
        id=secrets.token_hex(16),
        created_at=now or datetime.now(UTC),
        created_by=created_by,
        repo=repo,
        format=plan.format,
        files=plan.files,
        targets=tuple(t.name for t in plan.targets),
        entries=plan.entries,
    )
    row = BuildJobRow(
        id=job.id,
        created_at=job.created_at,
        created_by=created_by,
        repo=repo,
        format=plan.format,
        plan={
            "files": list(job.files),
            "targets": list(job.targets),
            "entries": [e.to_json() for e in job.entries],
        },
    )
    with db.session() as session, session.begin():
        session.add(row)
    return job


def get_job(db: Database, job_id: str) -> Job | None:
    """The job *job_id*, or None when there is none."""
    with db.session() as session:
        row = session.get(BuildJobRow, job_id)
        if row is None:
            return None
        plan: Mapping[str, Any] = row.plan or {}
        return Job(
            id=row.id,
            created_at=aware(row.created_at),
            created_by=row.created_by,
            repo=row.repo,
            format=row.format,
            files=tuple(str(f) for f in plan.get("files") or ()),
            targets=tuple(str(t) for t in plan.get("targets") or ()),
            entries=tuple(PlanEntry.from_json(e) for e in plan.get("entries") or ()),
        )


def settle_entry(
    entry: PackageCoverage,
    claim: ClaimView | None,
    build: BuildFacts | None,
    published: str | None,
    since: datetime,
) -> PackageCoverage:
    """What became of one release a job (created at *since*) builds, so far.  Pure.

    No claim yet: ``already-built`` when a wheel is *published* (its filename),
    else ``queued``.  A
    claim running: ``running``; queued again by a sweeper: ``queued``;
    succeeded: ``built`` when its build started after the job was made, else
    ``already-built``; failed after the job was made: ``failed`` with the
    build's category and error; failed before: ``queued`` (the job's request
    builds it again).
    """
    facts: dict[str, Any] = {"build_id": claim.build_id if claim else None}
    if claim is None:
        if published is not None:
            return entry.settled("already-built", wheel=published)
        return entry.settled("queued")
    if claim.state == "running":
        return entry.settled("running", **facts)
    if claim.state == "succeeded":
        fresh = build is not None and build.status == "succeeded" and build.created_at >= since
        return entry.settled(
            "built" if fresh else "already-built", wheel=build.wheel if build else None, **facts
        )
    if claim.state == "failed" and claim.finished_at is not None and claim.finished_at >= since:
        return entry.settled(
            "failed",
            (build.category if build else None) or "internal",
            (build.error if build else None) or "the build failed (see its log)",
            **facts,
        )
    return entry.settled("queued", **facts)


def _claims(db: Database, repo: str, nodes: Sequence[tuple[str, str]]) -> dict[str, ClaimView]:
    """The claims of the releases *nodes* in *repo*, by key."""
    keys = [Target(repo, project, version).key for project, version in nodes]
    found: dict[str, ClaimView] = {}
    with db.session() as session:
        for start in range(0, len(keys), 500):
            rows = session.scalars(
                sa.select(ClaimRow).where(ClaimRow.key.in_(keys[start : start + 500]))
            )
            found.update((row.key, ClaimView.from_row(row)) for row in rows)
    return found


def _builds(db: Database, ids: Sequence[int]) -> dict[int, BuildFacts]:
    """The build rows *ids*, without their logs."""
    columns = (BuildRow.id, BuildRow.status, BuildRow.error, BuildRow.details, BuildRow.created_at)
    found: dict[int, BuildFacts] = {}
    with db.session() as session:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for build_id, status, error, details, created in session.execute(
                sa.select(*columns).where(BuildRow.id.in_(chunk))
            ):
                details = details or {}
                wheel = details.get("wheel")
                found[build_id] = BuildFacts(
                    build_id,
                    status,
                    error,
                    None if details.get("category") is None else str(details["category"]),
                    str(wheel.get("filename")) if isinstance(wheel, dict) else None,
                    aware(created),
                )
    return found


def _published(
    db: Database, repo: str, nodes: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The wheel this interpreter can use of each release *nodes* in *repo*, by release.

    What :func:`~fromsource.build.context.published_wheel` answers for one
    release, for many in a few queries (a job's page is read while CI polls).
    """
    from fromsource.build.deps import best_wheel  # the pipeline's rule, loaded with the first job

    wanted: dict[str, set[Version]] = {}
    for project, version in nodes:
        try:
            wanted.setdefault(project, set()).add(Version(version))
        except InvalidVersion:
            continue
    candidates: dict[tuple[str, Version], list[str]] = {}
    projects = sorted(wanted)
    with db.session() as session:
        for start in range(0, len(projects), 500):
            rows = session.execute(
                sa.select(FileRow.project, FileRow.version, FileRow.filename).where(
                    FileRow.repo.in_(backing_repos(repo)),
                    FileRow.project.in_(projects[start : start + 500]),
                    FileRow.kind == "wheel",
                )
            )
            for project, version, filename in rows:
                try:
                    parsed = Version(version)
                except InvalidVersion:
                    continue
                if parsed in wanted.get(project, ()):
                    candidates.setdefault((project, parsed), []).append(filename)
    tags = list(sys_tags())
    found: dict[tuple[str, str], str] = {}
    for project, version in nodes:
        try:
            files = candidates.get((project, Version(version)), [])
        except InvalidVersion:
            continue
        index = best_wheel(files, tags)
        if index is not None:
            found[(project, version)] = files[index]
    return found


def unbuilt(db: Database, job: Job) -> list[str]:
    """The requirements (``name==version``) of *job* whose release *job.repo* lacks: what to queue."""
    nodes = [e.node for e in job.entries if e.node is not None]
    published = _published(db, job.repo, nodes)
    return [
        e.requirement
        for e in job.entries
        if e.requirement is not None and e.node is not None and e.node not in published
    ]


def job_status(db: Database, job: Job) -> JobStatus:
    """The progress of *job*, read from the claims, build rows and published files now."""
    nodes = [e.node for e in job.entries if e.node is not None]
    claims = _claims(db, job.repo, nodes)
    builds = _builds(db, sorted({c.build_id for c in claims.values() if c.build_id}))
    unclaimed = [n for n in nodes if Target(job.repo, *n).key not in claims]
    published = _published(db, job.repo, unclaimed)
    packages = []
    for plan_entry in job.entries:
        node = plan_entry.node
        if node is None:
            packages.append(plan_entry.entry)
            continue
        claim = claims.get(Target(job.repo, *node).key)
        build = builds.get(claim.build_id) if claim and claim.build_id else None
        packages.append(
            settle_entry(plan_entry.entry, claim, build, published.get(node), job.created_at)
        )
    report = CoverageReport(job.files, job.format, job.targets, tuple(packages))
    return JobStatus(job, report)
