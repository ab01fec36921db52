"""The data plane on PostgreSQL, for a region running Mutual as a shared service: the same tables and the same
answers as DuckDB's, on a server many users and processes share.

An ingest stages and checks its file in a private in-memory DuckDB (``work``), exactly as on DuckDB; ``load`` then
moves the checked values to the server with COPY (never row by row) and applies them there in one transaction, so a
submission is all or nothing here too. Loads take a lock that only other loads wait for (readers never do), so two
concurrent ingests of overlapping files each see the other's committed values: every row kept, none duplicated.
Reads are the same Ibis expressions as on every engine (``base.Store``).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from mutual.catalog.orgs import Org
from mutual.store.base import HISTORY_TABLE, MARK_CORRECTED, LoadRecord, Store, keep_history, org_table
from mutual.store.duckdb_store import configure
from mutual.store.schema import INDEXES, TABLES, base_types, column_type, ddl

if TYPE_CHECKING:
    import psycopg

_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_DDL_LOCK = 0x6D7574  # pg_advisory_xact_lock key: concurrent first opens create the tables once
ANALYZE_AFTER = 10_000  # rows stored by one load
_LOAD_LOCK = "LOCK TABLE observation IN SHARE ROW EXCLUSIVE MODE"  # loads wait for each other; reads never do


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy URL (``postgresql+psycopg://…``)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def portable(sql: str, params: dict[str, Any] | None) -> str:
    """``$name`` parameters (DuckDB's style, used across Mutual) as psycopg's ``%(name)s``."""
    if not params:
        return sql
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


@cache
def _nullable_backend() -> Any:
    """Ibis's PostgreSQL backend, with every column read as nullable: it types an aggregate by its column, so the
    latest date of an empty table (NULL) would fail to convert for a NOT NULL column; DuckDB's backend doesn't."""
    import ibis
    from ibis.backends.postgres import Backend

    class NullableBackend(Backend):  # type: ignore[misc]
        def get_schema(self, name: str, *, catalog: str | None = None, database: str | None = None) -> Any:
            schema = super().get_schema(name, catalog=catalog, database=database)
            return ibis.schema({column: kind.copy(nullable=True) for column, kind in schema.items()})

    return NullableBackend


class PgStore(Store):
    engine = "postgres"

    def __init__(self, url: str, tmp_dir: Path | None = None, read_only: bool = False) -> None:
        import psycopg

        self.url = url
        self.tmp_dir = tmp_dir
        self.read_only = read_only
        self.con: psycopg.Connection[Any] = psycopg.connect(conninfo(url), autocommit=True,
                                                             cursor_factory=psycopg.ClientCursor)
        if not read_only:
            with self.con.transaction():
                self.con.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
                for table in TABLES:
                    self.con.execute(ddl(table, "postgres"))
                for name, on in INDEXES.items():
                    self.con.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")

    @cached_property
    def ibis(self) -> Any:
        return _nullable_backend().from_connection(self.con)

    @cached_property
    def work(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        configure(con, self.tmp_dir)
        return con

    def close(self) -> None:
        if "work" in self.__dict__:
            self.work.close()
        self.con.close()

    def view(self) -> PgStore:
        return PgStore(self.url, self.tmp_dir, read_only=True)

    def settle(self, failed: bool) -> None:
        from psycopg.pq import TransactionStatus

        if self.con.info.transaction_status != TransactionStatus.IDLE:
            self.con.rollback()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.con.cursor() as cur:
            cur.execute(portable(sql, params), params)
            return cur.fetchall() if cur.description else []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.con.transaction():
            yield

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        with self.con.cursor() as cur:
            cur.execute(portable(sql, params), params)
            return max(cur.rowcount, 0)

    def arrow(self, query: str, types: dict[str, str]) -> pa.Table:
        self.fetch("_arrow", query, types)
        try:
            return self.work.sql("SELECT * FROM _arrow").to_arrow_table()
        finally:
            self.work.execute("DROP TABLE _arrow")

    def has_table(self, name: str) -> bool:
        return bool(self.rows("SELECT to_regclass($name) IS NOT NULL", {"name": name})[0][0])

    # -- moving rows between the server and DuckDB -----------------------------------------------------------

    @contextlib.contextmanager
    def _spool(self) -> Iterator[Path]:
        """A CSV file in the workspace's spill space, removed after use."""
        folder = self.tmp_dir or Path("/tmp")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"pg-{uuid.uuid4().hex}.csv"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def copy_in(self, target: str, query: str, params: dict[str, Any] | None = None) -> None:
        """COPY the rows of a DuckDB ``query`` on ``work`` into ``target`` (a table, with a column list if needed)
        on the server, inside the caller's transaction. CSV is the carrier: DuckDB writes an empty string as
        ``""`` and NULL as nothing, which is how PostgreSQL reads them; doubles are written exactly."""
        with self._spool() as path:
            self.work.execute(f"COPY ({query}) TO '{path}' (FORMAT csv, HEADER false)", params or None)
            with self.con.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy, \
                    path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    copy.write(chunk)

    def fetch(self, name: str, query: str, types: dict[str, str], params: dict[str, Any] | None = None) -> None:
        """The rows of a server ``query`` as the temp table ``name`` in ``work``, with DuckDB ``types``."""
        import psycopg

        with self._spool() as path:
            sql = psycopg.ClientCursor(self.con).mogrify(portable(query, params), params) if params else query
            with self.con.cursor() as cur, path.open("wb") as f, \
                    cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    f.write(chunk)
            columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in types.items()) + "}"
            self.work.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_csv('{path}', "
                              f"header = false, columns = {columns}, allow_quoted_nulls = false, "
                              "auto_detect = false, quote = '\"', escape = '\"', delim = ',')")

    # -- organisations -------------------------------------------------------------------------------------

    def replace_orgs(self, orgs: list[Org]) -> None:
        self.work.register("_orgs", org_table(orgs))
        try:
            with self.transaction():
                self.con.execute("DELETE FROM organisation")
                self.copy_in("organisation", "SELECT * FROM _orgs")
        finally:
            self.work.unregister("_orgs")

    # -- loading -------------------------------------------------------------------------------------------

    def stage_history(self, days: int = 60) -> None:
        w = self.work
        lo, hi = w.execute("SELECT min(period), max(period) FROM accepted").fetchall()[0]
        w.execute(HISTORY_TABLE)
        if lo is None:
            return
        # series_dict lists the file's organisations (a few), where accepted would mean a pass over every value
        orgs = [r[0] for r in w.execute("SELECT DISTINCT org FROM series_dict ORDER BY org").fetchall()]
        self.fetch("recent", f"""SELECT org, metric, dims, period, value FROM observation
                                WHERE superseded_at IS NULL AND period BETWEEN $lo::date - {int(days)} AND $hi
                                  AND org = ANY($orgs)""",
                   {"org": "VARCHAR", "metric": "VARCHAR", "dims": "VARCHAR", "period": "DATE", "value": "DOUBLE"},
                   {"lo": lo, "hi": hi, "orgs": orgs})
        w.execute(keep_history("recent"))
        w.execute("DROP TABLE recent")

    def load(self, submission_id: int, recorded_at: datetime, counts: dict[str, int]) -> LoadRecord:
        sid, r = submission_id, recorded_at
        staged = ", ".join(f"{name} {column_type(kind.split(' NOT NULL')[0], 'postgres')}"
                           for name, kind in TABLES["observation"] if name in STAGED)
        with self.transaction():
            self.con.execute(f"CREATE TEMP TABLE staged ({staged}) ON COMMIT DROP")
            self.copy_in("staged", f"""
                SELECT {', '.join('a.' + c for c in STAGED[:-1])},
                       EXISTS (SELECT 1 FROM issues i WHERE i.severity = 'warning' AND i.row_num = a.row_num
                               AND i.col = a.col AND i.sheet IS NOT DISTINCT FROM a.sheet) AS flagged
                FROM accepted a""")
            self.con.execute("CREATE TEMP TABLE withdrawn (org VARCHAR, metric VARCHAR, dims VARCHAR, period DATE) "
                             "ON COMMIT DROP")
            self.copy_in("withdrawn", "SELECT org, metric, dims, period FROM deletions")
            self.copy_in("quality_issue", "SELECT $sid, sheet, row_num, col, org, metric, dims, period, raw, rule, "
                                          "severity, message, 'open' FROM issues", {"sid": sid})
            self.con.execute("ANALYZE staged")
            self.con.execute(_LOAD_LOCK)
            in_force = "o.recorded_at <= $r AND (o.superseded_at IS NULL OR o.superseded_at > $r)"
            key = "o.org = c.org AND o.metric = c.metric AND o.dims = c.dims AND o.period = c.period"
            self.execute(f"""
                CREATE TEMP TABLE changed ON COMMIT DROP AS
                SELECT c.* FROM staged c
                WHERE NOT EXISTS (SELECT 1 FROM observation o WHERE {key} AND {in_force} AND o.value = c.value)""",
                         {"r": r})
            self.execute(f"UPDATE observation o SET superseded_at = $r FROM changed c WHERE {key} AND {in_force}",
                         {"r": r})
            latest = self.rows("SELECT max(recorded_at) FROM observation")[0][0]
            later = "NULL::TIMESTAMP"
            if latest is not None and latest > r:
                later = f"(SELECT min(o.recorded_at) FROM observation o WHERE {key} AND o.recorded_at > $r)"
            # in key order: the key index then fills page by page, which saves about a sixth of a large load
            self.execute(f"""
                INSERT INTO observation
                SELECT c.org, c.metric, c.dims, c.period, c.period_end, c.value, $sid, c.sheet, c.row_num, c.col,
                       c.flagged, $r, {later}
                FROM changed c ORDER BY c.org, c.metric, c.dims, c.period""", {"r": r, "sid": sid})
            # withdrawn values: the one in force at r ends there, and nothing replaces it
            withdrawn = self.execute(f"UPDATE observation o SET superseded_at = $r FROM withdrawn c "
                                     f"WHERE {key} AND {in_force}", {"r": r})
            self.execute(MARK_CORRECTED, {"sid": sid})
            stored = int(self.rows("SELECT count(*) FROM changed")[0][0]) + withdrawn
            record = LoadRecord(submission_id=sid, recorded_at=r, stored=stored, **counts)
            self.execute("INSERT INTO load_log VALUES ($sid, $r, now() AT TIME ZONE 'UTC', $rows_read, $values_read, "
                         "$accepted, $stored, $quarantined, $warnings, $missing)",
                         {"sid": sid, "r": r, "rows_read": record.rows_read, "values_read": record.values_read,
                          "accepted": record.accepted, "stored": stored, "quarantined": record.quarantined,
                          "warnings": record.warnings, "missing": record.missing})
        if stored >= ANALYZE_AFTER:  # a large load changes the planner's picture: without fresh statistics it
            self.con.execute("ANALYZE observation")  # would plan roll-ups as if the table were still empty
        return record

    def append(self, table: str, rows: pa.Table, *, replace_where: str | None = None,
               params: dict[str, Any] | None = None) -> int:
        self.check_appendable(table)
        columns = [name for name, _ in TABLES[table] if name in rows.column_names]
        self.work.register("_append", rows)
        try:
            with self.transaction():
                if replace_where is not None:
                    self.execute(f"DELETE FROM {table} WHERE {replace_where}", params)
                if rows.num_rows:
                    self.copy_in(f"{table} ({', '.join(columns)})", f"SELECT {', '.join(columns)} FROM _append")
        finally:
            self.work.unregister("_append")
        return rows.num_rows

    def restore(self, table: str, parquet: Path) -> int:
        if table not in TABLES:
            raise ValueError(f"{table} is not a data-plane table")
        columns = ", ".join(name for name, _ in TABLES[table])
        with self.transaction():
            self.con.execute(f"DELETE FROM {table}")
            self.copy_in(f"{table} ({columns})", f"SELECT {columns} FROM read_parquet($path)", {"path": str(parquet)})
            count = self.rows(f"SELECT count(*) FROM {table}")[0][0]
        return int(count)

    def export_reader(self, table: str, batch_rows: int) -> pa.RecordBatchReader:
        columns = ", ".join(name for name, _ in TABLES[table])
        self.fetch("_export", f"SELECT {columns} FROM {table}", base_types(table))
        # ordered by DuckDB, so the order (and the bytes of an export) is the same as a DuckDB workspace's
        return self.work.sql("SELECT * FROM _export ORDER BY ALL").to_arrow_reader(batch_rows)


# the columns of a checked value that ``load`` moves to the server (``flagged`` is computed on the way)
STAGED = ("org", "metric", "dims", "period", "period_end", "value", "sheet", "row_num", "col", "flagged")
