"""What every data-plane engine offers (``DuckStore``, ``postgres_store.PgStore``): the store interface the rest
of Mutual codes against, and the reads that are the same Ibis expressions on every engine.

An ingest stages and checks a file in a DuckDB connection (``Store.work``: the store's own connection on DuckDB,
a private in-memory one on other engines), then hands the checked values to ``Store.load``, which writes them
on the store's engine in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from mutual.catalog.orgs import Org, OrgKind

if TYPE_CHECKING:
    import duckdb
    import ibis.expr.types as ir

# Large ingests spill to the workspace's tmp/ rather than grow past this.
MEMORY_LIMIT = "1GB"

ORG_SCHEMA = pa.schema([("code", pa.string()), ("name", pa.string()), ("kind", pa.string()),
                        ("parent", pa.string()), ("region", pa.string()), ("postcode", pa.string()),
                        ("open_date", pa.date32()), ("close_date", pa.date32()),
                        ("successor", pa.string()), ("successor_date", pa.date32()),
                        ("lat", pa.float64()), ("lon", pa.float64())])

# derived and wholesale-loaded tables: ``Store.append`` writes them; observations only ever go through ``load``
LOADED_ONLY = ("observation", "quality_issue", "load_log")


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
    """What the analytics read, on any engine (a ``Store``, or ``spark_store.SparkStore``): observations, the
    organisations, and the other tables through ``ibis``."""

    @property
    def ibis(self) -> Any: ...

    def observations(self, q: ObservationQuery, *, ordered: bool = True) -> ir.Table: ...

    def orgs(self) -> list[Org]: ...


def in_force(t: ir.Table, q: ObservationQuery, *, ordered: bool = True) -> ir.Table:
    """The bitemporal query on any engine's observation table (an Ibis table): the values in force at
    ``q.as_of`` (or every version recorded by then, with ``include_history``), filtered by ``q``; in key order
    unless ``ordered`` is False. Pass False for anything grouped or made distinct: Ibis carries the sort keys
    into a DISTINCT, which on PostgreSQL keeps rows apart that differ only in them."""
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
    return t.order_by(["org", "metric", "dims", "period", "recorded_at"]) if ordered else t


def orgs_of(rows: list[dict[str, Any]]) -> list[Org]:
    """Organisation rows (the ``organisation`` table's columns) as ``Org`` objects."""
    return [Org.model_validate({**r, "kind": OrgKind(r["kind"])}) for r in rows]


def org_table(orgs: list[Org]) -> pa.Table:
    rows = [o.model_dump(mode="python") for o in orgs]
    return pa.Table.from_pylist([{**r, "kind": str(r["kind"])} for r in rows], schema=ORG_SCHEMA)


def cell_name(submission_id: int, row_num: int, col: str | None, sheet: str | None) -> str:
    """How a quarantined value is named in messages: submission, sheet, line and column."""
    return (f"submission {submission_id}, " + (f"sheet {sheet!r}, " if sheet else "") + f"line {row_num}"
            + (f", column {col!r}" if col else ""))


# A load's values correct the open errors other submissions reported for their keys (SQL on ``changed``, the
# values it stores, with ``$sid`` the loading submission): the same statement on DuckDB and PostgreSQL.
MARK_CORRECTED = """
    UPDATE quality_issue q SET status = 'corrected'
    FROM changed c
    WHERE q.status = 'open' AND q.severity = 'error' AND q.submission_id <> $sid
      AND q.org = c.org AND q.metric = c.metric AND q.dims = c.dims AND q.period = c.period::VARCHAR"""


# The store's recent values of the file's series, by the series numbers of the rules' ``series_dict``
HISTORY_TABLE = "CREATE OR REPLACE TEMP TABLE history (series BIGINT, period DATE, value DOUBLE)"


def keep_history(recent: str) -> str:
    """SQL that fills ``history`` (``HISTORY_TABLE``) in ``work`` from ``recent`` (a relation of current values:
    org, metric, dims, period, value): the values of the series in ``accepted`` on days the file does not
    restate, numbered through ``series_dict``, so the comparison with millions of file values is on integers."""
    return f"""
        INSERT INTO history
        WITH numbered AS (SELECT s.series, r.period, r.value
                          FROM {recent} r JOIN series_dict s USING (org, metric, dims)
                          WHERE s.series IN (SELECT DISTINCT series FROM accepted))
        SELECT * FROM numbered n ANTI JOIN accepted a ON a.series = n.series AND a.period = n.period"""


class Store(ABC):
    """The data plane on one engine. SQL given to ``rows``, ``append`` and ``delete`` is portable (standard SQL)
    with ``$name`` parameters."""

    engine: str  # "duckdb" or "postgres"

    # -- engine-specific ----------------------------------------------------------------------------------

    @property
    @abstractmethod
    def ibis(self) -> Any:
        """An Ibis backend on this store's data."""

    @property
    @abstractmethod
    def work(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection an ingest stages and checks its file in."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def view(self) -> Store:
        """A store on the same data with a connection of its own (one per web request)."""

    @abstractmethod
    def settle(self, failed: bool) -> None:
        """Make a view's connection ready for the next request: drop unread results and, after a failure, end any
        transaction left open."""

    @abstractmethod
    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of a query (read to the end)."""

    @abstractmethod
    def arrow(self, query: str, types: dict[str, str]) -> pa.Table:
        """The rows of a query without parameters as Arrow, its columns of the DuckDB ``types`` given."""

    @abstractmethod
    def has_table(self, name: str) -> bool:
        """Whether the store has this table (one opened read-only may predate it)."""

    @abstractmethod
    def replace_orgs(self, orgs: list[Org]) -> None: ...

    @abstractmethod
    def stage_history(self, days: int = 60) -> None:
        """Temp table ``history`` in ``work`` (``HISTORY_TABLE``, filled by ``keep_history``): current values of
        the series in ``accepted``, from ``days`` before its first period, for rules that compare a value with its
        series' past."""

    @abstractmethod
    def load(self, submission_id: int, recorded_at: datetime, counts: dict[str, int]) -> LoadRecord:
        """Store the ``accepted`` values, ``deletions`` and ``issues`` staged in ``work`` for one submission, all
        or nothing. A value equal to the one in force at ``recorded_at`` is not stored again; a different one
        supersedes it; open quarantined values of the same key are marked corrected."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """One transaction on the store's connection: committed at the end, rolled back on any exception."""

    @abstractmethod
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Run one statement (portable SQL, ``$name`` parameters); how many rows it changed."""

    @abstractmethod
    def append(self, table: str, rows: pa.Table, *, replace_where: str | None = None,
               params: dict[str, Any] | None = None) -> int:
        """Append ``rows`` (columns named as the table's) to a derived data-plane table in one transaction, after
        deleting the rows that ``replace_where`` selects, if given."""

    @abstractmethod
    def restore(self, table: str, parquet: Path) -> int:
        """Replace ``table`` with the rows of an export's Parquet file, in one transaction."""

    @abstractmethod
    def export_reader(self, table: str, batch_rows: int) -> pa.RecordBatchReader:
        """Every row of ``table`` in a fixed order (all columns ascending, nulls last) with DuckDB's Arrow
        types, the same on every engine for the same rows (``mutual export``)."""

    def release(self, submission_id: int, row_num: int, col: str | None, released_at: datetime,
                sheet: str | None = None) -> tuple[str, float]:
        """Accept a quarantined value after all (an analyst confirmed it): store it as of ``released_at`` with
        its original lineage, and mark its issues released. Values that cannot be read stay quarantined."""
        cell = ("submission_id = $sid AND row_num = $row AND col IS NOT DISTINCT FROM $col "
                "AND ($sheet IS NULL OR sheet = $sheet) AND severity = 'error' AND status = 'open'")
        params = {"sid": submission_id, "row": row_num, "col": col, "sheet": sheet}
        found = self.rows(f"SELECT DISTINCT sheet, org, metric, dims, period, raw FROM quality_issue WHERE {cell}",
                          params)
        where = cell_name(submission_id, row_num, col, sheet)
        if not found:
            raise ValueError(f"no open quarantined value at {where}")
        if len({r[0] for r in found}) > 1:
            raise ValueError(f"{where} is in more than one sheet (" + ", ".join(sorted(str(r[0]) for r in found))
                             + "): say which with --sheet")
        found_sheet, org, metric, dims, period, raw = found[0]
        # read as the ingest reads numbers (a thousands separator allowed), by DuckDB on every engine
        value = self.work.execute("SELECT try_cast(replace(trim($raw), ',', '') AS DOUBLE)",
                                  {"raw": raw}).fetchall()[0][0]
        if org is None or metric is None or period is None or value is None or dims is None:
            raise ValueError(f"the value at {where} ({raw!r}) cannot be released as it is: its organisation, metric, "
                             "date or number could not be read; send a corrected file instead")
        key = {"r": released_at, "org": org, "metric": metric, "dims": dims, "period": date.fromisoformat(period)}
        self._release_write(key, value, submission_id, found_sheet, row_num, col, cell, params)
        return f"{org} {metric} {period}", value

    def _release_write(self, key: dict[str, Any], value: float, submission_id: int, sheet: str | None,
                       row_num: int, col: str | None, cell: str, params: dict[str, Any]) -> None:
        """Store a released value (``key``: its org, metric, dims, period and the release time ``r``) and mark
        the issues of its ``cell`` released, in one transaction."""
        with self.transaction():
            self.execute("UPDATE observation SET superseded_at = $r WHERE org = $org AND metric = $metric "
                         "AND dims = $dims AND period = $period AND superseded_at IS NULL", key)
            self.execute("INSERT INTO observation VALUES ($org, $metric, $dims, $period, $period, $value, $sid, "
                         "$sheet, $row, $col, true, $r, NULL)",
                         {**key, "value": value, "sid": submission_id, "sheet": sheet, "row": row_num, "col": col})
            self.execute(f"UPDATE quality_issue SET status = 'released' WHERE {cell}", params)

    def query_progress(self) -> float:
        """Percent done of the query running on this store (-1 when unknown)."""
        return -1.0

    def drop_staging(self) -> None:
        """Drop every temp view and table an ingest left in ``work``."""
        con = self.work
        for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall():
            con.execute(f"DROP VIEW IF EXISTS temp.{name}")
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
            con.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def check_appendable(self, table: str) -> None:
        from mutual.store.schema import TABLES

        if table not in TABLES or table in LOADED_ONLY:
            raise ValueError(f"{table} is not a derived data-plane table")

    def delete(self, table: str, where: str, params: dict[str, Any] | None = None) -> int:
        """Delete the rows of a derived table that ``where`` selects; how many."""
        self.check_appendable(table)
        with self.transaction():
            return self.execute(f"DELETE FROM {table} WHERE {where}", params)

    # -- the same on every engine ---------------------------------------------------------------------------

    def orgs(self) -> list[Org]:
        t = self.ibis.table("organisation")
        return orgs_of(t.order_by("code").to_pyarrow().to_pylist())

    def submission_orgs(self, submission_id: int) -> set[str]:
        """The organisations a submission reported values for."""
        rows = self.rows("SELECT DISTINCT org FROM observation WHERE submission_id = $sid UNION "
                         "SELECT DISTINCT org FROM quality_issue WHERE submission_id = $sid AND org IS NOT NULL",
                         {"sid": submission_id})
        return {r[0] for r in rows}

    def loaded(self, submission_id: int) -> LoadRecord | None:
        found = self.rows(
            "SELECT submission_id, recorded_at, rows_read, values_read, accepted, stored, quarantined, warnings, "
            "missing FROM load_log WHERE submission_id = $sid", {"sid": submission_id})
        return LoadRecord(*found[0]) if found else None

    def observations(self, q: ObservationQuery, *, ordered: bool = True) -> ir.Table:
        """Observations as known at ``q.as_of`` (default: now), filtered; an Ibis expression (see ``in_force``).
        With ``include_history``, every version recorded by then, superseded ones included."""
        return in_force(self.ibis.table("observation"), q, ordered=ordered)

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
        return (t.group_by(["severity", "rule"]).aggregate(n=t.count(), example=t.message.min())
                .order_by([ibis.desc("n")]))

    def stats(self) -> dict[str, Any]:
        obs = self.ibis.table("observation")
        current = obs.filter(obs.superseded_at.isnull())
        row: dict[str, Any] = current.aggregate(values=current.count(), orgs=current.org.nunique(),
                                                days=current.period.nunique(), first=current.period.min(),
                                                last=current.period.max()).to_pyarrow().to_pylist()[0]
        return row
