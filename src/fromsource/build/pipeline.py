"""The build pipeline: one ``name==version`` from upstream sdist to published wheel.

:func:`build_one` runs the nine steps of DESIGN.md "The build pipeline" —
fetch, unpack, patch, resolve build dependencies, build in the sandbox,
describe (SBOM), normalize (SBOM embedded), attest (signed), publish — and
records the build as a row of the history with its log, its facts and, on
failure, a category from :data:`fromsource.build.outcome.CATEGORIES`.

A release already published in the repository, or whose build key already
built successfully, is skipped (status ``skipped``).  Many builds, with
their runtime dependencies, are run by :mod:`fromsource.build.batch`.
"""

from __future__ import annotations

import platform
import secrets
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from functools import cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

import fromsource
from fromsource.build.buildkey import BuildInputs, build_key
from fromsource.build.deps import (
    OwnRepository,
    ResolvedWheel,
    Resolver,
    WheelCache,
    check_requirements,
    satisfied,
    uv_binary,
)
from fromsource.build.history import create_build, find_succeeded, update_build
from fromsource.build.normalize import normalize_wheel, wheel_record
from fromsource.build.outcome import BuildOutcome, ProgressEvent, Status, categorize
from fromsource.build.pep517 import BuildEnvironment, read_build_system
from fromsource.build.relabel import relabel_wheel, with_local
from fromsource.build.sandbox import SandboxLimits, Tool, choose_tool
from fromsource.build.unpack import read_pkg_info, unpack_sdist
from fromsource.build.upstream import Upstream
from fromsource.build.upstream_pages import UpstreamFile, dist_of, python_ok, redact
from fromsource.config import Settings, upstream_url
from fromsource.errors import BuildError, FromsourceError, UpstreamError
from fromsource.names import normalize
from fromsource.provenance.keys import SigningKey, load_or_create_signing_key
from fromsource.provenance.sbom import SBOM_PATH, SbomInput, build_sbom
from fromsource.provenance.statement import BuildFacts, PatchInfo, build_statement, sign_statement
from fromsource.store.blobs import BlobStore, open_blob_store, sha256_file
from fromsource.store.catalog import FileInfo, project_files
from fromsource.store.db import Database, open_database
from fromsource.store.publish import publish_file, read_wheel_metadata

__all__ = ["BuildContext", "BuildDeps", "Progress", "build_one", "host_facts", "pick_version"]

Progress = Callable[[ProgressEvent], None]
BuildDeps = Callable[[Sequence[ResolvedWheel]], bool]
"""Builds bootstrap build dependencies from source first; True when any now is ours."""
_LOG_LIMIT = 512 * 1024


@dataclass(frozen=True)
class BuildContext:
    """Everything a build needs from the outside: stores, upstream, key, limits."""

    db: Database
    blobs: BlobStore
    upstream: Upstream
    upstream_url: str
    signing_key: SigningKey
    work_root: Path
    cache_dir: Path
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    allow_unsandboxed: bool = False
    sandbox_tool: Tool | None = None
    public_url: str | None = None
    keep_work: bool = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        upstream: str | None = None,
        limits: SandboxLimits | None = None,
        allow_unsandboxed: bool = False,
        sandbox_tool: Tool | None = None,
    ) -> BuildContext:
        """Open the database, blob store, upstream and signing key named by *settings*."""
        url = upstream or upstream_url(settings)
        url = url if url.endswith("/") else url + "/"
        return cls(
            db=open_database(settings.resolved_database_url),
            blobs=open_blob_store(settings.resolved_blob_url),
            upstream=Upstream(url, cache_dir=settings.data_dir / "cache" / "upstream"),
            upstream_url=url,
            signing_key=load_or_create_signing_key(settings.key_dir),
            work_root=settings.data_dir / "work",
            cache_dir=settings.data_dir / "cache",
            limits=limits or SandboxLimits(),
            allow_unsandboxed=allow_unsandboxed,
            sandbox_tool=sandbox_tool,
            public_url=settings.public_url,
        )

    def close(self) -> None:
        """Close the upstream client and the database connections."""
        self.upstream.close()
        self.db.dispose()

    def tool(self) -> Tool:
        """The sandbox tool builds use (SandboxError when none and not allowed)."""
        return choose_tool(allow_unsandboxed=self.allow_unsandboxed, prefer=self.sandbox_tool)


@cache
def host_facts() -> tuple[str, str, str]:
    """(Python version, platform, toolchain) of the builds this process runs."""
    toolchain = "no C compiler"
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler:
        try:
            done = subprocess.run(
                [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
            toolchain = (done.stdout.splitlines() or [toolchain])[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    libc = " ".join(platform.libc_ver())
    return platform.python_version(), sysconfig.get_platform(), f"{toolchain}; {libc}".strip()


def pick_version(upstream: Upstream, requirement: Requirement) -> str:
    """The version to build for *requirement*: the pinned one, else the newest match with an sdist.

    Raises UpstreamError (category ``not-found``) when nothing matches.
    """
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    python = ".".join(platform.python_version_tuple()[:2])
    versions = []
    for file in upstream.project_files(requirement.name):
        dist = dist_of(file, requirement.name)
        if dist is None or dist.kind != "sdist" or file.yanked or not python_ok(file, python):
            continue
        if requirement.specifier.contains(dist.version):
            versions.append(dist.version)
    if not versions:
        raise UpstreamError(
            f"no release of {requirement.name} matching {requirement.specifier or 'any version'} "
            f"with an sdist on {redact(upstream.base_url)}",
            category="not-found",
        )
    return str(max(versions))


def _find_sdist(upstream: Upstream, project: str, version: str) -> UpstreamFile:
    """The sdist of the release; UpstreamError with category no-sdist or not-found."""
    try:
        return upstream.find_sdist(project, version)
    except UpstreamError as exc:
        if set(exc.facts) != {"project", "version"}:
            raise
        wanted = Version(version)
        exists = any(
            (dist := dist_of(f, project)) is not None and dist.version == wanted
            for f in upstream.project_files(project)
        )
        category = "no-sdist" if exists else "not-found"
        raise UpstreamError(exc.message, category=category, **exc.facts) from exc


def published_wheel(db: Database, repo: str, project: str, version: str) -> FileInfo | None:
    """A wheel of *project* *version* already in *repo*, if any."""
    wanted = Version(version)
    for info in project_files(db, repo, project):
        if info.kind == "wheel" and Version(info.version) == wanted:
            return info
    return None


def requires_dist(metadata: bytes) -> tuple[str, ...]:
    """The Requires-Dist lines of a METADATA file."""
    message = BytesParser().parsebytes(metadata, headersonly=True)
    return tuple(str(v) for v in message.get_all("Requires-Dist") or [])


@dataclass
class _Run:
    """One build in progress: its row, log, step timings and progress events."""

    ctx: BuildContext
    build_id: int
    project: str
    version: str
    progress: Progress | None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)
    tool_log: Path | None = None
    requirements: tuple[str, ...] = ()
    key: str | None = None

    def log(self, text: str) -> None:
        self.lines.append(text.rstrip("\n"))

    def emit(self, step: str, state: str, message: str = "") -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(self.project, self.version, step, state, message))  # type: ignore[arg-type]

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.details["step"] = name
        self.log(f"== {name}")
        self.emit(name, "start")
        start = time.monotonic()
        yield
        seconds = time.monotonic() - start
        self.steps.append((name, seconds))
        self.log(f"   {name} done in {seconds:.2f} s")
        self.emit(name, "done")
        self.save()

    def text(self) -> str:
        text = "\n".join(self.lines) + "\n"
        if self.tool_log is not None and self.tool_log.is_file():
            tool = self.tool_log.read_text(encoding="utf-8", errors="replace")
            if len(tool) > _LOG_LIMIT:
                tool = "[... output cut ...]\n" + tool[-_LOG_LIMIT:]
            text += "\n== sandbox output\n" + tool
        return text

    def save(self, **fields: object) -> None:
        self.details["steps"] = {n: round(s, 3) for n, s in self.steps}
        update_build(
            self.ctx.db,
            self.build_id,
            log=self.text(),
            details=dict(self.details),
            key=self.key,
            **fields,
        )

    def finish(self, status: Status, message: str = "", **extra: object) -> BuildOutcome:
        self.log(f"== {status}{': ' + message if message else ''}")
        category = extra.pop("category", None)
        if category:
            self.details["category"] = category
        self.save(
            status=status,
            error=message if status == "failed" else None,
            finished_at=datetime.now(UTC),
            file_id=extra.get("file_id"),
        )
        self.emit("", status, message)
        return BuildOutcome(
            project=self.project,
            version=self.version,
            status=status,
            build_id=self.build_id,
            category=str(category) if category else None,
            message=message,
            key=self.key,
            seconds=time.monotonic() - self.clock,
            step_seconds=tuple(self.steps),
            **extra,  # type: ignore[arg-type]
        )


def build_one(
    ctx: BuildContext,
    requirement: str,
    *,
    repo: str = "python",
    patches: Sequence[PatchInfo] = (),
    patch_tree: Callable[[Path], None] | None = None,
    patch_texts: Mapping[str, str] | None = None,
    local_version: str | None = None,
    progress: Progress | None = None,
    build_id: int | None = None,
    pinned: Sequence[ResolvedWheel] | None = None,
    publish: bool = True,
    work_dir: Path | None = None,
    wheel_dest: Path | None = None,
    build_deps: BuildDeps | None = None,
) -> BuildOutcome:
    """Build *requirement* (``name==version``, or a range: the newest match) into *repo*.

    *patch_tree* is applied to the unpacked sdist (remediation: *patches*
    describe it, *patch_texts* are their diffs for the SBOM pedigree,
    *local_version* ``fs.N`` labels the wheel).  *pinned*
    replaces dependency resolution by exactly these wheels (a rebuild);
    without *publish* nothing is skipped or published (``rebuild --check``);
    *wheel_dest* receives a copy of the final wheel; *build_deps* is asked to
    build the build dependencies that would come from upstream (then they
    are resolved again, now from our repository).  Never raises for a
    failed build: the outcome says what happened, and the history row holds
    the log.
    """
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as exc:
        raise BuildError(
            f"{requirement!r} is not a requirement such as flask==2.0.0 ({exc})"
        ) from exc
    project = normalize(parsed.name)
    try:
        version = pick_version(ctx.upstream, parsed)
        label = with_local(version, local_version) if local_version else version
    except (FromsourceError, ValueError) as exc:
        version = label = str(parsed.specifier) or "latest"
        exc = exc if isinstance(exc, FromsourceError) else BuildError(str(exc))
        run = _Run(
            ctx, build_id or create_build(ctx.db, project, label, repo), project, label, progress
        )
        return run.finish("failed", exc.message, category=categorize(exc))
    build_id = build_id or create_build(ctx.db, project, label, repo)
    run = _Run(ctx, build_id, project, label, progress)
    run.details["upstream_version"] = version
    run.save(status="running", started_at=run.started)
    if publish and (existing := published_wheel(ctx.db, repo, project, label)) is not None:
        return run.finish(
            "skipped",
            f"{existing.filename} is already published in {repo}",
            wheel=existing.filename,
            sha256=existing.sha256,
            file_id=existing.id,
            requires_dist=_published_requires(ctx, existing),
        )
    work = work_dir or ctx.work_root / f"build-{build_id}-{secrets.token_hex(4)}"
    try:
        request = _Request(
            repo=repo,
            patches=tuple(patches),
            patch_tree=patch_tree,
            patch_texts=dict(patch_texts or {}),
            local_version=local_version,
            pinned=tuple(pinned) if pinned is not None else None,
            publish=publish,
            work=work,
            wheel_dest=wheel_dest,
            build_deps=build_deps,
        )
        return _steps(ctx, run, project, version, label, request)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
        if not isinstance(exc, FromsourceError):
            import traceback

            run.log(traceback.format_exc())
        message = (
            exc.message if isinstance(exc, FromsourceError) else f"{type(exc).__name__}: {exc}"
        )
        log = run.text()
        return run.finish("failed", message, category=categorize(exc, log, run.requirements))
    finally:
        if not ctx.keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _published_requires(ctx: BuildContext, info: FileInfo) -> tuple[str, ...]:
    if info.metadata_sha256 and ctx.blobs.exists(info.metadata_sha256):
        return requires_dist(ctx.blobs.read_bytes(info.metadata_sha256))
    return ()


@dataclass(frozen=True)
class _Request:
    """What :func:`build_one` was asked to do, beyond the release itself."""

    repo: str
    patches: tuple[PatchInfo, ...]
    patch_tree: Callable[[Path], None] | None
    patch_texts: Mapping[str, str]
    local_version: str | None
    pinned: tuple[ResolvedWheel, ...] | None
    publish: bool
    work: Path
    wheel_dest: Path | None
    build_deps: BuildDeps | None


def _from_source(
    request: _Request, wheels: list[ResolvedWheel], again: Callable[[], list[ResolvedWheel]]
) -> list[ResolvedWheel]:
    """*wheels*, resolved *again* after *request.build_deps* built the bootstrap ones."""
    bootstrap = [w for w in wheels if w.source == "bootstrap"]
    if request.build_deps is not None and bootstrap and request.build_deps(bootstrap):
        return again()
    return wheels


def _steps(
    ctx: BuildContext, run: _Run, project: str, version: str, label: str, request: _Request
) -> BuildOutcome:
    repo, patches, pinned, work = request.repo, request.patches, request.pinned, request.work
    local_version, publish = request.local_version, request.publish
    with run.step("fetch"):
        sdist = _find_sdist(ctx.upstream, project, version)
        if sdist.sha256 is None:
            raise UpstreamError(
                f"{sdist.filename}: the upstream index lists no sha256; "
                "it cannot be checked, the build was refused",
                category="no-sdist",
            )
        sdist_url, sdist_sha = redact(sdist.url), sdist.sha256
        local = ctx.blobs.local_path(sdist_sha)
        (work / "sdist").mkdir(parents=True, exist_ok=True)
        if local is not None:
            archive = work / "sdist" / sdist.filename
            shutil.copyfile(local, archive)
            run.log(f"   {sdist.filename} sha256 {sdist_sha} (archived before)")
        else:
            archive = ctx.upstream.download(sdist, work / "sdist")
            ctx.blobs.put_file(archive, expected=sdist_sha)
            run.log(f"   {sdist.filename} sha256 {sdist_sha} from {sdist_url}")
        run.details["sdist"] = {"filename": sdist.filename, "url": sdist_url, "sha256": sdist_sha}
    with run.step("unpack"):
        unpacked = unpack_sdist(archive, work / "build" / "src")
        tree, epoch = unpacked.root, unpacked.epoch
        info = read_pkg_info(tree)
        if normalize(info.name) != project or info.version != Version(version):
            raise BuildError(
                f"{sdist.filename}: PKG-INFO says {info.name} {info.version}, not "
                f"{project} {version}; nothing was built",
                category="sdist-mismatch",
            )
        run.details["source_date_epoch"] = epoch
    with run.step("patch"):
        if request.patch_tree is not None:
            request.patch_tree(tree)
            run.log("   " + ", ".join(p.name for p in patches))
        run.details["patches"] = [
            {"name": p.name, "sha256": p.sha256, "fixes": list(p.fixes)} for p in patches
        ]
    with run.step("deps"):
        system = read_build_system(tree)
        run.requirements = system.requires
        requirements = check_requirements(system.requires, what=sdist.filename)
        own = OwnRepository(ctx.db, ctx.blobs, public_url=ctx.public_url)
        resolver = Resolver(
            upstream_url=ctx.upstream_url,
            work_dir=work / "resolve",
            own=own,
            uv_cache=ctx.cache_dir / "uv",
        )
        if pinned is not None:
            static = list(pinned)
        else:
            static = resolver.resolve(requirements, what=sdist.filename)
            static = _from_source(
                request, static, lambda: resolver.resolve(requirements, what=sdist.filename)
            )
        tool = ctx.tool()
        env = BuildEnvironment(work, tool=tool, limits=ctx.limits, epoch=epoch, uv=uv_binary())
        python, plat, toolchain = host_facts()
        run.key = build_key(
            BuildInputs(
                project=project,
                version=version,
                repo=repo,
                sdist_sha256=sdist_sha,
                patch_sha256=tuple(p.sha256 for p in patches),
                local_version=local_version,
                dependencies=BuildInputs.pins((w.filename, w.sha256) for w in static),
                python=python,
                platform=plat,
                toolchain=toolchain,
                builder_version=fromsource.__version__,
                sandbox_tool=tool,
                sandbox_network=env.sandbox.facts.network,
                build_path=env.sandbox.facts.build_path,
            )
        )
        run.details["build_system"] = {"requires": list(system.requires), "backend": system.backend}
        run.details["dependencies"] = [w.to_json() for w in static]
        for wheel in static:
            run.log(f"   {wheel.filename} ({wheel.source}) sha256 {wheel.sha256}")
    if publish and pinned is None and (prior := find_succeeded(ctx.db, run.key)) is not None:
        return run.finish(
            "skipped",
            f"built before with the same inputs (build {prior.id})",
            file_id=prior.file_id,
        )
    cache = WheelCache(ctx.cache_dir / "wheels")
    with run.step("build"):
        run.tool_log = env.log_path
        run.details["sandbox"] = env.sandbox.facts.to_json()
        env.create_venv()
        env.install(cache.wheelhouse(static, env.wheelhouse, ctx.blobs))
        extra = check_requirements(env.get_requires(tree, system), what=sdist.filename)
        run.details["dynamic_requires"] = [str(r) for r in extra]
        deps = static
        if not satisfied(extra, static):
            if pinned is not None:
                raise BuildError(
                    f"the backend asks for {', '.join(map(str, extra))}, which the "
                    "pinned build dependencies do not satisfy",
                    category="build-deps-unresolvable",
                )
            deps = resolver.resolve([*requirements, *extra], what=sdist.filename)
            deps = _from_source(
                request,
                deps,
                lambda: resolver.resolve([*requirements, *extra], what=sdist.filename),
            )
            run.details["dependencies"] = [w.to_json() for w in deps]
            env.install(cache.wheelhouse(deps, env.wheelhouse, ctx.blobs))
        raw = env.build_wheel(tree, system, work / "dist" / "raw")
        name, built_version, _build, _tags = parse_wheel_filename(raw.name)
        if name != project or built_version != Version(version):
            raise BuildError(
                f"the backend built {raw.name}, not {project} {version}", category="wheel-mismatch"
            )
        if local_version:
            raw = relabel_wheel(raw, local_version, work / "dist" / "relabel")
    with run.step("sbom"):
        dependencies = tuple(w.dependency() for w in deps)
        sbom = build_sbom(
            SbomInput(
                project=project,
                version=label,
                wheel_filename=raw.name,
                sdist_url=sdist_url,
                sdist_sha256=sdist_sha,
                dependencies=dependencies,
                patches=patches,
                epoch=epoch,
                patch_texts=request.patch_texts,
            )
        )
    with run.step("normalize"):
        final = normalize_wheel(
            raw, work / "dist" / "final", epoch=epoch, add_files={SBOM_PATH: sbom}
        )
        digest, size = sha256_file(final)
        run.details["wheel"] = {"filename": final.name, "sha256": digest, "size": size}
        if request.wheel_dest is not None:
            request.wheel_dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(final, request.wheel_dest / final.name)
    with run.step("attest"):
        facts = BuildFacts(
            project=project,
            version=label,
            repository=repo,
            sdist_url=sdist_url,
            sdist_sha256=sdist_sha,
            patches=patches,
            dependencies=dependencies,
            build_key=run.key,
            python=python,
            platform=plat,
            source_date_epoch=epoch,
            sandbox=env.sandbox.facts.to_json(),
            invocation_id=f"build-{run.build_id}",
            started=run.started,
            finished=datetime.now(UTC),
        )
        envelope = sign_statement(
            build_statement(final.name, digest, wheel_record(final), facts), ctx.signing_key
        )
    requires = requires_dist(read_wheel_metadata(final).raw)
    if not publish:
        return run.finish(
            "succeeded",
            f"built {final.name} (not published)",
            wheel=final.name,
            sha256=digest,
            requires_dist=requires,
        )
    with run.step("publish"):
        published = publish_file(
            ctx.db, ctx.blobs, final, repo, provenance=envelope, sbom=sbom, build_id=run.build_id
        )
    return run.finish(
        "succeeded",
        f"published {final.name} in {repo}",
        wheel=final.name,
        sha256=digest,
        file_id=published.file_id,
        requires_dist=requires,
    )
