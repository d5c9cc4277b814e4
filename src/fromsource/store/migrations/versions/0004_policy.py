"""Policy: block, allow and cooldown rules, the audit log, the policy counter.

Revision ID: 0004
Revises: 0003

``policy_rules`` holds the operator's rules and ``policy_audit`` every
decision that hid, blocked or let something through, and every rule change
(fromsource/policy).  Malware records stay in ``advisories`` (OSV ``MAL-``
ids).  The ``policy_generation`` row of ``state`` goes up when a rule or a
malware record changes; pages are cached per store and policy generation.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("specifier", sa.String(255), nullable=False),
        sa.Column("days", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_index("ix_policy_rules_project", "policy_rules", ["project"])
    op.create_table(
        "policy_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255)),
        sa.Column("repo", sa.String(64)),
        sa.Column("filename", sa.String(512)),
        sa.Column("rule_id", sa.Integer),
        sa.Column("mal_id", sa.String(128)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
    )
    op.create_index("ix_policy_audit_project", "policy_audit", ["project"])
    op.create_index("ix_policy_audit_at", "policy_audit", ["at"])
    op.execute(
        "INSERT INTO state (name, value) SELECT 'policy_generation', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM state WHERE name = 'policy_generation')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM state WHERE name = 'policy_generation'")
    op.drop_index("ix_policy_audit_at", table_name="policy_audit")
    op.drop_index("ix_policy_audit_project", table_name="policy_audit")
    op.drop_table("policy_audit")
    op.drop_index("ix_policy_rules_project", table_name="policy_rules")
    op.drop_table("policy_rules")
