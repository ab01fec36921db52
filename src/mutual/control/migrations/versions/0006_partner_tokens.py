"""A partner's API token is bound to one data-sharing agreement.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("agreement", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("agreement")
