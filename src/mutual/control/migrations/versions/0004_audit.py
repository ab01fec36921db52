"""The hash-chained, append-only audit log of governance actions and policy-gate decisions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# PostgreSQL (the engines issue) needs the same: a BEFORE UPDATE OR DELETE trigger raising an exception, and
# REVOKE UPDATE, DELETE on the table from the application's role.
APPEND_ONLY = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
)


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("agreement", sa.String(100)),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_event_agreement", "audit_event", ["agreement"])
    op.create_index("ix_audit_event_hash", "audit_event", ["hash"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        for statement in APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("audit_event")
