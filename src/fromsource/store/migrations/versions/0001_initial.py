"""Initial schema: files, tokens, builds, advisories, state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repo", sa.String(64), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("requires_python", sa.String(255)),
        sa.Column("yanked", sa.Boolean, nullable=False),
        sa.Column("yanked_reason", sa.Text),
        sa.Column("metadata_sha256", sa.String(64)),
        sa.Column("provenance_sha256", sa.String(64)),
        sa.Column("sbom_sha256", sa.String(64)),
        sa.Column("build_id", sa.Integer),
        sa.Column("upload_time", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("repo", "filename", name="uq_files_repo_filename"),
    )
    op.create_index("ix_files_repo_project", "files", ["repo", "project"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("repos", sa.JSON, nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64)),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("repo", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("files.id")),
    )
    op.create_index("ix_builds_key", "builds", ["key"])
    op.create_index("ix_builds_project", "builds", ["project"])
    op.create_table(
        "advisories",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("aliases", sa.JSON, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("modified", sa.String(64), nullable=False),
    )
    op.create_index("ix_advisories_project", "advisories", ["project"])
    op.create_table(
        "state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("state", "advisories", "builds", "tokens", "files"):
        op.drop_table(table)
