"""Which worker builds what: the fleet's targets, each worker's queues, and routing (issue 12).

Every ``fromsource worker`` *advertises* the build targets it has (an
:class:`Advert`, a row of ``workers`` refreshed by its sweeper,
:mod:`fromsource.workers.registry`) and consumes one queue per target
(:func:`queue_name`) beside the queue of whole-release requests
(:data:`QUEUE`).  The fleet builds its *wanted* targets (:func:`fleet_view`):
the ``build_pythons`` setting over what the workers advertise.

A request for a release is *led* by a worker that has the release's oldest
wanted target (:func:`lead_target`), so a pure or ``abi3`` wheel is built
once with the oldest interpreter, exactly as
:func:`~fromsource.build.matrix.build_release` builds it on one host; that
worker builds what it can, and every wanted target no wheel serves yet goes
to its own queue as a request for that target alone (:func:`routes`).  A
target no live worker advertises keeps its requests in its queue until one
starts (:func:`unserved` names them).

All pure: values in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from packaging.tags import Tag

from fromsource.build.targets import (
    Target,
    builds_target,
    selected_targets,
    supported_targets,
    uncovered,
)

__all__ = [
    "LIVE_FLOOR_SECONDS",
    "LIVE_INTERVALS",
    "QUEUE",
    "Advert",
    "FleetView",
    "fleet_view",
    "lead_target",
    "placeholder",
    "queue_name",
    "routes",
    "unserved",
    "worker_queues",
]

QUEUE = "fromsource-builds"
"""The queue of whole-release requests, which every worker consumes."""
LIVE_INTERVALS = 3
"""A worker is live while its advert is at most this many refresh intervals old ..."""
LIVE_FLOOR_SECONDS = 15.0
"""... and never less than this many seconds (a busy host refreshes late)."""

_VERSION_ENTRY = re.compile(r"^3\.(\d+)(t?)$")
_ABI_ENTRY = re.compile(r"^cp3(\d+)(t?)$")


def queue_name(tag: str) -> str:
    """The queue of requests for the build target with wheel tag *tag*
    (``fromsource-builds.cp312-cp312-linux_x86_64``)."""
    return f"{QUEUE}.{tag}"


def worker_queues(targets: Iterable[Target]) -> tuple[str, ...]:
    """The queues a worker with *targets* consumes: whole releases, then one per target."""
    return (QUEUE, *dict.fromkeys(queue_name(t.tag) for t in targets))


@dataclass(frozen=True)
class Advert:
    """What one worker process says about itself: its id (``worker@host:pid``, as the
    claims name it), host, targets, when it started and last refreshed this, and how often
    it refreshes (*interval*, seconds)."""

    worker: str
    host: str
    targets: tuple[Target, ...]
    started: datetime
    last_seen: datetime
    interval: float

    @property
    def tags(self) -> tuple[str, ...]:
        """The wheel tags of its targets."""
        return tuple(t.tag for t in self.targets)

    def live(self, now: datetime) -> bool:
        """Whether the worker refreshed its advert recently enough to count as running."""
        window = max(LIVE_INTERVALS * self.interval, LIVE_FLOOR_SECONDS)
        return now - self.last_seen <= timedelta(seconds=window)


@dataclass(frozen=True)
class FleetView:
    """The fleet as one worker sees it: the *wanted* targets, oldest first, and the tags
    that some live worker (this one included) has (*live*)."""

    wanted: tuple[Target, ...]
    live: frozenset[str]


def placeholder(entry: str, like: Target) -> Target | None:
    """A stand-in for the target a ``build_pythons`` *entry* names when no worker has it.

    *entry* is a version (``3.13``, ``3.13t``), an ABI tag (``cp313t``) or a
    whole tag (``cp312-cp312-linux_x86_64``); the platform (and glibc) not
    named are *like*'s.  The stand-in has no interpreter path.  None when
    *entry* names no CPython target (such entries are ignored, as
    :func:`~fromsource.build.targets.builds_target` ignores them).
    """
    text = entry.strip()
    platform = like.platform_tag
    python_tag = abi = ""
    if (found := _VERSION_ENTRY.match(text)) or (found := _ABI_ENTRY.match(text)):
        python_tag = f"cp3{found.group(1)}"
        abi = python_tag + found.group(2)
    elif text.count("-") == 2:
        python_tag, abi, platform = text.split("-")
        if not (_ABI_ENTRY.match(python_tag) and _ABI_ENTRY.match(abi)):
            return None
    else:
        return None
    version = f"3.{python_tag.removeprefix('cp3')}"
    return Target(
        version=version,
        full_version=version,
        python_tag=python_tag,
        abi_tag=abi,
        platform_tag=platform,
        interpreter="",
        glibc=like.glibc if platform == like.platform_tag else None,
    )


def _first_per_tag(targets: Iterable[Target]) -> list[Target]:
    seen: dict[str, Target] = {}
    for target in targets:
        seen.setdefault(target.tag, target)
    return list(seen.values())


def fleet_view(
    adverts: Iterable[Advert],
    local: Sequence[Target],
    build_pythons: Sequence[str],
    now: datetime,
    like: Target | None = None,
) -> FleetView:
    """The fleet's wanted targets and live tags, seen from a worker with *local* targets.

    Wanted: of this worker's targets and every live worker's, those the
    ``build_pythons`` setting chooses (empty: every CPython >= 3.9 that is
    not free-threaded); and for each entry of the setting that none of them
    matches, the target a stale advert describes, else a :func:`placeholder`
    on the platform of *like* (default: the first target known).  So a target
    the operator asked for is wanted even while no worker has it, and its
    requests wait in its queue.
    """
    adverts = list(adverts)
    live = [a for a in adverts if a.live(now)]
    known = _first_per_tag([*local, *(t for a in live for t in a.targets)])
    stale = _first_per_tag(t for a in adverts if not a.live(now) for t in a.targets)
    wanted = list(selected_targets(known, build_pythons))
    model = like or next(iter([*known, *stale]), None)
    for entry in build_pythons:
        if any(builds_target(t, [entry]) for t in known):
            continue
        found = [t for t in stale if builds_target(t, [entry])]
        if not found and model is not None and (made := placeholder(entry, model)) is not None:
            found = [made]
        wanted += found
    return FleetView(
        # Without a Requires-Python every target is kept: this only orders them, oldest first.
        wanted=supported_targets(None, _first_per_tag(wanted)),
        live=frozenset(t.tag for t in known),
    )


def lead_target(
    supported: Sequence[Target],
    local: Iterable[str],
    live: Iterable[str],
    *,
    strict: bool,
) -> Target | None:
    """The target whose worker leads a release that *supported* targets (oldest first) want.

    The oldest of them, as a single host builds it.  Unless *strict* (the
    builds must agree: both independent builds must use the same
    interpreter), a target that neither this worker (*local* tags) nor any
    live worker (*live* tags) has is passed over, so an absent worker does
    not hold up the targets that can be built now.  None when *supported*
    is empty.
    """
    if not supported:
        return None
    if strict:
        return supported[0]
    here = set(local) | set(live)
    return next((t for t in supported if t.tag in here), supported[0])


def routes(
    supported: Sequence[Target],
    built: Iterable[Iterable[Tag]],
    local: Iterable[Target],
) -> tuple[Target, ...]:
    """The *supported* targets that must be built elsewhere: served by none of the *built*
    wheels (their tags) and not this worker's (*local*, which it built or tried), oldest
    first.  Each goes to its own queue as a request for that target alone."""
    return uncovered(supported, built, tried=local)


def unserved(targets: Iterable[Target], live: Iterable[str]) -> tuple[Target, ...]:
    """The *targets* no live worker advertises (their requests wait in their queues)."""
    here = set(live)
    return tuple(t for t in targets if t.tag not in here)
