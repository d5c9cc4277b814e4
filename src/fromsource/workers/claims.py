"""Build claims: at most one builder per release at a time, across processes and machines.

A claim is a row of ``build_claims`` keyed by (repository, project,
version): every build key of that release maps to that one row, so two
builds with the same key can never run at once.  A builder *acquires* the
claim before it builds and holds it with a *lease* that a heartbeat renews
every third of its length.  A builder killed mid-build stops renewing; once
the lease has expired, the claim can be taken over (by a redelivered task,
or the sweeper of any live worker re-enqueues it), and the dead attempt's
build row is closed as ``failed`` (category ``worker-lost``).

Every change is one conditional UPDATE on a ``revision`` counter (optimistic
concurrency), which works the same on SQLite and PostgreSQL: of two
builders racing for one claim exactly one UPDATE matches.  Lease times come
from the builder's clock, so builders' clocks must agree to within a small
part of the lease (NTP).

When two independent builds must agree before a release is published
(issue 17, :mod:`fromsource.build.agree`), each build is a *slot* of the
release with its own claim (slot 1's key is the release's, so a single
build is unchanged).  A worker process never holds two slots of one
release: :func:`acquire` answers :class:`Refused` to a worker that holds or
built another slot, and the request waits for another worker.  Where the
two builds meet is a *ballot* (:mod:`fromsource.workers.ballots`), a row of
the same table that the sweeper never touches.

In a fleet whose workers have different build targets (issue 12,
:mod:`fromsource.workers.routing`), the worker that leads a release holds
its claim (per slot) while it builds its own targets; each target it routes
to another worker is claimed apart, by (release, slot, target tag): two
workers with different targets never refuse each other, and one target is
never built twice.

:func:`decide` is the pure rule; the rest are thin database adapters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fromsource.store.db import Database, aware
from fromsource.store.models import BuildRow, ClaimRow

__all__ = [
    "Acquired",
    "Busy",
    "ClaimView",
    "Done",
    "Heartbeat",
    "Refused",
    "Target",
    "abandon",
    "acquire",
    "attach_build",
    "decide",
    "fail_slots",
    "get_claim",
    "mark_worker_lost",
    "release",
    "renew",
    "requeue_expired",
    "update_claim",
    "worker_of",
]

log = logging.getLogger("fromsource.workers")

ClaimState = Literal["queued", "running", "succeeded", "failed"]
Decision = Literal["insert", "take", "busy", "done"]
QUEUED_LEASE_FACTOR = 10
"""A re-enqueued claim is enqueued again if no worker took it within this many leases."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Target:
    """A release to build: the unit of mutual exclusion; *slot* which of its independent
    builds (1 when one build is enough); *tag* the one build target (wheel tag) a fleet
    worker builds it for (issue 12), None for the release as a whole (what the worker
    that leads it builds)."""

    repo: str
    project: str
    version: str
    slot: int = 1
    tag: str | None = None

    @property
    def key(self) -> str:
        """The claim's primary key: sha256 of repo, project and version (and slot, from 2;
        and target tag, when given)."""
        text = f"{self.repo}\n{self.project}\n{self.version}"
        if self.slot != 1:
            text += f"\nslot {self.slot}"
        if self.tag is not None:
            text += f"\ntarget {self.tag}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def worker_of(owner: str) -> str:
    """The worker process an owner names (``worker@host:pid``), without the attempt's tag."""
    return owner.rsplit(":", 1)[0]


@dataclass(frozen=True)
class ClaimView:
    """One claim row as a value."""

    key: str
    repo: str
    project: str
    version: str
    state: str
    owner: str
    lease_until: datetime
    build_id: int | None
    attempts: int
    revision: int
    request: Mapping[str, Any]
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: ClaimRow) -> ClaimView:
        """Copy the columns of *row* (times made UTC-aware)."""
        return cls(
            row.key,
            row.repo,
            row.project,
            row.version,
            row.state,
            row.owner,
            aware(row.lease_until),
            row.build_id,
            row.attempts,
            row.revision,
            dict(row.request or {}),
            aware(row.finished_at) if row.finished_at else None,
        )


def decide(view: ClaimView | None, *, now: datetime, requested_at: datetime) -> Decision:
    """What a builder asked (at *requested_at*) to build the claimed release may do *now*.

    - no claim yet: ``insert`` one;
    - ``queued`` (re-enqueued by a sweeper), or ``running`` with an expired
      lease (its builder died): ``take`` it over;
    - ``running`` with a live lease: ``busy``, try again later;
    - ``succeeded``: ``done``, the release is built;
    - ``failed`` after the request was made: ``done`` (that attempt answered
      this request too); failed before it: ``take``, build again.
    """
    if view is None:
        return "insert"
    if view.state == "queued":
        return "take"
    if view.state == "running":
        return "busy" if view.lease_until > now else "take"
    if view.state == "succeeded":
        return "done"
    if view.finished_at is not None and view.finished_at >= requested_at:
        return "done"
    return "take"


@dataclass(frozen=True)
class Acquired:
    """The caller now holds the claim; *stale* is the attempt it replaced, if any."""

    key: str
    owner: str
    stale: ClaimView | None = None


@dataclass(frozen=True)
class Busy:
    """Another builder holds a live lease on the release."""

    key: str
    owner: str
    lease_until: datetime


@dataclass(frozen=True)
class Done:
    """The release was settled by an earlier attempt (``succeeded`` or ``failed``)."""

    key: str
    state: str
    build_id: int | None


@dataclass(frozen=True)
class Refused:
    """The caller's worker holds or built another slot of the release (*twin*): another
    worker must build this one."""

    key: str
    twin: ClaimView


def _twin_of(
    db: Database, target: Target, owner: str, slots: int, tags: Collection[str] = ()
) -> ClaimView | None:
    """Another slot of *target*'s release that *owner*'s worker holds or built, if any.

    The other slots are the release's claims and, for each of *tags* (the
    build targets this build would build), that target's claims: a worker
    that led slot 1 of a release built its own targets in it, and one that
    built slot 1 for a target another worker routed to it built that one.
    Failed and re-enqueued slots do not count: nobody is building them.
    """
    me = worker_of(owner)
    for slot in range(1, slots + 1):
        if slot == target.slot:
            continue
        for tag in (None, *sorted(set(tags))):
            view = get_claim(db, dataclasses.replace(target, slot=slot, tag=tag).key)
            busy = view is not None and view.state in ("running", "succeeded")
            if busy and view is not None and worker_of(view.owner) == me:
                return view
    return None


def get_claim(db: Database, key: str) -> ClaimView | None:
    """The claim with *key*, or None."""
    with db.session() as session:
        row = session.get(ClaimRow, key)
        return ClaimView.from_row(row) if row else None


def acquire(
    db: Database,
    target: Target,
    owner: str,
    *,
    lease_seconds: float,
    requested_at: datetime,
    request: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    slots: int = 1,
    tags: Collection[str] = (),
) -> Acquired | Busy | Done | Refused:
    """Try to become the one builder of *target*; see :func:`decide` for the rule.

    *request* (JSON) is stored so that a sweeper can enqueue the build again
    if this builder dies.  Races are settled by the database: the loser of
    an insert or of a conditional update reads the claim again and decides
    again.  When the release has *slots* independent builds, a worker that
    holds or built another of them (for any of *tags*, the build targets
    this build would build: see :func:`_twin_of`) is :class:`Refused`
    (checked before, and again after taking the claim, which it then gives
    up: of two slots taken by one worker at the same moment, at least one is
    given up).
    """
    key = target.key
    if slots > 1 and (twin := _twin_of(db, target, owner, slots, tags)) is not None:
        return Refused(key, twin)
    taken = _acquire(db, target, owner, lease_seconds, requested_at, request, now)
    twin = _twin_of(db, target, owner, slots, tags) if isinstance(taken, Acquired) else None
    if slots > 1 and twin is not None:
        # Given back as queued (the retried request takes it, the sweeper leaves it for
        # a while): as a running claim of ours it would refuse us the other slot too.
        until = (now or _now()) + timedelta(seconds=lease_seconds * QUEUED_LEASE_FACTOR)
        values = {"state": "queued", "lease_until": until, "revision": ClaimRow.revision + 1}
        update_claim(db, key, values, owner=owner, state="running")
        return Refused(key, twin)
    return taken


def _acquire(
    db: Database,
    target: Target,
    owner: str,
    lease_seconds: float,
    requested_at: datetime,
    request: Mapping[str, Any] | None,
    now: datetime | None,
) -> Acquired | Busy | Done:
    key = target.key
    for _ in range(8):
        moment = now or _now()
        lease_until = moment + timedelta(seconds=lease_seconds)
        view = get_claim(db, key)
        decision = decide(view, now=moment, requested_at=aware(requested_at))
        if decision == "busy":
            assert view is not None
            return Busy(key, view.owner, view.lease_until)
        if decision == "done":
            assert view is not None
            return Done(key, view.state, view.build_id)
        if decision == "insert":
            try:
                with db.session() as session, session.begin():
                    session.add(
                        ClaimRow(
                            key=key,
                            repo=target.repo,
                            project=target.project,
                            version=target.version,
                            state="running",
                            owner=owner,
                            lease_until=lease_until,
                            build_id=None,
                            attempts=1,
                            revision=0,
                            request=dict(request or {}),
                            started_at=moment,
                            finished_at=None,
                        )
                    )
            except IntegrityError:
                continue  # another builder inserted it first: decide again
            return Acquired(key, owner)
        assert view is not None
        values: dict[str, Any] = {
            "state": "running",
            "owner": owner,
            "lease_until": lease_until,
            "build_id": None,
            "attempts": ClaimRow.attempts + 1,
            "revision": ClaimRow.revision + 1,
            "started_at": moment,
            "finished_at": None,
        }
        if request:
            values["request"] = dict(request)
        if update_claim(db, key, values, revision=view.revision):
            return Acquired(key, owner, stale=view if view.state == "running" else None)
    raise RuntimeError(f"claim {key} kept changing under us; giving up for now")


def update_claim(
    db: Database,
    key: str,
    values: Mapping[str, Any],
    *,
    revision: int | None = None,
    owner: str | None = None,
    state: str | None = None,
) -> bool:
    """One conditional UPDATE of claim *key* (where its *revision*, *owner* and *state* are
    those given); True when it matched.  The one way claims and ballots change."""
    query = sa.update(ClaimRow).where(ClaimRow.key == key)
    if revision is not None:
        query = query.where(ClaimRow.revision == revision)
    if owner is not None:
        query = query.where(ClaimRow.owner == owner)
    if state is not None:
        query = query.where(ClaimRow.state == state)
    with db.session() as session, session.begin():
        result = session.execute(query.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def attach_build(db: Database, key: str, owner: str, build_id: int) -> bool:
    """Record the build row of the attempt *owner* is running; False if it lost the claim."""
    return update_claim(
        db,
        key,
        {"build_id": build_id, "revision": ClaimRow.revision + 1},
        owner=owner,
        state="running",
    )


def renew(
    db: Database, key: str, owner: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Extend *owner*'s lease; False when the claim was taken over meanwhile."""
    until = (now or _now()) + timedelta(seconds=lease_seconds)
    return update_claim(
        db,
        key,
        {"lease_until": until, "revision": ClaimRow.revision + 1},
        owner=owner,
        state="running",
    )


def release(
    db: Database,
    key: str,
    owner: str,
    *,
    succeeded: bool,
    build_id: int | None,
    now: datetime | None = None,
) -> bool:
    """Settle the claim as ``succeeded`` or ``failed``; False when *owner* had lost it."""
    moment = now or _now()
    return update_claim(
        db,
        key,
        {
            "state": "succeeded" if succeeded else "failed",
            "lease_until": moment,
            "finished_at": moment,
            "build_id": build_id,
            "revision": ClaimRow.revision + 1,
        },
        owner=owner,
        state="running",
    )


def abandon(db: Database, key: str, owner: str, now: datetime | None = None) -> bool:
    """Give the claim up unfinished (worker shutting down): its lease ends now."""
    return update_claim(
        db,
        key,
        {"lease_until": now or _now(), "revision": ClaimRow.revision + 1},
        owner=owner,
        state="running",
    )


def mark_worker_lost(
    db: Database, build_id: int, message: str, now: datetime | None = None
) -> None:
    """Close build *build_id* (if still queued or running) as failed, category ``worker-lost``."""
    with db.session() as session, session.begin():
        row = session.get(BuildRow, build_id)
        if row is None or row.status not in ("queued", "running"):
            return
        row.status = "failed"
        row.error = message
        row.finished_at = now or _now()
        row.details = {**(row.details or {}), "category": "worker-lost"}
        row.log = (row.log or "") + f"\n== failed: {message}\n"


def requeue_expired(
    db: Database,
    owner: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
    limit: int = 50,
) -> list[ClaimView]:
    """Claim every expired lease for re-enqueueing; return the claims this caller won.

    A ``running`` claim past its lease belonged to a builder that died: it
    becomes ``queued`` (the caller sends its stored request to the broker
    again) and its build row is closed as worker-lost.  A ``queued`` claim
    that no worker took within :data:`QUEUED_LEASE_FACTOR` leases is handed
    out again too (its message may have been lost).  Of several sweepers,
    only one wins each claim.
    """
    moment = now or _now()
    with db.session() as session:
        rows = session.scalars(
            sa.select(ClaimRow)
            .where(ClaimRow.state.in_(("running", "queued")), ClaimRow.lease_until < moment)
            .order_by(ClaimRow.lease_until)
            .limit(limit)
        ).all()
        expired = [ClaimView.from_row(r) for r in rows]
    won = []
    until = moment + timedelta(seconds=lease_seconds * QUEUED_LEASE_FACTOR)
    for view in expired:
        values = {
            "state": "queued",
            "owner": owner,
            "lease_until": until,
            "revision": ClaimRow.revision + 1,
        }
        if not update_claim(db, view.key, values, revision=view.revision):
            continue
        if view.state == "running" and view.build_id is not None:
            mark_worker_lost(
                db,
                view.build_id,
                f"the worker {view.owner} stopped renewing its lease at "
                f"{view.lease_until.isoformat()}; the build was enqueued again",
                moment,
            )
        won.append(view)
    return won


def fail_slots(
    db: Database, target: Target, slots: int, now: datetime | None = None, tag: str | None = None
) -> None:
    """Settle every succeeded slot of *target*'s release as failed (their builds disagreed,
    issue 17), so the next request builds all of them again rather than one; with *tag*,
    the slots of that build target's claims too (builds routed to other workers)."""
    moment = now or _now()
    for slot in range(1, slots + 1):
        for which in (None, tag) if tag else (None,):
            key = dataclasses.replace(target, slot=slot, tag=which).key
            update_claim(
                db,
                key,
                {"state": "failed", "finished_at": moment, "revision": ClaimRow.revision + 1},
                state="succeeded",
            )


class Heartbeat:
    """A daemon thread that renews a lease every third of its length while a build runs.

    Use as a context manager around the build.  ``lost`` turns true when a
    renewal found the claim taken over (the build then runs on, and its
    publish is idempotent for identical bytes, but the claim is no longer
    this builder's to settle).
    """

    def __init__(self, db: Database, key: str, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.key = key
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{key[:8]}", daemon=True)

    def _run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                if not renew(self.db, self.key, self.owner, self.lease_seconds):
                    self.lost = True
                    log.warning(
                        "lost the claim %s (%s): another worker took it", self.key, self.owner
                    )
                    return
            except Exception:
                log.exception("renewing the claim %s failed", self.key)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
