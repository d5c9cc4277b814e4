"""Builds whose process died: closing their rows as ``worker-lost``, removing their work trees.

A build killed hard (kill -9, an OOM kill, a power cut) leaves its row
``queued`` or ``running`` and its work tree (tens of MB) under the data
dir's ``work/``.  :func:`recover` finds both:

- a row whose owner (:mod:`fromsource.build.owner`) is gone from this host
  is closed as ``failed``, category ``worker-lost`` (the category the
  fleet's claims use for a builder that stopped renewing its lease); rows
  owned by another host are left to the fleet's claim expiry
  (:mod:`fromsource.workers.claims`), rows with no recorded owner (from
  before owners were recorded) are only reported;
- a work tree (``build-<id>-…`` or ``rebuild-check-…``) is stale when the
  build it belongs to is finished or its owner is gone, or, for a tree no
  open build names, when it is older than the grace period (a tree being set
  up right now is young).  Trees of live builds are never touched.

``fromsource build``, ``worker`` and ``serve`` repair at start;
``fromsource fsck`` reports, and repairs with ``--repair``.
:func:`classify_trees` is the pure rule; :func:`recover` does the I/O.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fromsource.build.history import BuildRecord, open_builds
from fromsource.build.owner import Host, Owner, Verdict, judge, process_start, this_host
from fromsource.store.db import Database
from fromsource.workers.claims import mark_worker_lost

__all__ = [
    "DEFAULT_GRACE",
    "LostBuild",
    "OpenBuild",
    "Recovery",
    "StaleTree",
    "classify_trees",
    "recover",
]

DEFAULT_GRACE = timedelta(hours=1)
"""How old a work tree that no open build names must be before it is removed."""

_BUILD_TREE = re.compile(r"build-(\d+)-[0-9a-f]+")
_REBUILD_TREE = re.compile(r"rebuild-check-[0-9a-f]+")


@dataclass(frozen=True)
class OpenBuild:
    """A ``queued`` or ``running`` build as judged here; *tree* is its work tree's top folder."""

    id: int
    verdict: Verdict
    tree: str | None = None


@dataclass(frozen=True)
class LostBuild:
    """A build whose owner process is gone."""

    id: int
    project: str
    version: str
    owner: str
    closed: bool = False


@dataclass(frozen=True)
class StaleTree:
    """A work tree no live build owns."""

    name: str
    reason: str
    size: int
    removed: bool = False


@dataclass(frozen=True)
class Recovery:
    """What one look at the open builds and the work root found and did."""

    lost: tuple[LostBuild, ...] = ()
    trees: tuple[StaleTree, ...] = ()
    unowned: tuple[int, ...] = ()
    """Open builds with no recorded owner: they cannot be judged, only reported."""
    repair: bool = False

    @property
    def problems(self) -> int:
        """Lost builds still open plus stale trees still there."""
        return sum(not b.closed for b in self.lost) + sum(not t.removed for t in self.trees)

    @property
    def changed(self) -> bool:
        """True when something was closed or removed."""
        return any(b.closed for b in self.lost) or any(t.removed for t in self.trees)

    def to_json(self) -> dict[str, object]:
        """The findings as JSON (stable keys)."""
        return {
            "lost": [
                {
                    "build_id": b.id,
                    "project": b.project,
                    "version": b.version,
                    "owner": b.owner,
                    "closed": b.closed,
                }
                for b in self.lost
            ],
            "work_trees": [
                {"name": t.name, "reason": t.reason, "bytes": t.size, "removed": t.removed}
                for t in self.trees
            ],
            "unowned": list(self.unowned),
        }

    def lines(self) -> list[str]:
        """Short human lines, one per finding."""
        lines = []
        for b in self.lost:
            action = "closed as worker-lost" if b.closed else "still open"
            lines.append(f"build {b.id} ({b.project} {b.version}): its {b.owner} is gone; {action}")
        for t in self.trees:
            action = "removed" if t.removed else "left"
            lines.append(f"work tree {t.name} ({_mib(t.size)}): {t.reason}; {action}")
        if self.unowned:
            ids = ", ".join(map(str, self.unowned))
            lines.append(
                f"note: build(s) {ids} are open with no recorded owner (started before "
                "owners were recorded): they cannot be judged and were left alone"
            )
        return lines

    def summary(self) -> str:
        """One line of what was repaired, for a command's start."""
        closed = [b for b in self.lost if b.closed]
        removed = [t for t in self.trees if t.removed]
        parts = []
        if closed:
            ids = ", ".join(str(b.id) for b in closed)
            parts.append(f"closed build(s) {ids} as worker-lost (their process is gone)")
        if removed:
            size = _mib(sum(t.size for t in removed))
            parts.append(f"removed {len(removed)} stale work tree(s) ({size})")
        return "; ".join(parts)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def classify_trees(
    entries: Mapping[str, float], builds: Iterable[OpenBuild], grace_seconds: float
) -> dict[str, str]:
    """The stale ones of *entries* (work-root folder name → age in seconds), with why.

    *builds* are the open builds as judged (a finished build is not among
    them).  Names that are not work trees are never stale.  Pure.
    """
    builds = list(builds)
    live = [b for b in builds if b.verdict != "gone"]
    live_ids = {b.id for b in live}
    live_trees = {b.tree for b in live if b.tree}
    gone = {b.tree: b.id for b in builds if b.verdict == "gone" and b.tree}
    stale: dict[str, str] = {}
    for name, age in entries.items():
        match = _BUILD_TREE.fullmatch(name)
        if name in live_trees or (match and int(match.group(1)) in live_ids):
            continue
        if name in gone:
            stale[name] = f"the process of build {gone[name]} is gone"
        elif match:
            number = int(match.group(1))
            lost = any(b.id == number for b in builds)
            stale[name] = (
                f"the process of build {number} is gone"
                if lost
                else f"build {number} is no longer running"
            )
        elif _REBUILD_TREE.fullmatch(name) and age >= grace_seconds:
            stale[name] = "no running build uses it"
    return stale


def _tree_of(record: BuildRecord, work_root: Path) -> str | None:
    """The top folder under *work_root* of the build's recorded work tree, if any."""
    work = record.details.get("work")
    if not isinstance(work, str) or not work:
        return None
    try:
        relative = Path(work).relative_to(work_root)
    except ValueError:
        return None
    return relative.parts[0] if relative.parts else None


def _size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _entries(work_root: Path, now: float) -> dict[str, float]:
    entries: dict[str, float] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in work_root.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink():
                    entries[entry.name] = now - entry.lstat().st_mtime
    return entries


def recover(
    db: Database,
    work_root: Path,
    *,
    repair: bool,
    closed_by: str,
    grace: timedelta = DEFAULT_GRACE,
    here: Host | None = None,
    start_of: Callable[[int], int | None] = process_start,
    clock: Callable[[], float] = time.time,
) -> Recovery:
    """Find the open builds whose process is gone and the stale work trees; *repair* them.

    Repairing closes each lost build as ``failed`` (category
    ``worker-lost``, the message naming *closed_by*) and removes each stale
    work tree.  *here*, *start_of* and *clock* are parameters for tests.
    """
    here = here or this_host()
    judged: list[tuple[BuildRecord, Verdict]] = []
    for record in open_builds(db):
        judged.append((record, judge(Owner.from_text(record.owner), here, start_of)))
    lost = []
    for record, verdict in judged:
        if verdict != "gone":
            continue
        owner = Owner.from_text(record.owner)
        who = owner.describe() if owner else "owner"
        if repair:
            mark_worker_lost(
                db,
                record.id,
                f"{who}, which ran this build, is gone (killed or crashed); {closed_by} closed it",
            )
        lost.append(LostBuild(record.id, record.project, record.version, who, closed=repair))
    builds = [OpenBuild(r.id, v, _tree_of(r, work_root)) for r, v in judged]
    stale = classify_trees(_entries(work_root, clock()), builds, grace.total_seconds())
    trees = []
    for name, reason in sorted(stale.items()):
        path = work_root / name
        size = _size(path)
        if repair:
            shutil.rmtree(path, ignore_errors=True)
        trees.append(StaleTree(name, reason, size, removed=repair and not path.exists()))
    unowned = tuple(r.id for r, v in judged if v == "unknown")
    return Recovery(tuple(lost), tuple(trees), unowned, repair)
