"""The DuckDB data plane: observations, quality issues, organisations and the load log in one file.

Writes are SQL inside one DuckDB transaction per submission (a process killed mid-load leaves nothing of it).
Reads are Ibis expressions (``base.Store``), the same on every engine.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import duckdb
import pyarrow as pa

from mutual.catalog.orgs import Org
from mutual.store.base import (
    HISTORY_TABLE,
    MARK_CORRECTED,
    MEMORY_LIMIT,
    LoadRecord,
    ObservationQuery,
    ObservationSource,
    Store,
    in_force,
    keep_history,
    org_table,
    orgs_of,
)
from mutual.store.schema import TABLES, ddl

if TYPE_CHECKING:
    import ibis.backends.duckdb

__all__ = ["DuckConnectionStore", "DuckStore", "LoadRecord", "ObservationQuery", "ObservationSource", "in_force",
           "orgs_of"]


def configure(con: duckdb.DuckDBPyConnection, tmp_dir: Path | None) -> None:
    """Settings for a connection that stages or stores large files."""
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # order is kept only where it carries meaning (a file's records, in csv_stage): elsewhere it costs memory
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    if tmp_dir is not None:
        con.execute(f"SET temp_directory = '{tmp_dir}'")


class DuckConnectionStore(Store):
    """What every store whose SQL runs on one DuckDB connection shares: the DuckDB file (``DuckStore``) and DuckDB
    over the Parquet warehouse (``warehouse_store.WarehouseStore``)."""

    con: duckdb.DuckDBPyConnection

    @cached_property
    def ibis(self) -> ibis.backends.duckdb.Backend:
        """An Ibis backend on the same connection (imported on first use: Ibis is slow to import)."""
        import ibis

        return ibis.duckdb.from_connection(self.con)

    @property
    def work(self) -> duckdb.DuckDBPyConnection:
        return self.con

    def close(self) -> None:
        self.con.close()

    def view(self) -> Self:
        view = copy.copy(self)
        view.con = self.con.cursor()
        view.__dict__.pop("ibis", None)  # the Ibis backend is bound to a connection: each view makes its own
        return view

    def settle(self, failed: bool) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.abort()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or None).fetchall()

    def arrow(self, query: str, types: dict[str, str]) -> pa.Table:
        return self.con.sql(query).to_arrow_table()

    def stage_history(self, days: int = 60) -> None:
        lo, hi = self.con.execute("SELECT min(period), max(period) FROM accepted").fetchone()  # type: ignore[misc]
        self.con.execute(HISTORY_TABLE)
        recent = f"superseded_at IS NULL AND period BETWEEN $lo - INTERVAL {int(days)} DAY AND $hi"
        if lo is None or not self.con.execute(f"SELECT EXISTS (SELECT 1 FROM observation WHERE {recent})",
                                              {"lo": lo, "hi": hi}).fetchone()[0]:  # type: ignore[index]
            return
        self.con.execute(keep_history(f"(SELECT org, metric, dims, period, value FROM observation WHERE {recent})"),
                         {"lo": lo, "hi": hi})


class DuckStore(DuckConnectionStore):
    engine = "duckdb"

    def __init__(self, path: Path, tmp_dir: Path | None = None, read_only: bool = False) -> None:
        self.path = path
        self.con = duckdb.connect(str(path), read_only=read_only)
        configure(self.con, tmp_dir)
        if not read_only:
            for table in TABLES:
                self.con.execute(ddl(table))

    def settle(self, failed: bool) -> None:
        super().settle(failed)
        if failed:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        found = self.con.execute(sql, params or None).fetchall()
        return int(found[0][0]) if found and isinstance(found[0][0], int) else 0

    def query_progress(self) -> float:
        """Percent done of the query running on this connection (-1 when none); safe from another thread."""
        return float(self.con.query_progress())

    def has_table(self, name: str) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name])
                    .fetchall()[0][0])

    # -- organisations -------------------------------------------------------------------------------------

    def replace_orgs(self, orgs: list[Org]) -> None:
        with self.transaction():
            self.con.execute("DELETE FROM organisation")
            self.con.register("_orgs", org_table(orgs))
            self.con.execute("INSERT INTO organisation SELECT * FROM _orgs")
            self.con.unregister("_orgs")

    def orgs(self) -> list[Org]:
        return orgs_of(self.con.sql("SELECT * FROM organisation ORDER BY code").to_arrow_table().to_pylist())

    # -- loading -------------------------------------------------------------------------------------------

    def load(self, submission_id: int, recorded_at: datetime, counts: dict[str, int]) -> LoadRecord:
        con, r = self.con, recorded_at
        con.execute("BEGIN TRANSACTION")
        try:
            lo, hi = con.execute("SELECT min(period), max(period) FROM accepted").fetchone()  # type: ignore[misc]
            # may the file touch stored values? (series_dict's organisations include every accepted one)
            overlap = con.execute("""
                SELECT EXISTS (SELECT 1 FROM observation WHERE period BETWEEN $lo AND $hi
                                                          AND org IN (SELECT org FROM series_dict))""",
                                  {"lo": lo, "hi": hi}).fetchone()[0]  # type: ignore[index]
            flagged = """EXISTS (SELECT 1 FROM issues i WHERE i.severity = 'warning' AND i.row_num = a.row_num
                                 AND i.col = a.col AND i.sheet IS NOT DISTINCT FROM a.sheet) AS flagged"""
            cols = "a.org, a.metric, a.dims, a.period, a.period_end, a.value, a.sheet, a.row_num, a.col"
            if overlap:
                # the values in force at r for the file's series and days, by series number (``series_dict``)
                con.execute(f"""
                    CREATE OR REPLACE TEMP TABLE changed AS
                    WITH held AS (
                        SELECT s.series, o.period, o.value
                        FROM (SELECT org, metric, dims, period, value FROM observation
                              WHERE period BETWEEN $lo AND $hi
                                AND recorded_at <= $r AND (superseded_at IS NULL OR superseded_at > $r)) o
                        JOIN series_dict s USING (org, metric, dims))
                    SELECT {cols}, {flagged}
                    FROM accepted a
                    WHERE NOT EXISTS (SELECT 1 FROM held o WHERE o.series = a.series AND o.period = a.period
                                                             AND o.value = a.value)""", {"r": r, "lo": lo, "hi": hi})
            else:
                con.execute(f"CREATE OR REPLACE TEMP VIEW changed AS SELECT {cols}, {flagged} FROM accepted a")
            latest = con.execute("SELECT max(recorded_at) FROM observation").fetchone()[0]  # type: ignore[index]
            if overlap and latest is not None:
                con.execute("""
                    UPDATE observation o SET superseded_at = $r FROM changed c
                    WHERE o.org = c.org AND o.metric = c.metric AND o.dims = c.dims AND o.period = c.period
                      AND o.recorded_at <= $r AND (o.superseded_at IS NULL OR o.superseded_at > $r)""", {"r": r})
            later = "NULL::TIMESTAMP"
            if latest is not None and latest > r:
                later = """(SELECT min(o.recorded_at) FROM observation o WHERE o.org = c.org AND o.metric = c.metric
                            AND o.dims = c.dims AND o.period = c.period AND o.recorded_at > $r)"""
            inserted = con.execute(f"""
                INSERT INTO observation
                SELECT c.org, c.metric, c.dims, c.period, c.period_end, c.value, $sid, c.sheet, c.row_num, c.col,
                       c.flagged, $r, {later}
                FROM changed c""", {"r": r, "sid": submission_id}).fetchone()[0]  # type: ignore[index]
            # withdrawn values: the one in force at r ends there, and nothing replaces it
            withdrawn = con.execute("""
                UPDATE observation o SET superseded_at = $r FROM deletions d
                WHERE o.org = d.org AND o.metric = d.metric AND o.dims = d.dims AND o.period = d.period
                  AND o.recorded_at <= $r AND (o.superseded_at IS NULL OR o.superseded_at > $r)""",
                                    {"r": r}).fetchone()[0]  # type: ignore[index]
            con.execute("""
                INSERT INTO quality_issue
                SELECT $sid, sheet, row_num, col, org, metric, dims, period, raw, rule, severity, message, 'open'
                FROM issues""", {"sid": submission_id})
            con.execute(MARK_CORRECTED, {"sid": submission_id})
            stored = inserted + withdrawn
            record = LoadRecord(submission_id=submission_id, recorded_at=r, stored=stored, **counts)
            con.execute("INSERT INTO load_log VALUES ($1, $2, now()::TIMESTAMP, $3, $4, $5, $6, $7, $8, $9)",
                        [submission_id, r, record.rows_read, record.values_read, record.accepted, stored,
                         record.quarantined, record.warnings, record.missing])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return record

    def append(self, table: str, rows: pa.Table, *, replace_where: str | None = None,
               params: dict[str, Any] | None = None) -> int:
        self.check_appendable(table)
        with self.transaction():
            if replace_where is not None:
                self.con.execute(f"DELETE FROM {table} WHERE {replace_where}", params or {})
            self.con.register("_append", rows)
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _append")
            self.con.unregister("_append")
        return rows.num_rows

    def restore(self, table: str, parquet: Path) -> int:
        if table not in TABLES:
            raise ValueError(f"{table} is not a data-plane table")
        with self.transaction():
            self.con.execute(f"DELETE FROM {table}")
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet($path)",
                             {"path": str(parquet)})
            count = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        return int(count)

    def export_reader(self, table: str, batch_rows: int) -> pa.RecordBatchReader:
        return self.con.sql(f"SELECT * FROM {table} ORDER BY ALL").to_arrow_reader(batch_rows)
