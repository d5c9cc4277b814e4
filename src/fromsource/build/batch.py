"""Many builds at once, with their runtime dependencies, and reproducibility checks.

:func:`build_many` builds requirements on a small thread pool (each build
mostly waits on its sandbox); with ``with_deps`` it reads each built (or
already published) wheel's ``Requires-Dist``, evaluates the markers for the
running Python and the requested extras, and builds the newest upstream
release matching each one too.  :func:`rebuild_check` builds a release again
from a different host path with the same pinned build dependencies and
compares the wheels bit for bit.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from fromsource.build.context import BuildContext
from fromsource.build.deps import DependencyError, ResolvedWheel
from fromsource.build.history import get_build, latest_succeeded
from fromsource.build.outcome import BuildOutcome, RebuildReport, compare_wheels
from fromsource.build.pipeline import Progress, build_one
from fromsource.build.release import pick_version
from fromsource.build.wheelcache import WheelCache
from fromsource.errors import BuildError, FromsourceError
from fromsource.names import normalize
from fromsource.provenance.statement import PatchInfo
from fromsource.store.blobs import copy_blob, sha256_file
from fromsource.store.catalog import find_file

__all__ = ["build_many", "dependency_requirements", "rebuild_check"]


def dependency_requirements(
    requires_dist: Iterable[str], extras: Iterable[str]
) -> list[Requirement]:
    """The Requires-Dist entries that apply to the running Python with *extras* requested."""
    wanted = sorted(set(extras)) or [""]
    applicable = []
    for text in requires_dist:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.url:
            continue
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in wanted):
            applicable.append(requirement)
    return applicable


class _BuildDepsFirst:
    """The ``build_deps`` hook of :func:`build_one`: build bootstrap build deps from source.

    Each wanted ``(project, version)`` is built once (into ``python``, by the
    thread that asked first; others wait for it), recursively with this same
    hook.  A dependency already being built further up this thread's chain
    (a cycle: setuptools needing setuptools) stays a bootstrap wheel.
    """

    def __init__(self, ctx: BuildContext, progress: Progress | None) -> None:
        self.ctx = ctx
        self.progress = progress
        self.outcomes: list[BuildOutcome] = []
        self.done: dict[tuple[str, str], bool] = {}
        self.locks: dict[tuple[str, str], threading.Lock] = {}
        self.guard = threading.Lock()
        self.chain = threading.local()

    def __call__(self, wheels: Sequence[ResolvedWheel]) -> bool:
        stack: tuple[tuple[str, str], ...] = getattr(self.chain, "stack", ())
        any_ours = False
        for wheel in wheels:
            node = (wheel.project, wheel.version)
            if node in stack:
                continue
            with self.guard:
                lock = self.locks.setdefault(node, threading.Lock())
            with lock:
                if node not in self.done:
                    self.chain.stack = (*stack, node)
                    try:
                        outcome = build_one(
                            self.ctx,
                            f"{node[0]}=={node[1]}",
                            progress=self.progress,
                            build_deps=self,
                        )
                    finally:
                        self.chain.stack = stack
                    with self.guard:
                        self.outcomes.append(outcome)
                    self.done[node] = outcome.status in ("succeeded", "skipped")
            any_ours = any_ours or self.done[node]
        return any_ours


def build_many(
    ctx: BuildContext,
    requirements: Sequence[str],
    *,
    with_deps: bool = False,
    with_build_deps: bool = False,
    jobs: int = 1,
    repo: str = "python",
    progress: Progress | None = None,
    retry_failed: bool = False,
) -> list[BuildOutcome]:
    """Build every requirement (and, with *with_deps*, their runtime dependencies).

    With *with_build_deps* the build dependencies that would come from
    upstream are built from source first, so the build closure is ours.
    With *retry_failed* a release whose inputs failed before is built again
    (see :func:`~fromsource.build.pipeline.build_one`).
    Each ``(project, version)`` is built at most once per call.  Returns the
    outcomes in the order the builds finished (build dependencies included).
    """
    parsed = []
    for text in requirements:
        try:
            parsed.append(Requirement(text))
        except InvalidRequirement as exc:
            raise BuildError(
                f"{text!r} is not a requirement such as flask==2.0.0 ({exc}); nothing was built",
                requirement=text,
            ) from exc
    outcomes: list[BuildOutcome] = []
    extras_of: dict[tuple[str, str], set[str]] = {}
    requires_of: dict[tuple[str, str], tuple[str, ...]] = {}
    pending: dict[Future[BuildOutcome], set[str]] = {}
    failed_texts: set[str] = set()
    first = _BuildDepsFirst(ctx, progress) if with_build_deps else None

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build") as pool:

        def submit(text: str, extras: set[str]) -> None:
            future = pool.submit(
                build_one,
                ctx,
                text,
                repo=repo,
                progress=progress,
                build_deps=first,
                retry_failed=retry_failed,
            )
            pending[future] = extras

        def follow(requirement: Requirement) -> None:
            extras = set(requirement.extras)
            try:
                version = pick_version(ctx.upstream, requirement)
            except FromsourceError:
                text = f"{requirement.name}{requirement.specifier}"
                if text not in failed_texts:  # build_one records the failure
                    failed_texts.add(text)
                    submit(text, extras)
                return
            node = (normalize(requirement.name), version)
            if node not in extras_of:
                extras_of[node] = extras
                submit(f"{node[0]}=={version}", extras)
            elif not extras <= extras_of[node]:
                extras_of[node] |= extras
                if with_deps and node in requires_of:
                    for dep in dependency_requirements(requires_of[node], extras_of[node]):
                        follow(dep)

        for requirement in parsed:
            follow(requirement)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                outcome = future.result()
                outcomes.append(outcome)
                node = (outcome.project, outcome.version)
                requires_of[node] = outcome.requires_dist
                if with_deps and outcome.status in ("succeeded", "skipped"):
                    extras = extras_of.get(node, set())
                    for dep in dependency_requirements(outcome.requires_dist, extras):
                        follow(dep)
    return [*(first.outcomes if first else []), *outcomes]


def _recorded_pins(
    ctx: BuildContext, build_id: int | None, details: Mapping[str, object]
) -> list[ResolvedWheel]:
    """The build dependencies build *build_id* recorded, each fetched into the wheel cache.

    Fetched here, before anything is built, so a rebuild that cannot have
    its exact inputs says so at once (and the build then finds them cached).
    """
    recorded = details.get("dependencies")
    if not isinstance(recorded, list):
        raise DependencyError(
            f"build {build_id} recorded no build dependencies, so it cannot be rebuilt with "
            "the same inputs; build the release again to record them",
            category="inputs-unavailable",
            build_id=build_id,
        )
    pins = [ResolvedWheel.from_json(d) for d in recorded]
    cache = WheelCache(ctx.cache_dir / "wheels", ctx.upstream)
    for pin in pins:
        cache.fetch_recorded(pin, ctx.blobs)
    return pins


def rebuild_check(
    ctx: BuildContext,
    requirement: str,
    *,
    repo: str = "python",
    progress: Progress | None = None,
    patches: Sequence[PatchInfo] = (),
    patch_tree: Callable[[Path], None] | None = None,
    patch_texts: Mapping[str, str] | None = None,
    local_version: str | None = None,
) -> RebuildReport:
    """Build *requirement* again from another host path and compare with the reference.

    The reference is the published wheel of the newest successful build of
    that release in *repo*, rebuilt with exactly the build dependencies it
    recorded (the same files by sha256, never another wheel of the same name
    built or published since); without one, the release is built twice (the
    second time with the first build's pins).  Nothing is published.  Raises
    BuildError when a build fails, DependencyError (category
    ``inputs-unavailable``) naming the wheel when a recorded one is gone.
    """
    start = time.monotonic()
    parsed = Requirement(requirement)
    project = normalize(parsed.name)
    version = pick_version(ctx.upstream, parsed)
    label_version = version
    if local_version:
        from fromsource.build.relabel import with_local

        label_version = with_local(version, local_version)
    scratch = ctx.work_root / f"rebuild-check-{secrets.token_hex(4)}"
    outcomes: list[BuildOutcome] = []

    def build(pins: Sequence[ResolvedWheel] | None, name: str) -> tuple[Path, BuildOutcome]:
        # Each build gets its own, differently long host path.
        work = scratch / f"{name}-{secrets.token_hex(8 if name == 'second' else 3)}"
        outcome = build_one(
            ctx,
            f"{project}=={version}",
            repo=repo,
            pinned=pins,
            publish=False,
            work_dir=work,
            wheel_dest=scratch / f"{name}-wheel",
            progress=progress,
            patches=patches,
            patch_tree=patch_tree,
            patch_texts=patch_texts,
            local_version=local_version,
        )
        outcomes.append(outcome)
        if outcome.status != "succeeded" or outcome.wheel is None:
            raise BuildError(
                f"rebuild of {project} {version} failed ({outcome.category}): {outcome.message}",
                category=outcome.category,
                build_id=outcome.build_id,
            )
        return scratch / f"{name}-wheel" / outcome.wheel, outcome

    try:
        prior = latest_succeeded(ctx.db, project, label_version, repo)
        filename = (prior.details.get("wheel") or {}).get("filename") if prior else None
        info = find_file(ctx.db, repo, project, filename) if filename else None
        if prior is not None and info is not None:
            reference = scratch / "reference" / info.filename
            reference.parent.mkdir(parents=True, exist_ok=True)
            copy_blob(ctx.blobs, info.sha256, reference)
            pins = _recorded_pins(ctx, prior.id, prior.details)
            rebuilt, _ = build(pins, "second")
            reference_name = f"published {info.filename} (build {prior.id})"
        else:
            reference, first = build(None, "first")
            record = get_build(ctx.db, first.build_id) if first.build_id else None
            pins = _recorded_pins(ctx, first.build_id, record.details if record else {})
            rebuilt, _ = build(pins, "second")
            reference_name = f"first build (build {first.build_id})"
        differing, only_ref, only_new = compare_wheels(reference, rebuilt)
        ref_sha, new_sha = sha256_file(reference)[0], sha256_file(rebuilt)[0]
        return RebuildReport(
            project=project,
            version=label_version,
            identical=ref_sha == new_sha,
            reference=reference_name,
            reference_sha256=ref_sha,
            rebuilt_sha256=new_sha,
            differing=tuple(differing),
            only_in_reference=tuple(only_ref),
            only_in_rebuild=tuple(only_new),
            seconds=time.monotonic() - start,
            outcomes=tuple(outcomes),
        )
    finally:
        if not ctx.keep_work:
            shutil.rmtree(scratch, ignore_errors=True)
