"""Build a lock's exact closure: which pins to build, the builds, and what became of each pin.

:func:`plan_closure` is pure: over the pins of one or more locks (read by
:func:`fromsource.lockfiles.read_lock`, any of its six formats) it decides
which to build, exactly at the pinned version, and why each other pin is
not built.  A pin is never guessed at: a VCS checkout, a local path, a
direct URL, a pin without one version, or a pin from another index than
the lock's main one is reported with its reason.  :func:`settle` maps
build outcomes back onto the plan as a
:class:`~fromsource.build.coverage.CoverageReport`; :func:`build_closure`
runs the builds (:func:`fromsource.build.batch.build_many`, so each
release's build dependencies come as the pipeline resolves them) and
returns that report.

Targets: a pin's environment marker is evaluated for each
:class:`TargetEnvironment` it is given; :func:`target_environments` makes
one per interpreter of the build matrix, and a pin that any of them
selects is built (for every target, by the matrix).
"""

from __future__ import annotations

import platform
import sysconfig
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.markers import default_environment as _default_environment
from packaging.version import InvalidVersion, Version

from fromsource.build.coverage import SKIP_KINDS, CoverageReport, PackageCoverage
from fromsource.build.outcome import BuildOutcome
from fromsource.build.targets import Target, marker_environment
from fromsource.dist.names import fs_revision
from fromsource.indexclient import redact
from fromsource.lockfiles import Lock, PinnedPackage

if TYPE_CHECKING:  # the plan is read by the server's API, which need not load the pipeline
    from fromsource.build.context import BuildContext
    from fromsource.build.pipeline import Progress

__all__ = [
    "ClosurePlan",
    "PlanEntry",
    "TargetEnvironment",
    "build_closure",
    "host_target",
    "main_index",
    "plan_closure",
    "same_index",
    "settle",
    "target_environments",
]


@dataclass(frozen=True)
class TargetEnvironment:
    """One target as markers see it: a name for reports and its PEP 508 marker environment."""

    name: str
    environment: Mapping[str, str]

    def selects(self, marker: Marker | None) -> bool:
        """Whether a pin with *marker* is installed on this target.

        A marker that cannot be decided here (a comparison packaging refuses)
        selects the pin: building one package too many is cheaper than
        leaving one out.
        """
        if marker is None:
            return True
        try:
            return marker.evaluate({**self.environment, "extra": ""})
        except (UndefinedComparison, UndefinedEnvironmentName):
            return True


def host_target() -> TargetEnvironment:
    """The interpreter this process runs on: what the pipeline builds for today."""
    name = (
        f"{platform.python_implementation()} {platform.python_version()} {sysconfig.get_platform()}"
    )
    return TargetEnvironment(name, {k: str(v) for k, v in _default_environment().items()})


def target_environments(targets: Sequence[Target]) -> list[TargetEnvironment]:
    """*targets* as markers see them (the build matrix's interpreters); the host when none."""
    if not targets:
        return [host_target()]
    return [
        TargetEnvironment(f"{t.python_tag}-{t.abi_tag}-{t.platform_tag}", marker_environment(t))
        for t in targets
    ]


@dataclass(frozen=True)
class PlanEntry:
    """One pinned package and what to do with it.

    *requirement* is ``project==version`` when it is built, else None and
    *entry* says why (status ``skipped``).  *entry* starts ``queued`` for a
    pin to build.
    """

    entry: PackageCoverage
    project: str | None = None
    requirement: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (a build job stores its plan so)."""
        return {
            "entry": self.entry.to_json(),
            "project": self.project,
            "requirement": self.requirement,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanEntry:
        """Read what :meth:`to_json` wrote."""
        project, requirement = data.get("project"), data.get("requirement")
        return cls(
            PackageCoverage.from_json(data["entry"]),
            None if project is None else str(project),
            None if requirement is None else str(requirement),
        )

    @property
    def node(self) -> tuple[str, str] | None:
        """``(project, version)`` of a pin to build, as the pipeline names its outcome."""
        if self.requirement is None or self.project is None or self.entry.version is None:
            return None
        return (self.project, self.entry.version)


@dataclass(frozen=True)
class ClosurePlan:
    """What to build for some lock files, for some targets, and what not and why."""

    files: tuple[str, ...]
    format: str
    targets: tuple[TargetEnvironment, ...]
    entries: tuple[PlanEntry, ...] = field(default=())

    @property
    def requirements(self) -> tuple[str, ...]:
        """The ``project==version`` requirements to build, each once, in the locks' order."""
        return tuple(dict.fromkeys(e.requirement for e in self.entries if e.requirement))

    def report(self) -> CoverageReport:
        """The report before anything is built: pins to build ``queued``, the others ``skipped``."""
        return CoverageReport(
            self.files,
            self.format,
            tuple(t.name for t in self.targets),
            tuple(e.entry for e in self.entries),
        )


def main_index(pins: Iterable[PinnedPackage]) -> str | None:
    """The index most index pins name (None, the installer's index, when any names none)."""
    named = [p.source.location for p in pins if p.source.kind == "index"]
    if not named or None in named:
        return None
    return Counter(named).most_common(1)[0][0]


def same_index(a: str, b: str) -> bool:
    """Whether two index URLs are the same index (credentials and a final ``/`` aside)."""
    return redact(a).rstrip("/") == redact(b).rstrip("/")


def _skip(
    pin: PinnedPackage, kind: str, why: str, targets: tuple[str, ...] = (), counted: bool = True
) -> PlanEntry:
    # A VCS, path or URL pin's label is its location (already in *why*): name it by
    # its project when the entry says it.
    name = pin.name if pin.name and pin.source.kind != "index" else pin.label
    entry = PackageCoverage(
        name,
        pin.version,
        pin.location,
        "skipped",
        kind,
        f"{why}: {SKIP_KINDS[kind]}" if why else SKIP_KINDS[kind],
        targets=targets,
        counted=counted,
    )
    return PlanEntry(entry, pin.name)


def _plan_pin(
    pin: PinnedPackage,
    targets: Sequence[TargetEnvironment],
    main_index: str | None,
    upstream_url: str | None,
) -> PlanEntry:
    """What to do with one pin (pure)."""
    source = pin.source
    if source.kind == "path" and (source.editable or source.form in ("virtual", "editable")):
        return _skip(pin, "project", f"{source.describe()}", counted=False)
    chosen = tuple(t.name for t in targets if t.selects(pin.marker))
    if not chosen:
        return _skip(
            pin,
            "marker",
            f"`{pin.marker}` is false for " + ", ".join(t.name for t in targets),
            counted=False,
        )
    if source.kind != "index":
        where = redact(source.location or "")
        return _skip(pin, source.kind, where or source.form or source.kind, chosen)
    location = source.location
    if (
        location is not None
        and main_index is not None
        and not same_index(location, main_index)
        and not (upstream_url and same_index(location, upstream_url))
    ):
        return _skip(
            pin,
            "other-index",
            f"{redact(location)} (most pins come from {redact(main_index)})",
            chosen,
        )
    if (
        location is not None
        and main_index is None
        and not (upstream_url and same_index(location, upstream_url))
    ):
        return _skip(pin, "other-index", f"{redact(location)}", chosen)
    if pin.name is None or pin.version is None:
        return _skip(pin, "not-pinned", "no ==version", chosen)
    try:
        version = Version(pin.version)
    except InvalidVersion:
        version = None
    if version is not None and fs_revision(version) is not None:
        return _skip(pin, "remediated", pin.version, chosen)
    entry = PackageCoverage(pin.label, pin.version, pin.location, "queued", targets=chosen)
    return PlanEntry(entry, pin.name, f"{pin.name}=={pin.version}")


def plan_closure(
    locks: Sequence[Lock],
    targets: Sequence[TargetEnvironment],
    *,
    upstream_url: str | None = None,
) -> ClosurePlan:
    """Which pins of *locks* to build for *targets*, each once; and why not the others.

    Pure.  A pin is built when it comes from an index, names one version
    and some target's marker environment selects it.  Index pins naming an
    index are built when that is the index most pins name (the lock's main
    index) or *upstream_url*; a lock's pins that name none mean the
    installer's default index, and then a pin naming another is reported.
    The same ``name==version`` pinned twice (by two included files) is
    planned once, at its first place.  Constraints (``-c``) are not built.
    """
    pins = [p for lock in locks for p in lock.packages]
    main = main_index(pins)
    entries: list[PlanEntry] = []
    seen: set[tuple[str, str | None]] = set()
    for pin in pins:
        key = (pin.name or pin.label, pin.version)
        if key in seen:
            continue
        seen.add(key)
        entries.append(_plan_pin(pin, targets, main, upstream_url))
    formats = sorted({lock.format for lock in locks})
    return ClosurePlan(
        tuple(f for lock in locks for f in lock.files),
        "+".join(formats),
        tuple(targets),
        tuple(entries),
    )


def _settled(entry: PackageCoverage, outcomes: Sequence[BuildOutcome]) -> PackageCoverage:
    """*entry* settled by its outcomes: failed if any build failed (a release must be
    built for every target), else built if one succeeded, else already built."""
    by_status = {o.status: o for o in outcomes}
    if (failed := by_status.get("failed")) is not None:
        return entry.settled(
            "failed", failed.category or "internal", failed.message, build_id=failed.build_id
        )
    if (done := by_status.get("succeeded")) is not None:
        return entry.settled("built", build_id=done.build_id, wheel=done.wheel)
    if (skipped := by_status.get("skipped")) is not None:
        return entry.settled(
            "already-built", reason=skipped.message, build_id=skipped.build_id, wheel=skipped.wheel
        )
    return entry


def settle(plan: ClosurePlan, outcomes: Sequence[BuildOutcome]) -> CoverageReport:
    """The coverage report of *plan* once *outcomes* (from :func:`build_many`) are known.

    Pure.  An outcome for no planned pin is a build dependency built on the
    way; those are listed apart, outside the totals.  A planned pin without
    an outcome stays ``queued``.
    """
    by_node: dict[tuple[str, str], list[BuildOutcome]] = {}
    for outcome in outcomes:
        by_node.setdefault((outcome.project, outcome.version), []).append(outcome)
    planned = {e.node for e in plan.entries if e.node is not None}
    packages = tuple(
        _settled(e.entry, by_node.get(e.node, [])) if e.node is not None else e.entry
        for e in plan.entries
    )
    extra = tuple(
        _settled(PackageCoverage(node[0], node[1], "", "queued", counted=False), found)
        for node, found in by_node.items()
        if node not in planned
    )
    return CoverageReport(
        plan.files, plan.format, tuple(t.name for t in plan.targets), packages, extra
    )


def build_closure(
    ctx: BuildContext,
    plan: ClosurePlan,
    *,
    jobs: int = 1,
    repo: str = "python",
    progress: Progress | None = None,
    with_build_deps: bool = False,
    retry_failed: bool = False,
) -> CoverageReport:
    """Build every pin *plan* builds, exactly at its version, and report the coverage.

    Runtime dependencies are not followed (the lock pins the closure);
    build dependencies are resolved by the pipeline as for any build, and
    with *with_build_deps* built from source first.  Builds are for the
    interpreter this process runs on (the plan's targets only decide which
    pins apply).  Never raises for a failed build: the report says it.
    """
    from fromsource.build.batch import build_many

    outcomes = build_many(
        ctx,
        list(plan.requirements),
        jobs=jobs,
        repo=repo,
        progress=progress,
        with_build_deps=with_build_deps,
        retry_failed=retry_failed,
    )
    return settle(plan, outcomes)
