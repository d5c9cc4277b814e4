"""The build pipeline's steps: each a function from plain values to a plain value.

:func:`fromsource.build.pipeline.build_one` runs them in this order (DESIGN.md
"The build pipeline"), times each one, records what it returned in the
build's row, and turns an error raised by a step into the build's outcome:

1. :func:`fetch`: the sdist, checked against the upstream digest, archived;
2. :func:`unpack`: safely, and PKG-INFO must name the release;
3. :func:`patch`: the remediation series, if any;
4. :func:`read_system` and :func:`resolve`: the sandboxed environment, a
   Rust build's crates (:func:`crates`), the build dependencies pinned to
   wheels, the build key;
5. in the sandbox, :func:`prepare` (venv and pinned wheels),
   :func:`backend_requires` (what the backend asks for), :func:`complete`
   (pinning and installing that too) and :func:`build` (the wheel, checked);
6. :func:`repair`: manylinux repair of an extension wheel, in the sandbox;
7. :func:`describe`: the SBOM;
8. :func:`normalize`: the canonical wheel, SBOM embedded;
9. :func:`attest`: the signed provenance statement;
10. :func:`publish`: into the repository.

A build is for one :class:`~fromsource.build.targets.Target` (the request's):
its interpreter makes the venv, its markers and tags pin the build
dependencies, its tags and glibc are in the build key.

Steps take the :class:`~fromsource.build.context.BuildContext` for the
services they use, never touch the build's row, and raise subclasses of
:class:`~fromsource.errors.FromsourceError` carrying a failure category.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

import fromsource
from fromsource.build.buildkey import BuildInputs, build_key
from fromsource.build.context import BuildContext
from fromsource.build.crate_fetch import archive_crates, crate_sources, prepare_crates
from fromsource.build.crates import CrateSet, rust_backend
from fromsource.build.deps import (
    OwnRepository,
    ResolvedWheel,
    Resolver,
    check_requirements,
    satisfied,
    uv_binary,
)
from fromsource.build.normalize import normalize_wheel
from fromsource.build.pep517 import BuildEnvironment, BuildSystem, read_build_system
from fromsource.build.relabel import relabel_wheel
from fromsource.build.release import find_sdist
from fromsource.build.repair import RepairResult
from fromsource.build.repairbox import repair_in_sandbox, system_libraries
from fromsource.build.targets import (
    Target,
    marker_environment,
    supported_tags,
    wheel_kind,
    wheel_tags,
)
from fromsource.build.toolchain import compiler_and_libc, repair_tools
from fromsource.build.unpack import read_pkg_info, unpack_sdist
from fromsource.build.wheelcache import WheelCache
from fromsource.dist.distinfo import check_wheel, read_record
from fromsource.dist.metadata import requires_dist
from fromsource.dist.names import normalize as normalize_name
from fromsource.errors import BuildError, HashMismatchError, UpstreamError
from fromsource.indexclient import redact
from fromsource.provenance.agreement import Agreement
from fromsource.provenance.sbom import SBOM_PATH, SbomInput, build_sbom
from fromsource.provenance.statement import (
    BuildFacts,
    PatchInfo,
    SystemLibrary,
    build_statement,
    sign_statement,
)
from fromsource.store.blobs import sha256_file
from fromsource.store.publish import publish_file, read_wheel_metadata

__all__ = [
    "BuildDeps",
    "Release",
    "Repaired",
    "Request",
    "Resolved",
    "Sdist",
    "Source",
    "Wheel",
    "attest",
    "backend_requires",
    "build",
    "complete",
    "crates",
    "describe",
    "fetch",
    "normalize",
    "patch",
    "prepare",
    "publish",
    "read_system",
    "repair",
    "requires_of",
    "resolve",
    "unpack",
]

BuildDeps = Callable[[Sequence[ResolvedWheel], Target], bool]
"""Builds bootstrap build dependencies from source first, for the target; True when any now
is ours."""


@dataclass(frozen=True)
class Release:
    """The release one build makes: *version* upstream, *label* the version its wheel carries
    (``X.Y.Z+fs.N`` for a remediated build), *repo* the repository it is published in."""

    project: str
    version: str
    label: str
    repo: str


@dataclass(frozen=True)
class Request:
    """What a build was asked to do beyond the release (see :func:`~.pipeline.build_one`):
    *target* is the interpreter it builds with."""

    target: Target
    patches: tuple[PatchInfo, ...]
    patch_tree: Callable[[Path], None] | None
    patch_texts: Mapping[str, str]
    local_version: str | None
    pinned: tuple[ResolvedWheel, ...] | None
    publish: bool
    work: Path
    wheel_dest: Path | None
    build_deps: BuildDeps | None
    retry_failed: bool = False
    variant: int = 0
    """Which sandbox variant builds it (:class:`~fromsource.build.sandbox.Sandbox`): the
    second of two builds that must agree has another uid, TMPDIR and environment order."""


@dataclass(frozen=True)
class Sdist:
    """The fetched sdist: its name, (redacted) URL, checked sha256 and local copy."""

    filename: str
    url: str
    sha256: str
    archive: Path
    archived_before: bool

    def to_json(self) -> dict[str, str]:
        """The build row's ``sdist`` facts."""
        return {"filename": self.filename, "url": self.url, "sha256": self.sha256}


@dataclass(frozen=True)
class Source:
    """The unpacked source tree and its ``SOURCE_DATE_EPOCH``."""

    tree: Path
    epoch: int


@dataclass(frozen=True)
class Resolved:
    """The pinned build dependencies, the environment they go into, and the build key;
    *crates* are a Rust build's crates and toolchain (None: no Rust)."""

    system: BuildSystem
    requirements: tuple[Requirement, ...]
    pins: tuple[ResolvedWheel, ...]
    resolver: Resolver
    env: BuildEnvironment
    key: str
    python: str
    platform: str
    crates: CrateSet | None = None


@dataclass(frozen=True)
class Repaired:
    """The wheel after manylinux repair, what repair did (None for a pure wheel: nothing to
    repair) and the host libraries it grafted into the wheel."""

    wheel: Path
    result: RepairResult | None
    grafted: tuple[SystemLibrary, ...] = ()


@dataclass(frozen=True)
class Wheel:
    """The final (normalized) wheel: its path, sha256 and size."""

    path: Path
    sha256: str
    size: int

    def to_json(self) -> dict[str, object]:
        """The build row's ``wheel`` facts."""
        return {"filename": self.path.name, "sha256": self.sha256, "size": self.size}


def fetch(ctx: BuildContext, release: Release, work: Path) -> Sdist:
    """The release's sdist in ``work/sdist``: from the blob store, else downloaded and archived.

    Raises UpstreamError (``no-sdist`` also when the page lists no sha256 to check),
    HashMismatchError when the archived copy is not the sha256 the page lists.
    """
    sdist = find_sdist(ctx.upstream, release.project, release.version)
    if sdist.sha256 is None:
        raise UpstreamError(
            f"{sdist.filename}: the upstream index lists no sha256; "
            "it cannot be checked, the build was refused",
            category="no-sdist",
        )
    local = ctx.blobs.local_path(sdist.sha256)
    (work / "sdist").mkdir(parents=True, exist_ok=True)
    if local is not None:
        archive = work / "sdist" / sdist.filename
        shutil.copyfile(local, archive)
        # The blob store is shared: a build that must agree with another (issue 17) may
        # not take the other builder's word for the sdist; neither does any other build.
        if (found := sha256_file(archive)[0]) != sdist.sha256:
            raise HashMismatchError(
                f"{sdist.filename}: the archived copy in the blob store has sha256 {found}, "
                f"not {sdist.sha256} as the upstream index lists; the build was refused "
                "(fromsource fsck checks the store)",
                category="hash-mismatch",
            )
    else:
        archive = ctx.upstream.download(sdist, work / "sdist")
        ctx.blobs.put_file(archive, expected=sdist.sha256)
    return Sdist(sdist.filename, redact(sdist.url), sdist.sha256, archive, local is not None)


def unpack(release: Release, sdist: Sdist, work: Path) -> Source:
    """Unpack *sdist* into ``work/build/src``; its PKG-INFO must name *release*."""
    unpacked = unpack_sdist(sdist.archive, work / "build" / "src")
    info = read_pkg_info(unpacked.root)
    if normalize_name(info.name) != release.project or info.version != Version(release.version):
        raise BuildError(
            f"{sdist.filename}: PKG-INFO says {info.name} {info.version}, not "
            f"{release.project} {release.version}; nothing was built",
            category="sdist-mismatch",
        )
    return Source(unpacked.root, unpacked.epoch)


def patch(source: Source, request: Request) -> Source:
    """Apply the request's patch series to the tree (nothing for an unpatched build)."""
    if request.patch_tree is not None:
        request.patch_tree(source.tree)
    return source


def read_system(source: Source) -> BuildSystem:
    """The tree's ``[build-system]`` (PEP 517/518 defaults when undeclared)."""
    return read_build_system(source.tree)


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
    own = OwnRepository(ctx.db, ctx.blobs, public_url=ctx.public_url, tags=tags)
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


def platform_name(target: Target) -> str:
    """The target's platform as builds record it (``linux-x86_64``, as sysconfig names it)."""
    return target.platform_tag.replace("_", "-", 1)


def repair(ctx: BuildContext, raw: Path, source: Source, resolved: Resolved) -> Repaired:
    """Repair an extension wheel for the lowest manylinux policy its symbols allow.

    auditwheel runs in the build's sandbox (:mod:`fromsource.build.repairbox`);
    a pure wheel is returned as it is.  Where repair is impossible the wheel
    keeps its ``linux_*`` tag and :attr:`Repaired.result` says why.  A
    repaired wheel is held to PEP 427 again (its tags changed).
    """
    if wheel_kind(wheel_tags(raw.name)) == "pure":
        return Repaired(raw, None)
    result = repair_in_sandbox(resolved.env, raw, epoch=source.epoch)
    if result.repaired:
        check_wheel(result.wheel, ctx.output_limits)
    return Repaired(result.wheel, result, system_libraries(result))


def describe(
    release: Release,
    sdist: Sdist,
    source: Source,
    repaired: Repaired,
    deps: Sequence[ResolvedWheel],
    request: Request,
    crates: CrateSet | None = None,
) -> bytes:
    """The CycloneDX SBOM of the (repaired) wheel, grafted libraries and *crates* included."""
    return build_sbom(
        SbomInput(
            project=release.project,
            version=release.label,
            wheel_filename=repaired.wheel.name,
            sdist_url=sdist.url,
            sdist_sha256=sdist.sha256,
            dependencies=tuple(w.dependency() for w in deps),
            patches=request.patches,
            epoch=source.epoch,
            patch_texts=request.patch_texts,
            grafted=repaired.grafted,
            bundled=crates.sbom_components() if crates is not None else (),
        )
    )


def normalize(ctx: BuildContext, raw: Path, source: Source, sbom: bytes, request: Request) -> Wheel:
    """The canonical wheel with the SBOM embedded (copied to *request.wheel_dest* too)."""
    final = normalize_wheel(
        raw,
        request.work / "dist" / "final",
        epoch=source.epoch,
        add_files={SBOM_PATH: sbom},
        limits=ctx.output_limits,
    )
    digest, size = sha256_file(final)
    if request.wheel_dest is not None:
        request.wheel_dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(final, request.wheel_dest / final.name)
    return Wheel(final, digest, size)


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
