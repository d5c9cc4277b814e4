"""The steps in the sandbox that run the PEP 517 backend: prepare the venv, ask the backend
what it requires, complete the build dependencies, build the wheel."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from fromsource.build.context import BuildContext
from fromsource.build.crate_fetch import prepare_crates
from fromsource.build.crates import rust_backend
from fromsource.build.deps import ResolvedWheel, check_requirements, satisfied
from fromsource.build.relabel import relabel_wheel
from fromsource.build.steps.dependencies import _from_source
from fromsource.build.steps.values import Release, Request, Resolved, Sdist, Source
from fromsource.build.wheelcache import WheelCache
from fromsource.dist.distinfo import check_wheel
from fromsource.errors import BuildError

__all__ = ["backend_requires", "build", "complete", "prepare"]


def _install(ctx: BuildContext, resolved: Resolved, pins: Sequence[ResolvedWheel]) -> None:
    cache = WheelCache(ctx.cache_dir / "wheels", ctx.upstream)
    resolved.env.install(cache.wheelhouse(pins, resolved.env.wheelhouse, ctx.blobs))


def prepare(ctx: BuildContext, resolved: Resolved) -> None:
    """Create the sandboxed venv and install the pinned wheels into it, offline."""
    resolved.env.create_venv()
    _install(ctx, resolved, resolved.pins)


def backend_requires(sdist: Sdist, source: Source, resolved: Resolved) -> tuple[Requirement, ...]:
    """What the backend's ``get_requires_for_build_wheel`` asks for (checked like the static).

    Raises CrateError ``unlocked-crates`` when it asks for a Rust backend
    (maturin, setuptools-rust) that the static requirements did not name and
    the sdist ships Rust sources without a Cargo.lock.
    """
    asked = resolved.env.get_requires(source.tree, resolved.system)
    if resolved.crates is None and rust_backend(asked) is not None:
        # A tree with a Cargo.lock was prepared already (in resolve); this only refuses
        # one whose backend is asked for here and that locks nothing.
        prepare_crates(
            source.tree, resolved.env.work / "rust", sandbox=resolved.env.sandbox, requires=asked
        )
    return tuple(check_requirements(asked, what=sdist.filename))


def complete(
    ctx: BuildContext,
    sdist: Sdist,
    resolved: Resolved,
    extra: Sequence[Requirement],
    request: Request,
) -> tuple[ResolvedWheel, ...]:
    """The build dependencies with *extra* satisfied: the pins as they are when they already
    satisfy it, else everything resolved again and installed.

    A rebuild (*request.pinned*) never resolves: DependencyError
    (``build-deps-unresolvable``) when its pins do not satisfy *extra*.
    """
    if satisfied(extra, resolved.pins, resolved.resolver.markers):
        return resolved.pins
    if request.pinned is not None:
        raise BuildError(
            f"the backend asks for {', '.join(map(str, extra))}, which the "
            "pinned build dependencies do not satisfy",
            category="build-deps-unresolvable",
        )
    wanted = [*resolved.requirements, *extra]
    deps = resolved.resolver.resolve(wanted, what=sdist.filename)
    deps = _from_source(
        request, deps, lambda: resolved.resolver.resolve(wanted, what=sdist.filename)
    )
    _install(ctx, resolved, deps)
    return tuple(deps)


def build(
    ctx: BuildContext, release: Release, source: Source, resolved: Resolved, request: Request
) -> Path:
    """Run ``build_wheel`` in the sandbox; the wheel, held to the release and to PEP 427.

    Raises BuildError ``wheel-mismatch`` for a wheel of another release (and
    what :func:`~fromsource.dist.distinfo.check_wheel` raises for a malformed one).
    A remediated build's wheel is relabelled with its local version.
    """
    work = request.work
    raw = resolved.env.build_wheel(source.tree, resolved.system, work / "dist" / "raw")
    name, built_version, _build, _tags = parse_wheel_filename(raw.name)
    if name != release.project or built_version != Version(release.version):
        raise BuildError(
            f"the backend built {raw.name}, not {release.project} {release.version}",
            category="wheel-mismatch",
        )
    # Its .dist-info, WHEEL and METADATA must name the same release, within their
    # caps, before anything describes or signs the wheel (issue 18).
    check_wheel(raw, ctx.output_limits)
    if request.local_version:
        raw = relabel_wheel(
            raw, request.local_version, work / "dist" / "relabel", ctx.output_limits
        )
    return raw
