"""OpenVEX v0.2.0 documents stating what our remediated versions fix.

Served at ``/openvex/v1/all.json`` and ``/openvex/v1/pypi/<project>.openvex.json``
so scanners stop reporting vulnerabilities our backports fixed
(the OpenVEX specification, v0.2.0).

Shape: one statement per vulnerability with status ``fixed``; its
``products`` are the remediated releases that fix it, each identified by its
package URL (``pkg:pypi/flask@2.0.0%2Bfs.1``: ``+`` is percent-encoded as
the purl spec requires).  The release itself is the product that carries the
fix, so there are no ``subcomponents``.  The vulnerability is named by its
CVE when it has one (what most scanners report), with every other id
(PYSEC, GHSA) as an alias.

Pure functions over values: the clock, author and document id are arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import fromsource
from fromsource.dist.names import normalize
from fromsource.provenance.statement import dependency_purl
from fromsource.remediate.osv import Advisory

__all__ = [
    "OPENVEX_CONTEXT",
    "RemediatedRelease",
    "VexStatement",
    "group_vulnerabilities",
    "openvex_document",
    "remediation_statements",
]

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"


@dataclass(frozen=True)
class RemediatedRelease:
    """One published remediated version and the patches it was built with.

    *patches* pairs each patch name with the ids and aliases it fixes (as the
    series and the provenance record them).  *published* must be timezone-aware.
    """

    project: str
    version: str
    published: datetime
    patches: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def purl(self) -> str:
        """``pkg:pypi/<project>@<version>`` with the version percent-encoded."""
        return dependency_purl(self.project, self.version)

    @property
    def fixes(self) -> tuple[str, ...]:
        """Every id and alias fixed, in patch order, without repeats."""
        seen: dict[str, None] = {}
        for _name, ids in self.patches:
            for item in ids:
                seen.setdefault(item, None)
        return tuple(seen)


@dataclass(frozen=True)
class VexStatement:
    """One OpenVEX statement: a vulnerability, the products it is *status* in, and when."""

    vulnerability: str
    aliases: tuple[str, ...]
    projects: tuple[str, ...]
    products: tuple[str, ...]
    status: Literal["fixed"]
    timestamp: datetime
    notes: str


def _rank(identifier: str) -> tuple[int, str]:
    order = ("CVE-", "GHSA-", "PYSEC-")
    for i, prefix in enumerate(order):
        if identifier.startswith(prefix):
            return i, identifier
    return len(order), identifier


def group_vulnerabilities(
    id_groups: Iterable[Sequence[str]], advisories: Iterable[Advisory] = ()
) -> list[tuple[str, ...]]:
    """Sort ids into vulnerabilities: each result lists the names of one, best name first.

    Two ids belong together when an advisory lists both (as id or alias), or
    when one *id_groups* entry (a patch's ``fixes``) holds both and names at
    most one CVE.  The best name is a CVE, then a GHSA, then a PYSEC id.
    Only ids present in *id_groups* appear in the result.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(ids: Sequence[str]) -> None:
        for other in ids[1:]:
            a, b = find(ids[0]), find(other)
            if a != b:
                parent[b] = a

    wanted: dict[str, None] = {}
    for group in id_groups:
        for item in group:
            wanted.setdefault(item, None)
            find(item)
        if sum(1 for item in group if item.startswith("CVE-")) <= 1:
            union(list(group))
    for advisory in advisories:
        ids = sorted(advisory.ids)
        if any(i in wanted for i in ids):
            union(ids)
    components: dict[str, list[str]] = {}
    for item in wanted:
        components.setdefault(find(item), []).append(item)
    groups = [tuple(sorted(members, key=_rank)) for members in components.values()]
    return sorted(groups, key=lambda g: _rank(g[0]))


def remediation_statements(
    releases: Iterable[RemediatedRelease], advisories: Iterable[Advisory] = ()
) -> list[VexStatement]:
    """The ``fixed`` statements for *releases*: one per vulnerability, sorted by name.

    *advisories* (optional) join ids that name the same vulnerability; their
    aliases are added to the statement too.  A statement's timestamp is the
    latest publication among its products.
    """
    releases = list(releases)
    advisories = list(advisories)
    groups = group_vulnerabilities(
        [ids for release in releases for _name, ids in release.patches], advisories
    )
    statements = []
    for group in groups:
        names = set(group)
        for advisory in advisories:
            if not advisory.ids.isdisjoint(names):
                names |= advisory.ids
        ordered = sorted(names, key=_rank)
        fixing = [r for r in releases if not names.isdisjoint(r.fixes)]
        patch_names = sorted({
            f"{normalize(r.project)} {r.version}: {name}"
            for r in fixing for name, ids in r.patches if not names.isdisjoint(ids)
        })
        statements.append(VexStatement(
            vulnerability=ordered[0],
            aliases=tuple(ordered[1:]),
            projects=tuple(sorted({normalize(r.project) for r in fixing})),
            products=tuple(sorted({r.purl for r in fixing})),
            status="fixed",
            timestamp=max(r.published for r in fixing),
            notes="Fixed by a backported patch applied to the upstream sdist before the "
                  "build (" + "; ".join(patch_names) + ").",
        ))
    return sorted(statements, key=lambda s: _rank(s.vulnerability))


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no timezone; pass an aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _statement_json(statement: VexStatement) -> dict[str, Any]:
    vulnerability: dict[str, Any] = {"name": statement.vulnerability}
    if statement.aliases:
        vulnerability["aliases"] = list(statement.aliases)
    return {
        "vulnerability": vulnerability,
        "timestamp": _rfc3339(statement.timestamp),
        "products": [{"@id": purl, "identifiers": {"purl": purl}} for purl in statement.products],
        "status": statement.status,
        "status_notes": statement.notes,
    }


def openvex_document(
    statements: Iterable[VexStatement],
    *,
    now: datetime,
    author: str,
    doc_id: str | None = None,
    version: int = 1,
    project: str | None = None,
) -> dict[str, Any]:
    """The OpenVEX v0.2.0 document (JSON-ready) holding *statements*.

    *project*, when given, keeps only the statements about that project and
    only its products (the per-project feed).  *doc_id* defaults to a URN derived from the
    statements, so the same content always gets the same id.  *version* is
    the document version (raise it when the content changes; the change
    counter of the store is a good source).  Raises ValueError for a
    timezone-naive *now*.
    """
    chosen = list(statements)
    if project is not None:
        prefix = dependency_purl(project, "0").rsplit("@", 1)[0] + "@"
        chosen = [
            replace(s, projects=(normalize(project),),
                    products=tuple(p for p in s.products if p.startswith(prefix)))
            for s in chosen if normalize(project) in s.projects
        ]
    body = [_statement_json(s) for s in chosen]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    document: dict[str, Any] = {
        "@context": OPENVEX_CONTEXT,
        "@id": doc_id or f"urn:fromsource:openvex:{digest}",
        "author": author,
        "role": "Document Creator",
        "timestamp": _rfc3339(now),
        "version": version,
        "tooling": f"fromsource {fromsource.__version__}",
        "statements": body,
    }
    if chosen:
        document["last_updated"] = _rfc3339(max(s.timestamp for s in chosen))
    return document
