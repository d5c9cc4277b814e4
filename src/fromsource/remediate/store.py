"""Advisories in the database: import OSV records, read them back per project.

One row per (advisory id, affected PyPI project) in the ``advisories``
table; ``data`` holds the whole OSV record so :class:`Advisory` values are
rebuilt from it unchanged.  Records that name no PyPI package are skipped.
Importing is idempotent: a record replaces the stored one only when it
differs and is not older (by ``modified``).  A new or changed ``MAL-``
record (a malicious package) also raises the policy counter: see
fromsource/policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fromsource.dist.names import normalize
from fromsource.remediate.osv import Advisory, parse_advisory
from fromsource.store.db import POLICY_GENERATION, Database, bump_counter, bump_generation
from fromsource.store.models import AdvisoryRow

__all__ = ["ImportResult", "advisories_for", "all_advisories", "import_advisories"]


@dataclass(frozen=True)
class ImportResult:
    """How many (advisory, project) rows an import added, updated or left alone.

    *skipped* lists the ids of records that name no PyPI package.
    """

    added: int
    updated: int
    unchanged: int
    skipped: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The counts as a JSON-ready mapping."""
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": list(self.skipped)}


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _not_older(new: str, old: str) -> bool:
    a, b = _moment(new), _moment(old)
    if a is not None and b is not None and (a.tzinfo is None) == (b.tzinfo is None):
        return a >= b
    return new >= old


def import_advisories(db: Database, advisories: Iterable[Advisory]) -> ImportResult:
    """Store *advisories* in one transaction; returns what changed.

    Raises StoreError (from the database layer) when the write fails; then
    nothing is stored.
    """
    added = updated = unchanged = 0
    skipped: list[str] = []
    malware = False
    with db.session() as session, session.begin():
        rows = {(r.id, r.project): r for r in session.scalars(sa.select(AdvisoryRow))}
        for advisory in advisories:
            if not advisory.projects:
                skipped.append(advisory.id)
                continue
            data = advisory.to_json()
            for project in advisory.projects:
                row = rows.get((advisory.id, project))
                if row is None:
                    row = AdvisoryRow(
                        id=advisory.id, project=project, aliases=list(advisory.aliases),
                        summary=advisory.title, data=data, modified=advisory.modified,
                    )
                    session.add(row)
                    rows[(advisory.id, project)] = row
                    added += 1
                    malware = malware or advisory.id.startswith("MAL-")
                elif json.dumps(row.data, sort_keys=True) == json.dumps(data, sort_keys=True):
                    unchanged += 1
                elif _not_older(advisory.modified, row.modified):
                    row.aliases = list(advisory.aliases)
                    row.summary = advisory.title
                    row.data = data
                    row.modified = advisory.modified
                    updated += 1
                    malware = malware or advisory.id.startswith("MAL-")
                else:
                    unchanged += 1
        if added or updated:
            bump_generation(session)
        if malware:
            bump_counter(session, POLICY_GENERATION)
    return ImportResult(added, updated, unchanged, tuple(skipped))


def _from_row(row: AdvisoryRow) -> Advisory:
    return parse_advisory(row.data, origin=f"database advisory {row.id}")


def advisories_for(db: Database, project: str) -> list[Advisory]:
    """Every stored advisory that names *project* (any spelling), sorted by id."""
    with db.session() as session:
        rows = session.scalars(
            sa.select(AdvisoryRow)
            .where(AdvisoryRow.project == normalize(project))
            .order_by(AdvisoryRow.id)
        ).all()
    return [_from_row(r) for r in rows]


def all_advisories(db: Database) -> list[Advisory]:
    """Every stored advisory once (a record naming several projects appears once), by id."""
    with db.session() as session:
        rows = session.scalars(sa.select(AdvisoryRow).order_by(AdvisoryRow.id)).all()
    seen: dict[str, Advisory] = {}
    for row in rows:
        if row.id not in seen:
            seen[row.id] = _from_row(row)
    return list(seen.values())
