"""Workers: each ``fromsource worker`` process and the build targets it has.

Revision ID: 0006
Revises: 0005

``workers`` holds one row per worker process (``worker@host:pid``, as the
build claims name it): its host, its build targets (each target's JSON with
its wheel tag), when it started and when it last refreshed the row (its
sweeper does, every lease).  A request for a release goes to the workers
that have its targets (fromsource/workers/routing.py); ``fromsource workers``
lists the rows.  A worker deletes its row when it stops; rows of workers
that died are dropped a day after they were last seen.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_workers_last_seen", table_name="workers")
    op.drop_table("workers")
