"""Which upstream files python-upstream offers and follow queues: values in, values out."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from packaging.tags import parse_tag

from fromsource.indexclient import ProjectFile
from fromsource.policy import Policy, Rule, malware_record
from fromsource.proxy.offers import (
    decide_file,
    new_releases,
    offers,
    on_demand,
    shadowed,
    tags_overlap,
)
from tests.policy.malware_records import fake_record

NOW = datetime(2026, 3, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=30)
YOUNG = NOW - timedelta(days=2)
PAGE = "https://upstream.invalid/simple/demo/"


def _file(
    name: str, when: datetime | None = OLD, sha: str | None = None, **kw: object
) -> ProjectFile:
    digest = sha or hashlib.sha256(name.encode()).hexdigest()
    return ProjectFile(name, PAGE + name, digest, upload_time=when, **kw)  # type: ignore[arg-type]


def _rule(ident: int, kind: str, project: str, spec: str = "", days: int | None = None) -> Rule:
    return Rule(ident, kind, project, spec, days, "test", OLD, "test")  # type: ignore[arg-type]


def _policy(*rules: Rule, records: tuple[object, ...] = ()) -> Policy:
    found = [malware_record(r) for r in records]  # type: ignore[arg-type]
    return Policy.of(rules, [r for r in found if r is not None])


def test_each_file_is_decided_by_its_release_its_digests_and_its_own_upload_time() -> None:
    bad_digest = "e" * 64
    files = [
        _file("demo-1.0.tar.gz"),
        _file("demo-1.0-py3-none-any.whl", when=YOUNG),  # a wheel added late waits too
        _file("demo-1.1.tar.gz"),  # a MAL record names 1.1
        _file("demo-1.2.tar.gz"),
        _file("demo-1.2-py3-none-any.whl", sha=bad_digest),  # one file of 1.2 is known malware
        _file("demo-1.3.tar.gz"),  # blocked
        _file("demo-1.4.tar.gz", when=None),  # no upload time
        ProjectFile("demo-1.5.tar.gz", PAGE, None, upload_time=OLD),  # no digest: not offered
        _file("other-1.0.tar.gz"),  # another project's file
        _file("demo-1.6.exe"),
    ]
    policy = _policy(
        _rule(1, "block", "demo", "==1.3"),
        records=(
            fake_record("MAL-1", "demo", versions=("1.1",)),
            fake_record("MAL-2", "elsewhere", sha256=bad_digest, filename="x.whl"),
        ),
    )
    found = {o.filename: o for o in offers("Demo", files, policy=policy, now=NOW)}
    assert set(found) == {
        "demo-1.0.tar.gz",
        "demo-1.0-py3-none-any.whl",
        "demo-1.1.tar.gz",
        "demo-1.2.tar.gz",
        "demo-1.2-py3-none-any.whl",
        "demo-1.3.tar.gz",
        "demo-1.4.tar.gz",
    }
    verdicts = {name: (o.decision.allowed, o.decision.verdict) for name, o in found.items()}
    assert verdicts == {
        "demo-1.0.tar.gz": (True, "pass"),
        "demo-1.0-py3-none-any.whl": (False, "cooldown"),
        "demo-1.1.tar.gz": (False, "malware"),
        "demo-1.2.tar.gz": (False, "malware"),
        "demo-1.2-py3-none-any.whl": (False, "malware"),
        "demo-1.3.tar.gz": (False, "block"),
        "demo-1.4.tar.gz": (False, "cooldown"),
    }
    assert found["demo-1.2.tar.gz"].decision.mal_id == "MAL-2"
    assert found["demo-1.0-py3-none-any.whl"].decision.status == 404
    assert found["demo-1.1.tar.gz"].decision.status == 409
    assert "gives no upload time" in found["demo-1.4.tar.gz"].decision.reason
    assert found["demo-1.0-py3-none-any.whl"].version == "1.0"
    assert found["demo-1.0-py3-none-any.whl"].kind == "wheel"


def test_an_allow_rule_and_a_zero_cooldown_let_files_through() -> None:
    files = [_file("demo-1.1.tar.gz"), _file("demo-1.4.tar.gz", when=None)]
    policy = _policy(
        _rule(1, "allow", "demo", "==1.1"),
        _rule(2, "cooldown", "demo", "==1.4", days=0),
        records=(fake_record("MAL-1", "demo", versions=("1.1",)),),
    )
    found = {o.filename: o.decision for o in offers("demo", files, policy=policy, now=NOW)}
    allowed = found["demo-1.1.tar.gz"]
    assert (allowed.allowed, allowed.verdict, allowed.overridden, allowed.mal_id) == (
        True,
        "allow",
        "malware",
        "MAL-1",
    )
    assert found["demo-1.4.tar.gz"].allowed
    assert decide_file("demo", "2.0", policy=Policy(), upload_time=YOUNG, sha256s=(), now=NOW).until


@pytest.mark.parametrize(
    ("ours", "theirs", "overlap"),
    [
        ("py3-none-any", "cp312-cp312-manylinux_2_17_x86_64", True),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux2014_x86_64", True),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux_2_28_aarch64", False),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-musllinux_1_1_x86_64", False),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp313-cp313-manylinux_2_17_x86_64", False),
        ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-win_amd64", False),
        ("cp39-abi3-manylinux_2_17_x86_64", "cp313-cp313-manylinux_2_17_x86_64", True),
        ("cp313-cp313-manylinux_2_17_x86_64", "cp313-cp313t-manylinux_2_17_x86_64", False),
        ("cp312-cp312-macosx_11_0_arm64", "cp312-cp312-macosx_10_9_universal2", True),
        ("cp312-cp312-macosx_10_9_x86_64", "cp312-cp312-macosx_11_0_arm64", False),
        ("cp312-cp312-manylinux_2_17_x86_64", "py3-none-any", True),
        ("cp312-cp312-manylinux_2_17_x86_64", "pp310-pypy310_pp73-manylinux_2_17_x86_64", False),
        ("py2-none-any", "py3-none-any", False),
    ],
)
def test_tag_sets_overlap_when_one_machine_could_install_either(
    ours: str, theirs: str, overlap: bool
) -> None:
    assert tags_overlap(parse_tag(ours), parse_tag(theirs)) is overlap
    assert tags_overlap(parse_tag(theirs), parse_tag(ours)) is overlap


def test_the_index_own_files_win_per_version_and_per_target() -> None:
    page = [
        _file("demo-1.0.tar.gz"),
        _file("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
        _file("demo-1.0-cp312-cp312-win_amd64.whl"),
        _file("demo-2.0.tar.gz"),
        _file("demo-2.0-py3-none-any.whl"),
        _file("demo-3.0-cp312-cp312-win_amd64.whl"),
    ]
    own = [
        "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "demo-1.0.tar.gz",
        "demo-2.0+fs.1-py3-none-any.whl",  # a remediated build of 2.0 counts as 2.0
    ]
    listed = offers("demo", page, policy=Policy(), now=NOW)
    shown = [o.filename for o in listed if not shadowed(o, own)]
    assert shown == ["demo-1.0-cp312-cp312-win_amd64.whl", "demo-3.0-cp312-cp312-win_amd64.whl"]


def test_new_releases_are_the_final_ones_after_the_newest_carried_with_an_sdist() -> None:
    page = [
        _file("demo-1.0.tar.gz"),
        _file("demo-1.1.tar.gz"),
        _file("demo-1.1-py3-none-any.whl", when=YOUNG),  # the sdist's time counts for a build
        _file("demo-1.2-py3-none-any.whl"),  # no sdist: nothing to build from
        _file("demo-1.3.tar.gz", yanked=True),
        _file("demo-1.4rc1.tar.gz"),
        _file("demo-1.5.tar.gz", when=YOUNG),
        _file("demo-1.6.tar.gz"),  # malware
        _file("demo-1.7.tar.gz"),
    ]
    policy = _policy(records=(fake_record("MAL-9", "demo", versions=("1.6",)),))
    found = new_releases("demo", page, ["1.0+fs.2", "0.9"], policy=policy, now=NOW)
    assert [(r.version, r.decision.verdict) for r in found] == [
        ("1.1", "pass"),
        ("1.5", "cooldown"),
        ("1.6", "malware"),
        ("1.7", "pass"),
    ]
    assert found[0].requirement == "demo==1.1"
    assert new_releases("demo", page, ["not-a-version"], policy=policy, now=NOW) == []


def test_on_demand_never_lets_the_builder_pick_a_release_policy_holds_back() -> None:
    # Regression: build-on-demand queued the bare project name, so the builder took the
    # newest release even inside its cooldown.
    page = [
        _file("demo-1.0.tar.gz"),
        _file("demo-1.1.tar.gz", when=YOUNG),  # an older release's late upload: cooldown too
        _file("demo-1.2.tar.gz"),  # malware
        _file("demo-1.3.tar.gz"),
        _file("demo-1.4rc1.tar.gz", when=YOUNG),  # a pre-release: never picked anyway
        _file("demo-2.0.tar.gz", when=YOUNG),
        _file("demo-2.1.tar.gz", when=None),  # no upload time: weighed as published now
    ]
    policy = _policy(records=(fake_record("MAL-9", "demo", versions=("1.2",)),))
    demand = on_demand("Demo", page, policy=policy, now=NOW)
    assert demand.newest is not None and demand.newest.version == "1.3"
    assert demand.requirement == "demo<=1.3,!=1.1,!=1.2"
    assert [(r.version, r.decision.verdict) for r in demand.held] == [
        ("2.0", "cooldown"),
        ("2.1", "cooldown"),
    ]
    assert demand.message.startswith("demo: demo<=1.3,!=1.1,!=1.2 queued; held back: demo 2.0 ")
    assert "so it is used from 2026-03-06" in demand.message

    # An allow rule wins over the cooldown (and says so); a cooldown of 0 days lets all through.
    allowed = on_demand(
        "demo", page, policy=_policy(_rule(1, "allow", "demo", "==2.0")), now=NOW
    )
    assert allowed.requirement == "demo<=2.0,!=1.1" and allowed.newest is not None
    assert allowed.newest.decision.verdict == "allow"
    assert "let through by allow rule 1" in allowed.message
    open_ = on_demand("demo", page, policy=_policy(_rule(1, "cooldown", "*", days=0)), now=NOW)
    assert open_.requirement == "demo<=2.1" and open_.held == ()


def test_on_demand_queues_nothing_when_policy_lets_no_release_through() -> None:
    page = [_file("young-1.0.tar.gz", when=YOUNG), _file("young-1.0-py3-none-any.whl")]
    demand = on_demand("young", page, policy=_policy(), now=NOW)
    assert demand.requirement is None and demand.newest is None
    assert [r.version for r in demand.held] == ["1.0"]
    assert demand.message.startswith(
        "young is not built on demand: policy lets no release through (young 1.0 was published "
        "2 day(s) ago; the cooldown (the default) is 7 day(s)"
    )
    wheels_only = on_demand("young", page[1:], policy=_policy(), now=NOW)
    assert wheels_only.requirement is None
    assert wheels_only.message == "young: the upstream lists no final release with an sdist"
