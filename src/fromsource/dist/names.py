"""Names, versions and distribution filenames: the vocabulary every part shares.

Pure functions over strings; nothing here touches the disk or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NewType

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fromsource.errors import InvalidDistributionError

ProjectName = NewType("ProjectName", str)
"""A PEP 503 normalized project name (``zope-interface``)."""

Sha256 = NewType("Sha256", str)
"""Lower-case hex sha256 digest."""

RepoName = NewType("RepoName", str)

Kind = Literal["wheel", "sdist"]


def normalize(name: str) -> ProjectName:
    """The PEP 503 normalized form of *name*."""
    return ProjectName(canonicalize_name(name))


@dataclass(frozen=True)
class DistFilename:
    """What a distribution's filename says: project, version and kind."""

    filename: str
    project: ProjectName
    version: Version
    kind: Kind


def parse_filename(filename: str) -> DistFilename:
    """Parse a wheel or sdist filename.

    Raises InvalidDistributionError for anything that is neither.
    """
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return DistFilename(filename, ProjectName(name), version, "wheel")
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return DistFilename(filename, ProjectName(name), version, "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise InvalidDistributionError(
            f"{filename}: not a valid wheel or sdist filename ({exc})", filename=filename
        ) from exc
    raise InvalidDistributionError(
        f"{filename}: only .whl, .tar.gz and .zip distributions are accepted",
        filename=filename,
    )


def remediated_version(base: Version | str, revision: int) -> Version:
    """``X.Y.Z+fs.N``: the version of our revision *revision* of *base*."""
    base = Version(str(base))
    if base.local is not None:
        raise InvalidDistributionError(f"{base}: already carries a local label")
    return Version(f"{base}+fs.{revision}")


def fs_revision(version: Version) -> int | None:
    """N for a version ``X.Y.Z+fs.N``, else None."""
    local = version.local
    if local and local.startswith("fs."):
        tail = local[3:]
        if tail.isdigit():
            return int(tail)
    return None
