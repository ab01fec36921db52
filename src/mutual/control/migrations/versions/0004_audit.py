"""The hash-chained, append-only audit log of governance actions and policy-gate decisions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from mutual.control.append_only import triggers

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None



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
    for statement in triggers(op.get_bind().dialect.name, "audit_event", "audit events are append-only"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("audit_event")
