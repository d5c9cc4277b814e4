"""The last steps: the signed provenance statement, and publishing the wheel with it
(and the wheel's Requires-Dist, which ``--with-deps`` follows)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from fromsource.build.context import BuildContext
from fromsource.build.deps import ResolvedWheel
from fromsource.build.steps.values import Release, Repaired, Request, Resolved, Sdist, Source, Wheel
from fromsource.dist.distinfo import read_record
from fromsource.dist.metadata import requires_dist
from fromsource.provenance.agreement import Agreement
from fromsource.provenance.statement import BuildFacts, build_statement, sign_statement
from fromsource.store.publish import publish_file, read_wheel_metadata

__all__ = ["attest", "publish", "requires_of"]


def attest(
    ctx: BuildContext,
    release: Release,
    sdist: Sdist,
    source: Source,
    resolved: Resolved,
    deps: Sequence[ResolvedWheel],
    repaired: Repaired,
    wheel: Wheel,
    request: Request,
    *,
    invocation_id: str,
    started: datetime,
    agreement: Agreement | None = None,
) -> bytes:
    """The DSSE envelope of the signed provenance statement for *wheel*: the target, what
    repair did, the grafted host libraries, a Rust build's crates (resolved dependencies) and
    toolchain (``internalParameters.rust``) included.; *agreement* (the independent
    builds that made the same wheel, :mod:`fromsource.build.agree`) when given."""
    target = request.target.to_json()
    target.pop("interpreter")  # where it is installed here says nothing about the wheel
    facts = BuildFacts(
        project=release.project,
        version=release.label,
        repository=release.repo,
        sdist_url=sdist.url,
        sdist_sha256=sdist.sha256,
        patches=request.patches,
        dependencies=tuple(w.dependency() for w in deps),
        build_key=resolved.key,
        python=resolved.python,
        platform=resolved.platform,
        source_date_epoch=source.epoch,
        sandbox=resolved.env.sandbox.facts.to_json(),
        invocation_id=invocation_id,
        started=started,
        finished=datetime.now(UTC),
        target=target,
        repair=_repair_facts(repaired),
        grafted=repaired.grafted,
        bundled=resolved.crates.sbom_components() if resolved.crates is not None else (),
        rust=resolved.crates.provenance_facts() if resolved.crates is not None else None,
        agreement=agreement,
    )
    record = read_record(wheel.path, ctx.output_limits)
    statement = build_statement(wheel.path.name, wheel.sha256, record, facts)
    return sign_statement(statement, ctx.signing_key)


def _repair_facts(repaired: Repaired) -> dict[str, object] | None:
    """What repair did, for the statement (the grafted libraries are listed on their own)."""
    if repaired.result is None:
        return None
    return {k: v for k, v in repaired.result.to_json().items() if k != "grafted"}


def requires_of(ctx: BuildContext, wheel: Wheel) -> tuple[str, ...]:
    """The wheel's Requires-Dist (what ``--with-deps`` follows)."""
    return requires_dist(read_wheel_metadata(wheel.path, ctx.output_limits).raw)


def publish(
    ctx: BuildContext, release: Release, wheel: Wheel, envelope: bytes, sbom: bytes, build_id: int
) -> int:
    """Publish *wheel* with its provenance and SBOM into the release's repository; its file id."""
    published = publish_file(
        ctx.db,
        ctx.blobs,
        wheel.path,
        release.repo,
        provenance=envelope,
        sbom=sbom,
        build_id=build_id,
        limits=ctx.output_limits,
    )
    return published.file_id
