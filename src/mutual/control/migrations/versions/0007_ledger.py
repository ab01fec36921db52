"""The settlement ledger of gain/risk-share agreements: append-only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

APPEND_ONLY = (
    "CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry "
    "BEGIN SELECT RAISE(ABORT, 'ledger entries are never changed: add a correction'); END",
    "CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry "
    "BEGIN SELECT RAISE(ABORT, 'ledger entries are never changed: add a correction'); END",
)


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
    if op.get_bind().dialect.name == "sqlite":
        for statement in APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("ledger_entry")
