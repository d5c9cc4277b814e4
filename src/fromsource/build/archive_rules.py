"""What an sdist member may be: pure rules behind :mod:`fromsource.build.unpack`.

Values in, verdicts out: member names are split and checked, link targets are
resolved against the archive's own symlinks as the kernel would, and the
members' relations (duplicates, paths through links, hard links) are checked
as a whole.  A refusal is :class:`~fromsource.errors.RefusedMemberError`, which the unpacker turns into an
UnsafeArchiveError naming the archive.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from fromsource.errors import RefusedMemberError

EPOCH_FLOOR = 315532800
"""1980-01-01T00:00:00Z: the oldest time a zip (and so a wheel) can hold."""
_EPOCH_CEILING = 253402300799  # 9999-12-31, keeps os.utime and zip happy
_MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS
_DRIVE = re.compile(r"^[A-Za-z]:")

Kind = Literal["file", "dir", "symlink", "hardlink"]


@dataclass(frozen=True)
class Member:
    """One archive member after its name and type were checked."""

    name: str
    parts: tuple[str, ...]
    kind: Kind
    size: int = 0
    executable: bool = False
    mtime: int = EPOCH_FLOOR
    target: str = ""


def epoch_of(members: list[Member]) -> int:
    """SOURCE_DATE_EPOCH of an sdist: the mtime of its top PKG-INFO member.

    The least deep PKG-INFO wins (``name-1.0/PKG-INFO`` before any
    ``*.egg-info/PKG-INFO``); without one, the newest member mtime.  Member
    mtimes are already clamped, so the result is never below EPOCH_FLOOR.
    """
    infos = [m for m in members if m.kind == "file" and m.parts[-1] == "PKG-INFO"]
    top = sorted((m for m in infos if len(m.parts) <= 2), key=lambda m: len(m.parts))
    if top:
        return top[0].mtime
    return max((m.mtime for m in members), default=EPOCH_FLOOR)


def split_name(name: str) -> tuple[str, ...]:
    """The path components of an archive name; RefusedMemberError when it is unsafe."""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise RefusedMemberError(name, "has a control character (such as NUL) in its name")
    if "\\" in name:
        raise RefusedMemberError(name, "has a backslash in its name, a path separator on Windows")
    if name.startswith("/"):
        raise RefusedMemberError(name, "is an absolute path")
    if _DRIVE.match(name):
        raise RefusedMemberError(name, "starts with a drive letter")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise RefusedMemberError(name, "has a '..' component that escapes the archive root")
    if any(len(os.fsencode(p)) > 255 for p in parts):
        raise RefusedMemberError(name, "has a path component longer than 255 bytes")
    return parts


def link_target(name: str, target: str) -> str:
    """*target* of the link member *name* when usable and relative; else RefusedMemberError."""
    if not target or any(ord(c) < 32 or ord(c) == 127 for c in target) or "\\" in target:
        raise RefusedMemberError(name, f"is a link with an unusable target {target!r}")
    if target.startswith("/") or _DRIVE.match(target):
        raise RefusedMemberError(
            name, f"is a link to the absolute path {target!r}, outside the tree"
        )
    return target


def symlink_target(name: str, parts: tuple[str, ...], target: str) -> str:
    """A checked symlink target; chains through other links come in check_tree."""
    reason = symlink_escapes(parts, {parts: link_target(name, target)})
    if reason:
        raise RefusedMemberError(name, f"is a symlink to {target!r}, {reason}")
    return target


def clamp_mtime(mtime: float) -> int:
    """*mtime* as whole seconds within [EPOCH_FLOOR, year 9999]."""
    return min(max(int(mtime), EPOCH_FLOOR), _EPOCH_CEILING)


def check_tree(members: list[Member]) -> dict[tuple[str, ...], Member]:
    """Check how members relate; return each hard link's regular-file target.

    Refuses paths through a link or file, duplicates of different kinds (a
    later member would replace a symlinked directory), hard links to anything
    but an earlier regular file, and symlinks that resolve outside the tree,
    also through chains of other symlinks.
    """
    seen: dict[tuple[str, ...], Member] = {}
    holders: set[tuple[str, ...]] = set()  # paths other members live under
    hardlinks: dict[tuple[str, ...], Member] = {}
    for m in members:
        if not m.parts:
            if m.kind != "dir":
                raise RefusedMemberError(m.name, "names the archive root but is not a directory")
            continue
        for i in range(1, len(m.parts)):
            above = seen.get(m.parts[:i])
            if above is not None and above.kind != "dir":
                where = "/".join(m.parts[:i])
                raise RefusedMemberError(m.name, f"lies under {where!r}, which is a {above.kind}")
            holders.add(m.parts[:i])
        prev = seen.get(m.parts)
        if m.kind != "dir" and m.parts in holders:
            raise RefusedMemberError(
                m.name, f"is a {m.kind} that would replace a directory of the tree"
            )
        if prev is not None and not (prev.kind == m.kind and m.kind in ("dir", "file")):
            raise RefusedMemberError(
                m.name, f"appears twice ({prev.kind}, then {m.kind}) and would overwrite"
            )
        if m.kind == "hardlink":
            tparts = tuple(p for p in m.target.split("/") if p not in ("", "."))
            if ".." in tparts:
                raise RefusedMemberError(
                    m.name, f"is a hard link to {m.target!r}, outside the tree"
                )
            target = seen.get(tparts)
            if target is not None and target.kind == "hardlink":
                target = hardlinks[target.parts]
            if target is None or target.kind != "file":
                raise RefusedMemberError(
                    m.name,
                    f"is a hard link to {m.target!r}, which is not a regular file "
                    "earlier in the archive",
                )
            hardlinks[m.parts] = target
        seen[m.parts] = m
    links = {p: m.target for p, m in seen.items() if m.kind == "symlink"}
    for parts, dest in links.items():
        reason = symlink_escapes(parts, links)
        if reason:
            raise RefusedMemberError(seen[parts].name, f"is a symlink to {dest!r}, {reason}")
    return hardlinks


def symlink_escapes(link: tuple[str, ...], links: dict[tuple[str, ...], str]) -> str:
    """Why the symlink at *link* leaves the tree, or "" when it stays inside.

    Walks the target component by component as the kernel would, replacing
    each component that is itself a symlink of the archive by its target.
    """
    stack = list(link[:-1])
    pending = [p for p in links[link].split("/") if p not in ("", ".")]
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not stack:
                return "which leaves the tree"
            stack.pop()
            continue
        stack.append(part)
        nested = links.get(tuple(stack))
        if nested is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                return "which is a symlink loop"
            if nested.startswith("/"):
                return "which leads through an absolute link outside the tree"
            stack.pop()
            pending = [p for p in nested.split("/") if p not in ("", ".")] + pending
    return ""
