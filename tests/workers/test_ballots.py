"""Independent builds in the claims (issue 17): one slot per worker, ballots that complete once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fromsource.store.db import Database, open_database
from fromsource.workers import ballots, claims
from fromsource.workers.claims import Acquired, Refused, Target
from tests.fleet.conftest import FLEET, postgres  # noqa: F401

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FIRST = Target("python", "demo-pkg", "1.0")
SECOND = Target("python", "demo-pkg", "1.0", slot=2)
A1, A2, B1 = "worker@host-a:11:aa01", "worker@host-a:11:aa02", "worker@host-b:22:bb01"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=FLEET)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'ballots.db'}")
    else:
        database = open_database(request.getfixturevalue("postgres").database())
    yield database
    database.dispose()


def _acquire(db: Database, target: Target, owner: str) -> object:
    return claims.acquire(db, target, owner, lease_seconds=30, requested_at=T0, now=T0, slots=2)


def test_slot_keys_and_workers() -> None:
    assert FIRST.key == Target("python", "demo-pkg", "1.0").key  # one build: unchanged
    assert SECOND.key != FIRST.key and len(SECOND.key) == 64
    assert claims.worker_of(A1) == claims.worker_of(A2) == "worker@host-a:11"
    assert claims.worker_of(B1) == "worker@host-b:22"


def test_a_worker_never_holds_two_slots_of_a_release(db: Database) -> None:
    assert isinstance(_acquire(db, FIRST, A1), Acquired)
    # Another attempt (thread) of the same worker process is refused the second slot ...
    refused = _acquire(db, SECOND, A2)
    assert isinstance(refused, Refused) and refused.twin.owner == A1
    assert claims.get_claim(db, SECOND.key) is None
    # ... and still after it built the first; another worker takes it.
    assert claims.release(db, FIRST.key, A1, succeeded=True, build_id=1, now=T0)
    assert isinstance(_acquire(db, SECOND, A2), Refused)
    assert isinstance(_acquire(db, SECOND, B1), Acquired)
    # With one build per release nothing is refused.
    other = Target("python", "other-pkg", "1.0")
    assert isinstance(claims.acquire(db, other, A1, lease_seconds=30, requested_at=T0), Acquired)


def test_one_worker_taking_both_slots_at_once_gives_one_back(db: Database) -> None:
    results: dict[int, object] = {}
    barrier = threading.Barrier(2)

    def take(target: Target, owner: str) -> None:
        barrier.wait()
        results[target.slot] = _acquire(db, target, owner)

    threads = [
        threading.Thread(target=take, args=(FIRST, A1)),
        threading.Thread(target=take, args=(SECOND, A2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [
        slot
        for slot, result in results.items()
        if isinstance(result, Acquired)
        and (view := claims.get_claim(db, (FIRST if slot == 1 else SECOND).key)) is not None
        and view.state == "running"
    ]
    assert len(held) <= 1, results
    for slot, result in results.items():
        if isinstance(result, Refused):  # given back as queued: the retried request takes it
            view = claims.get_claim(db, (FIRST if slot == 1 else SECOND).key)
            assert view is None or view.state == "queued"


def test_a_disagreement_fails_every_succeeded_slot(db: Database) -> None:
    _acquire(db, FIRST, A1)
    claims.release(db, FIRST.key, A1, succeeded=True, build_id=1, now=T0)
    _acquire(db, SECOND, B1)  # still running: not touched
    claims.fail_slots(db, FIRST, 2, now=T0)
    first, second = claims.get_claim(db, FIRST.key), claims.get_claim(db, SECOND.key)
    assert first is not None and first.state == "failed"
    assert second is not None and second.state == "running"


def _vote(slot: int, sha: str) -> dict[str, object]:
    return {"slot": slot, "sha256": sha}


def test_the_last_vote_completes_the_ballot_and_a_closed_one_starts_a_round(
    db: Database,
) -> None:
    key = ballots.ballot_key(FIRST, "py3-none-any")
    first = ballots.cast_vote(db, key, FIRST, slot=1, slots=2, vote=_vote(1, "a"), owner=A1)
    assert not first.complete
    again = ballots.cast_vote(db, key, FIRST, slot=1, slots=2, vote=_vote(1, "b"), owner=A1)
    assert not again.complete and again.votes == {1: _vote(1, "b")}  # replaced, not counted twice
    last = ballots.cast_vote(db, key, FIRST, slot=2, slots=2, vote=_vote(2, "b"), owner=B1)
    assert last.complete and last.votes == {1: _vote(1, "b"), 2: _vote(2, "b")}
    ballots.close_ballot(db, key, "agreed")
    assert ballots.votes_of(db, key)[0] == "agreed"
    fresh = ballots.cast_vote(db, key, FIRST, slot=2, slots=2, vote=_vote(2, "c"), owner=B1)
    assert not fresh.complete and fresh.votes == {2: _vote(2, "c")}
    # Never swept as a dead build.
    later = T0 + timedelta(days=1)
    assert claims.requeue_expired(db, "sweeper", lease_seconds=1, now=later) == []


def test_of_racing_votes_exactly_one_completes(db: Database) -> None:
    key = ballots.ballot_key(FIRST, "cp312-cp312-linux_x86_64")
    barrier = threading.Barrier(2)
    tallies: list[ballots.Tally] = []

    def vote(slot: int, owner: str) -> None:
        barrier.wait()
        tallies.append(
            ballots.cast_vote(
                db, key, FIRST, slot=slot, slots=2, vote=_vote(slot, "x"), owner=owner
            )
        )

    threads = [threading.Thread(target=vote, args=(n, o)) for n, o in ((1, A1), (2, B1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.complete for t in tallies) == [False, True]
