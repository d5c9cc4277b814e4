"""Policy in the database: rules, their audit entries, the policy counter, MAL- records."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.dist.names import ProjectName
from fromsource.errors import PolicyError
from fromsource.policy.decide import decide
from fromsource.policy.store import (
    StoredMalware,
    add_rule,
    list_rules,
    load_policy,
    policy_generation,
    read_log,
    remove_rule,
)
from fromsource.remediate.osv import parse_advisory
from fromsource.remediate.store import import_advisories
from fromsource.store.db import Database, open_database
from tests.policy.malware_records import fake_record, real_record


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(f"sqlite:///{tmp_path / 'fs.db'}")


def test_rules_are_stored_listed_removed_and_each_change_is_audited(db: Database) -> None:
    assert policy_generation(db) == 0
    block = add_rule(db, "block", "pkg:pypi/Requests", versions="<2.20", reason="CVE", actor="me")
    allow = add_rule(db, "allow", "pkg:pypi/requests@2.19.1", reason="pinned by legacy app")
    default = add_rule(db, "cooldown", "pkg:pypi/*", days=14)
    assert [r.id for r in list_rules(db)] == [block.id, allow.id, default.id]
    assert (block.project, block.specifier, block.created_by) == ("requests", "<2.20", "me")
    assert policy_generation(db) == 3

    policy = load_policy(db)
    assert policy.generation == 3
    assert decide("requests", "2.18.0", policy=policy).verdict == "block"
    assert decide("requests", "2.19.1", policy=policy).verdict == "allow"

    removed = remove_rule(db, allow.id, actor="you")
    assert removed == allow and policy_generation(db) == 4
    assert decide("requests", "2.19.1", policy=load_policy(db)).verdict == "block"

    log = read_log(db)
    assert [e.action for e in log] == ["rule-removed", "rule-added", "rule-added", "rule-added"]
    assert log[0].actor == "you" and log[0].rule_id == allow.id
    assert "pinned by legacy app" in log[0].reason and log[0].generation == 4
    assert [e.rule_id for e in read_log(db, project="REQUESTS", actions=["rule-added"])] == [
        allow.id,
        block.id,
    ]


@pytest.mark.parametrize(
    ("kind", "purl", "extra", "message"),
    [
        ("allow", "pkg:pypi/x", {}, "say why"),
        ("cooldown", "pkg:pypi/x", {}, "needs days"),
        ("cooldown", "pkg:pypi/x", {"days": -1}, "needs days"),
        ("block", "pkg:pypi/x", {"days": 3}, "cooldown rules only"),
        ("block", "pkg:pypi/*", {}, "only the default cooldown"),
        ("deny", "pkg:pypi/x", {}, "not a rule kind"),
        ("block", "pkg:npm/x", {}, "pkg:pypi"),
    ],
)
def test_malformed_rules_are_refused_and_nothing_is_stored(
    db: Database, kind: str, purl: str, extra: dict[str, int], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        add_rule(db, kind, purl, **extra)  # type: ignore[arg-type]
    assert list_rules(db) == [] and policy_generation(db) == 0


def test_a_duplicate_rule_and_an_unknown_id_are_errors(db: Database) -> None:
    first = add_rule(db, "block", "pkg:pypi/x@1.0")
    with pytest.raises(PolicyError, match=f"rule {first.id} already"):
        add_rule(db, "block", "pkg:pypi/x", versions="==1.0")
    with pytest.raises(PolicyError, match="no policy rule 99"):
        remove_rule(db, 99)


def test_a_mal_import_raises_the_policy_counter_an_ordinary_advisory_does_not(
    db: Database,
) -> None:
    cve = parse_advisory(
        {
            "id": "PYSEC-1",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"}, "versions": ["1"]}],
        }
    )
    import_advisories(db, [cve])
    assert policy_generation(db) == 0 and load_policy(db).malware == {}

    import_advisories(db, [real_record("litellm")])
    assert policy_generation(db) == 1
    import_advisories(db, [real_record("litellm")])  # unchanged: no new generation
    assert policy_generation(db) == 1

    policy = load_policy(db)
    decision = decide("litellm", "1.82.7", policy=policy)
    assert decision.mal_id == "MAL-2026-2144" and decision.status == 409
    # One project's policy holds only that project's records.
    assert load_policy(db, "flask").malware == {}
    assert set(load_policy(db, "LiteLLM").malware) == {"litellm"}


def test_hashes_of_every_record_are_indexed(db: Database) -> None:
    import_advisories(
        db, [fake_record("MAL-2026-9", "hashed", sha256="cd" * 32, filename="h-1.tar.gz")]
    )
    decision = decide("other-name", "3", policy=load_policy(db), sha256s=["cd" * 32])
    assert decision.mal_id == "MAL-2026-9"


def test_the_full_policy_reads_a_projects_records_on_first_use(db: Database) -> None:
    import_advisories(
        db,
        [
            real_record("litellm"),
            real_record("pkg-fallback"),
            fake_record("MAL-2026-8", "Two_Names", versions=("1",)),
        ],
    )
    policy = load_policy(db)
    assert policy.records == 3 and set(policy.malware) == {"litellm", "pkg-fallback", "two-names"}
    assert isinstance(policy.malware, StoredMalware)
    assert "flask" not in policy.malware and policy.malware.get(ProjectName("flask")) is None
    # The hash index holds the one record with package_integrity, read up front.
    assert {r.id for r in policy.hashes.values()} == {"MAL-2026-6557"}
    assert decide("litellm", "1.82.8", policy=policy).mal_id == "MAL-2026-2144"
    assert decide("two-names", "1", policy=policy).mal_id == "MAL-2026-8"
