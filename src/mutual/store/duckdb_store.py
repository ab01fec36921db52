"""The DuckDB data plane: observations, quality issues, organisations and the load log in one file.

Writes are SQL inside one DuckDB transaction per submission (a process killed mid-load leaves nothing of it).
Reads are Ibis expressions, so the same query code can later run on other engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa

from mutual.catalog.orgs import Org, OrgKind
from mutual.store.schema import TABLES, ddl

if TYPE_CHECKING:
    import ibis.backends.duckdb
    import ibis.expr.types as ir

# Large ingests spill to the workspace's tmp/ rather than grow past this.
MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class LoadRecord:
    submission_id: int
    recorded_at: datetime
    rows_read: int
    values_read: int
    accepted: int
    stored: int
    quarantined: int
    warnings: int
    missing: int


@dataclass(frozen=True)
class ObservationQuery:
    metric: str | None = None
    org: str | None = None
    start: date | None = None
    end: date | None = None
    as_of: datetime | None = None
    include_history: bool = False


class ObservationSource(Protocol):
    """What the analytics read, on any engine (``DuckStore``, ``spark_store.SparkStore``)."""

    def observations(self, q: ObservationQuery) -> ir.Table: ...

    def orgs(self) -> list[Org]: ...


def in_force(t: ir.Table, q: ObservationQuery) -> ir.Table:
    """The bitemporal query on any engine's observation table (an Ibis table): the values in force at
    ``q.as_of`` (or every version recorded by then, with ``include_history``), filtered by ``q``."""
    import ibis

    if q.include_history:
        if q.as_of is not None:
            t = t.filter(t.recorded_at <= ibis.literal(q.as_of, type="timestamp"))
    elif q.as_of is None:
        t = t.filter(t.superseded_at.isnull())
    else:
        as_of = ibis.literal(q.as_of, type="timestamp")
        t = t.filter(t.recorded_at <= as_of, t.superseded_at.isnull() | (t.superseded_at > as_of))
    if q.metric:
        t = t.filter(t.metric == q.metric)
    if q.org:
        t = t.filter(t.org == q.org)
    if q.start:
        t = t.filter(t.period >= q.start)
    if q.end:
        t = t.filter(t.period <= q.end)
    return t.order_by(["org", "metric", "dims", "period", "recorded_at"])


def orgs_of(rows: list[dict[str, Any]]) -> list[Org]:
    """Organisation rows (the ``organisation`` table's columns) as ``Org`` objects."""
    return [Org.model_validate({**r, "kind": OrgKind(r["kind"])}) for r in rows]


class DuckStore:
    def __init__(self, path: Path, tmp_dir: Path | None = None, read_only: bool = False) -> None:
        self.path = path
        self.con = duckdb.connect(str(path), read_only=read_only)
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        # order is kept only where it carries meaning (a file's records, in csv_stage): elsewhere it costs memory
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")
        if tmp_dir is not None:
            self.con.execute(f"SET temp_directory = '{tmp_dir}'")
        if not read_only:
            for table in TABLES:
                self.con.execute(ddl(table))

    @cached_property
    def ibis(self) -> ibis.backends.duckdb.Backend:
        """An Ibis backend on the same connection (imported on first use: Ibis is slow to import)."""
        import ibis

        return ibis.duckdb.from_connection(self.con)

    def close(self) -> None:
        self.con.close()

    def query_progress(self) -> float:
        """Percent done of the query running on this connection (-1 when none); safe from another thread."""
        return float(self.con.query_progress())

    # -- organisations -------------------------------------------------------------------------------------

    def replace_orgs(self, orgs: list[Org]) -> None:
        rows = [o.model_dump(mode="python") for o in orgs]
        table = pa.Table.from_pylist(
            [{**r, "kind": str(r["kind"])} for r in rows],
            schema=pa.schema([("code", pa.string()), ("name", pa.string()), ("kind", pa.string()),
                              ("parent", pa.string()), ("region", pa.string()), ("postcode", pa.string()),
                              ("open_date", pa.date32()), ("close_date", pa.date32()),
                              ("successor", pa.string()), ("successor_date", pa.date32()),
                              ("lat", pa.float64()), ("lon", pa.float64())]))
        self.con.execute("BEGIN")
        self.con.execute("DELETE FROM organisation")
        self.con.register("_orgs", table)
        self.con.execute("INSERT INTO organisation SELECT * FROM _orgs")
        self.con.unregister("_orgs")
        self.con.execute("COMMIT")

    def orgs(self) -> list[Org]:
        return orgs_of(self.con.sql("SELECT * FROM organisation ORDER BY code").to_arrow_table().to_pylist())

    # -- loading -------------------------------------------------------------------------------------------

    def stage_history(self, days: int = 60) -> None:
        """Temp table ``history``: current values of the series in ``accepted``, from ``days`` before its
        first period, for rules that compare a value with its series' past."""
        lo, hi = self.con.execute("SELECT min(period), max(period) FROM accepted").fetchone()  # type: ignore[misc]
        self.con.execute("CREATE OR REPLACE TEMP TABLE history (org VARCHAR, metric VARCHAR, dims VARCHAR, "
                         "period DATE, value DOUBLE)")
        if lo is None:
            return
        self.con.execute(f"""
            INSERT INTO history
            WITH recent AS (SELECT org, metric, dims, period, value FROM observation
                            WHERE superseded_at IS NULL AND period BETWEEN $lo - INTERVAL {int(days)} DAY AND $hi)
            SELECT r.* FROM recent r
            WHERE (r.org, r.metric, r.dims) IN (SELECT DISTINCT org, metric, dims FROM accepted)
              AND NOT EXISTS (SELECT 1 FROM accepted a WHERE a.org = r.org AND a.metric = r.metric
                              AND a.dims = r.dims AND a.period = r.period)""", {"lo": lo, "hi": hi})

    def load(self, submission_id: int, recorded_at: datetime, counts: dict[str, int]) -> LoadRecord:
        """Store staged ``accepted`` values and ``issues`` of one submission, all or nothing.

        A value equal to the one in force at ``recorded_at`` is not stored again; a different one supersedes
        it. Open quarantined values of the same key are marked corrected."""
        con, r = self.con, recorded_at
        con.execute("BEGIN TRANSACTION")
        try:
            overlap = con.execute("""
                SELECT EXISTS (SELECT 1 FROM observation o,
                                      (SELECT min(period) AS lo, max(period) AS hi FROM accepted) s
                               WHERE o.period BETWEEN s.lo AND s.hi
                                 AND o.org IN (SELECT DISTINCT org FROM accepted))""").fetchone()[0]  # type: ignore[index]
            flagged = """EXISTS (SELECT 1 FROM issues i WHERE i.severity = 'warning' AND i.row_num = a.row_num
                                 AND i.col = a.col AND i.sheet IS NOT DISTINCT FROM a.sheet) AS flagged"""
            cols = "a.org, a.metric, a.dims, a.period, a.period_end, a.value, a.sheet, a.row_num, a.col"
            if overlap:
                con.execute(f"""
                    CREATE OR REPLACE TEMP TABLE changed AS
                    SELECT {cols}, {flagged}
                    FROM accepted a
                    WHERE NOT EXISTS (
                        SELECT 1 FROM observation o
                        WHERE o.org = a.org AND o.metric = a.metric AND o.dims = a.dims AND o.period = a.period
                          AND o.recorded_at <= $r AND (o.superseded_at IS NULL OR o.superseded_at > $r)
                          AND o.value = a.value)""", {"r": r})
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
            con.execute(f"""
                INSERT INTO observation
                SELECT c.org, c.metric, c.dims, c.period, c.period_end, c.value, $sid, c.sheet, c.row_num, c.col,
                       c.flagged, $r, {later}
                FROM changed c""", {"r": r, "sid": submission_id})
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
            con.execute("""
                UPDATE quality_issue q SET status = 'corrected'
                FROM changed c
                WHERE q.status = 'open' AND q.severity = 'error' AND q.submission_id <> $sid
                  AND q.org = c.org AND q.metric = c.metric AND q.dims = c.dims AND q.period = c.period::VARCHAR""",
                        {"sid": submission_id})
            stored = con.execute("SELECT count(*) FROM changed").fetchone()[0] + withdrawn  # type: ignore[index]
            record = LoadRecord(submission_id=submission_id, recorded_at=r, stored=stored, **counts)
            con.execute("INSERT INTO load_log VALUES ($1, $2, now()::TIMESTAMP, $3, $4, $5, $6, $7, $8, $9)",
                        [submission_id, r, record.rows_read, record.values_read, record.accepted, stored,
                         record.quarantined, record.warnings, record.missing])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return record

    def release(self, submission_id: int, row_num: int, col: str | None, released_at: datetime,
                sheet: str | None = None) -> tuple[str, float]:
        """Accept a quarantined value after all (an analyst confirmed it): store it as of ``released_at`` with
        its original lineage, and mark its issues released. Values that cannot be read stay quarantined."""
        con = self.con
        cell = ("submission_id = $sid AND row_num = $row AND col IS NOT DISTINCT FROM $col "
                "AND ($sheet IS NULL OR sheet = $sheet) AND severity = 'error' AND status = 'open'")
        params = {"sid": submission_id, "row": row_num, "col": col, "sheet": sheet}
        rows = con.execute(f"""
            SELECT DISTINCT sheet, org, metric, dims, period, raw,
                   try_cast(replace(trim(raw), ',', '') AS DOUBLE) AS value
            FROM quality_issue WHERE {cell}""", params).fetchall()
        where = (f"submission {submission_id}, " + (f"sheet {sheet!r}, " if sheet else "") + f"line {row_num}"
                 + (f", column {col!r}" if col else ""))
        if not rows:
            raise ValueError(f"no open quarantined value at {where}")
        if len({r[0] for r in rows}) > 1:
            raise ValueError(f"{where} is in more than one sheet (" + ", ".join(sorted(str(r[0]) for r in rows))
                             + "): say which with --sheet")
        found_sheet, org, metric, dims, period, raw, value = rows[0]
        if org is None or metric is None or period is None or value is None or dims is None:
            raise ValueError(f"the value at {where} ({raw!r}) cannot be released as it is: its organisation, metric, "
                             "date or number could not be read; send a corrected file instead")
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("""UPDATE observation SET superseded_at = $r WHERE org = $org AND metric = $metric
                           AND dims = $dims AND period = $period AND superseded_at IS NULL""",
                        {"r": released_at, "org": org, "metric": metric, "dims": dims, "period": period})
            con.execute("INSERT INTO observation VALUES ($org, $metric, $dims, $period, $period, $value, $sid, "
                        "$sheet, $row, $col, true, $r, NULL)",
                        {"org": org, "metric": metric, "dims": dims, "period": date.fromisoformat(period),
                         "value": value, "sid": submission_id, "sheet": found_sheet, "row": row_num, "col": col,
                         "r": released_at})
            con.execute(f"UPDATE quality_issue SET status = 'released' WHERE {cell}", params)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return f"{org} {metric} {period}", value

    def submission_orgs(self, submission_id: int) -> set[str]:
        """The organisations a submission reported values for."""
        rows = self.con.execute("SELECT DISTINCT org FROM observation WHERE submission_id = ? UNION "
                                "SELECT DISTINCT org FROM quality_issue WHERE submission_id = ? AND org IS NOT NULL",
                                [submission_id, submission_id]).fetchall()
        return {r[0] for r in rows}

    def loaded(self, submission_id: int) -> LoadRecord | None:
        row = self.con.execute(
            "SELECT submission_id, recorded_at, rows_read, values_read, accepted, stored, quarantined, warnings, "
            "missing FROM load_log WHERE submission_id = ?", [submission_id]).fetchone()
        return None if row is None else LoadRecord(*row)

    def drop_staging(self) -> None:
        """Drop every temp view and table an ingest left (they live only in this connection)."""
        for (name,) in self.con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall():
            self.con.execute(f"DROP VIEW IF EXISTS temp.{name}")
        for (name,) in self.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
            self.con.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def append(self, table: str, rows: pa.Table, *, replace_where: str | None = None,
               params: dict[str, Any] | None = None) -> int:
        """Append ``rows`` (columns named as the table's) to a data-plane table in one transaction, after deleting
        the rows that ``replace_where`` (a SQL condition with ``$name`` parameters) selects, if given.
        For derived and wholesale-loaded tables (forecasts, alerts, opt-outs, episodes); observations only ever go
        through ``load``."""
        if table not in TABLES or table in ("observation", "quality_issue", "load_log"):
            raise ValueError(f"{table} is not a derived data-plane table")
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            if replace_where is not None:
                con.execute(f"DELETE FROM {table} WHERE {replace_where}", params or {})
            con.register("_append", rows)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _append")
            con.unregister("_append")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return rows.num_rows

    def restore(self, table: str, parquet: Path) -> int:
        """Replace ``table`` with the rows of an export's Parquet file, in one transaction (``mutual import``
        into a new workspace: the only way rows reach ``observation`` other than ``load``)."""
        if table not in TABLES:
            raise ValueError(f"{table} is not a data-plane table")
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet($path)",
                        {"path": str(parquet)})
            count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(count)

    # -- reading -------------------------------------------------------------------------------------------

    def observations(self, q: ObservationQuery) -> ir.Table:
        """Observations as known at ``q.as_of`` (default: now), filtered; an Ibis expression. With
        ``include_history``, every version recorded by then, superseded ones included."""
        return in_force(self.ibis.table("observation"), q)

    def has_table(self, name: str) -> bool:
        """Whether the workspace has this table (one opened read-only may predate it)."""
        return bool(self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name])
                    .fetchall()[0][0])

    def expected_changes(self, metric: str | None = None) -> ir.Table | None:
        """Changes approved plans expect to make (see ``schema.EXPECTED_CHANGE_COLUMNS``); None in a workspace
        that predates them."""
        if not self.has_table("expected_change"):
            return None
        t = self.ibis.table("expected_change")
        return t.filter(t.metric == metric) if metric else t

    def issues(self, submission_id: int) -> ir.Table:
        t = self.ibis.table("quality_issue")
        return t.filter(t.submission_id == submission_id).order_by(["row_num", "col", "rule"])

    def issue_summary(self, submission_id: int | None = None) -> ir.Table:
        import ibis

        t = self.ibis.table("quality_issue")
        if submission_id is not None:
            t = t.filter(t.submission_id == submission_id)
        return (t.group_by(["severity", "rule"]).aggregate(n=t.count(), example=t.message.arbitrary())
                .order_by([ibis.desc("n")]))

    def stats(self) -> dict[str, Any]:
        obs = self.ibis.table("observation")
        current = obs.filter(obs.superseded_at.isnull())
        row = current.aggregate(values=current.count(), orgs=current.org.nunique(),
                                days=current.period.nunique(), first=current.period.min(),
                                last=current.period.max()).to_pyarrow().to_pylist()[0]
        return row
