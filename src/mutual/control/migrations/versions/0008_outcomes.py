"""Evaluations of agreements' outcome measures (difference in differences), as published in the reports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_result",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agreement", sa.String(64), sa.ForeignKey("agreement.id"), nullable=False),
        sa.Column("measure", sa.String(200), nullable=False),
        sa.Column("go_live", sa.Date, nullable=False),
        sa.Column("treated", sa.Text, nullable=False),
        sa.Column("comparison", sa.Text, nullable=False),
        sa.Column("estimate", sa.Float, nullable=False),
        sa.Column("lo", sa.Float, nullable=False),
        sa.Column("hi", sa.Float, nullable=False),
        sa.Column("level", sa.Float, nullable=False),
        sa.Column("placebo", sa.Float, nullable=False),
        sa.Column("placebo_lo", sa.Float, nullable=False),
        sa.Column("placebo_hi", sa.Float, nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("made_at", sa.DateTime, nullable=False),
        sa.Column("made_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_outcome_result_agreement", "outcome_result", ["agreement"])


def downgrade() -> None:
    op.drop_table("outcome_result")
