"""Build jobs: a lock's closure requested through the management API.

Revision ID: 0005
Revises: 0004

``build_jobs`` holds one row per ``POST /api/builds`` with a lock or
requirements file: who asked, when, and the plan (every pinned package, to
build or skipped with its reason).  The progress of a job is not stored: it
is read from the claims and build rows of its releases (fromsource/build/jobs.py),
so every replica answers ``GET /api/builds?job=ID`` the same.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("repo", sa.String(64), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
    )
    op.create_index("ix_build_jobs_created_at", "build_jobs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_build_jobs_created_at", table_name="build_jobs")
    op.drop_table("build_jobs")
