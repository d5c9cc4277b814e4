"""What differs between two wheels that should be the same, in a few bounded lines.

When two independent builds of the same inputs make different wheels
(issue 17), the build's log says how: the members only one of them has,
and for each member that differs a short unified diff (text) or its sizes
and first differing byte offsets (binary).  :func:`describe_differences`
reads the members a chunk at a time and caps everything it prints, so a
huge or hostile member cannot flood the log.  Which members differ is
:func:`fromsource.build.outcome.compare_wheels`.
"""

from __future__ import annotations

import difflib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fromsource.build.outcome import compare_wheels

__all__ = ["Differences", "describe_differences"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Differences:
    """Members that differ (bytes or zip metadata), only in one wheel or the other, and
    the report lines that show how."""

    differing: tuple[str, ...]
    only_first: tuple[str, ...]
    only_second: tuple[str, ...]
    lines: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        """Every member name that is not the same in both wheels."""
        return (*self.differing, *self.only_first, *self.only_second)


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    with archive.open(info) as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _head(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """The member's bytes when it has at most *limit* of them, else None (never more read)."""
    if info.file_size > limit:
        return None
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def _offsets(
    first: zipfile.ZipFile,
    a: zipfile.ZipInfo,
    second: zipfile.ZipFile,
    b: zipfile.ZipInfo,
    count: int,
) -> list[int]:
    """The first *count* byte offsets where the two members differ (streamed)."""
    found: list[int] = []
    position = 0
    left, right = _chunks(first, a), _chunks(second, b)
    x = y = b""
    while len(found) < count:
        if not x:
            x = next(left, b"")
        if not y:
            y = next(right, b"")
        if not x or not y:
            if x or y:  # one ended: the rest of the longer one differs from here
                found.append(position)
            break
        n = min(len(x), len(y))
        if x[:n] != y[:n]:
            for i in range(n):
                if x[i] != y[i]:
                    found.append(position + i)
                    if len(found) == count:
                        break
        x, y, position = x[n:], y[n:], position + n
    return found


def _text(data: bytes | None) -> list[str] | None:
    if data is None or b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _member_lines(
    first: zipfile.ZipFile,
    second: zipfile.ZipFile,
    name: str,
    labels: tuple[str, str],
    diff_lines: int,
    text_bytes: int,
) -> list[str]:
    a, b = first.getinfo(name), second.getinfo(name)
    meta_a = (a.date_time, oct(a.external_attr >> 16), a.compress_type)
    meta_b = (b.date_time, oct(b.external_attr >> 16), b.compress_type)
    lines: list[str] = []
    if meta_a != meta_b:
        lines.append(f"{name}: zip metadata (time, mode, compression) {meta_a} and {meta_b}")
    if (a.file_size, a.CRC) == (b.file_size, b.CRC):
        return lines or [f"{name}: the same bytes"]
    text_a, text_b = _text(_head(first, a, text_bytes)), _text(_head(second, b, text_bytes))
    if text_a is not None and text_b is not None:
        diff = list(
            difflib.unified_diff(
                text_a, text_b, f"{labels[0]}/{name}", f"{labels[1]}/{name}", n=1, lineterm=""
            )
        )
        shown = [line[:200] for line in diff[:diff_lines]]
        if len(diff) > diff_lines:
            shown.append(f"[... diff cut: {len(diff) - diff_lines} more lines ...]")
        return lines + shown
    offsets = ", ".join(f"0x{o:x}" for o in _offsets(first, a, second, b, 8))
    binary = (
        f"{name}: binary, {a.file_size} and {b.file_size} bytes; first differing offsets: "
        f"{offsets or 'none in the shorter length'}"
    )
    return [*lines, binary]


def describe_differences(
    first: Path,
    second: Path,
    *,
    labels: tuple[str, str] = ("a", "b"),
    members: int = 8,
    diff_lines: int = 40,
    text_bytes: int = 1 << 20,
) -> Differences:
    """How the wheel *second* differs from *first* (*labels* name them in the diff).

    At most *members* differing members are shown, each with a unified diff
    of at most *diff_lines* lines (members of at most *text_bytes* that are
    UTF-8 text) or its sizes and first differing offsets (anything else).
    Members are in name order, RECORD last.  Raises OSError or
    zipfile.BadZipFile for an unreadable wheel.
    """
    differing, only_first, only_second = compare_wheels(first, second)
    # RECORD lists every member's digest, so it differs whenever another member does:
    # the causes first.
    differing.sort(key=lambda name: (name.endswith(".dist-info/RECORD"), name))
    lines = [f"only in {labels[0]}: {name}" for name in only_first]
    lines += [f"only in {labels[1]}: {name}" for name in only_second]
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        for name in differing[:members]:
            if name == "(member order)":
                lines.append("the same members with the same bytes, in another order")
                continue
            lines += _member_lines(a, b, name, labels, diff_lines, text_bytes)
    if len(differing) > members:
        lines.append(f"[... {len(differing) - members} more differing members not shown ...]")
    return Differences(tuple(differing), tuple(only_first), tuple(only_second), tuple(lines))
