"""Core metadata (a wheel's METADATA, an sdist's PKG-INFO): the one reader.

Every part that reads what a distribution says about itself comes here: the
builder (an sdist's PKG-INFO, a built wheel's Requires-Dist), the store (a
published wheel's METADATA, via :mod:`fromsource.dist.distinfo`) and verify
(installed distributions).

Reading is lenient, as installers are: real files carry every metadata
version from 1.0 to 2.4, no Summary, classifiers no list knows, folded
lines, a description in the body, bytes that are not UTF-8.
:func:`packaging.metadata.parse_email` reads all of them without raising;
nothing here validates a field no caller asks for.  A caller that must rely
on Name and Version asks :meth:`CoreMetadata.release`, which raises.

Pure functions over bytes: the caller reads the file within a cap
(:mod:`fromsource.bounded`, as :func:`fromsource.dist.distinfo.check_wheel`
does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from packaging.metadata import RawMetadata, parse_email

from fromsource.errors import InvalidDistributionError

__all__ = ["CoreMetadata", "parse_metadata", "requires_dist"]

# The header block ends at the first empty line (RFC 5322, section 2.1).
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class CoreMetadata:
    """What a METADATA or PKG-INFO file says, read leniently.

    A single-use field is None when it is absent, or when it is given more
    than once with different values (those values stay in ``unparsed``).
    Values are as written, except that Name, Version and Requires-Python
    lose surrounding whitespace.  ``unparsed`` holds, by lower-case field
    name, what :func:`packaging.metadata.parse_email` could not file: unknown
    fields, repeated single-use fields, values that are not UTF-8 (decoded
    as Latin-1), a description given both as a header and in the body.
    """

    metadata_version: str | None
    name: str | None
    version: str | None
    summary: str | None = None
    description: str | None = None
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    provides_extra: tuple[str, ...] = ()
    unparsed: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def release(self, what: str) -> tuple[str, str]:
        """``(Name, Version)``; raises InvalidDistributionError when either is not one value.

        *what* names the file in the message (``demo-1.0.dist-info/METADATA``).
        Version is returned as written: whether it is PEP 440 is the
        caller's question.
        """
        missing = [f for f, value in (("Name", self.name), ("Version", self.version)) if not value]
        if not missing:
            assert self.name is not None and self.version is not None
            return self.name, self.version
        details = []
        for label in missing:
            given = self.unparsed.get(label.lower(), ())
            details.append(
                f"{label} is given {len(given)} times with different values {list(given)}"
                if len(given) > 1
                else f"no {label} field"
            )
        raise InvalidDistributionError(
            f"{what} lacks Name or Version ({'; '.join(details)})",
            fields=missing,
        )


def _text(value: object) -> str:
    # parse_email files a body that is not UTF-8 as bytes, despite its types.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _single(raw: RawMetadata, unparsed: Mapping[str, tuple[str, ...]], key: str) -> str | None:
    """One value of a single-use field: as parsed, or the one value unparsed holds."""
    value = raw.get(key)
    if isinstance(value, str):
        return value
    # A field repeated with the same value, or one value that is not UTF-8.
    given = set(unparsed.get(key.replace("_", "-"), ()))
    return given.pop() if len(given) == 1 else None


def _stripped(value: str | None) -> str | None:
    return None if value is None else value.strip() or None


def parse_metadata(data: bytes, *, headers_only: bool = False) -> CoreMetadata:
    """Read the core metadata *data* (METADATA or PKG-INFO bytes); never raises.

    With *headers_only* the body (a long description) is not parsed, which
    is several times faster for a caller that wants only the header fields
    (verify reads one file per installed distribution).
    """
    if headers_only and (end := _END_OF_HEADERS.search(data)) is not None:
        data = data[: end.start()] + b"\n"
    raw, rest = parse_email(data)
    unparsed = {key: tuple(_text(v) for v in values) for key, values in rest.items()}
    return CoreMetadata(
        metadata_version=_single(raw, unparsed, "metadata_version"),
        name=_stripped(_single(raw, unparsed, "name")),
        version=_stripped(_single(raw, unparsed, "version")),
        summary=_single(raw, unparsed, "summary"),
        description=_single(raw, unparsed, "description"),
        requires_python=_stripped(_single(raw, unparsed, "requires_python")),
        requires_dist=tuple(raw.get("requires_dist", ()) or unparsed.get("requires-dist", ())),
        provides_extra=tuple(raw.get("provides_extra", ()) or unparsed.get("provides-extra", ())),
        unparsed=MappingProxyType(unparsed),
    )


def requires_dist(data: bytes) -> tuple[str, ...]:
    """The Requires-Dist lines of the core metadata *data*, as written, in file order."""
    return parse_metadata(data, headers_only=True).requires_dist
