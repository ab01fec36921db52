"""The settlement ledger of gain/risk-share agreements: append-only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from mutual.control.append_only import triggers

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None



def upgrade() -> None:
    op.create_table(
        "ledger_entry",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agreement", sa.String(64), sa.ForeignKey("agreement.id"), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("measured", sa.Float, nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("corrects", sa.Integer),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_ledger_entry_agreement", "ledger_entry", ["agreement"])
    for statement in triggers(op.get_bind().dialect.name, "ledger_entry",
                              "ledger entries are never changed: add a correction"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("ledger_entry")
