"""The values lock-file updates work with: index files, releases, per-package outcomes.

Pure: no I/O.  A :data:`Lookup` is the one seam between a format's editor and
the index; editors call it with a pinned name and version and get the
:class:`Release` to write, or None when the index does not have it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from packaging.version import InvalidVersion, Version

from fromsource.dist.names import Kind, ProjectName, Sha256, normalize
from fromsource.lockfiles.pinned import PinnedPackage

Status = Literal["updated", "already-ours", "missing", "skipped"]
"""``updated``: the entry now holds our files; ``already-ours``: nothing to change;
``missing``: the index has no files for that pin (left unchanged); ``skipped``:
not an index distribution (a VCS, path or URL requirement, the project itself)."""

STATUSES: tuple[Status, ...] = ("updated", "already-ours", "missing", "skipped")


@dataclass(frozen=True)
class IndexFile:
    """One distribution file on the index, with an absolute URL that holds no credentials."""

    filename: str
    url: str
    sha256: Sha256
    kind: Kind
    size: int | None = None
    upload_time: datetime | None = None


@dataclass(frozen=True)
class Release:
    """What the index serves for one pinned project version.

    *version* is the version to write into the lock (``X.Y.Z+fs.N`` when a
    remediated release was chosen); *index_url* is the repository's simple
    URL (no credentials), for formats that record where files came from.
    *files* is sorted by filename and never empty.
    """

    name: ProjectName
    version: str
    index_url: str
    files: tuple[IndexFile, ...]

    @property
    def wheels(self) -> tuple[IndexFile, ...]:
        """The wheel files, by filename."""
        return tuple(f for f in self.files if f.kind == "wheel")

    @property
    def sdist(self) -> IndexFile | None:
        """The first sdist, if the index serves one."""
        return next((f for f in self.files if f.kind == "sdist"), None)

    @property
    def sha256s(self) -> tuple[str, ...]:
        """Every file's sha256, sorted."""
        return tuple(sorted({f.sha256 for f in self.files}))


Lookup = Callable[[ProjectName, str], Release | None]
"""(normalized name, pinned version) -> the release to write, or None if the index lacks it."""


@dataclass(frozen=True)
class PackageReport:
    """The outcome for one pinned entry of a lock file."""

    name: str
    version: str | None
    status: Status
    detail: str
    new_version: str | None = None
    sha256: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "new_version": self.new_version,
            "sha256": list(self.sha256),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class LockUpdate:
    """A format editor's result: the new text, one report per entry, and notes."""

    format: str
    text: str
    packages: tuple[PackageReport, ...]
    notes: tuple[str, ...] = ()


def same_version(a: str, b: str) -> bool:
    """Whether *a* and *b* are the same PEP 440 version (``1.0`` == ``1.0.0``)."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def index_release(lookup: Lookup, pinned: PinnedPackage) -> tuple[str, Release] | PackageReport:
    """The pinned version of an index package and the index's release for it, or a report.

    ``skipped`` for an entry not installed from an index or not pinned to one
    version; ``missing`` when the version is not PEP 440 or the index lacks it.
    """
    if pinned.source.kind != "index":
        return skipped(pinned.label, pinned.version,
                       f"installed from {pinned.source.describe()}, not from an index")
    version = pinned.version
    if version is None:
        return skipped(pinned.label, None, "not pinned to one version")
    try:
        Version(version)
    except InvalidVersion:
        return PackageReport(pinned.label, version, "missing",
                             f"{version!r} is not a PEP 440 version; left unchanged")
    release = lookup(pinned.name or normalize(pinned.label), version)
    if release is None:
        return PackageReport(pinned.label, version, "missing", "not on the index; left unchanged")
    return version, release


def outcome(name: str, version: str, release: Release, changed: bool) -> PackageReport:
    """The ``updated`` / ``already-ours`` report for an entry edited with *release*."""
    new_version = None if same_version(version, release.version) else release.version
    if not changed:
        return PackageReport(name, version, "already-ours",
                             f"already pins the files of {release.index_url}",
                             sha256=release.sha256s)
    count = len(release.files)
    detail = f"{count} file{'s' if count != 1 else ''} from {release.index_url}"
    return PackageReport(name, version, "updated", detail, new_version, release.sha256s)


def skipped(name: str, version: str | None, why: str) -> PackageReport:
    """The report for an entry that is not an index distribution."""
    return PackageReport(name, version, "skipped", why)

