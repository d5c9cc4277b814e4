"""Running one build request under a claim: what a worker (Celery or in-process) does.

:func:`run_request` resolves the release, acquires its claim
(:mod:`fromsource.workers.claims`), runs :func:`~fromsource.build.matrix.build_release`
(every build target, once per distinct wheel) with a heartbeat, settles the
claim and says which dependency builds to request next (``with_deps``).  A
release another builder holds is answered ``busy`` (the caller tries again
later); one already settled is answered ``done`` without a second build row.

A request for one of a release's independent builds (its ``slot``, issue 17)
claims that slot; the worker that holds or built another slot of the
release is answered ``waiting`` (another worker must take it: the caller
tries again later), and the build votes its wheel
(:mod:`fromsource.build.agree`).

In a fleet (a :class:`~fromsource.workers.routing.FleetView` given, issue
12), a release is led by a worker that has its oldest wanted target: any
other worker answers ``forwarded`` with the request for that target's
queue.  The lead builds its own targets, then routes each wanted target that
no wheel serves yet to that target's queue as a request for it alone
(:attr:`~fromsource.workers.request.RunResult.routed`), which the worker that
takes it builds under a claim of its own (release, slot, target).

A request whose version policy chooses (:attr:`~BuildRequest.under_policy`:
build-on-demand's, and the dependency requests it leads to) is narrowed to
the releases policy lets through now, the decision build-on-demand makes
(:func:`~fromsource.proxy.offers.on_demand`: malware records, block and
allow rules, and the cooldown); when none is, the request is ``skipped``
without a build and the releases policy holds back are audited.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from fromsource.build.agree import Slot
from fromsource.build.batch import dependency_requirements
from fromsource.build.history import create_build
from fromsource.build.matrix import RELEASE_WIDE, build_release, overall, release_targets
from fromsource.build.outcome import BuildOutcome
from fromsource.build.pipeline import BuildContext, Progress
from fromsource.build.release import pick_version, published_wheels
from fromsource.build.targets import Target, marker_environment, wheel_tags
from fromsource.build.upstream_pages import dist_of
from fromsource.dist.names import normalize
from fromsource.errors import BuildError, FromsourceError
from fromsource.policy.store import AuditEntry, load_policy, record_new
from fromsource.proxy.offers import on_demand
from fromsource.workers import claims
from fromsource.workers.request import BuildRequest, RunResult, RunStatus, new_owner
from fromsource.workers.routing import FleetView, lead_target, queue_name, routes, unserved

__all__ = ["BuildRequest", "RunResult", "new_owner", "run_request"]

log = logging.getLogger("fromsource.workers")


def _follow_ups(
    request: BuildRequest, parsed: Requirement, outcome: BuildOutcome, targets: Sequence[Target]
) -> tuple[BuildRequest, ...]:
    if not request.with_deps or outcome.status not in ("succeeded", "skipped"):
        return ()
    if request.slot not in (None, 1):
        return ()  # the first of the independent builds asks for the dependencies
    found = []
    deps: dict[str, Requirement] = {}
    # A dependency any build target's markers select is requested (it is built for all).
    for target in targets:
        for dep in dependency_requirements(
            outcome.requires_dist, parsed.extras, marker_environment(target)
        ):
            deps.setdefault(str(dep), dep)
    for dep in deps.values():
        extras = f"[{','.join(sorted(dep.extras))}]" if dep.extras else ""
        found.append(
            BuildRequest(
                f"{dep.name}{extras}{dep.specifier}",
                repo=request.repo,
                with_deps=True,
                requested_at=request.requested_at,
                under_policy=request.under_policy,
            )
        )
    return tuple(found)


def _from_outcome(
    request: BuildRequest,
    parsed: Requirement | None,
    outcomes: Sequence[BuildOutcome],
    targets: Sequence[Target],
    routed: tuple[BuildRequest, ...] = (),
    said: str = "",
) -> RunResult:
    outcome = overall(outcomes)
    statuses: dict[str, RunStatus] = {"succeeded": "succeeded", "skipped": "skipped"}
    return RunResult(
        status=statuses.get(outcome.status, "failed"),
        requirement=request.requirement,
        project=outcome.project,
        version=outcome.version,
        build_id=outcome.build_id,
        message=outcome.message + said,
        follow_up=_follow_ups(request, parsed, outcome, targets) if parsed is not None else (),
        routed=routed,
    )


def _slot(
    ctx: BuildContext, request: BuildRequest, number: int, owner: str, slots: int | None = None
) -> Slot:
    """Independent build *number* of *request*'s release, built by *owner*'s worker (a
    fleet's); every slot resolves against our repository as it was when it was requested."""
    of = slots or max(ctx.agree, number)
    return Slot(number, of, claims.worker_of(owner), distinct=True, as_of=request.requested_at)


def _named(target: Target) -> str:
    return f"{target.name} ({target.tag})"


def _supported(
    ctx: BuildContext, project: str, version: str, wanted: Sequence[Target]
) -> tuple[Target, ...]:
    """The *wanted* targets the release's Requires-Python admits; none when its sdist cannot
    be found (the build records why)."""
    try:
        return release_targets(ctx, project, version, wanted)
    except FromsourceError:
        return ()


def _forward(
    request: BuildRequest, project: str, version: str, lead: Target, fleet: FleetView
) -> RunResult:
    """The answer of a worker without the release's lead target: the request, for its queue."""
    forwarded = dataclasses.replace(request, lead=lead.tag)
    message = (
        f"{project} {version} is led by a worker with {_named(lead)}, the oldest target to "
        f"build it with; sent to {forwarded.queue}"
    )
    if lead.tag not in fleet.live:
        message += "; no live worker has that target: the request waits there until one starts"
        log.warning("%s", message)
    return RunResult(
        "forwarded", request.requirement, project, version, message=message, routed=(forwarded,)
    )


def _route(
    ctx: BuildContext,
    request: BuildRequest,
    project: str,
    version: str,
    outcomes: Sequence[BuildOutcome],
    supported: Sequence[Target],
    local: Sequence[Target],
    fleet: FleetView,
) -> tuple[tuple[BuildRequest, ...], str]:
    """The requests for the *supported* targets this worker does not have and no wheel serves
    yet (published, or just built: *outcomes*), and what to add to the message."""
    if any(o.status == "failed" and o.category in RELEASE_WIDE for o in outcomes):
        return (), ""  # they would fail the same way
    published = published_wheels(ctx.db, request.repo, project, version)
    built = [wheel_tags(f.filename) for f in published]
    built += [wheel_tags(o.wheel) for o in outcomes if o.wheel]
    elsewhere = routes(supported, built, local)
    sent = tuple(
        BuildRequest(
            f"{project}=={version}",
            repo=request.repo,
            requested_at=request.requested_at,
            slot=request.slot,
            target=target.tag,
        )
        for target in elsewhere
    )
    said = ""
    if elsewhere:
        said = "; sent to other workers: " + ", ".join(_named(t) for t in elsewhere)
    for target in unserved(elsewhere, fleet.live):
        warning = (
            f"{project} {version}: no live worker has the build target {_named(target)}; "
            f"its build waits in the queue {queue_name(target.tag)} "
            "until a worker with that target starts"
        )
        log.warning("%s", warning)
        said += f"; {warning}"
    return sent, said


def _claimed_build(
    ctx: BuildContext,
    request: BuildRequest,
    claim_target: claims.Target,
    targets: Sequence[Target],
    *,
    owner: str,
    lease_seconds: float,
    progress: Progress | None,
) -> RunResult | tuple[BuildOutcome, ...]:
    """Build *claim_target*'s release for *targets* under its claim: the outcomes, or why not
    (``waiting``, ``busy`` or ``done``)."""
    project, version = claim_target.project, claim_target.version
    number = claim_target.slot
    slots = max(ctx.agree, number) if request.slot is not None else 1
    claim = claims.acquire(
        ctx.db,
        claim_target,
        owner,
        lease_seconds=lease_seconds,
        requested_at=request.requested_at,
        request=request.to_json(),
        slots=slots,
        tags=[t.tag for t in targets],
    )
    which = f" for {claim_target.tag}" if claim_target.tag else ""
    if isinstance(claim, claims.Refused):
        return RunResult(
            "waiting",
            request.requirement,
            project,
            version,
            message=f"{project} {version}: independent build {number} of {slots}{which} must be "
            f"built by another worker than {claims.worker_of(owner)}, which built another of "
            f"them ({claim.twin.state}); waiting for a second builder",
        )
    if isinstance(claim, claims.Busy):
        return RunResult(
            "busy",
            request.requirement,
            project,
            version,
            message=f"{project} {version}{which} is being built by {claim.owner}",
        )
    if isinstance(claim, claims.Done):
        return RunResult(
            "done",
            request.requirement,
            project,
            version,
            build_id=claim.build_id,
            message=f"{project} {version}{which} was settled by build {claim.build_id} "
            f"({claim.state})",
        )
    build_id = create_build(ctx.db, project, version, request.repo)
    claims.attach_build(ctx.db, claim.key, owner, build_id)
    if claim.stale is not None and claim.stale.build_id is not None:
        claims.mark_worker_lost(
            ctx.db,
            claim.stale.build_id,
            f"the worker {claim.stale.owner} stopped renewing its lease; "
            f"the build was retried as build {build_id}",
        )
    log.info(
        "building %s %s%s into %s as build %s (%s)", project, version, which, request.repo,
        build_id, owner,
    )
    with claims.Heartbeat(ctx.db, claim.key, owner, lease_seconds):
        try:
            options: dict[str, Any] = {}
            if request.slot is not None:
                options["slot"] = _slot(ctx, request, number, owner, slots)
            outcomes = build_release(
                ctx,
                f"{project}=={version}",
                targets=targets,
                repo=request.repo,
                build_id=build_id,
                progress=progress,
                **options,
            )
        except BaseException:
            claims.abandon(ctx.db, claim.key, owner)
            raise
    claims.release(
        ctx.db,
        claim.key,
        owner,
        succeeded=overall(outcomes).status in ("succeeded", "skipped"),
        build_id=build_id,
    )
    return outcomes


def _unresolved(
    ctx: BuildContext,
    request: BuildRequest,
    parsed: Requirement,
    project: str,
    exc: FromsourceError,
    targets: Sequence[Target],
    owner: str,
) -> RunResult:
    """A request whose version cannot be picked: nothing to claim, so let the pipeline
    record why (not found, no sdist, ...), once."""
    if request.slot not in (None, 1):  # the first build's task records why
        return RunResult("failed", request.requirement, project, message=exc.message)
    once: dict[str, Any] = {"slot": _slot(ctx, request, 1, owner)} if request.slot is not None else {}
    outcomes = build_release(ctx, str(parsed), targets=targets, repo=request.repo, **once)
    return _from_outcome(request, parsed, outcomes, targets)


def _under_policy(
    ctx: BuildContext, request: BuildRequest, parsed: Requirement, project: str
) -> Requirement | RunResult:
    """*parsed* narrowed to its releases policy lets through now, or why none is (``skipped``).

    The decision is build-on-demand's (:func:`~fromsource.proxy.offers.on_demand`) over the
    upstream releases *parsed* admits, read through the build context's upstream client:
    what it holds back is audited (``build-refused``, actor ``on-demand``), and so is an
    allow rule letting the release through (``build-allowed``), once per policy generation.
    """
    try:
        files = ctx.upstream.project_files(project)
    except FromsourceError as exc:
        if exc.facts.get("category") == "not-found":
            return parsed  # the build records that the upstream has no such project
        return RunResult(
            "failed",
            request.requirement,
            project,
            message=f"{project}: its upstream page could not be read ({exc.message}); a "
            "version policy chooses is not picked without it (its cooldown cannot be checked)",
        )
    admitted = [
        f for f in files if (d := dist_of(f, project)) is not None and d.version in parsed.specifier
    ]
    policy = load_policy(ctx.db, project)
    now = datetime.now(UTC)
    demand = on_demand(project, admitted, policy=policy, now=now)
    entries = [
        AuditEntry.of(
            decision,
            action,
            at=now,
            actor="on-demand",
            generation=policy.generation,
            repo=request.repo,
        )
        for action, decision in demand.audited
    ]
    record_new(ctx.db, entries)
    if demand.requirement is None:
        held = "; ".join(r.decision.reason for r in demand.held)
        why = (
            f"policy lets none of the releases it admits through now ({held})"
            if held
            else "the upstream lists no final release with an sdist that it admits"
        )
        message = f"{request.requirement} is not built: {why}"
        log.warning("%s", message)
        return RunResult("skipped", request.requirement, project, message=message)
    narrowed = copy.copy(parsed)
    narrowed.specifier = parsed.specifier & Requirement(demand.requirement).specifier
    return narrowed


def run_request(
    ctx: BuildContext,
    request: BuildRequest,
    *,
    owner: str,
    lease_seconds: float = 60.0,
    progress: Progress | None = None,
    fleet: FleetView | None = None,
) -> RunResult:
    """Build *request* unless another builder holds or already settled its release.

    With *fleet* (a fleet worker), the release is built for the fleet's
    wanted targets: led by a worker with its oldest one (else ``forwarded``),
    and the targets this worker does not have are routed to other workers
    (:attr:`RunResult.routed`; see the module).  A request for one
    :attr:`~BuildRequest.target` builds that target alone (``waiting`` when
    this worker does not have it).

    Never raises for a failed build (the build row records it).  Raises
    BuildError for a request that is not a requirement or names an unknown
    repository (nothing to retry).  If the process is interrupted mid-build,
    the claim's lease is ended at once so another worker takes over.
    """
    try:
        parsed = Requirement(request.requirement)
    except InvalidRequirement as exc:
        raise BuildError(
            f"{request.requirement!r} is not a requirement such as flask==2.0.0 ({exc}); "
            "the request was dropped",
            requirement=request.requirement,
        ) from exc
    if request.repo != "python":
        # Remediated versions need their patch series and +fs.N label:
        # remediate/run.py builds them (`fromsource remediate`), not a bare request.
        raise BuildError(
            f"cannot build {request.requirement} into {request.repo!r} from a build request: "
            "requests build unmodified sdists into python; build remediated versions with "
            "`fromsource remediate`",
            repo=request.repo,
        )
    project = normalize(parsed.name)
    if request.under_policy:
        chosen = _under_policy(ctx, request, parsed, project)
        if isinstance(chosen, RunResult):
            return chosen
        parsed = chosen
    local = ctx.build_targets()
    options: dict[str, Any] = {"owner": owner, "lease_seconds": lease_seconds, "progress": progress}
    if request.target is not None:
        mine = [t for t in local if t.tag == request.target]
        if not mine:
            return RunResult(
                "waiting",
                request.requirement,
                project,
                message=f"{project}: this worker ({claims.worker_of(owner)}) has no build target "
                f"{request.target}; the request goes back to {request.queue}",
            )
        try:
            version = pick_version(ctx.upstream, parsed, [mine[0].full_version])
        except FromsourceError as exc:
            return _unresolved(ctx, request, parsed, project, exc, mine, owner)
        claim = claims.Target(
            request.repo, project, version, slot=request.slot or 1, tag=request.target
        )
        built = _claimed_build(ctx, request, claim, mine, **options)
        if isinstance(built, RunResult):
            return built
        return _from_outcome(request, parsed, built, mine)
    wanted = fleet.wanted if fleet is not None and fleet.wanted else local
    try:
        version = pick_version(ctx.upstream, parsed, [t.full_version for t in wanted])
    except FromsourceError as exc:
        return _unresolved(ctx, request, parsed, project, exc, local, owner)
    supported: tuple[Target, ...] = ()
    if fleet is not None:
        supported = _supported(ctx, project, version, wanted)
        tags = {t.tag for t in local}
        lead = lead_target(supported, tags, fleet.live, strict=ctx.agree > 1)
        if request.lead is None and lead is not None and lead.tag not in tags:
            return _forward(request, project, version, lead, fleet)
    claim = claims.Target(request.repo, project, version, slot=request.slot or 1)
    built = _claimed_build(ctx, request, claim, local, **options)
    if isinstance(built, RunResult):
        settled = claims.get_claim(ctx.db, claim.key) if built.status == "done" else None
        if fleet is not None and settled is not None and settled.state == "succeeded":
            # Its lead may have stopped between settling it and routing the other targets:
            # route again (a target's own claim makes a second request for it a no-op).
            again, said = _route(ctx, request, project, version, (), supported, local, fleet)
            built = dataclasses.replace(built, routed=again, message=built.message + said)
        return built
    routed: tuple[BuildRequest, ...] = ()
    said = ""
    if fleet is not None:
        routed, said = _route(ctx, request, project, version, built, supported, local, fleet)
    return _from_outcome(request, parsed, built, wanted, routed, said)
