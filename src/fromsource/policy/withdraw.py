"""Withdrawing built files of malicious releases: yanked, with the MAL id as the reason.

When a ``MAL-`` record arrives after the index built a version it names,
that file is withdrawn: yanked (PEP 592) with ``MAL-…: summary`` as the
reason, in the same transaction as its audit entry.  A file matches by
project and version, by its own sha256, or by the sha256 of the sdist it was
built from, against the records' ``package_integrity`` hashes.  Pages hide
and refuse such versions anyway (:mod:`fromsource.index.state`); the yank
makes the withdrawal visible to those an allow rule still shows it to, and
to ``fsck``, which lists withdrawn files and repairs any left unwithdrawn.

:func:`malicious_files` is the pure core; :func:`withdraw_malicious` does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa

from fromsource.policy.decide import Decision, Policy, decide
from fromsource.policy.store import AuditEntry, audit_row, load_policy
from fromsource.store.catalog import FileInfo, all_files
from fromsource.store.db import Database, bump_generation
from fromsource.store.models import BuildRow, FileRow

__all__ = ["WithdrawReport", "Withdrawal", "malicious_files", "withdraw_malicious", "yank_reason"]

State = Literal["withdrawn", "already withdrawn", "not withdrawn"]


def yank_reason(decision: Decision) -> str:
    """``MAL-…: summary``: the yank reason of a withdrawn file (the MAL id first)."""
    return f"{decision.mal_id}: {decision.summary}" if decision.summary else str(decision.mal_id)


@dataclass(frozen=True)
class Withdrawal:
    """One built file of a malicious release and what was done about it."""

    repo: str
    filename: str
    project: str
    version: str
    mal_id: str
    reason: str
    state: State

    def line(self) -> str:
        """The fsck-style line for this file."""
        where = f"{self.repo}/{self.filename}"
        if self.state == "not withdrawn":
            return (
                f"malware {where}: {self.reason}; not withdrawn yet "
                "(`fromsource fsck --repair` yanks it)"
            )
        return f"withdrawn {where}: yanked, {self.reason}"

    def to_json(self) -> dict[str, object]:
        """The withdrawal as JSON."""
        return {
            "repo": self.repo,
            "filename": self.filename,
            "project": self.project,
            "version": self.version,
            "mal_id": self.mal_id,
            "reason": self.reason,
            "state": self.state,
        }


@dataclass(frozen=True)
class WithdrawReport:
    """Every built file of a malicious release; ``problems`` counts those left unwithdrawn."""

    files: tuple[Withdrawal, ...]

    @property
    def problems(self) -> int:
        """Files of malicious releases still offered unyanked."""
        return sum(w.state == "not withdrawn" for w in self.files)

    @property
    def newly_withdrawn(self) -> tuple[Withdrawal, ...]:
        """The files this run yanked."""
        return tuple(w for w in self.files if w.state == "withdrawn")

    def lines(self) -> list[str]:
        """One fsck-style line per file."""
        return [w.line() for w in self.files]

    def to_json(self) -> list[dict[str, object]]:
        """The files as JSON."""
        return [w.to_json() for w in self.files]


def malicious_files(
    files: Iterable[FileInfo], policy: Policy, sdist_sha256: Mapping[int, str] | None = None
) -> list[tuple[FileInfo, Decision]]:
    """The files policy denies as malware, with the decision (allow rules respected).

    *sdist_sha256* maps a build id to the sha256 of the sdist it built from.
    """
    sources = sdist_sha256 or {}
    found = []
    for info in files:
        digests: list[str] = [info.sha256]
        if info.build_id is not None and info.build_id in sources:
            digests.append(sources[info.build_id])
        decision = decide(info.project, info.version, policy=policy, sha256s=digests)
        if not decision.allowed and decision.verdict == "malware":
            found.append((info, decision))
    return sorted(found, key=lambda item: (item[0].repo, item[0].filename))


def _sdist_digests(db: Database) -> dict[int, str]:
    found: dict[int, str] = {}
    with db.session() as session:
        for build_id, details in session.execute(
            sa.select(BuildRow.id, BuildRow.details).where(
                BuildRow.id.in_(sa.select(FileRow.build_id).where(FileRow.build_id.is_not(None)))
            )
        ):
            sdist = (details or {}).get("sdist")
            digest = sdist.get("sha256") if isinstance(sdist, dict) else None
            if isinstance(digest, str):
                found[build_id] = digest
    return found


def withdraw_malicious(
    db: Database, *, repair: bool = True, actor: str = "", policy: Policy | None = None
) -> WithdrawReport:
    """Find every published file of a malicious release; with *repair*, yank the unyanked.

    Yanks and their audit entries commit in one transaction (the store's
    change counter goes up once).  Returns what was found and done.
    """
    policy = policy or load_policy(db)
    if not policy.malware and not policy.hashes:
        return WithdrawReport(())
    sources = _sdist_digests(db) if policy.hashes else {}
    found = malicious_files(all_files(db), policy, sources)
    now = datetime.now(UTC)
    results: list[Withdrawal] = []
    to_yank: list[tuple[FileInfo, Decision, str]] = []
    for info, decision in found:
        reason = yank_reason(decision)
        state: State
        if info.yanked and (info.yanked_reason or "").startswith(str(decision.mal_id)):
            state = "already withdrawn"
        elif repair:
            state = "withdrawn"
            to_yank.append((info, decision, reason))
        else:
            state = "not withdrawn"
        results.append(
            Withdrawal(
                info.repo,
                info.filename,
                info.project,
                info.version,
                str(decision.mal_id),
                reason,
                state,
            )
        )
    if to_yank:
        with db.session() as session, session.begin():
            for info, decision, reason in to_yank:
                session.execute(
                    sa.update(FileRow)
                    .where(FileRow.id == info.id)
                    .values(yanked=True, yanked_reason=reason)
                )
                entry = AuditEntry.of(
                    decision,
                    "withdrawn",
                    at=now,
                    actor=actor,
                    generation=policy.generation,
                    repo=info.repo,
                    filename=info.filename,
                )
                session.add(audit_row(entry))
            bump_generation(session)
    return WithdrawReport(tuple(results))
