"""The values the build steps hand each other, from the request to the final wheel."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from packaging.requirements import Requirement

from fromsource.build.crates import CrateSet
from fromsource.build.deps import ResolvedWheel, Resolver
from fromsource.build.pep517 import BuildEnvironment, BuildSystem
from fromsource.build.repair import RepairResult
from fromsource.build.targets import Target
from fromsource.provenance.statement import PatchInfo, SystemLibrary

__all__ = ["BuildDeps", "Release", "Repaired", "Request", "Resolved", "Sdist", "Source", "Wheel"]

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
    """What a build was asked to do beyond the release (see
    :func:`~fromsource.build.pipeline.build_one`): *target* is the interpreter it builds
    with."""

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
    own_as_of: datetime | None = None
    """Offer the resolver only our repository's wheels published by then (builds that
    must agree: :attr:`~fromsource.build.agree.Slot.as_of`); None: all of them."""


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
