"""Wheel RECORD files: parse, render and convert their digests.

A RECORD (PEP 376, PEP 427 "The .dist-info directory") is a CSV file with one
row per file: ``path,sha256=<urlsafe base64 without padding>,size``.  The
RECORD row itself, and in an installed environment files such as
``__pycache__`` entries, carry an empty hash and size.  Inside fromsource every
digest is lower-case hex, so this module converts at the boundary.

Pure functions over strings; nothing here touches the disk.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from fromsource.errors import InvalidDistributionError

__all__ = [
    "RecordEntry",
    "hex_from_record_hash",
    "is_record_path",
    "parse_record",
    "record_hash",
    "render_record",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RecordEntry:
    """One RECORD row: a path, its sha256 as lower-case hex, its size in bytes.

    ``sha256`` and ``size`` are None for rows that carry no digest (the RECORD
    row itself, files an installer writes after the fact).
    """

    path: str
    sha256: str | None
    size: int | None


def record_hash(hexdigest: str) -> str:
    """The RECORD form ``sha256=<urlsafe-b64-nopad>`` of a hex sha256 digest.

    Raises InvalidDistributionError when *hexdigest* is not 64 hex digits.
    """
    digest = hexdigest.lower()
    if not _HEX64.fullmatch(digest):
        raise InvalidDistributionError(
            f"{hexdigest!r} is not a hex sha256 digest (64 hex digits expected)",
            digest=hexdigest,
        )
    return "sha256=" + base64.urlsafe_b64encode(bytes.fromhex(digest)).rstrip(b"=").decode()


def hex_from_record_hash(value: str) -> str:
    """The lower-case hex digest in a RECORD hash ``sha256=<urlsafe-b64-nopad>``.

    Raises InvalidDistributionError for any other algorithm or a value that
    does not decode to 32 bytes.
    """
    algorithm, sep, encoded = value.partition("=")
    if not sep or algorithm != "sha256":
        raise InvalidDistributionError(
            f"RECORD hash {value!r} is not a sha256 digest; fromsource only accepts "
            "sha256 (PEP 427 forbids weaker algorithms), rebuild the wheel",
            hash=value,
        )
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidDistributionError(
            f"RECORD hash {value!r} is not valid urlsafe base64", hash=value
        ) from exc
    if len(raw) != 32 or record_hash(raw.hex()) != value.rstrip("="):
        raise InvalidDistributionError(
            f"RECORD hash {value!r} does not encode a 32-byte sha256 digest", hash=value
        )
    return raw.hex()


def is_record_path(path: str) -> bool:
    """Whether *path* names a wheel's RECORD (``<name>-<version>.dist-info/RECORD``)."""
    head, sep, tail = path.rpartition("/")
    return bool(sep) and tail == "RECORD" and "/" not in head and head.endswith(".dist-info")


def parse_record(text: str) -> list[RecordEntry]:
    """The rows of a RECORD file, in file order, with digests as hex.

    Blank lines are skipped.  Raises InvalidDistributionError for a row that
    does not have exactly three fields, has an empty path, lists a path twice,
    has a hash that is not sha256, or a size that is not a non-negative integer.
    Paths are returned as written (an installed RECORD may hold ``../`` paths).
    """
    entries: list[RecordEntry] = []
    seen: set[str] = set()
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InvalidDistributionError(f"RECORD is not valid CSV ({exc})") from exc
    for number, row in enumerate(rows, start=1):
        if not row or row == [""]:
            continue
        if len(row) != 3:
            raise InvalidDistributionError(
                f"RECORD line {number}: expected 3 fields (path,hash,size), got {len(row)}; "
                "the wheel is malformed, rebuild it",
                line=number,
            )
        path, hash_field, size_field = row
        if not path:
            raise InvalidDistributionError(f"RECORD line {number}: empty path", line=number)
        if path in seen:
            raise InvalidDistributionError(
                f"RECORD line {number}: {path} is listed twice", line=number, path=path
            )
        seen.add(path)
        sha256 = hex_from_record_hash(hash_field) if hash_field else None
        size: int | None = None
        if size_field:
            if not size_field.isdigit():
                raise InvalidDistributionError(
                    f"RECORD line {number}: size {size_field!r} of {path} is not a "
                    "non-negative integer",
                    line=number,
                    path=path,
                )
            size = int(size_field)
        entries.append(RecordEntry(path, sha256, size))
    return entries


def render_record(entries: Iterable[RecordEntry], record_path: str | None = None) -> str:
    """The wheel RECORD text for *entries*, in their order, RECORD's own row last.

    The RECORD row (``<x>.dist-info/RECORD,,``) is *record_path* if given,
    else the RECORD row found among *entries*, else derived from the single
    top-level ``.dist-info`` folder the entries live in.  Any RECORD row in
    *entries* is moved to the end with empty hash and size.  Raises
    InvalidDistributionError when the RECORD path cannot be determined.
    """
    rows = list(entries)
    found = [e.path for e in rows if is_record_path(e.path)]
    if record_path is None:
        if found:
            record_path = found[0]
        else:
            folders = {
                e.path.split("/", 1)[0]
                for e in rows
                if "/" in e.path and e.path.split("/", 1)[0].endswith(".dist-info")
            }
            if len(folders) != 1:
                raise InvalidDistributionError(
                    "cannot tell where RECORD belongs: expected one top-level .dist-info "
                    f"folder among the entries, found {sorted(folders)}"
                )
            record_path = folders.pop() + "/RECORD"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # The minimal quoting only quotes "\n" (our line terminator), but readers
    # also end a line at a bare "\r": a path holding one is quoted in full.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for entry in rows:
        if is_record_path(entry.path) or entry.path == record_path:
            continue
        (quoted if "\r" in entry.path else writer).writerow(
            [
                entry.path,
                record_hash(entry.sha256) if entry.sha256 is not None else "",
                "" if entry.size is None else str(entry.size),
            ]
        )
    writer.writerow([record_path, "", ""])
    return out.getvalue()
