"""Policy in the database: rules, the malware records in force, the audit log.

Rules live in ``policy_rules``; malware records are the ``MAL-`` rows of
``advisories`` (imported with ``fromsource advisories import``); every
decision that hid, blocked or let something through, and every rule
change, is a row of ``policy_audit``.  Changing a rule raises the
``policy_generation`` counter in the same transaction, so every server
process drops its cached pages within one poll interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fromsource.dist.names import ProjectName, normalize
from fromsource.errors import PolicyError
from fromsource.policy.decide import Decision, Policy
from fromsource.policy.malware import MAL_PREFIX, MalwareRecord, malware_record
from fromsource.policy.rules import ANY_PROJECT, KINDS, Rule, RuleKind, parse_purl, version_spec
from fromsource.remediate.osv import parse_advisory
from fromsource.store.db import POLICY_GENERATION, Database, bump_counter
from fromsource.store.models import AdvisoryRow, PolicyAuditRow, PolicyRuleRow, StateRow

__all__ = [
    "Action",
    "AuditEntry",
    "StoredMalware",
    "add_rule",
    "audit_row",
    "list_rules",
    "load_malware",
    "load_policy",
    "policy_generation",
    "read_log",
    "record",
    "record_new",
    "remove_rule",
]

Action = Literal[
    "hidden",
    "refused",
    "listed",
    "served",
    "build-refused",
    "build-allowed",
    "withdrawn",
    "rule-added",
    "rule-removed",
]
"""What happened: a version *hidden* from a page, a file or page *refused*, a release
*listed* or *served* through an allow rule, a build refused or allowed (by an allow rule), a built file
*withdrawn* (yanked) for malware, a rule added or removed."""

MAX_COOLDOWN_DAYS = 3650
_MAX_NAME = 255  # the columns' width


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    at: datetime
    action: Action
    verdict: str
    project: str
    version: str | None
    reason: str
    actor: str
    generation: int
    repo: str | None = None
    filename: str | None = None
    rule_id: int | None = None
    mal_id: str | None = None
    id: int | None = None

    @classmethod
    def of(
        cls,
        decision: Decision,
        action: Action,
        *,
        at: datetime,
        actor: str,
        generation: int,
        repo: str | None = None,
        filename: str | None = None,
    ) -> AuditEntry:
        """The entry for *decision* taken as *action* (where: *repo*, *filename*)."""
        return cls(
            at=at,
            action=action,
            verdict=decision.verdict,
            project=decision.project,
            version=decision.version,
            reason=decision.reason,
            actor=actor,
            generation=generation,
            repo=repo,
            filename=filename,
            rule_id=decision.rule.id if decision.rule else None,
            mal_id=decision.mal_id,
        )

    def to_json(self) -> dict[str, object]:
        """The entry as JSON (stable keys)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "action": self.action,
            "verdict": self.verdict,
            "project": self.project,
            "version": self.version,
            "repo": self.repo,
            "filename": self.filename,
            "rule_id": self.rule_id,
            "mal_id": self.mal_id,
            "reason": self.reason,
            "actor": self.actor,
            "policy_generation": self.generation,
        }


def _rule(row: PolicyRuleRow) -> Rule:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return Rule(
        id=row.id,
        kind=cast(RuleKind, row.kind),
        project=row.project,
        specifier=row.specifier,
        days=row.days,
        reason=row.reason,
        created_at=created,
        created_by=row.created_by,
    )


def _entry(row: PolicyAuditRow) -> AuditEntry:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return AuditEntry(
        at=at,
        action=cast(Action, row.action),
        verdict=row.verdict,
        project=row.project,
        version=row.version,
        reason=row.reason,
        actor=row.actor,
        generation=row.generation,
        repo=row.repo,
        filename=row.filename,
        rule_id=row.rule_id,
        mal_id=row.mal_id,
        id=row.id,
    )


def audit_row(entry: AuditEntry) -> PolicyAuditRow:
    """The audit-log row of *entry* (for writers that add it to their own transaction)."""
    return PolicyAuditRow(
        at=entry.at,
        action=entry.action,
        verdict=entry.verdict,
        project=entry.project,
        version=entry.version,
        repo=entry.repo,
        filename=entry.filename,
        rule_id=entry.rule_id,
        mal_id=entry.mal_id,
        reason=entry.reason,
        actor=entry.actor,
        generation=entry.generation,
    )


def policy_generation(db: Database) -> int:
    """The policy counter (raised by every rule change and malware import)."""
    return db.counters(POLICY_GENERATION)[0]


def list_rules(db: Database) -> list[Rule]:
    """Every rule, oldest first."""
    with db.session() as session:
        return [
            _rule(r) for r in session.scalars(sa.select(PolicyRuleRow).order_by(PolicyRuleRow.id))
        ]


def _check_new(kind: str, project: str, days: int | None, reason: str) -> RuleKind:
    if kind not in KINDS:
        raise PolicyError(f"{kind!r} is not a rule kind; use one of {', '.join(KINDS)}", kind=kind)
    checked: RuleKind = kind
    if kind == "cooldown":
        if days is None or not 0 <= days <= MAX_COOLDOWN_DAYS:
            raise PolicyError(
                f"a cooldown rule needs days between 0 and {MAX_COOLDOWN_DAYS} (--days N)",
                days=days,
            )
    elif days is not None:
        raise PolicyError(f"days apply to cooldown rules only, not to {kind} rules", days=days)
    if project == ANY_PROJECT and kind != "cooldown":
        raise PolicyError(
            f"pkg:pypi/* names every project: only the default cooldown may be set for it, "
            f"not a {kind} rule",
        )
    if kind == "allow" and not reason.strip():
        raise PolicyError(
            "an allow rule is a deliberate exception to malware records, block rules and the "
            "cooldown: say why with a reason (--reason TEXT)",
        )
    return checked


def add_rule(
    db: Database,
    kind: str,
    purl: str,
    *,
    versions: str | None = None,
    days: int | None = None,
    reason: str = "",
    actor: str = "",
    now: datetime | None = None,
) -> Rule:
    """Store a new rule and audit it; raises PolicyError for a malformed or duplicate rule.

    *purl* is ``pkg:pypi/NAME[@VERSION]`` (``pkg:pypi/*`` for the default
    cooldown); *versions* a PEP 440 specifier instead of ``@VERSION``.
    """
    subject = parse_purl(purl)
    specifier = version_spec(subject, versions)
    checked = _check_new(kind, subject.project, days, reason)
    if len(subject.project) > _MAX_NAME or len(specifier) > _MAX_NAME:
        raise PolicyError(f"the name or version specifier is longer than {_MAX_NAME} characters")
    at = now or datetime.now(UTC)
    with db.session() as session, session.begin():
        same = session.scalar(
            sa.select(PolicyRuleRow).where(
                PolicyRuleRow.kind == checked,
                PolicyRuleRow.project == subject.project,
                PolicyRuleRow.specifier == specifier,
            )
        )
        if same is not None:
            raise PolicyError(
                f"rule {same.id} already is a {checked} rule on {_rule(same).subject}; "
                f"remove it first (fromsource policy remove {same.id}) to change it",
                rule_id=same.id,
            )
        row = PolicyRuleRow(
            kind=checked,
            project=subject.project,
            specifier=specifier,
            days=days,
            reason=reason.strip(),
            created_at=at,
            created_by=actor,
        )
        session.add(row)
        session.flush()
        bump_counter(session, POLICY_GENERATION)
        generation = _generation(session)
        rule = _rule(row)
        session.add(audit_row(_rule_entry(rule, "rule-added", at, actor, generation)))
    return rule


def remove_rule(
    db: Database, rule_id: int, *, actor: str = "", now: datetime | None = None
) -> Rule:
    """Delete rule *rule_id* and audit it; returns it.  PolicyError when there is none."""
    at = now or datetime.now(UTC)
    with db.session() as session, session.begin():
        row = session.get(PolicyRuleRow, rule_id)
        if row is None:
            raise PolicyError(
                f"there is no policy rule {rule_id}; `fromsource policy list` shows the rules",
                rule_id=rule_id,
            )
        rule = _rule(row)
        session.delete(row)
        bump_counter(session, POLICY_GENERATION)
        generation = _generation(session)
        session.add(audit_row(_rule_entry(rule, "rule-removed", at, actor, generation)))
    return rule


def _generation(session: Session) -> int:
    row = session.get(StateRow, POLICY_GENERATION)
    return row.value if row else 0


def _rule_entry(
    rule: Rule, action: Action, at: datetime, actor: str, generation: int
) -> AuditEntry:
    what = "added" if action == "rule-added" else "removed"
    days = f", {rule.days} day(s)" if rule.days is not None else ""
    return AuditEntry(
        at=at,
        action=action,
        verdict=rule.kind,
        project=rule.project,
        version=None,
        reason=f"{rule.kind} rule {rule.id} on {rule.subject}{days} {what}"
        + (f": {rule.reason}" if rule.reason else ""),
        actor=actor,
        generation=generation,
        rule_id=rule.id,
    )


def _records(rows: Iterable[AdvisoryRow]) -> list[MalwareRecord]:
    seen: dict[str, MalwareRecord] = {}
    for row in rows:
        if row.id not in seen:
            record = malware_record(parse_advisory(row.data, origin=f"database advisory {row.id}"))
            if record is not None:
                seen[row.id] = record
    return list(seen.values())


def _malware_rows() -> sa.Select[AdvisoryRow]:
    return sa.select(AdvisoryRow).where(AdvisoryRow.id.like(f"{MAL_PREFIX}%"))


def load_malware(db: Database, project: str | None = None) -> list[MalwareRecord]:
    """The live ``MAL-`` records held in ``advisories`` (about *project* only, if given)."""
    query = _malware_rows()
    if project is not None:
        query = query.where(AdvisoryRow.project == normalize(project))
    with db.session() as session:
        return _records(session.scalars(query.order_by(AdvisoryRow.id)))


class StoredMalware(Mapping[ProjectName, tuple[MalwareRecord, ...]]):
    """The ``MAL-`` records in the database by project, each project's read on first use.

    The full OpenSSF data set holds some fifteen thousand PyPI records:
    parsing them all takes seconds, on every policy change, in every server
    process.  A project is looked up thousands of times for each one that has
    a record, so only the set of names is read up front (one query) and a
    project's records when first asked for, then kept (the mapping is
    replaced when the policy counter moves).
    """

    def __init__(self, db: Database, projects: frozenset[str]) -> None:
        self._db = db
        self._projects = projects
        self._cache: dict[str, tuple[MalwareRecord, ...]] = {}

    def __getitem__(self, project: str) -> tuple[MalwareRecord, ...]:
        if project not in self._projects:
            raise KeyError(project)
        found = self._cache.get(project)
        if found is None:
            found = tuple(load_malware(self._db, project))
            self._cache[project] = found
        return found

    def __contains__(self, project: object) -> bool:
        return project in self._projects

    def __iter__(self) -> Iterator[ProjectName]:
        return iter(sorted(ProjectName(p) for p in self._projects))

    def __len__(self) -> int:
        return len(self._projects)


def load_policy(db: Database, project: str | None = None) -> Policy:
    """The policy in force: every rule, the malware records and their file hashes.

    Malware records are read per project on first use (:class:`StoredMalware`);
    the file-hash index is read whole, from the records that carry
    ``package_integrity`` only.  With *project*, just that project's records
    are read (enough to decide about its releases: one build).
    """
    generation = policy_generation(db)
    rules = list_rules(db)
    if project is not None:
        return Policy.of(rules, load_malware(db, project), generation)
    with db.session() as session:
        projects = frozenset(
            session.scalars(
                sa.select(AdvisoryRow.project)
                .where(AdvisoryRow.id.like(f"{MAL_PREFIX}%"))
                .distinct()
            )
        )
        hashed = _records(
            session.scalars(
                _malware_rows()
                .where(sa.cast(AdvisoryRow.data, sa.Text).like("%package_integrity%"))
                .order_by(AdvisoryRow.id)
            )
        )
        count = session.scalar(
            sa.select(sa.func.count(sa.distinct(AdvisoryRow.id))).where(
                AdvisoryRow.id.like(f"{MAL_PREFIX}%")
            )
        )
    indexed = Policy.of((), hashed)
    return Policy(
        rules=tuple(sorted(rules, key=lambda r: r.id)),
        malware=StoredMalware(db, projects),
        hashes=indexed.hashes,
        generation=generation,
        record_count=count or 0,
    )


def record(db: Database, entries: Iterable[AuditEntry]) -> None:
    """Append *entries* to the audit log in one transaction."""
    rows = [audit_row(e) for e in entries]
    if not rows:
        return
    with db.session() as session, session.begin():
        session.add_all(rows)


def record_new(db: Database, entries: Iterable[AuditEntry]) -> int:
    """Append the *entries* the log lacks, in one transaction; return how many were written.

    An entry is already there when one of the same action, repo, project, version,
    filename and actor was written under the same policy generation (a worker that
    decides the same thing for every request audits it once per generation).
    """
    written = 0
    with db.session() as session, session.begin():
        for entry in entries:
            same = sa.select(PolicyAuditRow.id).where(
                PolicyAuditRow.action == entry.action,
                PolicyAuditRow.repo.is_(None) if entry.repo is None
                else PolicyAuditRow.repo == entry.repo,
                PolicyAuditRow.project == entry.project,
                PolicyAuditRow.version.is_(None) if entry.version is None
                else PolicyAuditRow.version == entry.version,
                PolicyAuditRow.filename.is_(None) if entry.filename is None
                else PolicyAuditRow.filename == entry.filename,
                PolicyAuditRow.actor == entry.actor,
                PolicyAuditRow.generation == entry.generation,
            )
            if session.scalar(same.limit(1)) is None:
                session.add(audit_row(entry))
                session.flush()
                written += 1
    return written


def read_log(
    db: Database,
    *,
    limit: int = 100,
    project: str | None = None,
    actions: Sequence[str] = (),
) -> list[AuditEntry]:
    """The newest *limit* audit entries (about *project*, of *actions*), newest first."""
    query = sa.select(PolicyAuditRow).order_by(PolicyAuditRow.id.desc()).limit(limit)
    if project is not None:
        query = query.where(PolicyAuditRow.project == normalize(project))
    if actions:
        query = query.where(PolicyAuditRow.action.in_(list(actions)))
    with db.session() as session:
        return [_entry(r) for r in session.scalars(query)]
