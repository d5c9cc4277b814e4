"""The owner of a build: the process that runs it.

Revision ID: 0003
Revises: 0002

``builds.owner`` names the process (host, pid, start time, boot id) that
created the row or set it running, so that a build whose process was killed
can be told from one still running and closed as ``worker-lost``: see
fromsource/build/owner.py and fromsource/build/lost.py.  Rows from before
this migration have no owner.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
    op.create_index("ix_builds_status", "builds", ["status"])


def downgrade() -> None:
    op.drop_index("ix_builds_status", table_name="builds")
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("owner")
