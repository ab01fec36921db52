"""Append-only tables (the audit log, the ledger): triggers that refuse UPDATE and DELETE, per database dialect.

The migrations create them; the code never updates or deletes those rows, so a refusal means someone went around
Mutual, and ``governance.audit.verify`` finds what they changed if they also dropped the triggers."""

from __future__ import annotations

PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION mutual_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$"
)


def triggers(dialect: str, table: str, message: str) -> list[str]:
    """The statements that make ``table`` append-only in ``dialect`` (``sqlite`` or ``postgresql``); the
    triggers are named ``<table>_no_update`` and ``<table>_no_delete`` in both."""
    quoted = message.replace("'", "''")
    if dialect == "sqlite":
        return [f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{quoted}'); END" for verb in ("update", "delete")]
    if dialect == "postgresql":
        return [PG_FUNCTION,
                *(f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} FOR EACH ROW "
                  f"EXECUTE FUNCTION mutual_append_only('{quoted}')" for verb in ("update", "delete")),
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION mutual_append_only('{quoted}')"]
    return []
