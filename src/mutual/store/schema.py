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

# Shortage alerts (mutual.analytics.alerts): every evaluation of a rule for a series on a day, and the alerts
# (episodes) rebuilt from them.
ALERT_EVENT_COLUMNS = [
    ("eval_date", "DATE NOT NULL"),
    ("rule", "VARCHAR NOT NULL"),
    ("org", "VARCHAR NOT NULL"),
    ("dims", "VARCHAR NOT NULL"),
    ("status", "VARCHAR NOT NULL"),
    ("severity", "VARCHAR NOT NULL"),
    ("value", "DOUBLE"),
    ("threshold", "DOUBLE NOT NULL"),
    ("period", "DATE"),
    ("quality", "VARCHAR NOT NULL"),
    ("why", "VARCHAR NOT NULL"),
    ("evaluated_at", "TIMESTAMP NOT NULL"),
]

ALERT_COLUMNS = [
    ("alert_id", "VARCHAR NOT NULL"),
    ("rule", "VARCHAR NOT NULL"),
    ("org", "VARCHAR NOT NULL"),
    ("dims", "VARCHAR NOT NULL"),
    ("severity", "VARCHAR NOT NULL"),
    ("since", "DATE NOT NULL"),
    ("last_held", "DATE NOT NULL"),
    ("status", "VARCHAR NOT NULL"),
    ("closed_on", "DATE"),
    ("close_reason", "VARCHAR"),
    ("value", "DOUBLE"),
    ("quality", "VARCHAR NOT NULL"),
    ("why", "VARCHAR NOT NULL"),
]

# Forecasts (mutual.analytics.forecast): one row per org, metric, day ahead; ``vintage`` is the as-of time of the
# data the forecast was made from, ``made_at`` when it was made.
FORECAST_COLUMNS = [
    ("org", "VARCHAR NOT NULL"),
    ("metric", "VARCHAR NOT NULL"),
    ("dims", "VARCHAR NOT NULL"),
    ("made_at", "TIMESTAMP NOT NULL"),
    ("vintage", "TIMESTAMP"),
    ("period", "DATE NOT NULL"),
    ("horizon", "INTEGER NOT NULL"),
    ("mean", "DOUBLE NOT NULL"),
    ("lo80", "DOUBLE"),
    ("hi80", "DOUBLE"),
    ("lo95", "DOUBLE"),
    ("hi95", "DOUBLE"),
    ("model", "VARCHAR NOT NULL"),
]

# Approved mutual-aid plans (mutual.planning): the changes to stock or occupancy their moves are expected to make,
# from ``first_day`` to ``last_day`` (NULL: from then on), so stock figures and forecasts see them before the trusts
# report them. Rewritten whole for a plan whenever its status changes.
EXPECTED_CHANGE_COLUMNS = [
    ("plan_id", "INTEGER NOT NULL"),
    ("move_seq", "INTEGER NOT NULL"),
    ("org", "VARCHAR NOT NULL"),
    ("metric", "VARCHAR NOT NULL"),
    ("dims", "VARCHAR NOT NULL"),
    ("first_day", "DATE NOT NULL"),
    ("last_day", "DATE"),
    ("delta", "DOUBLE NOT NULL"),
    ("plan_status", "VARCHAR NOT NULL"),
    ("recorded_at", "TIMESTAMP NOT NULL"),
]

# The national data opt-out list as last imported (a full snapshot each time): patients whose records never leave
# for purposes beyond their care. NHS numbers only; the policy gate removes them from every extract.
OPTOUT_COLUMNS = [
    ("nhs_number", "BIGINT NOT NULL"),
    ("imported_at", "TIMESTAMP NOT NULL"),
]

# Admitted-patient-care episodes (record level: one row per hospital stay), loaded whole by ``mutual episodes
# import`` or the demo. They leave the platform only through the policy gate, de-identified for one agreement.
EPISODE_COLUMNS = [
    ("episode_id", "BIGINT NOT NULL"),
    ("nhs_number", "BIGINT NOT NULL"),
    ("date_of_birth", "DATE NOT NULL"),
    ("sex", "VARCHAR NOT NULL"),
    ("postcode", "VARCHAR NOT NULL"),
    ("trust", "VARCHAR NOT NULL"),
    ("admission_date", "DATE NOT NULL"),
    ("discharge_date", "DATE"),
    ("primary_diagnosis", "VARCHAR NOT NULL"),
    ("critical_care_days", "INTEGER NOT NULL"),
    ("ventilated", "BOOLEAN NOT NULL"),
]

TABLES = {
    "observation": OBSERVATION_COLUMNS,
    "quality_issue": ISSUE_COLUMNS,
    "organisation": ORGANISATION_COLUMNS,
    "load_log": LOAD_COLUMNS,
    "forecast": FORECAST_COLUMNS,
    "alert_event": ALERT_EVENT_COLUMNS,
    "alert": ALERT_COLUMNS,
    "expected_change": EXPECTED_CHANGE_COLUMNS,
    "optout": OPTOUT_COLUMNS,
    "apc_episode": EPISODE_COLUMNS,
}


# Indexes a server engine needs for the load's key lookups and the reads by submission (DuckDB's zone maps do
# without them).
INDEXES = {
    "observation_key": "observation (org, metric, dims, period)",
    "observation_recorded": "observation (recorded_at)",
    "observation_submission": "observation (submission_id)",
    "quality_issue_submission": "quality_issue (submission_id)",
    "quality_issue_key": "quality_issue (org, metric, dims, period)",
}


def column_type(kind: str, dialect: str = "duckdb") -> str:
    """A column's type in ``dialect`` (``duckdb`` or ``postgres``), constraints included."""
    return kind.replace("DOUBLE", "DOUBLE PRECISION") if dialect == "postgres" else kind


def ddl(table: str, dialect: str = "duckdb") -> str:
    cols = ", ".join(f"{name} {column_type(kind, dialect)}" for name, kind in TABLES[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def base_types(table: str) -> dict[str, str]:
    """Each column's DuckDB type without constraints (``{"org": "VARCHAR", ...}``)."""
    return {name: kind.split()[0] for name, kind in TABLES[table]}
