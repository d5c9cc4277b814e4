"""Routing in a fleet (issue 12): the wanted targets, the lead, which targets go where.

Pure values in, values out: no services.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from packaging.tags import Tag, parse_tag

from fromsource.build.targets import Target
from fromsource.workers.request import BuildRequest
from fromsource.workers.routing import (
    QUEUE,
    Advert,
    fleet_view,
    lead_target,
    placeholder,
    queue_name,
    routes,
    unserved,
    worker_queues,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _target(minor: int, free_threaded: bool = False, platform: str = "linux_x86_64") -> Target:
    abi = f"cp3{minor}" + ("t" if free_threaded else "")
    return Target(
        version=f"3.{minor}",
        full_version=f"3.{minor}.1",
        python_tag=f"cp3{minor}",
        abi_tag=abi,
        platform_tag=platform,
        interpreter=f"/usr/bin/python3.{minor}",
        glibc="2.36",
    )


PY310, PY311, PY312, PY313, PY313T = (
    _target(10), _target(11), _target(12), _target(13), _target(13, True)
)


def _advert(name: str, *targets: Target, seen: float = 0, interval: float = 2.0) -> Advert:
    return Advert(
        worker=f"worker@{name}:1",
        host=name,
        targets=targets,
        started=NOW - timedelta(hours=1),
        last_seen=NOW - timedelta(seconds=seen),
        interval=interval,
    )


def _tags(*wheels: str) -> list[frozenset[Tag]]:
    return [frozenset(parse_tag(w)) for w in wheels]


def test_each_target_has_its_queue_beside_the_whole_release_queue() -> None:
    assert queue_name(PY312.tag) == "fromsource-builds.cp312-cp312-linux_x86_64"
    assert worker_queues([PY311, PY312, PY311]) == (
        QUEUE,
        "fromsource-builds.cp311-cp311-linux_x86_64",
        "fromsource-builds.cp312-cp312-linux_x86_64",
    )


def test_a_request_goes_to_its_targets_queue_and_round_trips() -> None:
    whole = BuildRequest("demo==1.0")
    routed = BuildRequest("demo==1.0", slot=2, target=PY312.tag)
    led = BuildRequest("demo==1.0", lead=PY311.tag)
    assert whole.queue == QUEUE
    assert routed.queue == queue_name(PY312.tag)
    assert led.queue == queue_name(PY311.tag)
    for request in (whole, routed, led):
        assert BuildRequest.from_json(request.to_json()) == request
    assert "target" not in whole.to_json() and "lead" not in whole.to_json()


def test_an_advert_is_live_for_three_refreshes_and_at_least_fifteen_seconds() -> None:
    assert _advert("a", PY311, seen=14).live(NOW)
    assert not _advert("a", PY311, seen=16).live(NOW)
    assert _advert("a", PY311, seen=170, interval=60).live(NOW)
    assert not _advert("a", PY311, seen=190, interval=60).live(NOW)


@pytest.mark.parametrize(
    ("entry", "tag"),
    [
        ("3.13", "cp313-cp313-linux_x86_64"),
        (" 3.13t ", "cp313-cp313t-linux_x86_64"),
        ("cp314", "cp314-cp314-linux_x86_64"),
        ("cp312-cp312-linux_aarch64", "cp312-cp312-linux_aarch64"),
        ("pypy3.10", None),
        ("cp312-abi3-linux_x86_64", None),
    ],
)
def test_a_placeholder_stands_for_a_target_nobody_has(entry: str, tag: str | None) -> None:
    made = placeholder(entry, PY311)
    assert (made.tag if made else None) == tag
    if made is not None:
        assert made.interpreter == ""
        # glibc is known only on the platform of the model target
        assert made.glibc == ("2.36" if made.platform_tag == "linux_x86_64" else None)


def test_by_default_the_fleet_wants_what_its_live_workers_have() -> None:
    adverts = [
        _advert("b", PY312, PY313T),
        _advert("gone", PY313, seen=600),  # stale: not wanted by default
    ]
    view = fleet_view(adverts, [PY311], [], NOW)
    assert [t.tag for t in view.wanted] == [PY311.tag, PY312.tag]  # no free-threaded
    assert view.live == {PY311.tag, PY312.tag, PY313T.tag}  # this worker is live too


def test_build_pythons_wants_a_target_even_when_no_live_worker_has_it() -> None:
    stale = Target(**{**PY313.__dict__, "full_version": "3.13.5"})
    adverts = [_advert("b", PY312, PY310), _advert("gone", stale, seen=600)]
    view = fleet_view(adverts, [PY311], ["3.11", "3.12", "3.13", "3.14", "3.13t"], NOW)
    wanted = {t.tag: t for t in view.wanted}
    assert list(wanted) == [
        PY311.tag, PY312.tag, stale.tag, "cp313-cp313t-linux_x86_64", "cp314-cp314-linux_x86_64"
    ]
    assert wanted[stale.tag].full_version == "3.13.5"  # the stale worker's own description
    assert wanted["cp314-cp314-linux_x86_64"].interpreter == ""  # a placeholder
    assert PY310.tag not in wanted  # not asked for
    assert unserved(view.wanted, view.live) == tuple(view.wanted[2:])


def test_the_lead_is_the_oldest_target_unless_nobody_can_build_it_now() -> None:
    supported = [PY310, PY311, PY312]
    assert lead_target(supported, [PY312.tag], [PY310.tag, PY312.tag], strict=False) == PY310
    # 3.10's worker is gone: this worker (3.12) or a live 3.11 one leads
    assert lead_target(supported, [PY312.tag], [PY311.tag], strict=False) == PY311
    assert lead_target(supported, [PY312.tag], [], strict=False) == PY312
    # agreeing builds must use the same interpreter: always the oldest
    assert lead_target(supported, [PY312.tag], [], strict=True) == PY310
    assert lead_target([], [PY312.tag], [], strict=True) is None


def test_a_pure_wheel_leaves_nothing_to_route() -> None:
    assert routes([PY311, PY312, PY313], _tags("py3-none-any"), [PY311]) == ()


def test_an_extension_wheel_routes_every_other_interpreter() -> None:
    built = _tags("cp311-cp311-manylinux_2_17_x86_64")
    assert routes([PY311, PY312, PY313], built, [PY311]) == (PY312, PY313)


def test_an_abi3_wheel_routes_only_what_the_stable_abi_cannot_serve() -> None:
    built = _tags("cp311-abi3-manylinux_2_17_x86_64")
    assert routes([PY311, PY312, PY313, PY313T], built, [PY311]) == (PY313T,)


def test_a_failed_local_build_is_not_routed_elsewhere_but_the_others_are() -> None:
    # this worker has 3.11 and 3.12; 3.11 failed (no wheel), 3.12 built its own
    built = _tags("cp312-cp312-linux_x86_64")
    assert routes([PY311, PY312, PY313], built, [PY311, PY312]) == (PY313,)


def test_published_wheels_of_other_platforms_do_not_count() -> None:
    arm = _target(12, platform="linux_aarch64")
    built = _tags("cp312-cp312-manylinux_2_17_x86_64")
    assert routes([PY312, arm], built, []) == (arm,)
