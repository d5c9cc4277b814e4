"""Opening the database: engine, SQLite pragmas, Alembic migrations, the change counter.

``open_database(url)`` returns a :class:`Database` whose schema is at the
newest migration.  SQLite runs in WAL mode so readers never block the writer
and never see half a transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fromsource.errors import StoreError
from fromsource.store.models import StateRow

_MIGRATIONS = Path(__file__).parent / "migrations"

GENERATION = "generation"
"""The change counter: publishes, yanks, token changes, advisory imports."""
POLICY_GENERATION = "policy_generation"
"""The policy counter: rule changes and malware records (fromsource.policy)."""
_MIGRATION_LOCK = 0x66726F6D  # a PostgreSQL advisory lock key ("from")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """An engine plus a session factory; the one handle the rest of the code gets."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        """A new ORM session (use as a context manager)."""
        return self.sessions()

    def generation(self) -> int:
        """The change counter: it goes up on every publish, yank or token change."""
        return self.counters(GENERATION)[0]

    def counters(self, *names: str) -> tuple[int, ...]:
        """The values of the named counters (0 for one never raised), read in one query."""
        with self.session() as session:
            rows = {
                name: value
                for name, value in session.execute(
                    sa.select(StateRow.name, StateRow.value).where(StateRow.name.in_(names))
                )
            }
        return tuple(rows.get(name, 0) for name in names)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def aware(moment: datetime) -> datetime:
    """A time read from the database, in UTC: SQLite hands back naive datetimes, and every
    time the store writes is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def bump_generation(session: Session) -> None:
    """Raise the change counter inside the caller's transaction."""
    bump_counter(session, GENERATION)


def bump_counter(session: Session, name: str) -> None:
    """Raise the counter *name* (``generation``, ``policy_generation``) in the caller's transaction."""
    updated = session.execute(
        sa.update(StateRow).where(StateRow.name == name).values(value=StateRow.value + 1)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.add(StateRow(name=name, value=1))


def make_engine(url: str) -> Engine:
    """An engine for *url*; for SQLite, creates the parent folder and sets pragmas."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine) -> None:
    """Run every Alembic migration not yet applied."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas and workers of a fleet start together: one migrates,
                # the others wait here and then find the schema at head.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(
            f"database migration failed on {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.__class__.__name__}; check the database URL and permissions",
        ) from exc


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Connect to *url* and bring its schema up to date (unless migrate=False)."""
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    return Database(engine)
