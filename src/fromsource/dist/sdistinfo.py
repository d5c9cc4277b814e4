"""What an sdist says about itself: its top ``PKG-INFO``, held to its filename.

The sdist counterpart of :mod:`fromsource.dist.distinfo`: :func:`check_sdist`
reads ``name-1.0/PKG-INFO`` out of the archive without unpacking it (every
member checked as the build's unpack step checks it, PKG-INFO read through
the bounded reader) and refuses an sdist whose PKG-INFO names another
project or version than its filename.  The publish path uses it for every
sdist, so the index lists ``requires-python`` from PKG-INFO.
"""

from __future__ import annotations

import email.parser
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits
from fromsource.build.unpack import read_sdist_pkg_info
from fromsource.dist.names import normalize, parse_filename
from fromsource.errors import InvalidDistributionError

__all__ = ["SdistInfo", "check_sdist", "parse_pkg_info"]


@dataclass(frozen=True)
class SdistInfo:
    """The facts of an sdist's PKG-INFO the index needs (*raw*: the file's bytes)."""

    name: str
    version: str
    requires_python: str | None
    metadata_version: str | None
    raw: bytes


def parse_pkg_info(raw: bytes, what: str) -> SdistInfo:
    """The fields of PKG-INFO bytes *raw* (*what* names it in errors).

    Raises InvalidDistributionError when Name or Version is missing or the
    version is not PEP 440.
    """
    message = email.parser.BytesParser().parsebytes(raw, headersonly=True)
    name, version = message.get("Name"), message.get("Version")
    if not name or not version:
        raise InvalidDistributionError(
            f"{what} has no Name or Version field; the sdist is broken", what=what
        )
    try:
        parsed = Version(str(version).strip())
    except InvalidVersion as exc:
        raise InvalidDistributionError(
            f"{what}: version {str(version)!r} is not PEP 440", what=what
        ) from exc
    requires = message.get("Requires-Python")
    meta_version = message.get("Metadata-Version")
    return SdistInfo(
        name=str(name).strip(),
        version=str(parsed),
        requires_python=(str(requires).strip() or None) if requires else None,
        metadata_version=str(meta_version).strip() if meta_version else None,
        raw=raw,
    )


def check_sdist(path: Path, limits: OutputLimits = DEFAULT_LIMITS) -> SdistInfo:
    """The PKG-INFO facts of the sdist at *path*, once they agree with its filename.

    Raises InvalidDistributionError when the filename is not an sdist's, the
    archive has no top PKG-INFO, or PKG-INFO names another project or
    version; UnsafeArchiveError when a member is refused (as the build's
    unpack step would); OversizedError when PKG-INFO is over
    ``limits.metadata_bytes``.
    """
    parsed = parse_filename(path.name)
    if parsed.kind != "sdist":
        raise InvalidDistributionError(f"{path.name} is not an sdist", filename=path.name)
    raw = read_sdist_pkg_info(path, limits.metadata_bytes)
    info = parse_pkg_info(raw, f"{path.name}: PKG-INFO")
    if normalize(info.name) != parsed.project or Version(info.version) != parsed.version:
        raise InvalidDistributionError(
            f"{path.name}: PKG-INFO says {info.name} {info.version}, not the filename's "
            f"{parsed.project} {parsed.version}; nothing was published",
            filename=path.name,
        )
    return info
