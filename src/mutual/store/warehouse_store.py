"""The data plane as a Parquet warehouse, for national scale: what ingest writes when ``MUTUAL_DATA_ENGINE=spark``,
and what Spark reads (``spark_store.SparkStore.warehouse``) for roll-ups, completeness and extracts.

Parquet files are never changed once written, so the bitemporal table is kept as an append-only log of events and
``superseded_at`` is derived when it is read: a value is superseded when the next event of its key is recorded
(``lead(recorded_at)``), and a withdrawn value is an event that ends its predecessor and is not itself shown. This
gives the same table as DuckDB's and PostgreSQL's updates (the specification tests and the export's bytes say so).

Layout under the warehouse folder (``MUTUAL_SPARK_WAREHOUSE``, default ``<home>/warehouse``):

- ``observation/month=YYYY-MM/b<batch>_<n>.parquet``: value events, partitioned by the month of their period;
- ``quality_issue/``, ``issue_status/`` (an issue's later status: corrected, released), ``load_log/``: one file per
  batch;
- ``apc_episode/admission_month=YYYY-MM/``: record-level episodes, replaced whole;
- ``<table>.parquet`` for the organisations and derived tables, replaced whole by an atomic rename;
- ``commits/b<batch>.parquet``: written last by every batch. Readers see a batch's events only once its commit
  marker is there, so a process killed mid-batch leaves nothing visible, and re-running does the work again.

Writers take turns (an exclusive lock on ``.lock`` in the folder, held from reading what is in force to the
commit marker), so two ingests at once never both store a key; readers need no lock.
Reads and the load's rules run in DuckDB over the files, so the CLI and the web need no Spark session.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mutual.catalog.orgs import Org
from mutual.store.base import LoadRecord, org_table
from mutual.store.duckdb_store import DuckConnectionStore, configure
from mutual.store.schema import TABLES, base_types

EVENT_COLUMNS = {**{name: kind.split()[0] for name, kind in TABLES["observation"] if name != "superseded_at"},
                 "withdrawn": "BOOLEAN", "batch": "VARCHAR", "seq": "BIGINT"}
ISSUE_EVENT_COLUMNS = {**{name: kind.split()[0] for name, kind in TABLES["quality_issue"] if name != "status"},
                       "batch": "VARCHAR"}
STATUS_COLUMNS = {"submission_id": "INTEGER", "sheet": "VARCHAR", "row_num": "BIGINT", "col": "VARCHAR",
                  "rule": "VARCHAR", "status": "VARCHAR", "batch": "VARCHAR"}
LOG_COLUMNS = {**base_types("load_log"), "batch": "VARCHAR"}
LOGGED = {"observation": EVENT_COLUMNS, "quality_issue": ISSUE_EVENT_COLUMNS, "issue_status": STATUS_COLUMNS,
          "load_log": LOG_COLUMNS}
WHOLE = [t for t in TABLES if t not in ("observation", "quality_issue", "load_log", "apc_episode")]
KEY = ("org", "metric", "dims", "period")


def _typed(columns: dict[str, str]) -> str:
    return ", ".join(f"NULL::{kind} AS {name}" for name, kind in columns.items())


class WarehouseStore(DuckConnectionStore):
    engine = "spark"

    def __init__(self, folder: Path, tmp_dir: Path | None = None, read_only: bool = False) -> None:
        self.folder = folder
        self.tmp_dir = tmp_dir
        self.con = duckdb.connect()
        configure(self.con, tmp_dir)
        if not read_only:
            self._create()
        elif not (folder / "commits").is_dir():
            raise FileNotFoundError(f"{folder}: no Mutual warehouse here")
        self._views()

    # -- files ----------------------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return (self.folder.joinpath(*parts)).as_posix().replace("'", "''")

    def _create(self) -> None:
        """Empty folders for the logs, each with an empty file so its glob always matches, and empty tables."""
        for name, columns in (*LOGGED.items(), ("commits", {"batch": "VARCHAR"})):
            if (self.folder / name).exists():
                continue
            target = self.folder / name / ("month=0000-00" if name == "observation" else "")
            target.mkdir(parents=True)
            # the first batch, "init", is committed and empty: it gives every glob a file and every log its types
            select = "SELECT 'init' AS batch" if name == "commits" else f"SELECT {_typed(columns)} WHERE false"
            self.con.execute(f"COPY ({select}) TO '{(target / 'init.parquet').as_posix()}' (FORMAT parquet)")
        episodes = self.folder / "apc_episode"
        if not episodes.exists():
            self._write_partitioned("apc_episode", f"SELECT {_typed(base_types('apc_episode'))} WHERE false")
        for table in WHOLE:
            if not (self.folder / f"{table}.parquet").exists():
                self._write_whole(table, f"SELECT {_typed(base_types(table))} WHERE false")

    def _views(self) -> None:
        c = self.con
        c.execute(f"CREATE OR REPLACE VIEW committed AS SELECT batch FROM "
                  f"read_parquet('{self._path('commits')}/*.parquet')")
        for name, columns in LOGGED.items():
            glob = f"{self._path(name)}/*/*.parquet" if name == "observation" else f"{self._path(name)}/*.parquet"
            names = ", ".join(columns)
            c.execute(f"CREATE OR REPLACE VIEW {name}_event AS SELECT {names} FROM read_parquet('{glob}', "
                      "union_by_name = true) WHERE batch IN (SELECT batch FROM committed)")
        obs = ", ".join(name for name, _ in TABLES["observation"])
        c.execute(f"""
            CREATE OR REPLACE VIEW observation AS SELECT {obs} FROM (
                SELECT *, lead(recorded_at) OVER (PARTITION BY org, metric, dims, period
                                                  ORDER BY recorded_at, batch, seq) AS superseded_at
                FROM observation_event) WHERE NOT withdrawn""")
        issue = ", ".join(f"i.{name}" for name in ISSUE_EVENT_COLUMNS if name != "batch")
        c.execute(f"""
            CREATE OR REPLACE VIEW quality_issue AS
            WITH st AS (SELECT submission_id, sheet, row_num, col, rule, arg_max(status, batch) AS status
                        FROM issue_status_event GROUP BY ALL)
            SELECT {issue}, coalesce(st.status, 'open') AS status
            FROM quality_issue_event i LEFT JOIN st
              ON st.submission_id = i.submission_id AND st.sheet IS NOT DISTINCT FROM i.sheet
             AND st.row_num IS NOT DISTINCT FROM i.row_num AND st.col IS NOT DISTINCT FROM i.col
             AND st.rule = i.rule""")
        c.execute(f"CREATE OR REPLACE VIEW load_log AS SELECT {', '.join(base_types('load_log'))} FROM load_log_event")
        c.execute(f"CREATE OR REPLACE VIEW apc_episode AS SELECT {', '.join(base_types('apc_episode'))} FROM "
                  f"read_parquet('{self._path('apc_episode')}/*/*.parquet', hive_partitioning = true)")
        for table in WHOLE:
            c.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{self._path(table)}.parquet')")

    def _spool(self) -> Path:
        folder = self.folder / ".tmp" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def _write_whole(self, table: str, query: str, params: dict[str, Any] | None = None) -> None:
        """Replace ``<table>.parquet`` with the rows of ``query``: written aside, then renamed over it."""
        spool = self._spool()
        try:
            self.con.execute(f"COPY ({query}) TO '{(spool / 'data.parquet').as_posix()}' (FORMAT parquet)",
                             params or None)
            os.replace(spool / "data.parquet", self.folder / f"{table}.parquet")
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    def _write_partitioned(self, table: str, query: str) -> None:
        """Replace the episodes with the rows of ``query``, partitioned by month of admission."""
        spool = self._spool()
        try:
            self.con.execute(f"COPY (SELECT *, strftime(admission_date, '%Y-%m') AS admission_month FROM ({query})) "
                             f"TO '{(spool / 'new').as_posix()}' (FORMAT parquet, PARTITION_BY (admission_month))")
            if not (spool / "new").exists():
                (spool / "new").mkdir()
            target = self.folder / table
            if not any((spool / "new").iterdir()):
                (spool / "new" / "admission_month=0000-00").mkdir()
                self.con.execute(f"COPY (SELECT {_typed(base_types(table))} WHERE false) TO "
                                 f"'{(spool / 'new' / 'admission_month=0000-00' / 'init.parquet').as_posix()}' "
                                 "(FORMAT parquet)")
            if target.exists():
                os.replace(target, spool / "old")
            os.replace(spool / "new", target)
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """The warehouse's write lock (released by the OS if the process dies)."""
        with (self.folder / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @staticmethod
    def _batch() -> str:
        return f"{time.time_ns():020d}{uuid.uuid4().hex[:6]}"

    def _log(self, name: str, batch: str, query: str, params: dict[str, Any] | None = None) -> None:
        """Write one batch's rows of a log (not yet visible: ``_commit`` makes it so), each column of its log's
        type, so every file of a log has one schema."""
        query = "SELECT " + ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in LOGGED[name].items()) + f" FROM ({query})"
        if name == "observation":
            spool = self._spool()
            try:
                self.con.execute(f"COPY (SELECT *, strftime(period, '%Y-%m') AS month FROM ({query})) TO "
                                 f"'{(spool / 'out').as_posix()}' (FORMAT parquet, PARTITION_BY (month), "
                                 f"FILENAME_PATTERN 'b{batch}_{{i}}')", params or None)
                for part in (spool / "out").glob("*/*.parquet") if (spool / "out").exists() else []:
                    (self.folder / name / part.parent.name).mkdir(exist_ok=True)
                    os.replace(part, self.folder / name / part.parent.name / part.name)
            finally:
                shutil.rmtree(spool, ignore_errors=True)
            return
        target = (self.folder / name / f"b{batch}.parquet").as_posix()
        self.con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)", params or None)

    def _commit(self, batch: str) -> None:
        """Make a batch visible: its marker, written aside and renamed into place (atomic)."""
        spool = self._spool()
        try:
            self.con.execute(f"COPY (SELECT '{batch}' AS batch) TO '{(spool / 'm.parquet').as_posix()}' "
                             "(FORMAT parquet)")
            os.replace(spool / "m.parquet", self.folder / "commits" / f"b{batch}.parquet")
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    # -- the store interface --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield  # a batch is made visible by its commit marker, not by a database transaction

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        raise NotImplementedError("the warehouse is written in batches of files, not by SQL statements")

    def has_table(self, name: str) -> bool:
        return name in TABLES and ((self.folder / f"{name}.parquet").exists() or (self.folder / name).is_dir())

    def replace_orgs(self, orgs: list[Org]) -> None:
        self.con.register("_orgs", org_table(orgs))
        try:
            self._write_whole("organisation", "SELECT * FROM _orgs")
        finally:
            self.con.unregister("_orgs")

    def load(self, submission_id: int, recorded_at: datetime, counts: dict[str, int]) -> LoadRecord:
        with self._writer():
            return self._load(submission_id, recorded_at, counts)

    def _load(self, submission_id: int, recorded_at: datetime, counts: dict[str, int]) -> LoadRecord:
        c, sid, r, batch = self.con, submission_id, recorded_at, self._batch()
        key = " AND ".join(f"o.{k} = a.{k}" for k in KEY)
        c.execute("""
            CREATE OR REPLACE TEMP TABLE in_force AS
            SELECT o.org, o.metric, o.dims, o.period, o.value FROM observation o
            WHERE o.period BETWEEN (SELECT least(min(period), (SELECT min(period) FROM deletions)) FROM accepted)
                               AND (SELECT greatest(max(period), (SELECT max(period) FROM deletions)) FROM accepted)
              AND o.recorded_at <= $r AND (o.superseded_at IS NULL OR o.superseded_at > $r)
              AND (o.org, o.metric, o.dims, o.period) IN (SELECT org, metric, dims, period FROM accepted
                                                          UNION ALL SELECT org, metric, dims, period FROM deletions)""",
                  {"r": r})
        c.execute(f"""
            CREATE OR REPLACE TEMP TABLE changed AS
            SELECT a.org, a.metric, a.dims, a.period, a.period_end, a.value, a.sheet, a.row_num, a.col,
                   EXISTS (SELECT 1 FROM issues i WHERE i.severity = 'warning' AND i.row_num = a.row_num
                           AND i.col = a.col AND i.sheet IS NOT DISTINCT FROM a.sheet) AS flagged
            FROM accepted a WHERE NOT EXISTS (SELECT 1 FROM in_force o WHERE {key} AND o.value = a.value)""")
        withdrawn = c.execute(f"SELECT count(*) FROM in_force o JOIN deletions a ON {key}").fetchall()[0][0]
        stored = c.execute("SELECT count(*) FROM changed").fetchall()[0][0] + withdrawn
        events = ", ".join(EVENT_COLUMNS)
        self._log("observation", batch, f"""
            SELECT {events} FROM (
                SELECT org, metric, dims, period, period_end, value, $sid AS submission_id, sheet, row_num, col,
                       flagged, $r AS recorded_at, false AS withdrawn, $batch AS batch, 0 AS seq FROM changed
                UNION ALL
                SELECT DISTINCT a.org, a.metric, a.dims, a.period, a.period, NULL, $sid, NULL, NULL, NULL, false, $r,
                       true, $batch, 0 FROM deletions a JOIN in_force o ON {key})""",
                  {"sid": sid, "r": r, "batch": batch})
        self._log("quality_issue", batch, "SELECT $sid AS submission_id, sheet, row_num, col, org, metric, dims, "
                                          "period, raw, rule, severity, message, $batch AS batch FROM issues",
                  {"sid": sid, "batch": batch})
        self._log("issue_status", batch, """
            SELECT DISTINCT q.submission_id, q.sheet, q.row_num, q.col, q.rule, 'corrected' AS status, $batch AS batch
            FROM quality_issue q JOIN changed a ON q.org = a.org AND q.metric = a.metric AND q.dims = a.dims
                                              AND q.period = a.period::VARCHAR
            WHERE q.status = 'open' AND q.severity = 'error' AND q.submission_id <> $sid""",
                  {"sid": sid, "batch": batch})
        record = LoadRecord(submission_id=sid, recorded_at=r, stored=int(stored), **counts)
        counted = ("rows_read", "values_read", "accepted", "stored", "quarantined", "warnings", "missing")
        self._log("load_log", batch, "SELECT $sid AS submission_id, $r AS recorded_at, now()::TIMESTAMP AS loaded_at, "
                                     + ", ".join(f"${n} AS {n}" for n in counted) + ", $batch AS batch",
                  {"sid": sid, "r": r, "batch": batch, **{n: int(getattr(record, n)) for n in counted}})
        self._commit(batch)
        return record

    def _release_write(self, key: dict[str, Any], value: float, submission_id: int, sheet: str | None, row_num: int,
                      col: str | None, cell: str, params: dict[str, Any]) -> None:
        with self._writer():
            self._release_events(key, value, submission_id, sheet, row_num, col, cell, params)

    def _release_events(self, key: dict[str, Any], value: float, submission_id: int, sheet: str | None,
                        row_num: int, col: str | None, cell: str, params: dict[str, Any]) -> None:
        batch = self._batch()
        self._log("observation", batch, """
            SELECT $org AS org, $metric AS metric, $dims AS dims, $period::DATE AS period, $period::DATE AS period_end,
                   $value::DOUBLE AS value, $sid::INTEGER AS submission_id, $sheet::VARCHAR AS sheet,
                   $row::BIGINT AS row_num, $col::VARCHAR AS col, true AS flagged, $r::TIMESTAMP AS recorded_at,
                   false AS withdrawn, $batch AS batch, 0::BIGINT AS seq""",
                  {**key, "value": value, "sid": submission_id, "sheet": sheet, "row": row_num, "col": col,
                   "batch": batch})
        self._log("issue_status", batch, f"SELECT DISTINCT submission_id, sheet, row_num, col, rule, 'released' "
                                          f"AS status, $batch AS batch FROM quality_issue WHERE {cell}",
                  {**params, "batch": batch})
        self._commit(batch)

    def append(self, table: str, rows: pa.Table, *, replace_where: str | None = None,
               params: dict[str, Any] | None = None) -> int:
        self.check_appendable(table)
        with self._writer():
            return self._append(table, rows, replace_where, params)

    def _append(self, table: str, rows: pa.Table, replace_where: str | None, params: dict[str, Any] | None) -> int:
        columns = ", ".join(base_types(table))
        keep = f"SELECT {columns} FROM {table}" + (f" WHERE NOT coalesce(({replace_where}), false)"
                                                    if replace_where else "")
        new = f"SELECT {columns} FROM {table} WHERE false"
        if rows.num_rows:
            self.con.register("_append", rows)
            new = f"SELECT {columns} FROM _append"
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _next AS SELECT * FROM ({keep}) UNION ALL {new}",
                             params or None)
        finally:
            if rows.num_rows:
                self.con.unregister("_append")
        self._replace(table, "SELECT * FROM _next")
        self.con.execute("DROP TABLE _next")
        return rows.num_rows

    def delete(self, table: str, where: str, params: dict[str, Any] | None = None) -> int:
        self.check_appendable(table)
        gone = self.con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params or None).fetchall()[0][0]
        self.append(table, pa.table({}), replace_where=where, params=params)
        return int(gone)

    def _replace(self, table: str, query: str, params: dict[str, Any] | None = None) -> None:
        if table == "apc_episode":
            self._write_partitioned(table, query)
        else:
            self._write_whole(table, query, params)

    def restore(self, table: str, parquet: Path) -> int:
        if table not in TABLES:
            raise ValueError(f"{table} is not a data-plane table")
        src = f"read_parquet('{parquet.as_posix()}')"
        if table not in ("observation", "quality_issue", "load_log"):
            self._replace(table, f"SELECT {', '.join(base_types(table))} FROM {src}")
        else:
            batch = self._batch()
            if table == "observation":
                key = " AND ".join(f"n.{k} = o.{k}" for k in KEY)
                self._log("observation", batch, f"""
                    SELECT {', '.join(EVENT_COLUMNS)} FROM (
                        SELECT * EXCLUDE (superseded_at), false AS withdrawn, $batch AS batch,
                               row_number() OVER (ORDER BY recorded_at, superseded_at NULLS LAST) AS seq FROM {src}
                        UNION ALL  -- a value that ended with nothing after it was withdrawn then
                        SELECT org, metric, dims, period, period, NULL, submission_id, NULL, NULL, NULL, false,
                               superseded_at, true, $batch, 0 FROM {src} o
                        WHERE superseded_at IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM {src} n WHERE {key} AND n.recorded_at = o.superseded_at))""",
                          {"batch": batch})
            elif table == "quality_issue":
                names = ", ".join(n for n in ISSUE_EVENT_COLUMNS if n != "batch")
                self._log("quality_issue", batch, f"SELECT {names}, $batch AS batch FROM {src}", {"batch": batch})
                self._log("issue_status", batch, f"SELECT DISTINCT submission_id, sheet, row_num, col, rule, status, "
                                                 f"$batch AS batch FROM {src} WHERE status <> 'open'",
                          {"batch": batch})
            else:
                self._log("load_log", batch, f"SELECT *, $batch AS batch FROM {src}", {"batch": batch})
            self._commit(batch)
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

    def export_reader(self, table: str, batch_rows: int) -> pa.RecordBatchReader:
        return self.con.sql(f"SELECT * FROM {table} ORDER BY ALL").to_arrow_reader(batch_rows)

    def orgs(self) -> list[Org]:
        from mutual.store.base import orgs_of

        return orgs_of(self.con.sql("SELECT * FROM organisation ORDER BY code").to_arrow_table().to_pylist())
