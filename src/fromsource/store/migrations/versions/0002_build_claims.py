"""Build claims (one builder per release at a time, with leases) and a seeded change counter.

Revision ID: 0002
Revises: 0001

``build_claims`` lets several workers (and several ``serve`` processes
building in-process) agree on who builds a release: see
fromsource/workers/claims.py.  The ``generation`` row of ``state`` is created
here so that the first two concurrent publishes on PostgreSQL both update
one existing row instead of racing to insert it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_claims",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("repo", sa.String(64), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("build_id", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_build_claims_state_lease", "build_claims", ["state", "lease_until"])
    op.execute(
        "INSERT INTO state (name, value) SELECT 'generation', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM state WHERE name = 'generation')"
    )


def downgrade() -> None:
    op.drop_index("ix_build_claims_state_lease", table_name="build_claims")
    op.drop_table("build_claims")
