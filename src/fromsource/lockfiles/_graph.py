"""When each package of a lock's dependency graph is installed, as one marker per package.

A universal lock (uv.lock, an old poetry.lock) lists every package any
environment needs, and writes the condition on the *edge*: ``pywin32`` is
listed with no marker of its own, but the only package that depends on it
does so with ``marker = "sys_platform == 'win32'"``.  :func:`needed_markers`
turns the graph into one marker per package, for the consumer to evaluate on
each target environment: a package is needed where it is reachable from a
root through edges whose markers are true there.

The condition of a package is the disjunction, over the edges into it, of
(the parent's condition AND the edge's marker), the roots' being "always".
It is computed as a least fixed point (so a cycle adds nothing), in
disjunctive normal form over the marker texts taken as opaque atoms: a
conjunction is a set of texts, a condition a set of conjunctions, and a
conjunction that contains another is dropped (``a or (a and b)`` is ``a``).
So an edge without a marker from an always-needed parent makes the package
always needed (marker None), two conditional edges in a chain give their
``and``, and the same marker reached twice is written once.

Nothing here is a guess that leaves a package out: a marker that names
``extra`` (uv's conflict markers, which the builder cannot decide) counts
as true, a package no root reaches is made a root, and a condition that
grows past :data:`MAX_SIZE` marker texts is given up for "always" (no
marker: the package is built for every target, as a lock without edge
markers is).  Pure.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.markers import Marker

MAX_SIZE = 64
"""Marker texts a package's condition may hold (counted once per conjunction they are in)
before it is given up for "always"."""

_Term = frozenset[str]
_Condition = frozenset[_Term]
_ALWAYS: _Condition = frozenset({frozenset()})
_NEVER: _Condition = frozenset()
_EXTRA = re.compile(r"\bextra\b")


@dataclass(frozen=True)
class Edge:
    """*parent* (an index into the packages) depends on *child* where *marker* is true."""

    parent: int
    child: int
    marker: Marker | None = None


def _atom(marker: Marker | None) -> _Condition:
    """The condition of one marker: "always" for none, or for one naming ``extra``."""
    if marker is None or _EXTRA.search(str(marker)):
        return _ALWAYS
    return frozenset({frozenset({str(marker)})})


def _size(condition: _Condition) -> int:
    return sum(max(len(term), 1) for term in condition)


def _minimal(terms: Iterable[_Term]) -> _Condition:
    """*terms* without those that contain another (absorption); "always" when too large."""
    unique = set(terms)
    kept = frozenset(t for t in unique if not any(o < t for o in unique))
    return _ALWAYS if _size(kept) > MAX_SIZE else kept


def _or(a: _Condition, b: _Condition) -> _Condition:
    return _minimal(a | b)


def _and(a: _Condition, b: _Condition) -> _Condition:
    return _minimal(x | y for x in a for y in b)


def _render(condition: _Condition) -> Marker | None:
    """The marker of *condition*; None for "always" (and for "never", which a root rules out)."""
    if condition in (_ALWAYS, _NEVER):
        return None
    terms = sorted(sorted(term) for term in condition)
    ands = [" and ".join(atom if len(term) == 1 else f"({atom})" for atom in term)
            for term in terms]
    return Marker(" or ".join(a if len(terms) == 1 else f"({a})" for a in ands))


def _reached(starts: Iterable[int], children: Sequence[Sequence[int]], seen: set[int]) -> None:
    """Add to *seen* every package reachable from *starts* (markers ignored)."""
    todo = [s for s in starts if s not in seen]
    seen.update(todo)
    while todo:
        for child in children[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)


def _all_roots(count: int, roots: Iterable[int], edges: Sequence[Edge]) -> list[int]:
    """*roots*, then the packages they do not reach: first those nobody depends on, then (a
    cycle nothing else reaches) the first still unreached, until every package is reached."""
    children: list[list[int]] = [[] for _ in range(count)]
    depended = set()
    for edge in edges:
        children[edge.parent].append(edge.child)
        if edge.parent != edge.child:
            depended.add(edge.child)
    chosen = list(dict.fromkeys(roots))
    seen: set[int] = set()
    _reached(chosen, children, seen)
    orphans = [p for p in range(count) if p not in seen and p not in depended]
    chosen += orphans
    _reached(orphans, children, seen)
    for package in range(count):
        if package not in seen:
            chosen.append(package)
            _reached([package], children, seen)
    return chosen


def needed_markers(
    count: int,
    roots: Iterable[int],
    edges: Sequence[Edge],
    own: Sequence[Marker | None] | None = None,
) -> list[Marker | None]:
    """The marker under which each of *count* packages is installed (None: always).

    *roots* are the packages installed unconditionally (the project, its
    workspace members); *edges* the dependencies between packages, by index,
    each with its marker.  *own* is each package's own marker (uv's
    ``resolution-markers``), joined with ``and`` to its condition but not
    passed on to what it depends on (those edges carry their own markers).
    """
    conditions = [_NEVER] * count
    outgoing: list[list[tuple[int, _Condition]]] = [[] for _ in range(count)]
    for edge in edges:
        outgoing[edge.parent].append((edge.child, _atom(edge.marker)))
    work = deque(_all_roots(count, roots, edges))
    for root in work:
        conditions[root] = _ALWAYS
    waiting = set(work)
    while work:
        parent = work.popleft()
        waiting.discard(parent)
        for child, marker in outgoing[parent]:
            grown = _or(conditions[child], _and(conditions[parent], marker))
            if grown != conditions[child]:
                conditions[child] = grown
                if child not in waiting:
                    waiting.add(child)
                    work.append(child)
    mine = own if own is not None else [None] * count
    return [_render(_and(c, _atom(m))) for c, m in zip(conditions, mine, strict=True)]
