"""Running one build request under a claim: what a worker (Celery or in-process) does.

:func:`run_request` resolves the release, acquires its claim
(:mod:`fromsource.workers.claims`), runs :func:`~fromsource.build.matrix.build_release`
(every build target, once per distinct wheel) with a heartbeat, settles the claim and says which dependency builds to
request next (``with_deps``).  A release another builder holds is answered
``busy`` (the caller tries again later); one already settled is answered
``done`` without a second build row.

A request for one of a release's independent builds (its ``slot``, issue 17)
claims that slot; the worker that holds or built another slot of the
release is answered ``waiting`` (another worker must take it: the caller
tries again later), and the build votes its wheel
(:mod:`fromsource.build.agree`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from fromsource.build.agree import Slot
from fromsource.build.batch import dependency_requirements
from fromsource.build.history import create_build
from fromsource.build.matrix import build_release, overall
from fromsource.build.outcome import BuildOutcome
from fromsource.build.pipeline import BuildContext, Progress
from fromsource.build.release import pick_version
from fromsource.build.targets import Target, marker_environment
from fromsource.dist.names import normalize
from fromsource.errors import BuildError, FromsourceError
from fromsource.workers import claims
from fromsource.workers.request import BuildRequest, RunResult, RunStatus, new_owner

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
            )
        )
    return tuple(found)


def _from_outcome(
    request: BuildRequest,
    parsed: Requirement | None,
    outcomes: Sequence[BuildOutcome],
    targets: Sequence[Target],
) -> RunResult:
    outcome = overall(outcomes)
    statuses: dict[str, RunStatus] = {"succeeded": "succeeded", "skipped": "skipped"}
    return RunResult(
        status=statuses.get(outcome.status, "failed"),
        requirement=request.requirement,
        project=outcome.project,
        version=outcome.version,
        build_id=outcome.build_id,
        message=outcome.message,
        follow_up=_follow_ups(request, parsed, outcome, targets) if parsed is not None else (),
    )


def _slot(ctx: BuildContext, number: int, owner: str, slots: int | None = None) -> Slot:
    """Independent build *number* of a release, built by *owner*'s worker (a fleet's)."""
    return Slot(number, slots or max(ctx.agree, number), claims.worker_of(owner), distinct=True)


def run_request(
    ctx: BuildContext,
    request: BuildRequest,
    *,
    owner: str,
    lease_seconds: float = 60.0,
    progress: Progress | None = None,
) -> RunResult:
    """Build *request* unless another builder holds or already settled its release.

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
    targets = ctx.build_targets()
    try:
        version = pick_version(ctx.upstream, parsed, [t.full_version for t in targets])
    except FromsourceError as exc:
        if request.slot not in (None, 1):  # the first build's task records why
            return RunResult("failed", request.requirement, project, message=exc.message)
        # Nothing to claim: let the pipeline record why (not found, no sdist, ...), once.
        once: dict[str, Any] = {"slot": _slot(ctx, 1, owner)} if request.slot is not None else {}
        outcomes = build_release(ctx, request.requirement, repo=request.repo, **once)
        return _from_outcome(request, parsed, outcomes, targets)
    number = request.slot or 1
    slots = max(ctx.agree, number) if request.slot is not None else 1
    target = claims.Target(request.repo, project, version, slot=number)
    claim = claims.acquire(
        ctx.db,
        target,
        owner,
        lease_seconds=lease_seconds,
        requested_at=request.requested_at,
        request=request.to_json(),
        slots=slots,
    )
    if isinstance(claim, claims.Refused):
        return RunResult(
            "waiting",
            request.requirement,
            project,
            version,
            message=f"{project} {version}: independent build {number} of {slots} must be built "
            f"by another worker than {claims.worker_of(owner)}, which built another of them "
            f"({claim.twin.state}); waiting for a second builder",
        )
    if isinstance(claim, claims.Busy):
        return RunResult(
            "busy",
            request.requirement,
            project,
            version,
            message=f"{project} {version} is being built by {claim.owner}",
        )
    if isinstance(claim, claims.Done):
        return RunResult(
            "done",
            request.requirement,
            project,
            version,
            build_id=claim.build_id,
            message=f"{project} {version} was settled by build {claim.build_id} ({claim.state})",
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
        "building %s %s into %s as build %s (%s)", project, version, request.repo, build_id, owner
    )
    with claims.Heartbeat(ctx.db, claim.key, owner, lease_seconds):
        try:
            options: dict[str, Any] = {}
            if request.slot is not None:
                options["slot"] = _slot(ctx, number, owner, slots)
            outcomes = build_release(
                ctx,
                f"{project}=={version}",
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
    return _from_outcome(request, parsed, outcomes, targets)
