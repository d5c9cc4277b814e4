"""Which upstream files ``python-upstream`` offers, and which releases ``follow`` and
build-on-demand may queue.

Pure: functions over a parsed upstream page (:class:`~fromsource.indexclient.ProjectFile`
values), the :class:`~fromsource.policy.Policy` in force and the time.

- :func:`offers` reads every file of an upstream page that is a wheel or an
  sdist of the project and carries a sha256 (nothing else can be checked),
  and asks policy about each: the release's malware records, the digests of
  all its files (one file named in a record's ``package_integrity`` denies
  the whole release), block and allow rules, and the cooldown weighed
  against the file's *own* upload time (a wheel added to an old release
  waits its cooldown too).
- :func:`shadowed` says whether the index's own files win over an upstream
  file in ``python-all``: an upstream file appears only for a version the
  index has no file of, or, for a wheel, for targets none of the index's
  wheels of that version covers (:func:`tags_overlap`).
- :func:`releases` lists a project's upstream releases a build could take,
  each with policy's decision now (the cooldown weighed on its sdists'
  upload time); :func:`new_releases` picks, for ``follow``, those newer
  than the newest the index carries, and :func:`on_demand` the requirement
  build-on-demand queues: nothing past the newest release policy lets
  through, nothing policy denies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.build.upstream_pages import dist_of
from fromsource.dist.names import ProjectName, normalize
from fromsource.indexclient import ProjectFile
from fromsource.policy.decide import Decision, Policy, decide

if TYPE_CHECKING:
    from fromsource.policy.store import Action

__all__ = [
    "Demand",
    "Offer",
    "Release",
    "decide_file",
    "new_releases",
    "offers",
    "on_demand",
    "releases",
    "shadowed",
    "tags_overlap",
]


@dataclass(frozen=True)
class Offer:
    """One upstream file as ``python-upstream`` would list it, with policy's decision.

    *version* is the normalized version its filename gives (the path segment
    of its URL below ``/python-upstream/files/<project>/``); the sha256 is
    always known (files without one are never offered).
    """

    file: ProjectFile
    project: ProjectName
    version: str
    kind: Literal["sdist", "wheel"]
    tags: frozenset[Tag]
    decision: Decision

    @property
    def filename(self) -> str:
        """The file's name."""
        return self.file.filename

    @property
    def sha256(self) -> str:
        """The digest the upstream page lists (the download is checked against it)."""
        assert self.file.sha256 is not None
        return self.file.sha256


def decide_file(
    project: str,
    version: str,
    *,
    policy: Policy,
    upload_time: datetime | None,
    sha256s: Iterable[str],
    now: datetime,
) -> Decision:
    """:func:`~fromsource.policy.decide` for a file from upstream, whose cooldown always counts.

    An upstream file whose page gives no upload time is weighed as if it
    had been published just now: only a cooldown of 0 days or an allow rule
    lets it through (a cooldown that cannot be checked must not pass).
    """
    if upload_time is not None:
        return decide(
            project, version, policy=policy, upload_time=upload_time, sha256s=sha256s, now=now
        )
    decision = decide(project, version, policy=policy, upload_time=now, sha256s=sha256s, now=now)
    if decision.verdict != "cooldown":
        return decision
    cooldown, _rule = policy.cooldown(decision.project, version)
    return replace(
        decision,
        until=None,
        reason=f"{decision.project} {version}: the upstream index gives no upload time, so "
        f"its cooldown ({cooldown.days} day(s)) cannot be checked and it is not used "
        "(a cooldown rule of 0 days or an allow rule lets it through)",
    )


_Kind = Literal["sdist", "wheel"]


def _parsed(
    project: str, files: Iterable[ProjectFile]
) -> list[tuple[ProjectFile, str, _Kind, frozenset[Tag]]]:
    """(file, version, kind, tags) of every wheel or sdist of *project* with a sha256."""
    found: list[tuple[ProjectFile, str, _Kind, frozenset[Tag]]] = []
    for file in files:
        if file.sha256 is None:
            continue
        dist = dist_of(file, project)
        if dist is None:
            continue
        found.append((file, str(dist.version), dist.kind, dist.tags))
    return found


def offers(
    project: str, files: Iterable[ProjectFile], *, policy: Policy, now: datetime
) -> list[Offer]:
    """Every file of *project*'s upstream page that could be offered, each with its decision.

    Files of other projects, with unparsable names or without a sha256 are
    left out.  Page order is kept.
    """
    name = normalize(project)
    parsed = _parsed(name, files)
    digests: dict[str, list[str]] = {}
    for file, version, _kind, _tags in parsed:
        assert file.sha256 is not None
        digests.setdefault(version, []).append(file.sha256)
    return [
        Offer(
            file=file,
            project=name,
            version=version,
            kind=kind,
            tags=tags,
            decision=decide_file(
                name,
                version,
                policy=policy,
                upload_time=file.upload_time,
                sha256s=digests[version],
                now=now,
            ),
        )
        for file, version, kind, tags in parsed
    ]


# -- the index's own files win ------------------------------------------------------------

_MACOS_FAT = {
    "universal2": ("x86_64", "arm64"),
    "universal": ("x86_64", "i386", "ppc", "ppc64"),
    "intel": ("x86_64", "i386"),
    "fat": ("i386", "ppc"),
    "fat3": ("x86_64", "i386", "ppc"),
    "fat32": ("i386", "ppc"),
    "fat64": ("x86_64", "ppc64"),
}
_GLIBC = re.compile(r"^(?:manylinux(?:1|2010|2014|_\d+_\d+)|linux)_(.+)$")
_MUSL = re.compile(r"^musllinux_\d+_\d+_(.+)$")
_MACOS = re.compile(r"^macosx_\d+_\d+_(.+)$")
_INTERPRETER = re.compile(r"^([a-z]+)(\d)(\d*)$")
_ANY_MINOR = 10_000


def _platforms(platform: str) -> frozenset[str]:
    """The machines a platform tag runs on, as ``family:arch`` (``*`` for ``any``).

    Every manylinux and ``linux`` tag of an architecture is one family (a
    glibc machine can take any of them), musllinux another, macOS by
    architecture (fat binaries count for each of theirs); others stand for
    themselves (``win_amd64``).
    """
    if platform == "any":
        return frozenset({"*"})
    if match := _GLIBC.match(platform):
        return frozenset({f"glibc:{match.group(1)}"})
    if match := _MUSL.match(platform):
        return frozenset({f"musl:{match.group(1)}"})
    if match := _MACOS.match(platform):
        arch = match.group(1)
        return frozenset(f"macos:{a}" for a in _MACOS_FAT.get(arch, (arch,)))
    return frozenset({platform})


@dataclass(frozen=True)
class _Pythons:
    """The interpreters a tag's interpreter and ABI admit: an implementation, a range, a build."""

    implementation: str  # "py": any implementation
    low: tuple[int, int]
    high: tuple[int, int]
    threading: str  # "t": free-threaded builds only, "": the default builds, "*": either

    def overlaps(self, other: _Pythons) -> bool:
        """True when some interpreter is admitted by both."""
        implementations = {self.implementation, other.implementation}
        if len(implementations) == 2 and "py" not in implementations:
            return False
        if "*" not in (self.threading, other.threading) and self.threading != other.threading:
            return False
        return max(self.low, other.low) <= min(self.high, other.high)


def _pythons(tag: Tag) -> _Pythons | None:
    """What *tag* admits, or None for an interpreter tag this module does not read."""
    match = _INTERPRETER.match(tag.interpreter)
    if match is None:
        return None
    implementation, major, minor = match.group(1), int(match.group(2)), match.group(3)
    low = (major, int(minor) if minor else 0)
    high = (major, int(minor) if minor else _ANY_MINOR)
    if tag.abi == "abi3":  # the stable ABI: this minor and every later one
        return _Pythons(implementation, low, (major, _ANY_MINOR), "")
    if tag.abi == "none":
        return _Pythons(implementation, low, high, "*")
    return _Pythons(implementation, low, high, "t" if tag.abi.endswith("t") else "")


def tags_overlap(ours: Iterable[Tag], theirs: Iterable[Tag]) -> bool:
    """True when some machine and interpreter could install a wheel of either tag set.

    The index built that target, so its wheel must win there: a pure wheel
    (``py3-none-any``) covers every target of its Python, ``cp312-abi3``
    every CPython from 3.12, ``manylinux_2_17_x86_64`` every glibc x86-64
    machine.  A tag this module cannot read overlaps everything (the
    index's file wins when in doubt).
    """
    theirs = list(theirs)
    for mine in ours:
        for other in theirs:
            a, b = _pythons(mine), _pythons(other)
            if a is not None and b is not None and not a.overlaps(b):
                continue
            pa, pb = _platforms(mine.platform), _platforms(other.platform)
            if "*" in pa or "*" in pb or pa & pb:
                return True
    return False


def _public(version: str) -> Version | str:
    try:
        return Version(Version(version).public)
    except InvalidVersion:
        return version


def shadowed(offer: Offer, own: Iterable[str]) -> bool:
    """True when the index's own files (filenames *own*) win over the upstream file *offer*.

    They do for every upstream file of a version the index has a file of
    (``X.Y.Z+fs.N`` counts as ``X.Y.Z``), except an upstream wheel whose
    targets none of the index's wheels of that version covers.
    """
    wanted = _public(offer.version)
    for filename in own:
        dist = dist_of(ProjectFile(filename, filename, None), offer.project)
        if dist is None or _public(str(dist.version)) != wanted:
            continue
        if offer.kind == "sdist" or (dist.kind == "wheel" and tags_overlap(dist.tags, offer.tags)):
            return True
    return False


def wheel_tags(filename: str) -> frozenset[Tag]:
    """The tags of a wheel filename (empty for anything else)."""
    try:
        return parse_wheel_filename(filename)[3]
    except (InvalidWheelFilename, InvalidVersion):
        return frozenset()


# -- follow -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """An upstream release ``follow`` looked at: its version and policy's decision now."""

    project: ProjectName
    version: str
    decision: Decision

    @property
    def requirement(self) -> str:
        """What to build: ``project==version``."""
        return f"{self.project}=={self.version}"


def _newest(carried: Iterable[str]) -> Version | None:
    best: Version | None = None
    for text in carried:
        try:
            version = Version(Version(text).public)
        except InvalidVersion:
            continue
        best = version if best is None else max(best, version)
    return best


def releases(
    project: str, files: Sequence[ProjectFile], *, policy: Policy, now: datetime
) -> list[Release]:
    """The upstream releases of *project* a build could take, oldest first, each decided now.

    A release counts when it has a non-yanked sdist (the index builds from
    source) and is final (no pre- or dev-release).  Its decision weighs
    every file's digest and, for the cooldown, the latest upload time of
    its sdists (the file a build would fetch; unknown: see
    :func:`decide_file`).
    """
    name = normalize(project)
    parsed = _parsed(name, files)
    digests: dict[str, list[str]] = {}
    uploads: dict[str, list[datetime | None]] = {}
    for file, version, kind, _tags in parsed:
        assert file.sha256 is not None
        digests.setdefault(version, []).append(file.sha256)
        if kind == "sdist" and not file.yanked:
            uploads.setdefault(version, []).append(file.upload_time)
    found = []
    for version, times in uploads.items():
        if Version(version).is_prerelease:
            continue
        known = [t for t in times if t is not None]
        upload = max(known) if len(known) == len(times) else None
        decision = decide_file(
            name, version, policy=policy, upload_time=upload, sha256s=digests[version], now=now
        )
        found.append(Release(name, version, decision))
    return sorted(found, key=lambda r: Version(r.version))


def new_releases(
    project: str,
    files: Sequence[ProjectFile],
    carried: Iterable[str],
    *,
    policy: Policy,
    now: datetime,
) -> list[Release]:
    """The :func:`releases` of *project* newer than every version in *carried*, oldest first.

    Empty when *carried* holds no PEP 440 version.
    """
    newest = _newest(carried)
    if newest is None:
        return []
    found = releases(project, files, policy=policy, now=now)
    return [r for r in found if Version(r.version) > newest]


@dataclass(frozen=True)
class Demand:
    """What build-on-demand may queue for a project: policy's answer over its releases.

    *newest* is the newest release policy lets through now (an allow rule
    may be why), None when there is none; *held* the releases it denies
    that are newer (every denied one when *newest* is None), oldest first;
    *skipped* the denied versions older than *newest*, left out too.
    """

    project: ProjectName
    newest: Release | None
    held: tuple[Release, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def requirement(self) -> str | None:
        """What to build (``name<=newest,!=skipped...``: the builder takes the newest match a
        target Python admits), or None when policy lets no release through."""
        if self.newest is None:
            return None
        specs = [f"<={self.newest.version}", *(f"!={v}" for v in self.skipped)]
        return self.project + ",".join(specs)

    @property
    def message(self) -> str:
        """One line saying what is queued and what policy holds back, and why."""
        held = "; ".join(r.decision.reason for r in self.held)
        if self.newest is None:
            if not self.held:
                return f"{self.project}: the upstream lists no final release with an sdist"
            return f"{self.project} is not built on demand: policy lets no release through ({held})"
        queued = f"{self.project}: {self.requirement} queued"
        if self.newest.decision.verdict == "allow":
            queued += f" ({self.newest.decision.reason})"
        return queued + (f"; held back: {held}" if held else "")

    @property
    def audited(self) -> list[tuple[Action, Decision]]:
        """What to write to the audit log: each held release as ``build-refused``, and the
        newest as ``build-allowed`` when an allow rule let it through."""
        events: list[tuple[Action, Decision]] = [("build-refused", r.decision) for r in self.held]
        if self.newest is not None and self.newest.decision.audited:
            events.append(("build-allowed", self.newest.decision))
        return events


def on_demand(
    project: str, files: Sequence[ProjectFile], *, policy: Policy, now: datetime
) -> Demand:
    """What build-on-demand may queue for *project*, whose upstream page lists *files*.

    The same decisions as ``follow`` (:func:`releases`): a release in its
    cooldown, named by a malware record or blocked is never what the
    requirement lets the builder pick; an allow rule lets one through.
    """
    found = releases(project, files, policy=policy, now=now)
    allowed = [r for r in found if r.decision.allowed]
    newest = allowed[-1] if allowed else None
    top = Version(newest.version) if newest is not None else None
    denied = [r for r in found if not r.decision.allowed]
    return Demand(
        project=normalize(project),
        newest=newest,
        held=tuple(r for r in denied if top is None or Version(r.version) > top),
        skipped=tuple(r.version for r in denied if top is not None and Version(r.version) < top),
    )
