"""Rules and purls: value in, value out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fromsource.errors import PolicyError
from fromsource.policy.rules import Rule, Subject, parse_purl, purl_of, version_spec

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def rule(kind: str, project: str, specifier: str = "", days: int | None = None) -> Rule:
    return Rule(1, kind, project, specifier, days, "why", WHEN, "test")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("pkg:pypi/requests", Subject("requests")),
        ("pkg:pypi/Flask_Login@0.6.3", Subject("flask-login", "0.6.3")),
        ("pkg:pypi/flask@2.0.0%2Bfs.1", Subject("flask", "2.0.0+fs.1")),
        ("pkg:pypi/*", Subject("*")),
    ],
)
def test_purls_parse_to_a_normalized_project_and_version(text: str, subject: Subject) -> None:
    assert parse_purl(text) == subject


@pytest.mark.parametrize(
    "text",
    [
        "requests",
        "pkg:npm/left-pad",
        "pkg:pypi/x?file_name=x.whl",
        "pkg:pypi/*@1",
        "pkg:pypi/a%20b",
        "pkg:pypi/-",
        "pkg:pypi/",
    ],
)
def test_other_purls_are_refused_with_the_shape_expected(text: str) -> None:
    with pytest.raises(PolicyError, match="pkg:pypi"):
        parse_purl(text)


def test_purl_of_round_trips_a_local_version() -> None:
    assert purl_of("flask", "2.0.0+fs.1") == "pkg:pypi/flask@2.0.0%2Bfs.1"
    assert parse_purl(purl_of("flask", "2.0.0+fs.1")) == Subject("flask", "2.0.0+fs.1")


def test_version_spec_from_purl_or_specifier_not_both() -> None:
    assert version_spec(Subject("x", "1.0"), None) == "==1.0"
    assert version_spec(Subject("x"), ">=1.4,!=1.5") == "!=1.5,>=1.4"
    assert version_spec(Subject("x"), None) == ""
    with pytest.raises(PolicyError, match="not both"):
        version_spec(Subject("x", "1.0"), "<2")
    with pytest.raises(PolicyError, match="specifier"):
        version_spec(Subject("x"), "two")
    with pytest.raises(PolicyError, match="PEP 440"):
        version_spec(Subject("x", "not a version"), None)


def test_a_rule_covers_its_versions_prereleases_and_local_builds() -> None:
    exact = rule("block", "x", "==1.0")
    assert exact.covers("x", "1.0") and exact.covers("x", "1.0+fs.2")
    assert not exact.covers("x", "1.1") and not exact.covers("y", "1.0")
    below = rule("block", "x", "<2")
    assert below.covers("x", "1.9rc1") and not below.covers("x", "2.0")
    assert not below.covers("x", "2.0rc1")  # PEP 440: <2 excludes pre-releases of 2
    assert rule("block", "x").covers("x", "anything-at-all")
    assert not below.covers("x", "anything-at-all")
    assert rule("cooldown", "*", days=3).covers("whatever", "1")


def test_a_rule_names_its_subject_as_a_purl() -> None:
    assert rule("block", "x", "==1.0").purl == "pkg:pypi/x@1.0"
    assert rule("block", "x", "<2").subject == "pkg:pypi/x <2"
    assert rule("block", "x").subject == "pkg:pypi/x"
    assert rule("cooldown", "*", days=3).to_json()["purl"] == "pkg:pypi/*"
