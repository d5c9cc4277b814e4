"""decide(): the policy decision as a pure function over values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fromsource.policy.decide import Policy, decide, project_refusal
from fromsource.policy.malware import malware_record
from fromsource.policy.rules import Rule
from tests.policy.malware_records import fake_record

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVIL_SHA = "ab" * 32


def rule(ident: int, kind: str, project: str, spec: str = "", days: int | None = None) -> Rule:
    return Rule(ident, kind, project, spec, days, f"reason {ident}", NOW, "test")  # type: ignore[arg-type]


def policy(*rules: Rule) -> Policy:
    records = [
        malware_record(fake_record("MAL-2026-1", "Evil_Pkg", versions=("1.1",))),
        malware_record(fake_record("MAL-2026-2", "typo-pkg", everything=True)),
        malware_record(
            fake_record("MAL-2026-3", "hashed", sha256=EVIL_SHA, filename="hashed-0.1.tar.gz")
        ),
    ]
    return Policy.of(rules, [r for r in records if r is not None], generation=4)


def test_nothing_applies_to_an_ordinary_release() -> None:
    decision = decide("flask", "2.0.0", policy=policy())
    assert decision.allowed and decision.verdict == "pass" and not decision.audited
    assert decision.status == 200


def test_a_listed_malicious_version_is_denied_with_its_mal_id_and_409() -> None:
    decision = decide("evil-pkg", "1.1", policy=policy())
    assert (decision.allowed, decision.verdict, decision.mal_id) == (False, "malware", "MAL-2026-1")
    assert decision.status == 409 and decision.audited
    assert "MAL-2026-1" in decision.reason and "Malicious code in Evil_Pkg" in decision.reason
    assert decision.purl == "pkg:pypi/evil-pkg@1.1"
    # Other versions of the same project, and our +fs.N builds of the bad one.
    assert decide("evil-pkg", "1.0", policy=policy()).allowed
    assert decide("Evil.Pkg", "1.1+fs.1", policy=policy()).verdict == "malware"


def test_a_file_hash_from_package_integrity_is_malware_under_any_name() -> None:
    decision = decide("renamed", "9.9", policy=policy(), sha256s=["00" * 32, EVIL_SHA.upper()])
    assert decision.verdict == "malware" and decision.mal_id == "MAL-2026-3"
    assert "hashed-0.1.tar.gz" in decision.reason


def test_block_rules_by_version_specifier() -> None:
    rules = policy(rule(1, "block", "requests", "<2.20"))
    blocked = decide("requests", "2.19.1", policy=rules)
    assert (blocked.verdict, blocked.status, blocked.rule and blocked.rule.id) == ("block", 409, 1)
    assert decide("requests", "2.31.0", policy=rules).allowed


def test_cooldown_defaults_to_seven_days_and_needs_an_upload_time() -> None:
    young = NOW - timedelta(days=6, hours=23)
    decision = decide("flask", "3.0.0", policy=policy(), upload_time=young, now=NOW)
    assert (decision.allowed, decision.verdict, decision.status) == (False, "cooldown", 404)
    assert decision.until == young + timedelta(days=7) and "default" in decision.reason
    old = NOW - timedelta(days=7)
    assert decide("flask", "3.0.0", policy=policy(), upload_time=old, now=NOW).allowed
    # The index's own builds carry no upstream upload time: no cooldown.
    assert decide("flask", "3.0.0", policy=policy()).allowed


def test_the_most_specific_cooldown_rule_wins() -> None:
    rules = policy(
        rule(1, "cooldown", "*", days=30),
        rule(2, "cooldown", "flask", days=2),
        rule(3, "cooldown", "flask", "==3.0.0", days=0),
    )
    three_days = NOW - timedelta(days=3)
    assert not decide("django", "5.0", policy=rules, upload_time=three_days, now=NOW).allowed
    assert decide("flask", "2.9", policy=rules, upload_time=three_days, now=NOW).allowed
    fresh = NOW - timedelta(minutes=1)
    assert decide("flask", "3.0.0", policy=rules, upload_time=fresh, now=NOW).allowed
    denied = decide("flask", "2.9", policy=rules, upload_time=fresh, now=NOW)
    assert denied.rule is not None and denied.rule.id == 2


def test_an_allow_rule_wins_over_malware_block_and_cooldown_and_says_what_it_overrode() -> None:
    rules = policy(
        rule(1, "block", "evil-pkg"),
        rule(2, "allow", "evil-pkg", "==1.1"),
        rule(3, "allow", "flask"),
    )
    allowed = decide("evil-pkg", "1.1", policy=rules)
    assert (allowed.allowed, allowed.verdict, allowed.overridden) == (True, "allow", "malware")
    assert allowed.mal_id == "MAL-2026-1" and allowed.audited and allowed.status == 200
    assert "allow rule 2" in allowed.reason and "MAL-2026-1" in allowed.reason
    # The allow rule names 1.1 only: the block rule still holds 1.0.
    assert decide("evil-pkg", "1.0", policy=rules).verdict == "block"
    young = decide("flask", "3.0", policy=rules, upload_time=NOW, now=NOW)
    assert (young.verdict, young.overridden) == ("allow", "cooldown")
    # An allow rule on a release nothing denies is no event: nothing to audit.
    assert not decide("flask", "3.0", policy=rules).audited


def test_a_whole_project_is_refused_by_an_open_range_or_a_bare_block_rule() -> None:
    refused = project_refusal("Typo_Pkg", policy())
    assert refused is not None and refused.mal_id == "MAL-2026-2" and refused.status == 409
    assert refused.version is None and refused.purl == "pkg:pypi/typo-pkg"
    assert project_refusal("evil-pkg", policy()) is None  # only one version is bad
    blocked = project_refusal("leftpad", policy(rule(1, "block", "leftpad")))
    assert blocked is not None and blocked.verdict == "block"
    assert project_refusal("leftpad", policy(rule(1, "block", "leftpad", "<2"))) is None
    # Any allow rule on the project turns it into a matter of single versions.
    assert project_refusal("typo-pkg", policy(rule(1, "allow", "typo-pkg", "==0.1"))) is None
