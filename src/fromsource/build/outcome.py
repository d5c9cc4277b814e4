"""What a build reports: steps, progress events, outcomes and failure categories.

Pure values and decisions: :func:`categorize` names the reason a build
failed (so no failure is left without one), :func:`compare_wheels` says
which members of two wheels differ.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fromsource.errors import (
    FromsourceError,
    HashMismatchError,
    InvalidDistributionError,
    ProvenanceError,
    PublishError,
    SandboxError,
    UnsafeArchiveError,
    UpstreamError,
)

__all__ = [
    "CATEGORIES",
    "STEPS",
    "BuildOutcome",
    "ProgressEvent",
    "RebuildReport",
    "Status",
    "categorize",
    "compare_wheels",
]

STEPS = ("fetch", "unpack", "patch", "deps", "build", "sbom", "normalize", "attest", "publish")
"""The pipeline's steps in order (DESIGN.md "The build pipeline")."""

Status = Literal["queued", "running", "succeeded", "failed", "skipped"]

CATEGORIES = {
    "no-sdist": "the release has no sdist upstream",
    "not-found": "the project or a matching version is not on the upstream index",
    "upstream-error": "the upstream index failed or answered something unusable",
    "hash-mismatch": "a download did not have the sha256 the index promised",
    "unsafe-archive": "the sdist holds members that would escape or abuse the work tree",
    "sdist-mismatch": "the sdist's PKG-INFO names another project or version",
    "patch-failed": "a remediation patch did not apply",
    "bad-pyproject": "pyproject.toml is unreadable or its [build-system] is malformed",
    "bad-build-requirement": "a build requirement is a URL or not PEP 508",
    "build-deps-unresolvable": "the build requirements cannot be resolved to wheels",
    "needs-rust": "the build needs Rust crates, and the crate registry is unreachable",
    "missing-system-library": "a C header, library or pkg-config package is not installed",
    "timeout": "the build ran past its wall-clock limit and was killed",
    "process-limit": "the build started too many processes and was killed",
    "out-of-memory": "the build ran out of memory under the sandbox's limit",
    "build-failed": "the build backend failed (see the log)",
    "wheel-mismatch": "the backend built a wheel of another project or version",
    "sandbox-unavailable": "no sandbox could be set up and unsandboxed builds are not allowed",
    "invalid-wheel": "the built wheel is malformed",
    "attest-failed": "the SBOM or attestation could not be made",
    "publish-failed": "the wheel could not be published",
    "internal": "fromsource itself failed (a bug: see the log)",
}
"""Every failure category, with what it means."""

_RUST = re.compile(
    r"setuptools[-_]rust|maturin|\bcargo\b|\brustc\b|Rust compiler|crates\.io", re.IGNORECASE
)
_SYSTEM_LIBRARY = re.compile(
    r"fatal error: [^\s:]+\.h(pp)?: No such file or directory"
    r"|was not found in the pkg-config search path"
    r"|Dependency \S+ found: NO"
    r"|cannot find -l\w+"
    r"|Did not find pkg-config"
)
_MEMORY = re.compile(r"MemoryError|out of memory|Cannot allocate memory|virtual memory exhausted")


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one build changed state."""

    project: str
    version: str
    step: str
    state: Literal["start", "done", "succeeded", "failed", "skipped"]
    message: str = ""


@dataclass(frozen=True)
class BuildOutcome:
    """What became of one requested build."""

    project: str
    version: str
    status: Status
    build_id: int | None = None
    category: str | None = None
    message: str = ""
    wheel: str | None = None
    sha256: str | None = None
    file_id: int | None = None
    key: str | None = None
    seconds: float = 0.0
    step_seconds: tuple[tuple[str, float], ...] = ()
    requires_dist: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "project": self.project,
            "version": self.version,
            "status": self.status,
            "build_id": self.build_id,
            "category": self.category,
            "message": self.message,
            "wheel": self.wheel,
            "sha256": self.sha256,
            "key": self.key,
            "seconds": round(self.seconds, 3),
            "steps": {name: round(sec, 3) for name, sec in self.step_seconds},
        }


@dataclass(frozen=True)
class RebuildReport:
    """The result of ``rebuild --check``: two builds of one release compared."""

    project: str
    version: str
    identical: bool
    reference: str
    reference_sha256: str
    rebuilt_sha256: str
    differing: tuple[str, ...] = ()
    only_in_reference: tuple[str, ...] = ()
    only_in_rebuild: tuple[str, ...] = ()
    seconds: float = 0.0
    outcomes: tuple[BuildOutcome, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "schema_version": 1,
            "project": self.project,
            "version": self.version,
            "identical": self.identical,
            "reference": self.reference,
            "reference_sha256": self.reference_sha256,
            "rebuilt_sha256": self.rebuilt_sha256,
            "differing_members": list(self.differing),
            "only_in_reference": list(self.only_in_reference),
            "only_in_rebuild": list(self.only_in_rebuild),
            "seconds": round(self.seconds, 3),
        }


def categorize(exc: BaseException, log: str = "", requirements: Iterable[str] = ()) -> str:
    """The failure category (a key of :data:`CATEGORIES`) for *exc*.

    A category set on the error wins; a generic build failure is refined from
    the build *log* and the build *requirements* (Rust, system libraries,
    memory).
    """
    category: str | None = None
    if isinstance(exc, FromsourceError):
        given = exc.facts.get("category")
        category = str(given) if given else None
    if category is None:
        category = _by_type(exc)
    if category == "build-failed":
        if any(_RUST.search(r) for r in requirements) or _RUST.search(log):
            return "needs-rust"
        if _SYSTEM_LIBRARY.search(log):
            return "missing-system-library"
        if _MEMORY.search(log):
            return "out-of-memory"
    return category


def _by_type(exc: BaseException) -> str:
    if isinstance(exc, UnsafeArchiveError):
        return "unsafe-archive"
    if isinstance(exc, HashMismatchError):
        return "hash-mismatch"
    if isinstance(exc, UpstreamError):
        return "not-found" if exc.facts.get("status") == 404 else "upstream-error"
    if isinstance(exc, SandboxError):
        return "sandbox-unavailable"
    if isinstance(exc, InvalidDistributionError):
        return "invalid-wheel"
    if isinstance(exc, ProvenanceError):
        return "attest-failed"
    if isinstance(exc, PublishError):
        return "publish-failed"
    if isinstance(exc, FromsourceError):
        return "build-failed"
    return "internal"


def compare_wheels(reference: Path, rebuilt: Path) -> tuple[list[str], list[str], list[str]]:
    """Members whose bytes or zip metadata differ, only in *reference*, only in *rebuilt*."""
    with zipfile.ZipFile(reference) as left, zipfile.ZipFile(rebuilt) as right:
        a = {i.filename: i for i in left.infolist()}
        b = {i.filename: i for i in right.infolist()}
        differing = []
        for name in sorted(a.keys() & b.keys()):
            x, y = a[name], b[name]
            same_meta = (x.date_time, x.external_attr, x.compress_type) == (
                y.date_time,
                y.external_attr,
                y.compress_type,
            )
            if not same_meta or left.read(name) != right.read(name):
                differing.append(name)
        if not differing and list(a) != list(b):
            differing.append("(member order)")
    return differing, sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
