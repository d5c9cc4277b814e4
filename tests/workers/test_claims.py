"""Build claims: the decision rule as values, and the database adapters on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fromsource.build.history import create_build, get_build
from fromsource.store.db import Database, open_database
from fromsource.workers import claims
from fromsource.workers.claims import Acquired, Busy, ClaimView, Done, Target
from tests.fleet.conftest import FLEET, postgres  # noqa: F401

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TARGET = Target("python", "demo-pkg", "1.0")


def _view(state: str, *, lease: int = 0, finished: int | None = None) -> ClaimView:
    return ClaimView(
        key=TARGET.key, repo="python", project="demo-pkg", version="1.0", state=state,
        owner="w1", lease_until=T0 + timedelta(seconds=lease), build_id=1, attempts=1,
        revision=0, request={},
        finished_at=T0 + timedelta(seconds=finished) if finished is not None else None,
    )


@pytest.mark.parametrize(
    ("view", "requested", "expected"),
    [
        (None, 0, "insert"),
        (_view("running", lease=30), 0, "busy"),
        (_view("running", lease=-1), 0, "take"),
        (_view("queued", lease=300), 0, "take"),
        (_view("succeeded", finished=-100), 0, "done"),
        (_view("failed", finished=5), 0, "done"),  # failed after the request: it answered it
        (_view("failed", finished=-5), 0, "take"),  # failed before: build again
    ],
)
def test_decide(view: ClaimView | None, requested: int, expected: str) -> None:
    assert claims.decide(view, now=T0, requested_at=T0 + timedelta(seconds=requested)) == expected


def test_keys_differ_per_repo_project_version() -> None:
    keys = {Target(r, p, v).key for r in ("python", "python-remediated") for p in ("a", "b")
            for v in ("1.0", "1.0+fs.1")}
    assert len(keys) == 8 and all(len(k) == 64 for k in keys)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=FLEET)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database: SQLite, and PostgreSQL where the fleet services are available."""
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'claims.db'}")
    else:
        database = open_database(request.getfixturevalue("postgres").database())
    yield database
    database.dispose()


def test_acquire_busy_release_done(db: Database) -> None:
    first = claims.acquire(db, TARGET, "w1", lease_seconds=30, requested_at=T0, now=T0)
    assert isinstance(first, Acquired) and first.stale is None
    other = claims.acquire(db, TARGET, "w2", lease_seconds=30, requested_at=T0, now=T0)
    assert isinstance(other, Busy) and other.owner == "w1"
    assert claims.renew(db, TARGET.key, "w1", 30, now=T0 + timedelta(seconds=20))
    assert not claims.renew(db, TARGET.key, "w2", 30)  # not the owner
    assert not claims.release(db, TARGET.key, "w2", succeeded=True, build_id=1)
    assert claims.release(db, TARGET.key, "w1", succeeded=True, build_id=7, now=T0)
    later = claims.acquire(db, TARGET, "w3", lease_seconds=30, requested_at=T0, now=T0)
    assert later == Done(TARGET.key, "succeeded", 7)


def test_expired_lease_is_taken_over_and_the_old_build_closed(db: Database) -> None:
    claims.acquire(db, TARGET, "w1", lease_seconds=5, requested_at=T0, now=T0)
    dead_build = create_build(db, "demo-pkg", "1.0", "python")
    assert claims.attach_build(db, TARGET.key, "w1", dead_build)
    still = claims.acquire(db, TARGET, "w2", lease_seconds=5, requested_at=T0,
                           now=T0 + timedelta(seconds=4))
    assert isinstance(still, Busy)
    taken = claims.acquire(db, TARGET, "w2", lease_seconds=5, requested_at=T0,
                           now=T0 + timedelta(seconds=6))
    assert isinstance(taken, Acquired) and taken.stale is not None
    assert taken.stale.owner == "w1" and taken.stale.build_id == dead_build
    claims.mark_worker_lost(db, dead_build, "worker w1 stopped")
    record = get_build(db, dead_build)
    assert record is not None and record.status == "failed"
    assert record.details["category"] == "worker-lost"
    assert not claims.renew(db, TARGET.key, "w1", 5)  # the dead worker, if it woke up
    view = claims.get_claim(db, TARGET.key)
    assert view is not None and view.owner == "w2" and view.attempts == 2


def test_failure_answers_requests_made_before_it_ended(db: Database) -> None:
    claims.acquire(db, TARGET, "w1", lease_seconds=30, requested_at=T0, now=T0)
    claims.release(db, TARGET.key, "w1", succeeded=False, build_id=3,
                   now=T0 + timedelta(seconds=10))
    same_time = claims.acquire(db, TARGET, "w2", lease_seconds=30,
                               requested_at=T0 + timedelta(seconds=1), now=T0 + timedelta(seconds=11))
    assert same_time == Done(TARGET.key, "failed", 3)
    newer = claims.acquire(db, TARGET, "w2", lease_seconds=30,
                           requested_at=T0 + timedelta(seconds=11), now=T0 + timedelta(seconds=12))
    assert isinstance(newer, Acquired)


def test_requeue_expired_hands_each_dead_claim_to_one_sweeper(db: Database) -> None:
    claims.acquire(db, TARGET, "w1", lease_seconds=5, requested_at=T0, now=T0,
                   request={"requirement": "demo-pkg==1.0", "repo": "python"})
    build = create_build(db, "demo-pkg", "1.0", "python")
    claims.attach_build(db, TARGET.key, "w1", build)
    assert claims.requeue_expired(db, "s1", lease_seconds=5, now=T0 + timedelta(seconds=1)) == []
    won = claims.requeue_expired(db, "s1", lease_seconds=5, now=T0 + timedelta(seconds=6))
    assert [v.request["requirement"] for v in won] == ["demo-pkg==1.0"]
    assert claims.requeue_expired(db, "s2", lease_seconds=5, now=T0 + timedelta(seconds=7)) == []
    record = get_build(db, build)
    assert record is not None and record.details["category"] == "worker-lost"
    # The re-sent task takes the queued claim at once.
    taken = claims.acquire(db, TARGET, "w2", lease_seconds=5, requested_at=T0,
                           now=T0 + timedelta(seconds=8))
    assert isinstance(taken, Acquired) and taken.stale is None


def test_racing_builders_one_wins(db: Database) -> None:
    results: list[object] = []
    barrier = threading.Barrier(6)

    def race(owner: str) -> None:
        barrier.wait()
        results.append(claims.acquire(db, TARGET, owner, lease_seconds=30, requested_at=T0))

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, Acquired) for r in results) == 1
    assert sum(isinstance(r, Busy) for r in results) == 5


def test_heartbeat_keeps_the_lease_alive(db: Database) -> None:
    claims.acquire(db, TARGET, "w1", lease_seconds=0.3, requested_at=T0)
    with claims.Heartbeat(db, TARGET.key, "w1", 0.3) as beat:
        threading.Event().wait(0.8)
        assert isinstance(
            claims.acquire(db, TARGET, "w2", lease_seconds=0.3, requested_at=T0), Busy
        )
    assert not beat.lost
    threading.Event().wait(0.4)
    assert isinstance(claims.acquire(db, TARGET, "w2", lease_seconds=0.3, requested_at=T0), Acquired)


def test_a_target_of_a_release_has_a_claim_of_its_own() -> None:
    keys = {Target("python", "a", "1.0", slot=s, tag=t).key
            for s in (1, 2) for t in (None, "cp311-cp311-linux_x86_64", "cp312-cp312-linux_x86_64")}
    assert len(keys) == 6
    assert Target("python", "a", "1.0", slot=1).key == Target("python", "a", "1.0").key


def test_workers_with_different_targets_do_not_refuse_each_other(db: Database) -> None:
    py311, py312 = "cp311-cp311-linux_x86_64", "cp312-cp312-linux_x86_64"
    lead = Target("python", "demo-pkg", "1.0", slot=1)
    # worker a (3.11) leads slot 1 and builds its own target; worker b (3.12) builds the
    # target a routed to it, slot 1
    assert isinstance(claims.acquire(db, lead, "worker@a:1:x", lease_seconds=30,
                                     requested_at=T0, slots=2, tags=[py311]), Acquired)
    routed = Target("python", "demo-pkg", "1.0", slot=1, tag=py312)
    assert isinstance(claims.acquire(db, routed, "worker@b:1:x", lease_seconds=30,
                                     requested_at=T0, slots=2, tags=[py312]), Acquired)
    # the same target for the same slot is never built twice
    again = claims.acquire(db, routed, "worker@c:1:x", lease_seconds=30, requested_at=T0,
                           slots=2, tags=[py312])
    assert isinstance(again, Busy)
    # slot 2 of 3.12: b built slot 1 of it, so b is refused and c is not
    second = Target("python", "demo-pkg", "1.0", slot=2, tag=py312)
    refused = claims.acquire(db, second, "worker@b:1:y", lease_seconds=30, requested_at=T0,
                             slots=2, tags=[py312])
    assert isinstance(refused, claims.Refused) and refused.twin.key == routed.key
    assert isinstance(claims.acquire(db, second, "worker@c:1:y", lease_seconds=30,
                                     requested_at=T0, slots=2, tags=[py312]), Acquired)
    # leading slot 2 with 3.11 as well: a led slot 1 (it built 3.11 there), b did not
    lead2 = Target("python", "demo-pkg", "1.0", slot=2)
    assert isinstance(claims.acquire(db, lead2, "worker@a:1:z", lease_seconds=30,
                                     requested_at=T0, slots=2, tags=[py311]), claims.Refused)
    # leading slot 2 with 3.12 among its targets: b built 3.12 of slot 1, so it is refused
    assert isinstance(claims.acquire(db, lead2, "worker@b:1:z", lease_seconds=30,
                                     requested_at=T0, slots=2, tags=[py311, py312]),
                      claims.Refused)
    assert isinstance(claims.acquire(db, lead2, "worker@d:1:z", lease_seconds=30,
                                     requested_at=T0, slots=2, tags=[py311, py312]), Acquired)


def test_a_disagreement_fails_the_routed_targets_slots_too(db: Database) -> None:
    py312 = "cp312-cp312-linux_x86_64"
    release = Target("python", "demo-pkg", "1.0")
    for slot, owner in ((1, "worker@b:1:x"), (2, "worker@c:1:x")):
        routed = Target("python", "demo-pkg", "1.0", slot=slot, tag=py312)
        claims.acquire(db, routed, owner, lease_seconds=30, requested_at=T0, now=T0,
                       slots=2, tags=[py312])
        claims.release(db, routed.key, owner, succeeded=True, build_id=slot, now=T0)
    claims.fail_slots(db, release, 2, tag=py312)
    for slot in (1, 2):
        view = claims.get_claim(db, Target("python", "demo-pkg", "1.0", slot=slot, tag=py312).key)
        assert view is not None and view.state == "failed"
