"""The build orchestrator: one ``name==version`` from upstream sdist to published wheel.

:func:`build_one` runs the steps of :mod:`fromsource.build.steps` in order
(DESIGN.md "The build pipeline": fetch, unpack, patch, resolve build
dependencies, build in the sandbox, repair (manylinux), describe (SBOM),
normalize (SBOM embedded), attest (signed), publish) for one target
(interpreter).  It does nothing else itself: it
records the build as a row of the history with its log, each step's time and
facts, and turns an error into the outcome's category from
:data:`fromsource.build.outcome.CATEGORIES`.

A release already published in the repository for the target, or whose
build key already built successfully, is skipped (status ``skipped``).  A
release for every target, once per distinct wheel, is
:mod:`fromsource.build.matrix`; many, with their runtime dependencies,
:mod:`fromsource.build.batch`.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fromsource.bounded import copy_head, read_tail
from fromsource.build import agree, steps
from fromsource.build.context import BuildContext
from fromsource.build.deps import (
    ResolvedWheel,
)
from fromsource.build.history import create_build, find_failed, find_succeeded, update_build
from fromsource.build.interpreters import running_target
from fromsource.build.outcome import (
    REMEMBERED,
    BuildOutcome,
    ProgressEvent,
    Status,
    categorize,
    explain,
)
from fromsource.build.relabel import with_local
from fromsource.build.release import (
    parse_requirement,
    pick_version,
    published_requires,
    published_wheel,
)
from fromsource.build.sdists import publish_sdist
from fromsource.build.steps import BuildDeps
from fromsource.build.targets import Target
from fromsource.dist.names import normalize
from fromsource.errors import BuildError, FromsourceError, LimitError
from fromsource.policy.gate import CATEGORY as POLICY_CATEGORY
from fromsource.policy.gate import build_refusal, refusal_message
from fromsource.provenance.statement import PatchInfo

__all__ = ["BuildContext", "BuildDeps", "Progress", "build_one"]


Progress = Callable[[ProgressEvent], None]


@dataclass
class _Run:
    """One build in progress: its row, log, step timings and progress events."""

    ctx: BuildContext
    build_id: int
    project: str
    version: str
    progress: Progress | None
    target: Target | None = None
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
            target=self.target.tag if self.target is not None else None,
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
    target: Target | None = None,
    slot: agree.Slot | None = None,
) -> BuildOutcome:
    """Build *requirement* (``name==version``, or a range: the newest match) into *repo*
    with *target*'s interpreter (default: the one fromsource runs on).

    With *slot*, the build is one of the independent builds that must agree
    before the wheel is published (:mod:`fromsource.build.agree`): it builds
    in the slot's sandbox variant and votes its wheel; the outcome of the
    build that completes the vote is the published wheel, or ``failed``
    (``irreproducible``) when the wheels differ; an earlier one's is
    ``succeeded`` without a file.

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
    parsed = parse_requirement(requirement)
    project = normalize(parsed.name)
    target = target or running_target()
    try:
        version = pick_version(ctx.upstream, parsed, [target.full_version])
        label = with_local(version, local_version) if local_version else version
    except (FromsourceError, ValueError) as exc:
        version = label = str(parsed.specifier) or "latest"
        exc = exc if isinstance(exc, FromsourceError) else BuildError(str(exc))
        build_id = build_id or create_build(ctx.db, project, label, repo)
        run = _Run(ctx, build_id, project, label, progress, target)
        run.details["target"] = target.to_json()
        return run.finish("failed", exc.message, category=categorize(exc))
    build_id = build_id or create_build(ctx.db, project, label, repo)
    # A build that must agree with another answers "built before?" for its key only
    # once the agreement is decided (agree.vote): until then nothing is published.
    run = _Run(ctx, build_id, project, label, progress, target, publishes=publish and not slot)
    run.details["upstream_version"] = version
    run.details["target"] = target.to_json()
    run.log(f"   target {target.tag} (Python {target.full_version}, glibc {target.glibc})")
    if slot is not None:
        run.log(f"   independent build {slot.number} of {slot.of} by {slot.builder}")
    work = work_dir or agree.work_dir(ctx.work_root, build_id, slot)
    run.details["work"] = str(work)  # if this process dies, build/lost.py removes it
    run.save(status="running", started_at=run.started)
    if (refusal := build_refusal(ctx.db, project, version, repo=repo)) is not None:
        return run.finish("failed", refusal_message(refusal), category=POLICY_CATEGORY)
    existing = published_wheel(ctx.db, repo, project, label, target) if publish else None
    if existing is not None:
        return run.finish(
            "skipped",
            f"{existing.filename} is already published in {repo}",
            wheel=existing.filename,
            sha256=existing.sha256,
            file_id=existing.id,
            requires_dist=published_requires(ctx.blobs, existing, ctx.output_limits),
        )
    try:
        request = steps.Request(
            target=target,
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
            variant=slot.variant if slot is not None else 0,
            own_as_of=slot.as_of if slot is not None else None,
        )
        release = steps.Release(project, version, label, repo)
        return _run_steps(ctx, run, release, request, slot)
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


def _remembered(ctx: BuildContext, run: _Run, request: steps.Request) -> BuildOutcome | None:
    """The outcome of a build whose key built, or failed reproducibly, before; else None."""
    if not request.publish or request.pinned is not None or run.key is None:
        return None
    if (prior := find_succeeded(ctx.db, run.key)) is not None:
        return run.finish(
            "skipped",
            f"built before with the same inputs (build {prior.id})",
            file_id=prior.file_id,
        )
    if request.retry_failed:
        return None
    failed = find_failed(ctx.db, run.key, REMEMBERED)
    if failed is None:
        return None
    category = str(failed.details.get("category"))
    if category == "irreproducible" and ctx.publish_irreproducible:
        return None  # the operator builds it again to publish it anyway
    run.details["remembered_from"] = failed.id
    return run.finish(
        "failed",
        f"not built again: build {failed.id} failed with the same inputs "
        f"[{category}] (fromsource build --retry-failed tries again): "
        f"{failed.error or ''}",
        category=category,
    )


def _run_steps(
    ctx: BuildContext,
    run: _Run,
    release: steps.Release,
    request: steps.Request,
    slot: agree.Slot | None = None,
) -> BuildOutcome:
    """Run the steps in order, recording what each returned; the outcome."""
    with run.step("fetch"):
        sdist = steps.fetch(ctx, release, request.work)
        origin = "(archived before)" if sdist.archived_before else f"from {sdist.url}"
        run.log(f"   {sdist.filename} sha256 {sdist.sha256} {origin}")
        run.details["sdist"] = sdist.to_json()
    with run.step("unpack"):
        source = steps.unpack(release, sdist, request.work)
        run.details["source_date_epoch"] = source.epoch
    with run.step("patch"):
        source = steps.patch(source, request)
        if request.patch_tree is not None:
            run.log("   " + ", ".join(p.name for p in request.patches))
        run.details["patches"] = [
            {"name": p.name, "sha256": p.sha256, "fixes": list(p.fixes)} for p in request.patches
        ]
    with run.step("deps"):
        system = steps.read_system(source)
        run.requirements = system.requires
        resolved = steps.resolve(ctx, release, sdist, source, system, request)
        run.key = resolved.key
        run.details["build_system"] = {"requires": list(system.requires), "backend": system.backend}
        run.details["dependencies"] = [w.to_json() for w in resolved.pins]
        for pin in resolved.pins:
            run.log(f"   {pin.filename} ({pin.source}) sha256 {pin.sha256}")
        if resolved.crates is not None:
            run.details["rust"] = resolved.crates.to_json()
            for line in resolved.crates.log_lines():
                run.log(f"   {line}")
    if (remembered := _remembered(ctx, run, request)) is not None:
        return remembered
    with run.step("build"):
        run.tool_log = resolved.env.log_path
        run.details["sandbox"] = resolved.env.sandbox.facts.to_json()
        steps.prepare(ctx, resolved)
        extra = steps.backend_requires(sdist, source, resolved)
        run.requirements = (*system.requires, *map(str, extra))
        run.details["dynamic_requires"] = [str(r) for r in extra]
        deps = steps.complete(ctx, sdist, resolved, extra, request)
        if deps is not resolved.pins:
            run.details["dependencies"] = [w.to_json() for w in deps]
        raw = steps.build(ctx, release, source, resolved, request)
    with run.step("repair"):
        repaired = steps.repair(ctx, raw, source, resolved)
        if repaired.result is not None:
            run.details["repair"] = repaired.result.to_json()
            done = repaired.result
            run.log(f"   {done.wheel.name}" if done.repaired else f"   not repaired: {done.reason}")
    with run.step("sbom"):
        sbom = steps.describe(release, sdist, source, repaired, deps, request, resolved.crates)
    with run.step("normalize"):
        wheel = steps.normalize(ctx, repaired.wheel, source, sbom, request)
        run.details["wheel"] = wheel.to_json()
    verdict: agree.Verdict | None = None
    agreement = None
    if slot is not None:
        with run.step("agree"):
            verdict = agree.vote(
                ctx,
                release,
                request.target,
                slot,
                wheel,
                build_id=run.build_id,
                key=run.key or "",
                started=run.started,
                build_uid=resolved.env.sandbox.build_uid,
                scratch=request.work / "agree",
            )
            run.details["agreement"] = verdict.to_json()
            _log_verdict(run, verdict)
        if verdict.state == "waiting":
            return run.finish(
                "succeeded",
                agree.waiting_message(verdict),
                wheel=wheel.path.name,
                sha256=wheel.sha256,
                requires_dist=steps.requires_of(ctx, wheel),
            )
        override = None
        if verdict.state == "differed":
            if not ctx.publish_irreproducible or verdict.inputs_differ:
                # Remembered (not built again) when the same inputs made different wheels;
                # builds that had different inputs say nothing about these inputs.
                run.publishes = not verdict.inputs_differ
                agree.settle(ctx, verdict, release, file_id=None)
                raise agree.refuse(verdict)
            override = verdict.override(slot.builder)
            run.log("   published anyway (--publish-irreproducible; the provenance says so)")
        agreement = verdict.agreement(override)
        run.publishes = True
    with run.step("attest"):
        envelope = steps.attest(
            ctx,
            release,
            sdist,
            source,
            resolved,
            deps,
            repaired,
            wheel,
            request,
            invocation_id=f"build-{run.build_id}",
            started=run.started,
            agreement=agreement,
        )
    requires = steps.requires_of(ctx, wheel)
    filename = wheel.path.name
    if not request.publish:
        return run.finish(
            "succeeded",
            f"built {filename} (not published)",
            wheel=filename,
            sha256=wheel.sha256,
            requires_dist=requires,
        )
    with run.step("publish"):
        file_id = steps.publish(ctx, release, wheel, envelope, sbom, run.build_id)
        # After the wheel, so no client sees the sdist alone; it never fails the build.
        run.log(
            publish_sdist(
                ctx,
                release.repo,
                sdist.archive,
                project=release.project,
                version=release.label,
                upstream_url=sdist.url,
                upstream_sha256=sdist.sha256,
                build_id=run.build_id,
                work=request.work,
                epoch=source.epoch,
                patches=request.patches,
                patch_tree=request.patch_tree,
            )
        )
    said = ""
    if verdict is not None and agreement is not None:
        agree.settle(ctx, verdict, release, file_id=file_id)
        said = "; " + agreement.summary()
    return run.finish(
        "succeeded",
        f"published {filename} in {release.repo}{said}",
        wheel=filename,
        sha256=wheel.sha256,
        file_id=file_id,
        requires_dist=requires,
    )


def _log_verdict(run: _Run, verdict: agree.Verdict) -> None:
    """The agreement step's lines of the log: the verdict and, for a disagreement, how."""
    others = ", ".join(f"build {v.build_id} by {v.worker}" for v in verdict.others)
    if verdict.state == "waiting":
        run.log(f"   voted {verdict.mine.sha256}; waiting for the other independent build")
    elif verdict.state == "agreed":
        run.log(f"   agreed: {others} made the same wheel ({verdict.mine.sha256})")
    else:
        run.log(f"   DIFFERENT: {verdict.reason}")
        for line in verdict.lines:
            run.log(f"   | {line}")
