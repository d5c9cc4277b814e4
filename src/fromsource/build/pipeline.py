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

import secrets
import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

import fromsource
from fromsource.bounded import copy_head, read_tail
from fromsource.build.buildkey import BuildInputs, build_key
from fromsource.build.context import (
    BuildContext,
    find_sdist,
    host_facts,
    pick_version,
    published_wheel,
    requires_dist,
)
from fromsource.build.deps import (
    OwnRepository,
    ResolvedWheel,
    Resolver,
    check_requirements,
    satisfied,
    uv_binary,
)
from fromsource.build.history import create_build, find_failed, find_succeeded, update_build
from fromsource.build.normalize import normalize_wheel, wheel_record
from fromsource.build.outcome import (
    REMEMBERED,
    BuildOutcome,
    ProgressEvent,
    Status,
    categorize,
    explain,
)
from fromsource.build.pep517 import BuildEnvironment, read_build_system
from fromsource.build.relabel import relabel_wheel, with_local
from fromsource.build.sdists import publish_sdist
from fromsource.build.unpack import read_pkg_info, unpack_sdist
from fromsource.build.wheelcache import WheelCache
from fromsource.distinfo import check_wheel
from fromsource.errors import BuildError, FromsourceError, LimitError, UpstreamError
from fromsource.indexclient import redact
from fromsource.names import normalize
from fromsource.policy.gate import CATEGORY as POLICY_CATEGORY
from fromsource.policy.gate import build_refusal, refusal_message
from fromsource.provenance.sbom import SBOM_PATH, SbomInput, build_sbom
from fromsource.provenance.statement import BuildFacts, PatchInfo, build_statement, sign_statement
from fromsource.store.blobs import sha256_file
from fromsource.store.catalog import FileInfo
from fromsource.store.publish import publish_file, read_wheel_metadata

__all__ = ["BuildContext", "BuildDeps", "Progress", "build_one", "host_facts", "pick_version"]


Progress = Callable[[ProgressEvent], None]
BuildDeps = Callable[[Sequence[ResolvedWheel]], bool]
"""Builds bootstrap build dependencies from source first; True when any now is ours."""


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
    publishes: bool = True

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
        try:
            yield
        except BaseException:
            # The failed step is timed too: its time is part of the build's.
            self.steps.append((name, time.monotonic() - start))
            raise
        seconds = time.monotonic() - start
        self.steps.append((name, seconds))
        self.log(f"   {name} done in {seconds:.2f} s")
        self.emit(name, "done")
        self.save()

    def text(self) -> str:
        """The log for the build's row: our lines, then the end of the sandbox's output.

        Only the last ``log_tail_bytes`` of the sandbox log are read (through
        :mod:`fromsource.bounded`), however much the backend printed.
        """
        text = "\n".join(self.lines) + "\n"
        if self.tool_log is None:
            return text
        limit = self.ctx.output_limits.log_tail_bytes
        try:
            tail, size = read_tail(self.tool_log, limit, what="the sandbox log")
        except FileNotFoundError:
            return text
        except (OSError, LimitError) as exc:
            message = exc.message if isinstance(exc, LimitError) else str(exc)
            return text + f"\n== sandbox output\n[unreadable: {message}]\n"
        output = tail.decode("utf-8", errors="replace")
        if size > len(tail):
            output = f"[... output cut: the last {len(tail)} of {size} bytes ...]\n" + output
        return text + "\n== sandbox output\n" + output

    def keep_log(self) -> None:
        """Store the sandbox's whole output as a blob, cut at ``log_bytes`` (details ``log``).

        Streamed from the file to the store, never held in memory.  A cut log
        ends with a line saying so, and ``details["log"]["truncated"]`` is true.
        """
        if self.tool_log is None:
            return
        limit = self.ctx.output_limits.log_bytes
        kept = self.tool_log.with_name(self.tool_log.name + ".kept")
        try:
            copied, size = copy_head(self.tool_log, kept, limit, what="the sandbox log")
            if size > copied:
                with kept.open("ab") as out:
                    out.write(
                        f"\n[fromsource] output cut here: the build printed {size} bytes, the "
                        f"first {copied} are kept (the cap is {limit}); its end is in the "
                        "build's row (fromsource builds show ID)\n".encode()
                    )
                self.log(f"   the sandbox printed {size} bytes; the stored log is truncated")
            digest, stored = self.ctx.blobs.put_file(kept)
        except FileNotFoundError:
            return
        except (OSError, FromsourceError) as exc:
            message = exc.message if isinstance(exc, FromsourceError) else str(exc)
            self.log(f"   the sandbox log was not stored: {message}")
            return
        finally:
            kept.unlink(missing_ok=True)
        self.details["log"] = {
            "sha256": digest,
            "size": stored,
            "output_bytes": size,
            "truncated": size > copied,
        }

    def save(self, **fields: object) -> None:
        self.details["steps"] = {n: round(s, 3) for n, s in self.steps}
        self.details["build_key"] = self.key
        update_build(
            self.ctx.db,
            self.build_id,
            log=self.text(),
            details=dict(self.details),
            # Only a build that publishes answers "built before?" for its key: a
            # rebuild check made the same wheel but put nothing in the repository.
            key=self.key if self.publishes else None,
            **fields,
        )

    def finish(self, status: Status, message: str = "", **extra: object) -> BuildOutcome:
        self.keep_log()
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
    retry_failed: bool = False,
) -> BuildOutcome:
    """Build *requirement* (``name==version``, or a range: the newest match) into *repo*.

    *patch_tree* is applied to the unpacked sdist (remediation: *patches*
    describe it, *patch_texts* are their diffs for the SBOM pedigree,
    *local_version* ``fs.N`` labels the wheel).  *pinned*
    replaces dependency resolution by exactly these wheels (a rebuild);
    without *publish* nothing is skipped or published (``rebuild --check``);
    *wheel_dest* receives a copy of the final wheel; *build_deps* is asked to
    build the build dependencies that would come from upstream (then they
    are resolved again, now from our repository).  A build key that failed
    before with a category of :data:`~fromsource.build.outcome.REMEMBERED`
    is not built again (the outcome is that failure, its steps stop before
    the sandbox) unless *retry_failed*.  Never raises for a
    failed build: the outcome says what happened, and the history row holds
    the log.  Raises BuildError only when *requirement* is not a requirement.
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
    run = _Run(ctx, build_id, project, label, progress, publishes=publish)
    run.details["upstream_version"] = version
    work = work_dir or ctx.work_root / f"build-{build_id}-{secrets.token_hex(4)}"
    run.details["work"] = str(work)  # if this process dies, build/lost.py removes it
    run.save(status="running", started_at=run.started)
    if (refusal := build_refusal(ctx.db, project, version, repo=repo)) is not None:
        return run.finish("failed", refusal_message(refusal), category=POLICY_CATEGORY)
    if publish and (existing := published_wheel(ctx.db, repo, project, label)) is not None:
        return run.finish(
            "skipped",
            f"{existing.filename} is already published in {repo}",
            wheel=existing.filename,
            sha256=existing.sha256,
            file_id=existing.id,
            requires_dist=_published_requires(ctx, existing),
        )
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
            retry_failed=retry_failed,
        )
        return _steps(ctx, run, project, version, label, request)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
        if not isinstance(exc, FromsourceError):
            run.log(traceback.format_exc())
        message = (
            exc.message if isinstance(exc, FromsourceError) else f"{type(exc).__name__}: {exc}"
        )
        log = run.text()
        category = categorize(exc, log, run.requirements)
        reason = explain(category, log, run.requirements)
        return run.finish(
            "failed", f"{reason}\n{message}" if reason else message, category=category
        )
    except BaseException:  # interrupted: record it, then let the interruption through
        run.finish("failed", "interrupted before it finished", category="internal")
        raise
    finally:
        if not ctx.keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _published_requires(ctx: BuildContext, info: FileInfo) -> tuple[str, ...]:
    if info.metadata_sha256 and ctx.blobs.exists(info.metadata_sha256):
        return requires_dist(
            ctx.blobs.read_bytes(info.metadata_sha256, limit=ctx.output_limits.metadata_bytes)
        )
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
    retry_failed: bool = False


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
    limits = ctx.output_limits
    with run.step("fetch"):
        sdist = find_sdist(ctx.upstream, project, version)
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
        env = BuildEnvironment(
            work,
            tool=tool,
            limits=ctx.limits,
            epoch=epoch,
            uv=uv_binary(),
            output_limits=limits,
        )
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
    if publish and pinned is None and not request.retry_failed:
        failed = find_failed(ctx.db, run.key, REMEMBERED)
        if failed is not None:
            run.details["remembered_from"] = failed.id
            category = str(failed.details.get("category"))
            return run.finish(
                "failed",
                f"not built again: build {failed.id} failed with the same inputs "
                f"[{category}] (fromsource build --retry-failed tries again): "
                f"{failed.error or ''}",
                category=category,
            )
    cache = WheelCache(ctx.cache_dir / "wheels", ctx.upstream)
    with run.step("build"):
        run.tool_log = env.log_path
        run.details["sandbox"] = env.sandbox.facts.to_json()
        env.create_venv()
        env.install(cache.wheelhouse(static, env.wheelhouse, ctx.blobs))
        extra = check_requirements(env.get_requires(tree, system), what=sdist.filename)
        run.requirements = (*system.requires, *map(str, extra))
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
        # Its .dist-info, WHEEL and METADATA must name the same release, within their
        # caps, before anything describes or signs the wheel (issue 18).
        check_wheel(raw, limits)
        if local_version:
            raw = relabel_wheel(raw, local_version, work / "dist" / "relabel", limits)
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
            raw, work / "dist" / "final", epoch=epoch, add_files={SBOM_PATH: sbom}, limits=limits
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
            build_statement(final.name, digest, wheel_record(final, limits), facts),
            ctx.signing_key,
        )
    requires = requires_dist(read_wheel_metadata(final, limits).raw)
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
            ctx.db,
            ctx.blobs,
            final,
            repo,
            provenance=envelope,
            sbom=sbom,
            build_id=run.build_id,
            limits=limits,
        )
        # After the wheel, so no client sees the sdist alone; it never fails the build.
        run.log(
            publish_sdist(
                ctx,
                repo,
                archive,
                project=project,
                version=label,
                upstream_url=sdist_url,
                upstream_sha256=sdist_sha,
                build_id=run.build_id,
                work=work,
                epoch=epoch,
                patches=patches,
                patch_tree=request.patch_tree,
            )
        )
    return run.finish(
        "succeeded",
        f"published {final.name} in {repo}",
        wheel=final.name,
        sha256=digest,
        file_id=published.file_id,
        requires_dist=requires,
    )
