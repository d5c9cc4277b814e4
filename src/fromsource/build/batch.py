"""Many builds at once, with their runtime dependencies, each for every build target.

:func:`build_many` builds requirements on a small thread pool (each build
mostly waits on its sandbox), each release once per distinct wheel over the
targets (:func:`fromsource.build.matrix.build_release`).  With
``with_deps`` it reads each built (or already published) wheel's
``Requires-Dist``, evaluates the markers for each target it was built for
and the requested extras, and builds the newest upstream release matching
each one for those targets; where the newest release does not support a
target's Python (its Requires-Python), the newest one that does is built
for that target.  Reproducibility checks are :mod:`fromsource.build.rebuild`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from packaging.requirements import InvalidRequirement, Requirement

from fromsource.build.context import BuildContext
from fromsource.build.deps import ResolvedWheel
from fromsource.build.matrix import build_release
from fromsource.build.outcome import BuildOutcome
from fromsource.build.pipeline import Progress
from fromsource.build.release import pick_versions
from fromsource.build.targets import Target, marker_environment
from fromsource.dist.names import normalize
from fromsource.errors import BuildError, FromsourceError

__all__ = ["build_many", "dependency_requirements"]


def dependency_requirements(
    requires_dist: Iterable[str],
    extras: Iterable[str],
    environment: Mapping[str, str] | None = None,
) -> list[Requirement]:
    """The Requires-Dist entries that apply with *extras* requested, their markers evaluated
    for *environment* (a target's :func:`~fromsource.build.targets.marker_environment`;
    default: the running Python)."""
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
        if marker is None or any(
            marker.evaluate({**(environment or {}), "extra": extra}) for extra in wanted
        ):
            applicable.append(requirement)
    return applicable


class _BuildDepsFirst:
    """The ``build_deps`` hook of :func:`build_one`: build bootstrap build deps from source.

    Each wanted ``(project, version)`` is built once per target (into
    ``python``, by the thread that asked first; others wait for it),
    recursively with this same hook.  A dependency already being built
    further up this thread's chain (a cycle: setuptools needing setuptools)
    stays a bootstrap wheel.
    """

    def __init__(self, ctx: BuildContext, progress: Progress | None) -> None:
        self.ctx = ctx
        self.progress = progress
        self.outcomes: list[BuildOutcome] = []
        self.done: dict[tuple[str, str, str], bool] = {}
        self.locks: dict[tuple[str, str, str], threading.Lock] = {}
        self.guard = threading.Lock()
        self.chain = threading.local()

    def __call__(self, wheels: Sequence[ResolvedWheel], target: Target) -> bool:
        stack: tuple[tuple[str, str], ...] = getattr(self.chain, "stack", ())
        any_ours = False
        for wheel in wheels:
            node = (wheel.project, wheel.version)
            if node in stack:
                continue
            key = (*node, target.tag)
            with self.guard:
                lock = self.locks.setdefault(key, threading.Lock())
            with lock:
                if key not in self.done:
                    self.chain.stack = (*stack, node)
                    try:
                        outcomes = build_release(
                            self.ctx,
                            f"{node[0]}=={node[1]}",
                            targets=(target,),
                            progress=self.progress,
                            build_deps=self,
                        )
                    finally:
                        self.chain.stack = stack
                    with self.guard:
                        self.outcomes.extend(outcomes)
                    self.done[key] = any(o.status in ("succeeded", "skipped") for o in outcomes)
            any_ours = any_ours or self.done[key]
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

    Each release is built for the context's targets, once per distinct wheel;
    dependencies are followed per target (see the module docstring).  With
    *with_build_deps* the build dependencies that would come from upstream
    are built from source first, so the build closure is ours.  With
    *retry_failed* a release whose inputs failed before is built again
    (see :func:`~fromsource.build.pipeline.build_one`).  Each
    ``(project, version)`` is built at most once per target and call.
    Returns the outcomes in the order the builds finished (build
    dependencies included).
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
    return _Batch(ctx, with_deps, with_build_deps, repo, progress, retry_failed).run(parsed, jobs)


Node = tuple[str, str]


class _Batch:
    """The state of one :func:`build_many`: which release is wanted for which targets."""

    def __init__(
        self,
        ctx: BuildContext,
        with_deps: bool,
        with_build_deps: bool,
        repo: str,
        progress: Progress | None,
        retry_failed: bool,
    ) -> None:
        self.ctx = ctx
        self.targets = ctx.build_targets()
        self.with_deps = with_deps
        self.repo = repo
        self.progress = progress
        self.retry_failed = retry_failed
        self.first = _BuildDepsFirst(ctx, progress) if with_build_deps else None
        self.outcomes: list[BuildOutcome] = []
        self.wanted: dict[Node, set[str]] = {}  # target tags each release is built for
        self.extras_of: dict[Node, set[str]] = {}
        self.requires_of: dict[Node, tuple[str, ...]] = {}
        self.failed_texts: set[str] = set()
        self.locks: dict[Node, threading.Lock] = {}
        self.guard = threading.Lock()
        self.pending: dict[
            Future[tuple[BuildOutcome, ...]], tuple[Node | None, tuple[Target, ...]]
        ] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.gate: threading.Semaphore | None = None

    def run(self, requirements: Sequence[Requirement], jobs: int) -> list[BuildOutcome]:
        # With independent builds that must agree, each release runs its builds at the
        # same time, each holding a place of the gate: *jobs* still bounds the sandboxes
        # at once, and a place a release's faster build frees goes to the next release.
        if self.ctx.agree > 1 and jobs > 1:
            self.gate = threading.BoundedSemaphore(jobs)
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build") as pool:
            self.pool = pool
            for requirement in requirements:
                self.follow(requirement, self.targets)
            while self.pending:
                done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
                for future in done:
                    node, targets = self.pending.pop(future)
                    self.finished(node, targets, future.result())
        return [*(self.first.outcomes if self.first else []), *self.outcomes]

    def build(
        self, text: str, node: Node | None, targets: tuple[Target, ...]
    ) -> tuple[BuildOutcome, ...]:
        """One release for *targets*; builds of the same release wait for each other, so a
        wheel one made (a pure one) serves the next."""
        with self.guard:
            lock = self.locks.setdefault(node or ("", text), threading.Lock())
        with lock:
            return build_release(
                self.ctx,
                text,
                targets=targets,
                repo=self.repo,
                progress=self.progress,
                build_deps=self.first,
                retry_failed=self.retry_failed,
                gate=self.gate,
            )

    def submit(self, text: str, node: Node | None, targets: tuple[Target, ...]) -> None:
        assert self.pool is not None
        future = self.pool.submit(self.build, text, node, targets)
        self.pending[future] = (node, targets)

    def follow(self, requirement: Requirement, targets: Sequence[Target]) -> None:
        """Build the release *requirement* picks for each of *targets* (those not yet wanted)."""
        extras = set(requirement.extras)
        pythons = {t.tag: t.full_version for t in targets}
        try:
            versions = pick_versions(self.ctx.upstream, requirement, list(pythons.values()))
        except FromsourceError:
            text = f"{requirement.name}{requirement.specifier}"
            if text not in self.failed_texts:  # build_one records the failure
                self.failed_texts.add(text)
                self.submit(text, None, tuple(targets))
            return
        by_version: dict[str, list[Target]] = {}
        for target in targets:
            version = versions.get(target.full_version)
            if version is not None:
                by_version.setdefault(version, []).append(target)
        for version, chosen in by_version.items():
            node = (normalize(requirement.name), version)
            wanted = self.wanted.setdefault(node, set())
            new = tuple(t for t in chosen if t.tag not in wanted)
            grew = not extras <= self.extras_of.setdefault(node, set())
            wanted.update(t.tag for t in new)
            self.extras_of[node] |= extras
            if new:
                self.submit(f"{node[0]}=={version}", node, new)
            elif grew and self.with_deps and node in self.requires_of:
                self.follow_deps(node, [t for t in self.targets if t.tag in wanted])

    def finished(
        self, node: Node | None, targets: tuple[Target, ...], outcomes: tuple[BuildOutcome, ...]
    ) -> None:
        self.outcomes.extend(outcomes)
        if node is None:
            return
        self.requires_of[node] = next((o.requires_dist for o in outcomes if o.requires_dist), ())
        if self.with_deps and any(o.status in ("succeeded", "skipped") for o in outcomes):
            self.follow_deps(node, targets)

    def follow_deps(self, node: Node, targets: Sequence[Target]) -> None:
        """Follow *node*'s dependencies, each for the targets whose markers select it."""
        for_targets: dict[str, tuple[Requirement, list[Target]]] = {}
        for target in targets:
            environment = marker_environment(target)
            requires = self.requires_of.get(node, ())
            for dep in dependency_requirements(
                requires, self.extras_of.get(node, set()), environment
            ):
                for_targets.setdefault(str(dep), (dep, []))[1].append(target)
        for dep, chosen in for_targets.values():
            self.follow(dep, chosen)
