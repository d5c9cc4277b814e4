"""What a file listed on an upstream page is, for the builder: pure functions over values.

:func:`dist_of` reads a listed file's name (sdist or wheel, version, tags);
:func:`python_ok` its Requires-Python.  Pages themselves are parsed by
:mod:`fromsource.indexclient.pages` and fetched by
:class:`~fromsource.indexclient.IndexClient`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.build.targets import requires_python_allows
from fromsource.indexclient import ProjectFile

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")
"""Sdist extensions, in order of preference when a release has several."""


@dataclass(frozen=True)
class DistInfo:
    """What a file's name says it is: sdist or wheel, version, wheel tags."""

    kind: Literal["sdist", "wheel"]
    version: Version
    tags: frozenset[Tag] = frozenset()


def dist_of(file: ProjectFile, project: str) -> DistInfo | None:
    """What *file* is for *project* (sdist or wheel, version), or None.

    Files of other projects, unparsable names and non-PEP 440 versions give
    None, so they are skipped rather than failing a whole page.
    """
    name = file.filename
    if name.endswith(".whl"):
        try:
            wname, version, _build, tags = parse_wheel_filename(name)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return DistInfo("wheel", version, tags) if wname == canonicalize_name(project) else None
    suffix = next((s for s in SDIST_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    # The name part may itself hold dashes: try every split, as pip does.
    for i, char in enumerate(stem):
        if char == "-" and canonicalize_name(stem[:i]) == canonicalize_name(project):
            try:
                return DistInfo("sdist", Version(stem[i + 1 :]))
            except InvalidVersion:
                return None
    return None


def python_ok(file: ProjectFile, python_version: str | None) -> bool:
    """Whether *file*'s Requires-Python admits *python_version* (None: any Python)."""
    return python_version is None or requires_python_allows(file.requires_python, python_version)
