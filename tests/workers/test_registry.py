"""Workers' adverts in the database (migration 0006): write, refresh, read, forget, prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fromsource.store.db import open_database
from fromsource.workers import registry
from fromsource.workers.routing import Advert
from tests.workers.test_routing import PY311, PY312

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_adverts_are_written_refreshed_read_and_forgotten(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'fleet.db'}")
    try:
        first = Advert("worker@a:1", "a", (PY311,), NOW, NOW, 2.0)
        registry.advertise(db, first)
        registry.advertise(db, Advert("worker@b:2", "b", (PY312,), NOW, NOW, 2.0))
        later = NOW + timedelta(seconds=30)
        registry.advertise(db, Advert("worker@a:1", "a", (PY311, PY312), NOW, later, 2.0))
        found = registry.adverts(db)
        assert [a.worker for a in found] == ["worker@a:1", "worker@b:2"]  # last seen first
        assert found[0].targets == (PY311, PY312) and found[0].last_seen == later
        assert found[0].started == NOW and found[0].live(later)
        registry.forget(db, "worker@b:2")
        assert [a.worker for a in registry.adverts(db)] == ["worker@a:1"]
        assert registry.prune(db, now=later + registry.FORGET_AFTER) == 0
        assert registry.prune(db, now=later + registry.FORGET_AFTER + timedelta(seconds=1)) == 1
        assert registry.adverts(db) == []
    finally:
        db.dispose()
