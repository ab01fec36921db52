"""Data-plane tables. Observations are bitemporal: a correction supersedes a value without deleting it."""

OBSERVATION_COLUMNS = [
    ("org", "VARCHAR NOT NULL"),
    ("metric", "VARCHAR NOT NULL"),
    ("dims", "VARCHAR NOT NULL"),
    ("period", "DATE NOT NULL"),
    ("period_end", "DATE NOT NULL"),
    ("value", "DOUBLE NOT NULL"),
    ("submission_id", "INTEGER NOT NULL"),
    ("sheet", "VARCHAR"),
    ("row_num", "BIGINT"),
    ("col", "VARCHAR"),
    ("flagged", "BOOLEAN NOT NULL"),
    ("recorded_at", "TIMESTAMP NOT NULL"),
    ("superseded_at", "TIMESTAMP"),
]

ISSUE_COLUMNS = [
    ("submission_id", "INTEGER NOT NULL"),
    ("sheet", "VARCHAR"),
    ("row_num", "BIGINT"),
    ("col", "VARCHAR"),
    ("org", "VARCHAR"),
    ("metric", "VARCHAR"),
    ("dims", "VARCHAR"),
    ("period", "VARCHAR"),
    ("raw", "VARCHAR"),
    ("rule", "VARCHAR NOT NULL"),
    ("severity", "VARCHAR NOT NULL"),
    ("message", "VARCHAR NOT NULL"),
    ("status", "VARCHAR NOT NULL"),
]

ORGANISATION_COLUMNS = [
    ("code", "VARCHAR PRIMARY KEY"),
    ("name", "VARCHAR NOT NULL"),
    ("kind", "VARCHAR NOT NULL"),
    ("parent", "VARCHAR"),
    ("region", "VARCHAR"),
    ("postcode", "VARCHAR"),
    ("open_date", "DATE"),
    ("close_date", "DATE"),
    ("successor", "VARCHAR"),
    ("successor_date", "DATE"),
    ("lat", "DOUBLE"),
    ("lon", "DOUBLE"),
]

LOAD_COLUMNS = [
    ("submission_id", "INTEGER PRIMARY KEY"),
    ("recorded_at", "TIMESTAMP NOT NULL"),
    ("loaded_at", "TIMESTAMP NOT NULL"),
    ("rows_read", "BIGINT NOT NULL"),
    ("values_read", "BIGINT NOT NULL"),
    ("accepted", "BIGINT NOT NULL"),
    ("stored", "BIGINT NOT NULL"),
    ("quarantined", "BIGINT NOT NULL"),
    ("warnings", "BIGINT NOT NULL"),
    ("missing", "BIGINT NOT NULL"),
]

TABLES = {
    "observation": OBSERVATION_COLUMNS,
    "quality_issue": ISSUE_COLUMNS,
    "organisation": ORGANISATION_COLUMNS,
    "load_log": LOAD_COLUMNS,
}


def ddl(table: str) -> str:
    cols = ", ".join(f"{name} {kind}" for name, kind in TABLES[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"
