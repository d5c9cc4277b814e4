"""Patch series: the layout of our backports and loading them.

Layout (the project ships its own under ``fromsource/remediations/``)::

    remediations/
      <project>/                 PEP 503 normalized name
        <version>/               the upstream version the series applies to
          series.toml            the ordered list of patches (below)
          0001-<topic>.patch     unified diffs, paths relative to the sdist
          ...                    root with one leading component (a/ b/)
      _advisories/               OSV records of our own (GHSA-only cases)

``series.toml``::

    project = "flask"
    version = "2.0.0"

    [[patch]]
    file = "0001-vary-cookie-on-session-refresh.patch"
    summary = "One line: what the patch changes"
    fixes = ["PYSEC-2023-62", "CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq"]
    strip = 1            # optional: leading path components to drop (patch -p)

Patches apply in the order they are listed.  ``fixes`` names the advisory id
and its aliases; a scanner may report any of them.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

import fromsource
from fromsource.dist.names import ProjectName, Sha256, normalize
from fromsource.errors import RemediateError

__all__ = [
    "OWN_ADVISORIES_DIR",
    "SERIES_FILE",
    "PatchSeries",
    "SeriesPatch",
    "find_series",
    "list_series",
    "load_series",
    "own_advisories_dir",
    "parse_manifest",
    "require_series",
    "shipped_root",
]

SERIES_FILE = "series.toml"
OWN_ADVISORIES_DIR = "_advisories"
"""Folder of OSV records we wrote ourselves; ``_`` keeps it apart from project names."""


@dataclass(frozen=True)
class SeriesPatch:
    """One patch of a series: file name, digest, what it fixes and how to apply it.

    *data* is the exact bytes of the patch file, the bytes *sha256* covers.
    """

    name: str
    path: Path
    sha256: Sha256
    summary: str
    fixes: tuple[str, ...]
    strip: int
    data: bytes

    @property
    def text(self) -> str:
        """The diff as text (UTF-8, undecodable bytes replaced)."""
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True)
class PatchSeries:
    """The ordered patches for one upstream version of one project."""

    project: ProjectName
    version: Version
    directory: Path
    patches: tuple[SeriesPatch, ...]

    @property
    def fixes(self) -> tuple[str, ...]:
        """Every id and alias the series fixes, in patch order, without repeats."""
        seen: dict[str, None] = {}
        for patch in self.patches:
            for name in patch.fixes:
                seen.setdefault(name, None)
        return tuple(seen)


@dataclass(frozen=True)
class ManifestEntry:
    """One [[patch]] entry of a manifest."""

    file: str
    summary: str
    fixes: tuple[str, ...]
    strip: int


@dataclass(frozen=True)
class Manifest:
    """What ``series.toml`` says, before the patch files are read."""

    project: ProjectName
    version: Version
    entries: tuple[ManifestEntry, ...]


def _bad(where: str, problem: str) -> RemediateError:
    return RemediateError(f"{where}: {problem}; fix the series file", series=where)


def _str(data: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise _bad(where, f"{key!r} must be a non-empty string")
    return value


def parse_manifest(text: str, *, where: str) -> Manifest:
    """Parse the text of a ``series.toml``; *where* names it in errors.

    Raises RemediateError for TOML errors, missing fields, a patch file name
    that is not a plain file name, a patch without ``fixes`` or a file listed
    twice.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(where, f"not valid TOML ({exc})") from exc
    try:
        version = Version(_str(data, "version", where))
    except InvalidVersion as exc:
        raise _bad(where, f"version {data.get('version')!r} is not a PEP 440 version") from exc
    raw_patches = data.get("patch", [])
    if not isinstance(raw_patches, list) or not raw_patches:
        raise _bad(where, "it lists no [[patch]] entries")
    entries: list[ManifestEntry] = []
    for i, raw in enumerate(raw_patches):
        here = f"{where} [[patch]] #{i + 1}"
        if not isinstance(raw, dict):
            raise _bad(here, "must be a table")
        file = _str(raw, "file", here)
        if "/" in file or "\\" in file or file.startswith(".") or not file.endswith(".patch"):
            raise _bad(here, f"file {file!r} must be a plain '*.patch' name in the series folder")
        fixes = raw.get("fixes")
        if (
            not isinstance(fixes, list)
            or not fixes
            or not all(isinstance(f, str) and f for f in fixes)
        ):
            raise _bad(here, "'fixes' must list the advisory ids and aliases the patch resolves")
        strip = raw.get("strip", 1)
        if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
            raise _bad(here, "'strip' must be a whole number >= 0")
        if any(e.file == file for e in entries):
            raise _bad(here, f"{file} is listed twice")
        entries.append(ManifestEntry(file, _str(raw, "summary", here, default=""), tuple(fixes), strip))
    return Manifest(normalize(_str(data, "project", where)), version, tuple(entries))


def load_series(directory: Path) -> PatchSeries:
    """Read the series in *directory* (its ``series.toml`` and every patch it lists).

    Raises RemediateError when the manifest is invalid, a listed patch is
    missing, or the manifest's project/version disagree with the folder names.
    """
    manifest_path = directory / SERIES_FILE
    where = str(manifest_path)
    try:
        text = manifest_path.read_text("utf-8")
    except OSError as exc:
        raise _bad(where, f"cannot be read ({exc.strerror})") from exc
    manifest = parse_manifest(text, where=where)
    if normalize(directory.parent.name) != manifest.project:
        raise _bad(where, f"project {manifest.project!r} does not match its folder "
                          f"{directory.parent.name!r}")
    try:
        folder_version = Version(directory.name)
    except InvalidVersion:
        folder_version = None
    if folder_version != manifest.version:
        raise _bad(where, f"version {manifest.version} does not match its folder "
                          f"{directory.name!r}")
    patches = []
    for entry in manifest.entries:
        path = directory / entry.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _bad(where, f"lists {entry.file}, which cannot be read ({exc.strerror})") from exc
        patches.append(SeriesPatch(
            name=entry.file, path=path, sha256=Sha256(hashlib.sha256(data).hexdigest()),
            summary=entry.summary, fixes=entry.fixes, strip=entry.strip, data=data,
        ))
    return PatchSeries(manifest.project, manifest.version, directory, tuple(patches))


def shipped_root() -> Path:
    """The folder of the series that ship with fromsource."""
    return Path(fromsource.__file__).parent / "remediations"


def own_advisories_dir(root: Path | None = None) -> Path:
    """The folder of OSV records we wrote ourselves, inside *root* (default: shipped)."""
    return (root or shipped_root()) / OWN_ADVISORIES_DIR


def find_series(project: str, version: Version | str, *, root: Path | None = None) -> (
    PatchSeries | None
):
    """The series for *project* at upstream *version* under *root*, or None when there is none.

    *version* may carry a local label (``2.0.0+fs.1``); its public part is
    used.  Folder names are compared as PEP 440 versions.
    """
    base = root or shipped_root()
    wanted = Version(Version(str(version)).public)
    project_dir = base / normalize(project)
    if not project_dir.is_dir():
        return None
    for child in sorted(project_dir.iterdir()):
        if not (child / SERIES_FILE).is_file():
            continue
        try:
            if Version(child.name) == wanted:
                return load_series(child)
        except InvalidVersion:
            continue
    return None


def list_series(root: Path | None = None) -> list[PatchSeries]:
    """Every series under *root* (default: shipped), sorted by project then version."""
    base = root or shipped_root()
    found: list[PatchSeries] = []
    if not base.is_dir():
        return found
    for manifest in sorted(base.glob(f"*/*/{SERIES_FILE}")):
        if manifest.parent.parent.name.startswith("_"):
            continue
        found.append(load_series(manifest.parent))
    return sorted(found, key=lambda s: (s.project, s.version))


def require_series(
    project: str, version: Version | str, *, root: Path | None = None
) -> PatchSeries:
    """The series for *project* *version* under *root* (default: shipped).

    Raises RemediateError when there is none, saying where an operator's own
    series go and how to point fromsource at them.
    """
    series = find_series(project, version, root=root)
    if series is not None:
        return series
    name = normalize(project)
    available = ", ".join(f"{s.project}=={s.version}" for s in list_series(root)) or "none"
    where = f"in {root}" if root else "among the series shipped with fromsource"
    raise RemediateError(
        f"no patch series for {name}=={version} {where} (series there: {available}); "
        f"keep your own series in a folder of yours, as <folder>/{name}/{version}/"
        f"{SERIES_FILE} beside its patches (your own OSV records in "
        f"<folder>/{OWN_ADVISORIES_DIR}/), and pass --series-root <folder> or set "
        "FROMSOURCE_SERIES_ROOT (docs/remediation.md)",
        project=name,
        version=str(version),
        series_root=str(root) if root else None,
    )
