"""Format-preserving TOML edits with tomlkit: values are rendered as text in each tool's style.

A new value is written as TOML text (so its layout matches what the tool
itself writes), parsed by tomlkit and put in place of the old item, which
keeps every other byte of the document.  A value whose content is already
equal is not touched at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Item, Table
from tomlkit.toml_document import TOMLDocument

from fromsource.errors import LockError
from fromsource.lockfiles._fields import Spot, spots
from fromsource.lockfiles.model import Lookup, PackageReport, Release, index_release
from fromsource.lockfiles.pinned import PinnedPackage


def parse(text: str, origin: str, what: str) -> TOMLDocument:
    """The tomlkit document of *text*; LockError naming *origin* when it is not TOML."""
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise LockError(f"{origin}: not valid TOML ({exc}); fix or regenerate the {what}",
                        path=origin) from exc


def tables(doc: TOMLDocument | Table | Container, key: str) -> list[Table]:
    """The tables of the array of tables *key* (``[[package]]``), or []."""
    value = doc.get(key)
    if isinstance(value, AoT):
        return list(value)
    if isinstance(value, list):
        return [t for t in value if isinstance(t, Table)]
    return []


def string(value: str) -> str:
    """*value* as a TOML basic string (JSON's escapes are all valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)


def inline(pairs: Iterable[tuple[str, str]], *, spaced: bool) -> str:
    """An inline table of (key, rendered value): ``{ a = 1 }`` or, unspaced, ``{a = 1}``."""
    body = ", ".join(f"{key} = {value}" for key, value in pairs)
    return f"{{ {body} }}" if spaced else f"{{{body}}}"


def array(items: Sequence[str], *, multiline: bool, indent: str = "    ") -> str:
    """An array of rendered items, one per line with trailing commas when *multiline*."""
    if not items:
        return "[]"
    if multiline:
        return "[\n" + "".join(f"{indent}{item},\n" for item in items) + "]"
    return "[" + ", ".join(items) + "]"


def value(key: str, text: str) -> Item:
    """The tomlkit item for the TOML value *text*."""
    item = tomlkit.parse(f"{key} = {text}\n")[key]
    assert isinstance(item, Item)
    return item


def plain(item: Any) -> Any:
    """The plain Python value of a tomlkit item (or of a plain value)."""
    return item.unwrap() if isinstance(item, Item) else item


def put(table: Table, key: str, text: str) -> bool:
    """Set *key* of *table* to the TOML value *text*, in place; False when already equal."""
    new = value(key, text)
    if key in table and plain(table[key]) == new.unwrap():
        return False
    table[key] = new
    return True


def put_after(table: Table, key: str, text: str, after: str) -> bool:
    """Like :func:`put`, but a new key goes right after *after* when that key exists."""
    if key in table or after not in table:
        return put(table, key, text)
    container = table.value
    try:
        container._insert_after(after, key, value(key, text))  # tomlkit has no public insert
    except (AttributeError, TOMLKitError, ValueError, KeyError):
        table[key] = value(key, text)
    return True


def remove(table: Table, key: str) -> bool:
    """Delete *key* from *table*; False when it was not there."""
    if key not in table:
        return False
    del table[key]
    return True


def indent_of(table: Table, key: str, default: str = "    ") -> str:
    """The indentation of the first element of the multi-line array *key*, else *default*."""
    item = table.get(key)
    if not isinstance(item, Item):
        return default
    text = item.as_string()
    if "\n" not in text:
        return default
    line = text.split("\n", 1)[1]
    width = len(line) - len(line.lstrip(" \t"))
    return line[:width] or default


def is_multiline(table: Table, key: str) -> bool:
    """Whether the array *key* of *table* is written over several lines."""
    item = table.get(key)
    return isinstance(item, Item) and "\n" in item.as_string()


@dataclass(frozen=True)
class Found:
    """A package table whose pinned version the index has: what to edit, and with what."""

    table: Table
    pinned: PinnedPackage
    version: str
    release: Release


def found_on_index(
    doc: TOMLDocument,
    key: str,
    text: str,
    spot: Spot,
    read: Callable[[Mapping[str, object], Spot], PinnedPackage],
    lookup: Lookup,
    reports: list[PackageReport],
) -> Iterator[Found]:
    """Each table of the array *key* whose pin the index has, read with the format's *read*.

    The report of every other table (skipped, missing) is appended to
    *reports* in the file's order; the caller appends the found ones' as it
    edits them.  Raises LockError for a malformed entry.
    """
    found = tables(doc, key)
    for item, at in zip(found, spots(text, key, len(found), spot.format, spot.origin,
                                     spot.advice), strict=True):
        pinned = read(plain(item), at)
        release = index_release(lookup, pinned)
        if isinstance(release, PackageReport):
            reports.append(release)
        else:
            yield Found(item, pinned, *release)
