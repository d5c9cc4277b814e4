"""How much of a lock the index serves: one entry per pinned package, and the totals.

Pure values.  ``fromsource build -r/--lock``, ``fromsource adopt`` and the
build jobs of the management API (``GET /api/builds?job=ID``) all report a
:class:`CoverageReport`; its JSON form (:meth:`CoverageReport.to_json`) is
the same everywhere and carries :data:`SCHEMA_VERSION`.

The totals read "N of M pinned packages built from source for every
target (P %)": M counts every pinned package some target installs, except
the project's own source tree (a uv workspace member, an editable
``-e .``), which is not a dependency the index could serve; N counts those
built by this run or built before.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "ENTRY_STATUSES",
    "SCHEMA_VERSION",
    "SKIP_KINDS",
    "CoverageReport",
    "EntryStatus",
    "PackageCoverage",
    "percent_text",
]

SCHEMA_VERSION = 1

EntryStatus = Literal["built", "already-built", "failed", "skipped", "queued", "running"]
"""``built``: built from source by this run; ``already-built``: the index had it (published
before, or built before with the same inputs); ``failed``: its build failed (``category``
and ``reason`` say why); ``skipped``: not built (``category`` is a :data:`SKIP_KINDS` key);
``queued`` / ``running``: a build job that has not settled it yet."""

ENTRY_STATUSES: tuple[EntryStatus, ...] = (
    "built",
    "already-built",
    "failed",
    "skipped",
    "queued",
    "running",
)

SKIP_KINDS: Mapping[str, str] = {
    "vcs": "pinned to a VCS checkout: there is no release to build",
    "path": "pinned to a local path: there is no release to build",
    "url": "pinned to a direct URL: there is no release on the upstream index",
    "other-index": "pinned to another index than the upstream fromsource builds from",
    "not-pinned": "not pinned to one version",
    "marker": "its environment marker excludes every target",
    "project": "the project's own source tree, not a dependency",
    "remediated": "a remediated release (+fs.N), built by `fromsource remediate`",
}
"""Why a pinned package is not built, by kind."""


def percent_text(built: int, pinned: int) -> str:
    """``100`` only when everything is built, else the share rounded down to 0.1."""
    if built >= pinned:
        return "100"
    return f"{math.floor(1000 * built / pinned) / 10:.1f}"


@dataclass(frozen=True)
class PackageCoverage:
    """What became of one pinned package (or, in ``build_dependencies``, one build dependency).

    *name* is the name as the lock writes it, *location* ``file:line``;
    *category* is the failure category (:data:`~fromsource.build.outcome.CATEGORIES`)
    or the skip kind (:data:`SKIP_KINDS`); *reason* says why in words;
    *targets* are the targets it is built for; *counted* is False for what
    the totals leave out (the project's own tree, a package no target installs).
    """

    name: str
    version: str | None
    location: str
    status: EntryStatus
    category: str | None = None
    reason: str = ""
    build_id: int | None = None
    wheel: str | None = None
    targets: tuple[str, ...] = ()
    counted: bool = True

    @property
    def served(self) -> bool:
        """Whether the index serves it built from source (built now or before)."""
        return self.status in ("built", "already-built")

    def settled(
        self, status: EntryStatus, category: str | None = None, reason: str = "", **facts: object
    ) -> PackageCoverage:
        """This entry with a new *status* (and its category, reason, build id, wheel)."""
        return replace(self, status=status, category=category, reason=reason, **facts)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PackageCoverage:
        """Read what :meth:`to_json` wrote (a stored build job's plan)."""
        status = str(data["status"])
        if status not in ENTRY_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return cls(
            name=str(data["name"]),
            version=None if data.get("version") is None else str(data["version"]),
            location=str(data.get("location") or ""),
            status=status,  # checked above
            category=None if data.get("category") is None else str(data["category"]),
            reason=str(data.get("reason") or ""),
            build_id=None if data.get("build_id") is None else int(data["build_id"]),
            wheel=None if data.get("wheel") is None else str(data["wheel"]),
            targets=tuple(str(t) for t in data.get("targets") or ()),
            counted=bool(data.get("counted", True)),
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "name": self.name,
            "version": self.version,
            "location": self.location,
            "status": self.status,
            "category": self.category,
            "reason": self.reason,
            "build_id": self.build_id,
            "wheel": self.wheel,
            "targets": list(self.targets),
            "counted": self.counted,
        }


@dataclass(frozen=True)
class CoverageReport:
    """The coverage of one or more lock files: an entry per pinned package, plus totals.

    *files* are the files read (includes too), *format* their format,
    *targets* the names of the targets built for; *build_dependencies* are
    the build dependencies built from source on the way (``--with-build-deps``),
    outside the totals.
    """

    files: tuple[str, ...]
    format: str
    targets: tuple[str, ...]
    packages: tuple[PackageCoverage, ...]
    build_dependencies: tuple[PackageCoverage, ...] = ()

    @property
    def pinned(self) -> int:
        """M: the pinned packages the totals count."""
        return sum(1 for p in self.packages if p.counted)

    @property
    def built(self) -> int:
        """N: the counted packages the index serves built from source."""
        return sum(1 for p in self.packages if p.counted and p.served)

    @property
    def failed(self) -> bool:
        """Whether any build (a pinned package or a build dependency) failed."""
        return any(p.status == "failed" for p in (*self.packages, *self.build_dependencies))

    @property
    def unserved(self) -> tuple[PackageCoverage, ...]:
        """The counted packages the index does not serve (failed, skipped, not yet built)."""
        return tuple(p for p in self.packages if p.counted and not p.served)

    def counts(self) -> dict[str, int]:
        """How many pinned packages have each status (every status, zeros included)."""
        found = Counter(p.status for p in self.packages)
        return {status: found.get(status, 0) for status in ENTRY_STATUSES}

    def summary(self) -> str:
        """``N of M pinned packages built from source for every target (P %)``."""
        return (
            f"{self.built} of {self.pinned} pinned packages built from source for every "
            f"target ({percent_text(self.built, self.pinned)} %)"
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys and ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "files": list(self.files),
            "format": self.format,
            "targets": list(self.targets),
            "summary": {
                "pinned": self.pinned,
                "built_from_source": self.built,
                "percent": float(percent_text(self.built, self.pinned)),
                "text": self.summary(),
                **self.counts(),
            },
            "packages": [p.to_json() for p in self.packages],
            "build_dependencies": [p.to_json() for p in self.build_dependencies],
        }
