"""A counter that moves whenever credentials change, for control planes on a server.

SQLite tells every connection when another commits (``PRAGMA data_version``), which is how the web's credential
cache knows a user was disabled or a token revoked. PostgreSQL has no such thing, so there triggers on
``user_account`` and ``api_token`` count every change in ``control_change``: transactionally, so the new count is
seen exactly when the change is.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PG_BUMP = ("CREATE OR REPLACE FUNCTION mutual_count_change() RETURNS trigger LANGUAGE plpgsql AS "
           "$$ BEGIN UPDATE control_change SET n = n + 1 WHERE id = 1; RETURN NULL; END $$")


def upgrade() -> None:
    op.create_table("control_change", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("n", sa.BigInteger, nullable=False))
    op.execute("INSERT INTO control_change (id, n) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_BUMP)
        for table in ("user_account", "api_token"):
            op.execute(f"CREATE TRIGGER {table}_counted AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION mutual_count_change()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("user_account", "api_token"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_counted ON {table}")
    op.drop_table("control_change")
