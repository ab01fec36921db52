"""Mutual-aid plans, their moves and every step of their workflow.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("horizon", sa.Integer, nullable=False),
        sa.Column("data_as_of", sa.DateTime),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("solve", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
    )
    op.create_index("ix_plan_kind", "plan", ["kind"])
    op.create_index("ix_plan_status", "plan", ["status"])
    op.create_table(
        "plan_move",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plan.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("src", sa.String(20), nullable=False),
        sa.Column("dst", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("send_day", sa.Date, nullable=False),
        sa.Column("arrive_day", sa.Date, nullable=False),
        sa.Column("distance_km", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("src_answer", sa.String(20), nullable=False),
        sa.Column("dst_answer", sa.String(20), nullable=False),
    )
    op.create_index("ix_plan_move_plan_id", "plan_move", ["plan_id"])
    op.create_table(
        "plan_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plan.id"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("org", sa.String(20)),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("move_seq", sa.Integer),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_plan_event_plan_id", "plan_event", ["plan_id"])


def downgrade() -> None:
    op.drop_table("plan_event")
    op.drop_table("plan_move")
    op.drop_table("plan")
