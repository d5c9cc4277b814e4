"""Version matching over OSV ranges and version lists (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from fromsource.remediate.match import classify, fixed_by, is_affected, range_includes
from fromsource.remediate.osv import Advisory, Event, Range, load_advisories, parse_advisory

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "advisories"


def advisory(events: list[dict[str, str]], *, versions: tuple[str, ...] = (),
             name: str = "demo", ident: str = "T-1", **extra: object) -> Advisory:
    return parse_advisory({
        "id": ident, "aliases": ["CVE-2000-1"],
        "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                      "ranges": [{"type": "ECOSYSTEM", "events": events}],
                      "versions": list(versions)}],
        **extra,
    })


def rng(*events: tuple[str, str], kind: str = "ECOSYSTEM") -> Range:
    return Range(kind, tuple(Event(k, v) for k, v in events))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1", True), ("2.2.4", True), ("2.2.5", False), ("2.3.0rc1", False),
     ("2.3.0", True), ("2.3.1", True), ("2.3.2", False), ("3.0", False),
     ("2.0.0rc1", True), ("1!0.1", False)],
)
def test_two_windows_out_of_order(version: str, expected: bool) -> None:
    # the urllib3 record lists the later window first
    r = rng(("introduced", "2.3.0"), ("fixed", "2.3.2"), ("introduced", "0"), ("fixed", "2.2.5"))
    assert range_includes(r, Version(version)) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.4", False), ("1.5", True), ("1.9.9", True), ("2.0", True), ("2.0.post1", False),
     ("2.0.1", False)],
)
def test_last_affected_is_inclusive(version: str, expected: bool) -> None:
    r = rng(("introduced", "1.5"), ("last_affected", "2.0"))
    assert range_includes(r, Version(version)) is expected


def test_introduced_only_means_every_later_version() -> None:
    r = rng(("introduced", "0"))
    assert range_includes(r, Version("0.0.1")) and range_includes(r, Version("99"))


def test_limit_bounds_the_range() -> None:
    r = rng(("introduced", "0"), ("limit", "3.0"))
    assert range_includes(r, Version("2.9")) and not range_includes(r, Version("3.0"))


def test_git_ranges_and_bad_versions_are_ignored() -> None:
    assert not range_includes(rng(("introduced", "0"), kind="GIT"), Version("1.0"))
    assert not range_includes(rng(("introduced", "0"), ("fixed", "not-a-version!")),
                              Version("1.0"))


def test_explicit_versions_without_ranges() -> None:
    adv = parse_advisory({"id": "T-2", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "Demo.Pkg"}, "versions": ["1.0", "1.2rc1"]}]})
    assert is_affected(adv, "demo-pkg", "1.0.0")  # PEP 440 equality
    assert is_affected(adv, "DEMO_pkg", "1.2rc1")
    assert not is_affected(adv, "demo-pkg", "1.1")
    assert not is_affected(adv, "other", "1.0")


def test_local_versions_match_as_their_public_part() -> None:
    adv = advisory([{"introduced": "0"}, {"fixed": "2.2.5"}], versions=("2.0.0",))
    assert is_affected(adv, "demo", "2.0.0+fs.1")
    assert is_affected(adv, "demo", Version("2.0.0+cpu"))
    assert not is_affected(adv, "demo", "2.2.5+fs.3")


def test_withdrawn_affects_nothing() -> None:
    adv = advisory([{"introduced": "0"}], withdrawn="2024-01-01T00:00:00Z")
    assert not is_affected(adv, "demo", "1.0")


def test_classify_moves_patched_advisories_to_fixed() -> None:
    a = advisory([{"introduced": "0"}, {"fixed": "3"}], ident="T-1")
    b = advisory([{"introduced": "0"}, {"fixed": "3"}], ident="T-2")
    c = advisory([{"introduced": "5"}], ident="T-3")
    result = classify([b, a, c, a], "demo", "2.0+fs.1", fixes=("T-2",))
    assert [x.id for x in result.affecting] == ["T-1"]
    assert [x.id for x in result.fixed] == ["T-2"]
    assert result.version == "2.0+fs.1"
    # an alias is as good as the id
    assert fixed_by(a, {"CVE-2000-1"})
    assert classify([a], "demo", "2.0", fixes=()).fixed == ()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/advisories is not present")
def test_real_records() -> None:
    records = load_advisories(SHARED)
    flask = classify(records, "flask", "2.0.0")
    assert "PYSEC-2023-62" in {a.id for a in flask.affecting}
    assert "PYSEC-2023-62" not in {a.id for a in classify(records, "flask", "2.2.5").affecting}
    patched = classify(records, "flask", "2.0.0+fs.1",
                       fixes=("PYSEC-2023-62", "CVE-2023-30861"))
    assert [a.id for a in patched.fixed] == ["PYSEC-2023-62"]
    urllib3 = {a.id for a in classify(records, "urllib3", "2.0.5").affecting}
    assert "PYSEC-2023-192" in urllib3
    assert "PYSEC-2023-192" not in {a.id for a in classify(records, "urllib3", "2.0.6").affecting}
