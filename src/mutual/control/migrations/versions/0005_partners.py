"""Partners, their onboarding evidence, and data-sharing agreements.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("company_number", sa.String(20)),
        sa.Column("contact_name", sa.String(200)),
        sa.Column("contact_email", sa.String(200)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "onboarding_item",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner", sa.String(64), sa.ForeignKey("partner.code"), nullable=False),
        sa.Column("agreement", sa.String(64)),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("recorded", sa.Date, nullable=False),
        sa.Column("review_by", sa.Date, nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_onboarding_item_partner", "onboarding_item", ["partner"])
    op.create_table(
        "agreement",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("partner", sa.String(64), sa.ForeignKey("partner.code"), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("drafted_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("deletion_evidence", sa.Text),
    )
    op.create_index("ix_agreement_partner", "agreement", ["partner"])


def downgrade() -> None:
    op.drop_table("agreement")
    op.drop_table("onboarding_item")
    op.drop_table("partner")
