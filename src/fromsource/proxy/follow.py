"""Following upstream: queue builds of the new upstream releases of every project the index carries.

:func:`follow_once` reads, for each project with a file in ``python``, its
upstream page, picks the releases newer than the newest version the index
has of it (``python`` and ``python-remediated``) that policy lets through
now (:func:`fromsource.proxy.offers.new_releases`: the cooldown, malware
records, block and allow rules) and that were never built or queued
before, and hands each to *submit* as a build of ``project==version`` into
``python``.  Its runtime dependencies are not followed: a new one is
built on demand, or with ``fromsource build``.

Runs are counted in the ``state`` table (``follow_*`` rows), so ``/metrics``
and the web UI of every process show them; :func:`claim_run` lets one
process of a fleet run per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from fromsource.policy.store import load_policy
from fromsource.proxy.offers import Release, new_releases
from fromsource.proxy.source import UpstreamPage
from fromsource.store.catalog import list_projects, project_files
from fromsource.store.db import Database
from fromsource.store.models import BuildRow, StateRow
from fromsource.workers.request import BuildRequest

__all__ = [
    "FollowCounts",
    "FollowReport",
    "Follower",
    "claim_run",
    "follow_counts",
    "follow_once",
]

_log = logging.getLogger(__name__)

_RUNS, _QUEUED, _ERRORS = "follow_runs", "follow_queued", "follow_errors"
_LAST_RUN, _LAST_QUEUED, _NEXT_RUN = "follow_last_run", "follow_last_queued", "follow_next_run"


@dataclass(frozen=True)
class FollowReport:
    """One run: the projects looked at, the releases queued, those policy holds back, failures.

    *held* are new releases policy denies now (the cooldown, malware, a
    block rule), each with its decision; *errors* are (project, message)
    for upstream pages that could not be read.
    """

    at: datetime
    projects: int
    queued: tuple[Release, ...]
    held: tuple[Release, ...]
    errors: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, object]:
        """The report as JSON (stable keys)."""

        def release(r: Release) -> dict[str, object]:
            return {
                "project": r.project,
                "version": r.version,
                "verdict": r.decision.verdict,
                "reason": r.decision.reason,
                "until": r.decision.until.isoformat() if r.decision.until else None,
                "mal_id": r.decision.mal_id,
            }

        return {
            "at": self.at.isoformat(),
            "projects": self.projects,
            "queued": [release(r) for r in self.queued],
            "held": [release(r) for r in self.held],
            "errors": [{"project": p, "message": m} for p, m in self.errors],
        }


def _requested(db: Database, project: str) -> set[str]:
    """Versions of *project* with a build row into ``python`` (built, failed or under way)."""
    with db.session() as session:
        return set(
            session.scalars(
                sa.select(BuildRow.version)
                .where(BuildRow.project == project, BuildRow.repo == "python")
                .distinct()
            )
        )


def follow_once(
    db: Database,
    pages: Callable[[str], UpstreamPage],
    submit: Callable[[BuildRequest], None] | None,
    *,
    now: datetime | None = None,
    projects: Iterable[str] | None = None,
) -> FollowReport:
    """Queue the new upstream releases of every carried project (or of *projects*).

    *pages* reads a project's upstream page; *submit* queues a build (None:
    a dry run, nothing queued or counted).  A release with a build row
    already is not queued again.  Never raises for one project's failure:
    it is in the report's *errors*.
    """
    at = now or datetime.now(UTC)
    policy = load_policy(db)
    names = sorted(projects) if projects is not None else list_projects(db, "python")
    queued: list[Release] = []
    held: list[Release] = []
    errors: list[tuple[str, str]] = []
    for name in names:
        page = pages(name)
        if page.error is not None:
            errors.append((name, page.error))
            continue
        if page.files is None:
            continue  # the upstream does not have it: a project only this index holds
        carried = [f.version for f in project_files(db, "python-all", name)]
        requested = _requested(db, name)
        for release in new_releases(name, page.files, carried, policy=policy, now=at):
            if release.version in requested:
                continue
            if not release.decision.allowed:
                held.append(release)
                continue
            queued.append(release)
            if submit is not None:
                submit(BuildRequest(release.requirement, repo="python"))
    report = FollowReport(at, len(names), tuple(queued), tuple(held), tuple(errors))
    if submit is not None:
        _count(db, report)
    return report


def _add(session: Session, name: str, amount: int) -> None:
    row = session.get(StateRow, name)
    if row is None:
        session.add(StateRow(name=name, value=amount))
    else:
        row.value += amount


def _set(session: Session, name: str, value: int) -> None:
    row = session.get(StateRow, name)
    if row is None:
        session.add(StateRow(name=name, value=value))
    else:
        row.value = value


def _count(db: Database, report: FollowReport) -> None:
    """Add the run to the ``follow_*`` counters (a failure is logged: the builds are queued)."""
    try:
        with db.session() as session, session.begin():
            _add(session, _RUNS, 1)
            _add(session, _QUEUED, len(report.queued))
            _add(session, _ERRORS, len(report.errors))
            _set(session, _LAST_RUN, int(report.at.timestamp()))
            _set(session, _LAST_QUEUED, len(report.queued))
    except SQLAlchemyError as exc:
        _log.warning("follow: the run's counts were not stored (%s)", exc)


@dataclass(frozen=True)
class FollowCounts:
    """What ``follow`` did so far, across every process on this database."""

    runs: int
    queued: int
    errors: int
    last_run: datetime | None
    last_queued: int


def follow_counts(db: Database) -> FollowCounts:
    """The ``follow_*`` counters (one query)."""
    runs, queued, errors, last, last_queued = db.counters(
        _RUNS, _QUEUED, _ERRORS, _LAST_RUN, _LAST_QUEUED
    )
    when = datetime.fromtimestamp(last, UTC) if last else None
    return FollowCounts(runs, queued, errors, when, last_queued)


def claim_run(db: Database, interval: float, now: float | None = None) -> bool:
    """True when this process may run ``follow`` now: no one has within the last *interval*.

    An atomic compare-and-set on the ``follow_next_run`` row (seconds since
    the epoch), so of several processes on one database one wins each
    interval.
    """
    moment = int(now if now is not None else time.time())
    following = moment + max(1, int(interval))
    try:
        with db.session() as session, session.begin():
            updated = session.execute(
                sa.update(StateRow)
                .where(StateRow.name == _NEXT_RUN, StateRow.value <= moment)
                .values(value=following)
            )
            if updated.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if session.get(StateRow, _NEXT_RUN) is not None:
                return False
            session.add(StateRow(name=_NEXT_RUN, value=following))
    except IntegrityError:  # another process made the row first: it runs
        return False
    return True


class Follower:
    """``follow`` every *interval* seconds in a daemon thread (``serve --follow-interval``).

    *run* does one run; the thread asks :func:`claim_run` every few seconds
    whether it is this process's turn.  A failing run is logged, never fatal.
    """

    def __init__(
        self, db: Database, interval: float, run: Callable[[], FollowReport], *, tick: float = 5.0
    ) -> None:
        self.db = db
        self.interval = interval
        self.run = run
        self.tick = max(0.05, min(tick, interval))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop after its current run."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if claim_run(self.db, self.interval):
                    report = self.run()
                    _log.info(
                        "follow: %d project(s), %d release(s) queued, %d held, %d error(s)",
                        report.projects,
                        len(report.queued),
                        len(report.held),
                        len(report.errors),
                    )
            except Exception:  # noqa: BLE001 - a run must never end the thread
                _log.exception("follow: the run failed")
            self._stop.wait(self.tick)
