"""Ballots: where the independent builds of one wheel meet (issue 17).

Each build that must agree with another *votes* with what it built (its
wheel's sha256, build key, worker, times) in the ballot of its release and
target (:func:`ballot_key`).  The vote that makes the votes as many as the
builds required *completes* the ballot: exactly one vote per round learns
it did (:func:`cast_vote`, a conditional update on the row's revision, the
same optimistic scheme as the claims), and that build compares the wheels
and publishes or refuses (:mod:`fromsource.build.agree`), then closes the
round (:func:`close_ballot`).  A vote on a closed ballot starts a new round.

A ballot is a row of ``build_claims`` (no migration needed) in states
``waiting``, ``complete``, ``agreed`` or ``differed``, none of which the
claims' sweeper re-enqueues; its ``request`` column holds the votes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from fromsource.store.db import Database
from fromsource.store.models import ClaimRow
from fromsource.workers.claims import Target, get_claim, update_claim

__all__ = ["Tally", "ballot_key", "cast_vote", "close_ballot", "votes_of"]


def _now() -> datetime:
    return datetime.now(UTC)


def ballot_key(target: Target, wheel_target: str) -> str:
    """The key of the ballot where the independent builds of *target*'s release for the
    interpreter *wheel_target* (a wheel tag) meet."""
    text = f"ballot\n{target.repo}\n{target.project}\n{target.version}\n{wheel_target}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Tally:
    """A ballot after one vote: every slot's vote, and whether that vote completed it."""

    votes: Mapping[int, Mapping[str, Any]]
    complete: bool


def cast_vote(
    db: Database,
    key: str,
    target: Target,
    *,
    slot: int,
    slots: int,
    vote: Mapping[str, Any],
    owner: str,
    now: datetime | None = None,
) -> Tally:
    """Record *vote* (JSON: what slot *slot* built) in ballot *key* of *target*'s release.

    A slot that votes again replaces its vote; a ballot that was concluded
    (``complete``, ``agreed``, ``differed``) starts a new round with this
    vote alone.  Of the votes, exactly one is told ``complete`` for a round:
    the one whose conditional update made the votes number *slots*.
    """
    for _ in range(16):
        moment = now or _now()
        view = get_claim(db, key)
        if view is None:
            votes = {str(slot): dict(vote)}
            try:
                with db.session() as session, session.begin():
                    session.add(
                        ClaimRow(
                            key=key,
                            repo=target.repo,
                            project=target.project,
                            version=target.version,
                            state="complete" if slots <= 1 else "waiting",
                            owner=owner,
                            lease_until=moment,
                            build_id=None,
                            attempts=1,
                            revision=0,
                            request={"ballot": True, "slots": slots, "votes": votes},
                            started_at=moment,
                            finished_at=None,
                        )
                    )
            except IntegrityError:
                continue
            return Tally({slot: dict(vote)}, slots <= 1)
        same_round = view.state == "waiting"
        raw = view.request.get("votes") if same_round else None
        votes = {str(k): dict(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        votes[str(slot)] = dict(vote)
        complete = len(votes) >= slots
        values: dict[str, Any] = {
            "state": "complete" if complete else "waiting",
            "owner": owner,
            "lease_until": moment,
            "request": {"ballot": True, "slots": slots, "votes": votes},
            "attempts": ClaimRow.attempts + (0 if same_round else 1),
            "revision": ClaimRow.revision + 1,
            "finished_at": None,
        }
        if not same_round:
            values["started_at"] = moment
        if update_claim(db, key, values, revision=view.revision):
            return Tally({int(k): v for k, v in votes.items()}, complete)
    raise RuntimeError(f"ballot {key} kept changing under us; giving up for now")


def close_ballot(
    db: Database, key: str, state: Literal["agreed", "differed"], now: datetime | None = None
) -> None:
    """Record how the round that completed ballot *key* ended."""
    moment = now or _now()
    update_claim(
        db,
        key,
        {"state": state, "finished_at": moment, "revision": ClaimRow.revision + 1},
        state="complete",
    )


def votes_of(db: Database, key: str) -> tuple[str, Mapping[int, Mapping[str, Any]]]:
    """The state of ballot *key* and its current round's votes (``missing`` and none when
    nobody voted yet)."""
    view = get_claim(db, key)
    if view is None:
        return "missing", {}
    raw = view.request.get("votes")
    votes = {int(k): dict(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return view.state, votes
