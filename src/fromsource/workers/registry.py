"""Where workers advertise their build targets: the ``workers`` table (migration 0006).

A worker writes its :class:`~fromsource.workers.routing.Advert` when it
starts and again every lease (its sweeper, :mod:`fromsource.workers.celery_app`),
and deletes it when it stops; a worker that died leaves a row that goes
stale and is dropped after :data:`FORGET_AFTER`.  Thin adapters: what the
rows mean is :mod:`fromsource.workers.routing`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from fromsource.build.targets import Target
from fromsource.errors import TargetError
from fromsource.store.db import Database, aware
from fromsource.store.models import WorkerRow
from fromsource.workers.routing import Advert

__all__ = ["FORGET_AFTER", "advertise", "adverts", "forget", "prune"]

log = logging.getLogger("fromsource.workers")

FORGET_AFTER = timedelta(days=1)
"""How long the row of a worker that stopped refreshing it is kept (shown as stale)."""


def advertise(db: Database, advert: Advert) -> None:
    """Write *advert* (insert or refresh the worker's row)."""
    with db.session() as session, session.begin():
        row = session.get(WorkerRow, advert.worker)
        if row is None:
            session.add(
                WorkerRow(
                    id=advert.worker,
                    host=advert.host,
                    targets=[t.to_json() for t in advert.targets],
                    started_at=advert.started,
                    last_seen=advert.last_seen,
                    refresh_seconds=advert.interval,
                )
            )
            return
        row.host = advert.host
        row.targets = [t.to_json() for t in advert.targets]
        row.last_seen = advert.last_seen
        row.refresh_seconds = advert.interval


def _advert(row: WorkerRow) -> Advert:
    targets = []
    for value in row.targets or []:
        try:
            targets.append(Target.from_json(value))
        except TargetError as exc:  # written by another version: show the rest
            log.warning("worker %s advertises a malformed target: %s", row.id, exc.message)
    return Advert(
        worker=row.id,
        host=row.host,
        targets=tuple(targets),
        started=aware(row.started_at),
        last_seen=aware(row.last_seen),
        interval=row.refresh_seconds,
    )


def adverts(db: Database) -> list[Advert]:
    """Every worker's advert, the most recently seen first."""
    with db.session() as session:
        rows = session.scalars(sa.select(WorkerRow).order_by(WorkerRow.last_seen.desc()))
        return [_advert(row) for row in rows]


def forget(db: Database, worker: str) -> None:
    """Delete *worker*'s row (it stops)."""
    with db.session() as session, session.begin():
        session.execute(sa.delete(WorkerRow).where(WorkerRow.id == worker))


def prune(db: Database, now: datetime | None = None) -> int:
    """Delete the rows not refreshed for :data:`FORGET_AFTER`; return how many."""
    before = (now or datetime.now(UTC)) - FORGET_AFTER
    with db.session() as session, session.begin():
        result = session.execute(sa.delete(WorkerRow).where(WorkerRow.last_seen < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
