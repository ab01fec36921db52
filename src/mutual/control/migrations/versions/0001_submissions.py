"""Submissions: one row per file received.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(500), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("format", sa.String(100)),
        sa.Column("source_org", sa.String(20)),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("catalog_version", sa.Integer),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("values_read", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("stored", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("missing", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_index("ix_submission_sha256", "submission", ["sha256"], unique=True)
    op.create_index("ix_submission_status", "submission", ["status"])


def downgrade() -> None:
    op.drop_table("submission")
