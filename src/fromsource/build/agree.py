"""Publish only what independent builds agree on (issue 17).

With ``agree`` at 2 (``--agree 2``, ``FROMSOURCE_AGREE``; the default in a
fleet), every wheel is built twice, each time as a build of its own (its own
row, log and work tree) in its own sandbox, and published only when both
made the same bytes.  Each build is a :class:`Slot` of the release:

- its sandbox differs from the other's where the build should not care: a
  different and differently long host folder (:func:`work_dir`), another
  unprivileged uid when the builder is root, another ``TMPDIR`` name and the
  environment in another order (the slot's ``variant``,
  :class:`~fromsource.build.sandbox.Sandbox`);
- it resolves and fetches its inputs on its own, so a builder cannot hand the
  other its choice of build dependencies: the two build keys must be equal;
- on a laptop both run in this process (:func:`local_slots`); in a fleet each
  is a task that another worker process must take (the claims refuse a
  worker a second slot of one release, :mod:`fromsource.workers.claims`).

After normalizing its wheel, each build keeps the wheel as a blob and *votes*
(:func:`vote`) in the ballot of its release and target
(:mod:`fromsource.workers.ballots`).  The vote that completes the ballot
compares: the same sha256 and build key is :class:`Verdict` ``agreed`` (that
build attests with both builds named, :meth:`Verdict.agreement`, and
publishes); anything else is ``differed``: nothing is published, the build
fails as ``irreproducible`` and its log shows the members that differ
(:mod:`fromsource.build.wheeldiff`), unless the operator asked to publish
anyway (``--publish-irreproducible``: :meth:`Verdict.override`, recorded in
the provenance).  An earlier vote finishes ``succeeded`` with its wheel kept
and waits; :func:`settle` closes the round and tells the other builds' rows
how it ended.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import fromsource
from fromsource.build.context import BuildContext
from fromsource.build.history import get_build, update_build
from fromsource.build.steps import Release, Wheel
from fromsource.build.targets import Target
from fromsource.build.wheeldiff import Differences, describe_differences
from fromsource.dist.names import Sha256
from fromsource.errors import BuildError, DisagreementError, FromsourceError
from fromsource.provenance.agreement import AgreeingBuild, Agreement, Override
from fromsource.provenance.statement import BUILDER_ID
from fromsource.store.blobs import copy_blob
from fromsource.workers import ballots, claims
from fromsource.workers.request import new_owner

__all__ = [
    "Slot",
    "Verdict",
    "Vote",
    "local_slots",
    "refuse",
    "settle",
    "vote",
    "waiting_message",
    "work_dir",
]

_TWIN_WAIT_SECONDS = 30.0
"""How long the concluding build waits for the other build's row to be finished before it
records the verdict there (the other build votes just before it finishes)."""


@dataclass(frozen=True)
class Slot:
    """Which of a release's *of* independent builds this one is (*number*, from 1), and the
    worker process building it (*builder*, ``kind@host:pid``).

    *distinct*: the builds must come from different workers (a fleet); the
    concluding build refuses votes of one worker for two slots.  *as_of*: when
    the release was asked for; every build of the round offers the resolver
    only the wheels our repository had then, so a build dependency published
    between two resolutions (a batch that builds setuptools beside what needs
    it) does not give the builds different inputs.
    """

    number: int
    of: int
    builder: str
    distinct: bool = False
    as_of: datetime | None = None

    @property
    def variant(self) -> int:
        """The sandbox variant (:class:`~fromsource.build.sandbox.Sandbox`): 0 for slot 1."""
        return self.number - 1


def local_slots(of: int, as_of: datetime | None = None) -> tuple[Slot, ...]:
    """The slots of a release built in this process (a laptop: one builder for all), asked
    for at *as_of* (default: now)."""
    builder = claims.worker_of(new_owner("build"))
    moment = as_of or datetime.now(UTC)
    return tuple(Slot(n, of, builder, as_of=moment) for n in range(1, of + 1))


def work_dir(work_root: Path, build_id: int, slot: Slot | None) -> Path:
    """The host folder of a build: ``build-<id>-<hex>``; every slot after the first gets a
    longer random part, so the two builds' folders differ in name and length."""
    length = 4 if slot is None or slot.number == 1 else 4 + 8 * slot.variant
    return work_root / f"build-{build_id}-{secrets.token_hex(length)}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Vote:
    """What one build voted: its row, worker, times, wheel and build key, and how its
    sandbox varied (``variant``, ``build_uid``)."""

    slot: int
    build_id: int
    worker: str
    started: datetime
    finished: datetime
    filename: str
    sha256: str
    key: str
    sandbox: Mapping[str, Any] = field(default_factory=dict)
    builder_version: str = fromsource.__version__

    def to_json(self) -> dict[str, Any]:
        """The vote as the ballot stores it."""
        return {
            "slot": self.slot,
            "build_id": self.build_id,
            "worker": self.worker,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "filename": self.filename,
            "sha256": self.sha256,
            "key": self.key,
            "sandbox": dict(self.sandbox),
            "builder_version": self.builder_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Vote:
        """Parse :meth:`to_json` (BuildError for a vote that is not one)."""
        try:
            return cls(
                slot=int(data["slot"]),
                build_id=int(data["build_id"]),
                worker=str(data["worker"]),
                started=datetime.fromisoformat(str(data["started"])),
                finished=datetime.fromisoformat(str(data["finished"])),
                filename=str(data["filename"]),
                sha256=str(data["sha256"]),
                key=str(data["key"]),
                sandbox=dict(data.get("sandbox") or {}),
                builder_version=str(data.get("builder_version") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BuildError(
                f"a ballot holds a malformed vote ({exc})", category="internal"
            ) from exc

    @property
    def invocation_id(self) -> str:
        """The build's invocation id, as its own statement would name it."""
        return f"build-{self.build_id}"

    def agreeing_build(self) -> AgreeingBuild:
        """This build as the provenance lists it."""
        return AgreeingBuild(
            invocation_id=self.invocation_id,
            worker=self.worker,
            started=self.started,
            finished=self.finished,
            wheel_sha256=self.sha256,
            build_key=self.key,
            builder_id=BUILDER_ID,
            builder_version=self.builder_version,
            sandbox=self.sandbox,
        )


Outcome = Literal["waiting", "agreed", "differed"]


@dataclass(frozen=True)
class Verdict:
    """What a vote learned: ``waiting`` for the other builds, or, for the build that
    completed the ballot, ``agreed`` or ``differed`` (with *reason* and *lines* saying how;
    *inputs_differ* when the builds did not even have the same build key)."""

    state: Outcome
    ballot: str
    slot: Slot
    mine: Vote
    others: tuple[Vote, ...] = ()
    reason: str = ""
    lines: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    inputs_differ: bool = False
    tag: str = ""
    """The wheel tag of the build target the builds were for."""

    @property
    def builds(self) -> tuple[Vote, ...]:
        """Every build of the round, by slot."""
        return tuple(sorted((self.mine, *self.others), key=lambda v: v.slot))

    def agreement(self, override: Override | None = None) -> Agreement:
        """The provenance's ``agreement`` entry: agreed, or published under *override*."""
        return Agreement(
            required=self.slot.of,
            builds=tuple(v.agreeing_build() for v in self.builds),
            agreed=self.state == "agreed",
            override=override,
        )

    def override(self, by: str) -> Override:
        """The record of an operator publishing this disagreement anyway."""
        return Override(
            reason=f"published with --publish-irreproducible although {self.reason}",
            by=by,
            differing=self.members,
        )

    def to_json(self) -> dict[str, Any]:
        """The build row's ``agreement`` facts."""
        return {
            "state": self.state,
            "slot": self.slot.number,
            "of": self.slot.of,
            "worker": self.slot.builder,
            "ballot": self.ballot,
            "candidate": {"filename": self.mine.filename, "sha256": self.mine.sha256},
            "builds": [v.build_id for v in self.builds],
            "reason": self.reason or None,
            "differing": list(self.members),
        }

    def message(self) -> str:
        """The failure message of a disagreement: what differs and where to look."""
        others = ", ".join(f"build {v.build_id} ({v.worker})" for v in self.others)
        shown = ", ".join(self.members[:5]) + (" ..." if len(self.members) > 5 else "")
        return (
            f"{self.mine.filename}: {self.reason}; the builds were this one ({self.mine.worker}) "
            f"and {others}"
            + (f"; differing members: {shown}" if shown else "")
            + "; nothing was published (the log shows the differences; "
            + (
                "a new request builds both again)"
                if self.inputs_differ
                else "fromsource build --publish-irreproducible publishes anyway, recorded in "
                "the provenance)"
            )
        )


def waiting_message(verdict: Verdict) -> str:
    """The message of a build that voted first: built, kept, not published yet."""
    where = "another worker" if verdict.slot.distinct else "a second build"
    return (
        f"built {verdict.mine.filename} sha256 {verdict.mine.sha256} as build "
        f"{verdict.slot.number} of {verdict.slot.of}; not published until {where} makes the "
        "same bytes (it waits for a second, independent builder)"
    )


def _fetch(ctx: BuildContext, vote: Vote, dest: Path) -> Path:
    """The wheel *vote* kept as a blob, copied to *dest* (BuildError when it is gone)."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"build-{vote.build_id}" / vote.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        copy_blob(ctx.blobs, Sha256(vote.sha256), path)
    except FromsourceError as exc:
        raise BuildError(
            f"the wheel of build {vote.build_id} ({vote.sha256}) is gone from the blob store "
            f"({exc.message}); it cannot be compared, build the release again",
            category="internal",
        ) from exc
    return path


def _input_lines(ctx: BuildContext, mine: Vote, other: Vote) -> list[str]:
    """How two builds' recorded inputs differ (their pinned build dependencies, target)."""
    records = [get_build(ctx.db, v.build_id) for v in (mine, other)]
    lines = [
        f"build keys: {mine.key} (build {mine.build_id}), {other.key} (build {other.build_id})"
    ]
    if any(r is None for r in records):
        return lines
    pins = []
    for record in records:
        assert record is not None
        deps = record.details.get("dependencies")
        pins.append(
            {f"{d.get('filename')} sha256 {d.get('sha256')}" for d in deps if isinstance(d, dict)}
            if isinstance(deps, list)
            else set()
        )
    lines += [f"only build {mine.build_id} pinned {p}" for p in sorted(pins[0] - pins[1])]
    lines += [f"only build {other.build_id} pinned {p}" for p in sorted(pins[1] - pins[0])]
    targets = [r.details.get("target") for r in records if r is not None]
    if targets[0] != targets[1]:
        lines.append(f"targets: {targets[0]} and {targets[1]}")
    return lines


def _compare(
    ctx: BuildContext, mine: Vote, wheel: Path, others: Sequence[Vote], scratch: Path
) -> tuple[str, tuple[str, ...], tuple[str, ...], bool]:
    """(reason, lines, members, inputs_differ) for the first build that differs; reason ""
    when every build made the same wheel from the same inputs."""
    for other in others:
        if other.key != mine.key:
            return (
                (
                    f"the builds had different inputs (build keys differ: build "
                    f"{mine.build_id} and build {other.build_id})"
                ),
                tuple(_input_lines(ctx, mine, other)),
                (),
                True,
            )
        if other.sha256 == mine.sha256:
            continue
        theirs = _fetch(ctx, other, scratch)
        found: Differences = describe_differences(
            theirs,
            wheel,
            labels=(f"build-{other.build_id}", f"build-{mine.build_id}"),
        )
        return (
            (
                f"two independent builds made different wheels ({other.sha256} by build "
                f"{other.build_id}, {mine.sha256} by build {mine.build_id})"
            ),
            found.lines,
            found.members,
            False,
        )
    return "", (), (), False


def vote(
    ctx: BuildContext,
    release: Release,
    target: Target,
    slot: Slot,
    wheel: Wheel,
    *,
    build_id: int,
    key: str,
    started: datetime,
    build_uid: int | None,
    scratch: Path,
) -> Verdict:
    """Keep *wheel* as a blob and vote it in the ballot of *release* for *target*.

    Returns ``waiting`` unless this vote completed the ballot; then the
    wheels are compared (the other builds' are read from the blob store
    into *scratch*) and the verdict is ``agreed`` or ``differed``.  Raises
    BuildError (``internal``) when a ballot holds a malformed vote, an
    other build's wheel is gone, or (*slot.distinct*) one worker voted for
    two slots, which the claims never allow.
    """
    ctx.blobs.put_file(wheel.path, expected=Sha256(wheel.sha256))
    mine = Vote(
        slot=slot.number,
        build_id=build_id,
        worker=slot.builder,
        started=started,
        finished=datetime.now(UTC),
        filename=wheel.path.name,
        sha256=wheel.sha256,
        key=key,
        sandbox={"variant": slot.variant, "build_uid": build_uid},
    )
    release_target = claims.Target(release.repo, release.project, release.label)
    ballot = ballots.ballot_key(release_target, target.tag)
    tally = ballots.cast_vote(
        ctx.db,
        ballot,
        release_target,
        slot=slot.number,
        slots=slot.of,
        vote=mine.to_json(),
        owner=slot.builder,
    )
    if not tally.complete:
        return Verdict("waiting", ballot, slot, mine, tag=target.tag)
    others = tuple(Vote.from_json(v) for n, v in sorted(tally.votes.items()) if n != slot.number)
    if slot.distinct and any(v.worker == mine.worker for v in others):
        ballots.close_ballot(ctx.db, ballot, "differed")
        raise BuildError(
            f"worker {mine.worker} built two of the independent builds of {release.project} "
            f"{release.label}; they are not independent, nothing was published",
            category="internal",
        )
    reason, lines, members, inputs_differ = _compare(ctx, mine, wheel.path, others, scratch)
    state: Outcome = "differed" if reason else "agreed"
    return Verdict(
        state, ballot, slot, mine, others, reason, lines, members, inputs_differ, target.tag
    )


def _mark(ctx: BuildContext, build_id: int, verdict: Verdict, published: int | None) -> None:
    """Record on the other build *build_id*'s row how the round ended (once it finished).

    A disagreement fails it too (``irreproducible``); an agreement names the
    build that published.  The other build votes just before it finishes, so
    its row is waited for (at most :data:`_TWIN_WAIT_SECONDS`), lest its
    last save overwrite this.
    """
    deadline = time.monotonic() + _TWIN_WAIT_SECONDS
    while (record := get_build(ctx.db, build_id)) is not None and record.status in (
        "queued",
        "running",
    ):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    if record is None:
        return
    details = dict(record.details)
    facts = dict(details.get("agreement") or {})
    concluded_by = verdict.mine.build_id
    facts.update(
        {
            "state": verdict.state,
            "concluded_by": concluded_by,
            "builds": [v.build_id for v in verdict.builds],
            "reason": verdict.reason or None,
            "differing": list(verdict.members),
        }
    )
    details["agreement"] = facts
    if published is not None:
        facts["published_by"] = concluded_by
        update_build(ctx.db, build_id, details=details)
        return
    if verdict.state == "agreed":
        update_build(ctx.db, build_id, details=details)
        return
    details["category"] = "irreproducible"
    message = (
        f"its wheel and build {concluded_by}'s differ ({verdict.reason}); nothing was "
        f"published: fromsource builds show {concluded_by}"
    )
    update_build(
        ctx.db,
        build_id,
        status="failed",
        error=message,
        details=details,
        log=record.log + f"\n== failed: {message}\n",
    )


def settle(ctx: BuildContext, verdict: Verdict, release: Release, *, file_id: int | None) -> None:
    """Close the round *verdict* concluded, and tell the other builds' rows.

    *file_id* is the published file (None when nothing was published).  A
    disagreement that published nothing also settles every slot's claim of
    the release as failed (a fleet's next request then builds them all
    again, not only the last), and those of its target's claims when other
    workers built it for that target.
    """
    state: Literal["agreed", "differed"] = "agreed" if verdict.state == "agreed" else "differed"
    ballots.close_ballot(ctx.db, verdict.ballot, state)
    if state == "differed" and file_id is None:
        target = claims.Target(release.repo, release.project, release.label)
        claims.fail_slots(ctx.db, target, verdict.slot.of, tag=verdict.tag or None)
    for other in verdict.others:
        _mark(ctx, other.build_id, verdict, file_id)


def refuse(verdict: Verdict) -> DisagreementError:
    """The error that fails the concluding build of a disagreement (``irreproducible``)."""
    return DisagreementError(
        verdict.message(),
        category="irreproducible",
        differing=list(verdict.members),
        builds=[v.build_id for v in verdict.builds],
    )
