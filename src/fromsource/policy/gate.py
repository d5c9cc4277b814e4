"""The build pipeline's question to policy: may this release be built from source?

:func:`build_refusal` is the one call the pipeline makes (before anything is
fetched): a release that a malware record or a block rule denies is never
built; a release an allow rule lets through is built, and that is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fromsource.policy.decide import Decision, decide
from fromsource.policy.store import Action, AuditEntry, load_policy, record
from fromsource.store.db import Database

__all__ = ["CATEGORY", "build_refusal", "refusal_message"]

CATEGORY = "blocked-by-policy"
"""The build failure category of a release policy refuses."""


def refusal_message(decision: Decision) -> str:
    """What a refused build says: why, and how to look closer or override."""
    return (
        f"{decision.reason}; policy refuses to build it from source "
        f"(`fromsource policy test {decision.purl}` explains; an allow rule overrides)"
    )


def build_refusal(
    db: Database, project: str, version: str, *, repo: str = "python", actor: str = "build"
) -> Decision | None:
    """None when *version* of *project* may be built into *repo*; else the denial.

    The cooldown is not weighed here (an operator's build is deliberate;
    automatic builds check it before they queue).  Refusals, and builds an
    allow rule lets through, are written to the audit log.
    """
    policy = load_policy(db, project)
    decision = decide(project, version, policy=policy)
    if decision.audited:
        action: Action = "build-allowed" if decision.allowed else "build-refused"
        record(
            db,
            [
                AuditEntry.of(
                    decision,
                    action,
                    at=datetime.now(UTC),
                    actor=actor,
                    generation=policy.generation,
                    repo=repo,
                )
            ],
        )
    return None if decision.allowed else decision
