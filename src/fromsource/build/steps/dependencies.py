"""The resolve step: the build's sandboxed environment, a Rust build's crates, the build
dependencies pinned to wheels for the target, and the build key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fromsource
from fromsource.build.buildkey import BuildInputs, build_key
from fromsource.build.context import BuildContext
from fromsource.build.crate_fetch import archive_crates, crate_sources, prepare_crates
from fromsource.build.crates import CrateSet
from fromsource.build.deps import (
    OwnRepository,
    ResolvedWheel,
    Resolver,
    check_requirements,
    uv_binary,
)
from fromsource.build.pep517 import BuildEnvironment, BuildSystem
from fromsource.build.steps.values import Release, Request, Resolved, Sdist, Source
from fromsource.build.targets import Target, marker_environment, supported_tags
from fromsource.build.toolchain import compiler_and_libc, repair_tools

__all__ = ["crates", "platform_name", "resolve"]


def _from_source(
    request: Request, wheels: list[ResolvedWheel], again: Callable[[], list[ResolvedWheel]]
) -> list[ResolvedWheel]:
    """*wheels*, resolved *again* after *request.build_deps* built the bootstrap ones."""
    bootstrap = [w for w in wheels if w.source == "bootstrap"]
    if (
        request.build_deps is not None
        and bootstrap
        and request.build_deps(bootstrap, request.target)
    ):
        return again()
    return wheels


def crates(
    ctx: BuildContext, source: Source, system: BuildSystem, env: BuildEnvironment, request: Request
) -> CrateSet | None:
    """A Rust build's crates, checked, vendored and wired into *env*'s sandbox (None: no Rust).

    Crates the sdist does not vendor come from the blob store, then the
    context's crate sources; a rebuild (*request.pinned*) takes them from the
    blob store only: the very archives its reference build recorded, by
    digest.  Fetched archives are kept as blobs like the sdist.  The
    sandbox gets the read-only toolchain, CARGO_HOME and vendor folder, and
    the environment that keeps cargo offline and ``--locked``
    (:meth:`~fromsource.build.crates.CrateSet.env`).  Raises CrateError
    (``unlocked-crates``, ``crates-unavailable: NAME VERSION``,
    ``crate-checksum-mismatch``) and ToolchainError
    (``rust-toolchain-unavailable``).
    """
    entries = () if request.pinned is not None else ctx.crates
    found = prepare_crates(
        source.tree,
        request.work / "rust",
        sandbox=env.sandbox,
        requires=system.requires,
        sources=crate_sources(entries, ctx.blobs),
        toolchain_dir=ctx.rust_toolchain,
    )
    if found is None:
        return None
    env.sandbox.binds += found.sandbox_binds()
    env.env = found.env(env.env)
    archive_crates(found, ctx.blobs)
    return found


def resolve(
    ctx: BuildContext,
    release: Release,
    sdist: Sdist,
    source: Source,
    system: BuildSystem,
    request: Request,
) -> Resolved:
    """Set up the build's environment with the target's interpreter, prepare a Rust build's
    crates (:func:`crates`), pin the static build requirements for the target (or take
    *request.pinned*) and compute the build key."""
    target = request.target
    tool = ctx.tool()
    env = BuildEnvironment(
        request.work,
        tool=tool,
        limits=ctx.limits,
        epoch=source.epoch,
        uv=uv_binary(),
        output_limits=ctx.output_limits,
        python=Path(target.interpreter),
        variant=request.variant,
    )
    # Before resolving: a crate that is missing refuses the build before any wheel is fetched.
    rust = crates(ctx, source, system, env, request)
    tags = supported_tags(target)
    requirements = check_requirements(system.requires, what=sdist.filename)
    own = OwnRepository(
        ctx.db, ctx.blobs, public_url=ctx.public_url, tags=tags, as_of=request.own_as_of
    )
    resolver = Resolver(
        upstream_url=ctx.upstream_url,
        work_dir=request.work / "resolve",
        own=own,
        uv_cache=ctx.cache_dir / "uv",
        python=target.interpreter,
        tags=tags,
        markers=marker_environment(target),
    )
    if request.pinned is not None:
        pins = list(request.pinned)
    else:
        pins = resolver.resolve(requirements, what=sdist.filename)
        pins = _from_source(
            request, pins, lambda: resolver.resolve(requirements, what=sdist.filename)
        )
    python, plat = target.full_version, platform_name(target)
    key = build_key(
        BuildInputs(
            project=release.project,
            version=release.version,
            repo=release.repo,
            sdist_sha256=sdist.sha256,
            patch_sha256=tuple(p.sha256 for p in request.patches),
            local_version=request.local_version,
            dependencies=BuildInputs.pins((w.filename, w.sha256) for w in pins),
            python=python,
            platform=plat,
            toolchain=compiler_and_libc(),
            builder_version=fromsource.__version__,
            sandbox_tool=tool,
            sandbox_network=env.sandbox.facts.network,
            build_path=env.sandbox.facts.build_path,
            target=target.tag,
            glibc=target.glibc,
            repair_tools=repair_tools(),
            rust=rust.key_parts() if rust is not None else (),
        )
    )
    return Resolved(
        system, tuple(requirements), tuple(pins), resolver, env, key, python, plat, rust
    )


def platform_name(target: Target) -> str:
    """The target's platform as builds record it (``linux-x86_64``, as sysconfig names it)."""
    return target.platform_tag.replace("_", "-", 1)
