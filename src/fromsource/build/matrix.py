"""One release for every build target, once per distinct wheel (issue 12).

:func:`build_release` builds a release for the context's targets (or the
ones given): only those the sdist's Requires-Python admits (as the upstream
page lists it, which is what pip reads too), the oldest first.  After each
build it asks :func:`~fromsource.build.targets.uncovered` which targets no
wheel serves yet -- a pure wheel serves every target, an ``abi3`` wheel
every newer interpreter, any other wheel the one it was built with -- and
builds with the next of those.  Wheels already published count as built.
Each build is its own :func:`~fromsource.build.pipeline.build_one`: its own
row, log, build key, SBOM and attestation.

A failure that does not depend on the interpreter (no sdist, an unsafe
archive, a missing system library, ...: :data:`RELEASE_WIDE`) ends the
release; any other moves on to the next uncovered target.

When independent builds must agree (``ctx.agree`` 2, :mod:`fromsource.build.agree`),
each target is built once per slot: here, one after the other (or at the
same time, each build holding a place of a *gate*), and the target's
outcome is the one that decided; a fleet worker builds only its own slot
(the *slot* option).
:func:`overall` folds a release's outcomes into one for callers that
report releases (workers, remediation).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from packaging.tags import Tag

from fromsource.build.agree import Slot, local_slots
from fromsource.build.context import BuildContext
from fromsource.build.outcome import BuildOutcome, ProgressEvent, Status
from fromsource.build.pipeline import build_one
from fromsource.build.relabel import with_local
from fromsource.build.release import (
    find_sdist,
    parse_requirement,
    pick_version,
    published_wheels,
)
from fromsource.build.targets import Target, supported_targets, uncovered, wheel_tags
from fromsource.dist.names import normalize
from fromsource.errors import FromsourceError

__all__ = ["RELEASE_WIDE", "build_release", "overall", "release_targets"]

RELEASE_WIDE = frozenset(
    {
        "no-sdist",
        "not-found",
        "upstream-error",
        "hash-mismatch",
        "unsafe-archive",
        "sdist-mismatch",
        "patch-failed",
        "bad-pyproject",
        "bad-build-requirement",
        "needs-rust",
        "unlocked-crates",
        "crates-unavailable",
        "crate-checksum-mismatch",
        "rust-toolchain-unavailable",
        "missing-system-library",
        "sandbox-unavailable",
        "inputs-unavailable",
    }
)
"""Failure categories that do not depend on the interpreter: the release's other targets
would fail the same way, so they are not tried."""


def release_targets(
    ctx: BuildContext, project: str, version: str, targets: Sequence[Target]
) -> tuple[Target, ...]:
    """The *targets* the release's sdist admits (its upstream Requires-Python), oldest first.

    Raises what :func:`~fromsource.build.release.find_sdist` raises.
    """
    sdist = find_sdist(ctx.upstream, project, version)
    return supported_targets(sdist.requires_python, targets)


def build_release(
    ctx: BuildContext,
    requirement: str,
    *,
    targets: Sequence[Target] | None = None,
    build_id: int | None = None,
    gate: threading.Semaphore | None = None,
    **options: Any,
) -> tuple[BuildOutcome, ...]:
    """Build *requirement* for *targets* (default: the context's), once per distinct wheel.

    *options* are :func:`~fromsource.build.pipeline.build_one`'s (``repo``,
    ``patches``, ``local_version``, ``progress``, ``publish``, ``slot``, ...);
    *build_id* is the row of the first build.  When ``ctx.agree`` asks for
    independent builds and no *slot* is given, every slot is built here: at
    the same time with a *gate*, each build while it holds one of its places
    (so a batch runs as many sandboxes at once as the gate has places, never
    idle while a release waits for its slower build).  Returns the outcomes of the
    builds in the order they ran (at least one; a release whose
    Requires-Python admits no target is one ``skipped`` outcome without a
    row; with agreement, one per target: the one that decided).  Never
    raises for a failed build; raises BuildError only when *requirement* is
    not a requirement.
    """
    parsed = parse_requirement(requirement)
    chosen = tuple(targets) if targets else ctx.build_targets()
    project = normalize(parsed.name)
    try:
        version = pick_version(ctx.upstream, parsed, [t.full_version for t in chosen])
    except FromsourceError:
        # The build records why (not found, upstream error), as one row.
        return (build_one(ctx, requirement, target=chosen[0], build_id=build_id, **options),)
    pinned = f"{project}=={version}"
    try:
        supported = release_targets(ctx, project, version, chosen)
    except FromsourceError:  # no sdist, ...: recorded the same way
        return (build_one(ctx, pinned, target=chosen[0], build_id=build_id, **options),)
    if not supported:
        names = ", ".join(t.name for t in chosen)
        return (
            BuildOutcome(
                project=project,
                version=version,
                status="skipped",
                message=f"its Requires-Python admits none of the build targets ({names})",
            ),
        )
    local = options.get("local_version")
    label = with_local(version, local) if local else version
    built: list[frozenset[Tag]] = []
    if options.get("publish", True):
        repo = options.get("repo", "python")
        built = [wheel_tags(f.filename) for f in published_wheels(ctx.db, repo, project, label)]
    tried: list[Target] = []
    outcomes: list[BuildOutcome] = []
    agreeing = ctx.agree > 1 and options.get("publish", True) and "slot" not in options
    while left := uncovered(supported, built, tried):
        first = None if outcomes else build_id
        if agreeing:
            outcome = _build_agreed(ctx, pinned, left[0], first, gate, options)
        else:
            outcome = build_one(ctx, pinned, target=left[0], build_id=first, **options)
        outcomes.append(outcome)
        tried.append(left[0])
        if outcome.wheel:
            built.append(wheel_tags(outcome.wheel))
        if outcome.status == "failed" and outcome.category in RELEASE_WIDE:
            break
    if not outcomes:  # every target is served by a published wheel: say so, once
        outcomes.append(build_one(ctx, pinned, target=supported[0], build_id=build_id, **options))
    return tuple(outcomes)


def _build_agreed(
    ctx: BuildContext,
    requirement: str,
    target: Target,
    build_id: int | None,
    gate: threading.Semaphore | None,
    options: dict[str, Any],
) -> BuildOutcome:
    """Every independent build of *requirement* for *target*, here; the deciding outcome.

    One after the other, the next only when the one before built a wheel
    that waits for agreement.  With a *gate*, at the same time, each while it
    holds a place: the later ones start once the first has pinned its build
    dependencies (so they find the sdist, the resolver's cache and the
    wheels already fetched, and resolve on their own without waiting on the
    network again), or not at all if the first ended without a wheel that
    waits.  The outcome is the first failure, else the build that
    published, else the first.
    """
    slots = local_slots(ctx.agree)
    user_progress = options.get("progress")
    ready = threading.Event()
    done: dict[int, BuildOutcome] = {}

    def relay(event: ProgressEvent) -> None:
        if event.step == "" or (event.step == "deps" and event.state == "done"):
            ready.set()
        if user_progress is not None:
            user_progress(event)

    def build(slot: Slot) -> BuildOutcome:
        first = build_id if slot.number == 1 else None
        chosen = {**options, "progress": relay if slot.number == 1 else user_progress}
        return build_one(ctx, requirement, target=target, build_id=first, slot=slot, **chosen)

    def one(slot: Slot) -> BuildOutcome | None:
        if gate is None:
            return build(slot)
        if slot.number > 1:
            ready.wait()
            if 1 in done and not _waits(done[1]):
                return None
        try:
            with gate:
                done[slot.number] = build(slot)
                return done[slot.number]
        finally:
            ready.set()

    outcomes: list[BuildOutcome] = []
    if gate is not None:
        with ThreadPoolExecutor(len(slots), thread_name_prefix="agree") as pool:
            outcomes = [o for o in pool.map(one, slots) if o is not None]
    else:
        for slot in slots:
            outcomes.append(outcome := build(slot))
            if not _waits(outcome):
                break
    failed = [o for o in outcomes if o.status == "failed"]
    published = [o for o in outcomes if o.file_id is not None]
    return (failed or published or outcomes)[0]


def _waits(outcome: BuildOutcome) -> bool:
    """Whether *outcome* is a built wheel waiting for the other independent builds."""
    return outcome.status == "succeeded" and outcome.file_id is None


def overall(outcomes: Sequence[BuildOutcome]) -> BuildOutcome:
    """One outcome for a release's builds: failed if any failed, else succeeded if any
    built, else skipped; the first failed build's (else the first build's) row, category and
    wheel; every build's message, each with its target when there are several."""
    statuses = {o.status for o in outcomes}
    status: Status = (
        "failed" if "failed" in statuses else "succeeded" if "succeeded" in statuses else "skipped"
    )
    lead = next((o for o in outcomes if o.status == "failed"), outcomes[0])
    if len(outcomes) > 1:
        message = "; ".join(f"{o.target or 'any'}: {o.message}" for o in outcomes)
    else:
        message = lead.message
    return dataclasses.replace(
        lead,
        status=status,
        message=message,
        seconds=sum(o.seconds for o in outcomes),
        requires_dist=next((o.requires_dist for o in outcomes if o.requires_dist), ()),
    )
