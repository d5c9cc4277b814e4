"""Values for the pure editor tests: releases on a pretend index and a dict-backed lookup."""

from __future__ import annotations

from datetime import UTC, datetime

from fromsource.dist.names import ProjectName, Sha256, normalize
from fromsource.lockfiles.model import IndexFile, Lookup, Release

INDEX = "https://fs.example/python/simple/"
REMEDIATED = "https://fs.example/python-all/simple/"
WHEN = datetime(2025, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)


def digest(seed: str) -> Sha256:
    """A recognisable 64-hex digest."""
    return Sha256((seed * 64)[:64])


def wheel(name: str, version: str, seed: str, tag: str = "py3-none-any",
          index: str = INDEX) -> IndexFile:
    """A wheel on the pretend index."""
    stem = name.replace("-", "_")
    filename = f"{stem}-{version}-{tag}.whl"
    base = index.removesuffix("simple/")
    return IndexFile(filename, f"{base}files/{name}/{version}/{filename}", digest(seed), "wheel",
                     1234, WHEN)


def sdist(name: str, version: str, seed: str, index: str = INDEX) -> IndexFile:
    """An sdist on the pretend index."""
    filename = f"{name.replace('-', '_')}-{version}.tar.gz"
    base = index.removesuffix("simple/")
    return IndexFile(filename, f"{base}files/{name}/{version}/{filename}", digest(seed), "sdist",
                     99, WHEN)


def release(name: str, version: str, *files: IndexFile, index: str = INDEX) -> Release:
    """A release with *files* (sorted as the index lookup sorts them)."""
    return Release(normalize(name), version, index, tuple(sorted(files, key=lambda f: f.filename)))


def lookup(*releases: Release, pins: dict[tuple[str, str], Release] | None = None) -> Lookup:
    """A Lookup answering ``(name, version)`` from *releases* (or explicit *pins*)."""
    table = {(r.name, r.version): r for r in releases}
    table.update({(normalize(n), v): r for (n, v), r in (pins or {}).items()})

    def find(name: ProjectName, version: str) -> Release | None:
        return table.get((name, version))

    return find
