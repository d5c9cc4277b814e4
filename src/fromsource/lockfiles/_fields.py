"""Checked reads from a parsed lock document, shared by the format readers.

A lock file is input: any value may have any type.  Each helper takes the
:class:`Spot` of the entry it reads (format, file, line, entry) and raises
LockError naming them when a value is not what the format's tool writes.
"""

from __future__ import annotations

import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from packaging.markers import InvalidMarker, Marker

from fromsource.dist.names import Sha256
from fromsource.errors import LockError
from fromsource.lockfiles.pinned import PinnedPackage

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Spot:
    """Where a value is read from: the format, the file, the entry's line and its name."""

    format: str
    origin: str
    line: int | None
    entry: str
    advice: str

    @property
    def at(self) -> str:
        """``origin:line``, or the origin alone."""
        return self.origin if self.line is None else f"{self.origin}:{self.line}"

    def named(self, entry: str) -> Spot:
        """The same spot, naming the entry *entry*."""
        return replace(self, entry=entry)

    def error(self, detail: str) -> LockError:
        """A LockError for a malformed value of this entry (long input is cut short)."""
        return LockError(
            f"{self.at}: not a well-formed {self.format}: {_short(self.entry, 80)}: "
            f"{_short(detail, 300)}; {self.advice}",
            path=self.origin,
            line=self.line,
        )


def _short(text: str, limit: int) -> str:
    """*text*, or its start and end around an ellipsis when longer than *limit*."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def load_toml(text: str, origin: str, advice: str) -> dict[str, Any]:
    """The TOML document *text*; LockError naming *origin* when it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{origin}: not valid TOML ({exc}); {advice}", path=origin) from exc


def header_lines(text: str, key: str, count: int) -> list[int | None]:
    """The line of each ``[[key]]`` header in *text*, one per entry of an array of *count*.

    All None when the headers do not account for every entry (an inline array).
    """
    pattern = re.compile(r"^[ \t]*\[\[[ \t]*" + re.escape(key) + r"[ \t]*\]\][ \t]*(#.*)?$")
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)]
    return list(lines) if len(lines) == count else [None] * count


def _kind(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)


def text(entry: Mapping[str, object], key: str, spot: Spot) -> str | None:
    """The string *key* of *entry*, or None when absent."""
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    raise spot.error(f"`{key}` is {_kind(value)}, not a string")


def required_text(entry: Mapping[str, object], key: str, spot: Spot) -> str:
    """The string *key* of *entry*; LockError when absent or empty."""
    value = text(entry, key, spot)
    if not value:
        raise spot.error(f"`{key}` is missing")
    return value


def named(entry: Mapping[str, object], spot: Spot) -> tuple[str, Spot]:
    """The ``name`` of a package table, and its spot naming it in messages."""
    name = required_text(entry, "name", spot)
    return name, spot.named(f"package {name}")


def flag(entry: Mapping[str, object], key: str, spot: Spot) -> bool:
    """The boolean *key* of *entry* (False when absent)."""
    value = entry.get(key, False)
    if isinstance(value, bool):
        return value
    raise spot.error(f"`{key}` is {_kind(value)}, not a boolean")


def table(entry: Mapping[str, object], key: str, spot: Spot) -> Mapping[str, object] | None:
    """The table *key* of *entry*, or None when absent."""
    value = entry.get(key)
    if value is None or isinstance(value, Mapping):
        return value
    raise spot.error(f"`{key}` is {_kind(value)}, not a table")


def tables(entry: Mapping[str, object], key: str, spot: Spot) -> list[Mapping[str, object]]:
    """The array of tables *key* of *entry* ([] when absent)."""
    value = entry.get(key, [])
    if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        return value
    raise spot.error(f"`{key}` is {_kind(value)}, not an array of tables")


def strings(entry: Mapping[str, object], key: str, spot: Spot) -> list[str]:
    """The array of strings *key* of *entry* ([] when absent)."""
    value = entry.get(key, [])
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise spot.error(f"`{key}` is {_kind(value)}, not an array of strings")


def marker(entry: Mapping[str, object], key: str, spot: Spot) -> Marker | None:
    """The environment marker *key* of *entry*, None when absent.

    A string is one marker; an array (uv's ``resolution-markers``) or a table
    of strings (Poetry's marker per dependency group) holds markers joined
    with ``or``.
    """
    value = entry.get(key)
    if isinstance(value, Mapping):
        value = sorted(set(value.values()))
    if value is None or value == []:
        return None
    parts = [value] if isinstance(value, str) else value
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise spot.error(f"`{key}` is {_kind(value)}, not a marker")
    try:
        return Marker(parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts))
    except InvalidMarker as exc:
        raise spot.error(f"marker {' or '.join(parts)!r} is not valid ({exc})") from exc


def sha256(digest: str, spot: Spot) -> Sha256:
    """*digest* as a lower-case sha256; LockError unless it is 64 hex digits."""
    if not _HEX64.fullmatch(digest):
        raise spot.error(f"sha256 {digest!r} is not 64 hex digits")
    return Sha256(digest.lower())


def prefixed_hash(value: str, spot: Spot) -> Sha256 | None:
    """The sha256 of an ``algorithm:digest`` string; None for another algorithm."""
    algorithm, colon, digest = value.partition(":")
    if not colon or not algorithm or not digest:
        raise spot.error(f"hash {value!r} is not `algorithm:digest`")
    return sha256(digest, spot) if algorithm.lower() == "sha256" else None


def hash_table(entry: Mapping[str, object], key: str, spot: Spot) -> Sha256 | None:
    """The sha256 of a ``hashes = {sha256 = ...}`` table (PEP 751); None when it has none."""
    hashes = table(entry, key, spot) or {}
    digest = hashes.get("sha256")
    if digest is None:
        return None
    if not isinstance(digest, str):
        raise spot.error(f"`{key}.sha256` is {_kind(digest)}, not a string")
    return sha256(digest, spot)


def filename_of(location: str) -> str:
    """The last path segment of a URL or path, unquoted, without query or fragment."""
    path = urllib.parse.urlsplit(location).path if "://" in location else location
    return urllib.parse.unquote(path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])


def spots(text: str, key: str, count: int, fmt: str, origin: str, advice: str) -> list[Spot]:
    """The spot of each of the *count* entries of the array of tables *key* in *text*."""
    return [
        Spot(fmt, origin, line, f"{key}[{number}]", advice)
        for number, line in enumerate(header_lines(text, key, count))
    ]


def package_tables(
    doc: Mapping[str, object], key: str, text: str, spot: Spot
) -> list[tuple[Mapping[str, object], Spot]]:
    """Each table of the array *key* of *doc* with its spot; LockError when there is no array."""
    value = doc.get(key)
    if not isinstance(value, list):
        raise LockError(
            f"{spot.origin}: no [[{key}]] table; is this a {spot.format}?", path=spot.origin
        )
    found = []
    for entry, at in zip(
        value, spots(text, key, len(value), spot.format, spot.origin, spot.advice), strict=True
    ):
        if not isinstance(entry, Mapping):
            raise at.error(f"the entry is {_kind(entry)}, not a table")
        found.append((entry, at))
    return found


def read_tables(
    text: str,
    key: str,
    spot: Spot,
    read: Callable[[Mapping[str, object], Spot], PinnedPackage],
) -> tuple[PinnedPackage, ...]:
    """Each table of the TOML array *key* in *text*, read with the format's *read*.

    *spot* names the format, the file and the advice for messages.  Raises
    LockError when *text* is not TOML, has no such array or holds a
    malformed entry.
    """
    doc = load_toml(text, spot.origin, spot.advice)
    return tuple(read(entry, at) for entry, at in package_tables(doc, key, text, spot))
