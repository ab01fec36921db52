"""Record-level extracts for a partner: opted-out patients removed, only the agreed fields, quasi-identifiers
generalised, identifiers replaced by the agreement's pseudonyms, and k-anonymity reported.

One DuckDB query over the episodes (a Parquet file or any relation), so ten million episodes stream through
without Python touching a row (``extract_spark`` runs the same rules as a Spark job, for a national data plane, and
``extract_postgres`` as one query on a PostgreSQL data plane; the specification tests hold them to identical
answers): the national data opt-out is an anti-join, the
pseudonyms are HMAC-SHA256 computed by the engine (``pseudonym.sql_pseudonym``, equal to the Python function),
and generalisation is SQL:

- date of birth → five-year age band at admission (``45-49``; 90 and over as ``90+``), never the date;
- postcode → its district (the outward code, ``LS1``), never the full postcode;
- admission and discharge dates → their month (``2020-11``) unless the agreement allows days;
- ``nhs_number`` → ``patient`` and ``episode_id`` → ``episode``: pseudonyms, stable within the agreement.

k-anonymity is measured over the quasi-identifiers released (age band, sex, district, trust where present):
the smallest group of records sharing them, and how many records sit in groups smaller than k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mutual.governance.agreements import DATASETS
from mutual.governance.pseudonym import LENGTH as PSEUDONYM_LENGTH
from mutual.governance.pseudonym import hmac_pads, sql_pseudonym

if TYPE_CHECKING:
    from mutual.store.postgres_store import PgStore

QUASI = ("age_band", "sex", "postcode_district", "trust")


class ExtractError(ValueError):
    pass


@dataclass(frozen=True)
class ExtractReport:
    rows_in: int  # the episodes the request covers (its trusts and admission dates), before opt-outs
    opted_out: int
    rows_out: int
    columns: tuple[str, ...]
    k: int
    smallest_group: int | None
    below_k: int


def _column(field: str, dates: str) -> tuple[str, str]:
    """The released column for an agreed field: (name, SQL)."""
    if field == "nhs_number":
        return "patient", "p.patient"
    if field == "episode_id":
        return "episode", sql_pseudonym("'episode:' || e.episode_id::VARCHAR")
    if field == "date_of_birth":
        return "age_band", ("CASE WHEN e.age >= 90 THEN '90+' ELSE (e.age // 5 * 5)::VARCHAR || '-' || "
                            "(e.age // 5 * 5 + 4)::VARCHAR END")
    if field == "postcode":
        return "postcode_district", "upper(split_part(trim(e.postcode), ' ', 1))"
    if field in ("admission_date", "discharge_date"):
        return (field.replace("_date", "_month"), f"strftime(e.{field}, '%Y-%m')") if dates == "month" else (
            field, f"e.{field}")
    return field, f"e.{field}"


def _check_fields(fields: Sequence[str]) -> None:
    """Every engine's extract releases only fields the dataset has, and at least one."""
    unknown = [f for f in fields if f not in DATASETS["apc_episodes"]]
    if unknown:
        raise ExtractError(f"apc_episodes has no field {', '.join(unknown)}")
    if not fields:
        raise ExtractError("an extract needs at least one agreed field")


def _scoped(source: str, trusts: Sequence[str] | None,
            admitted: tuple[date, date] | None) -> tuple[str, dict[str, Any]]:
    """The episodes a request covers, as a subquery with ``$name`` parameters (the same SQL on DuckDB and
    PostgreSQL), and its parameters."""
    scope, params = ["true"], dict[str, Any]()
    if trusts is not None:
        scope.append("s.trust = ANY($trusts)")
        params["trusts"] = list(trusts)
    if admitted is not None:
        scope.append("s.admission_date BETWEEN $first AND $last")
        params["first"], params["last"] = admitted
    return f"(SELECT * FROM {source} s WHERE {' AND '.join(scope)})", params


def extract(con: duckdb.DuckDBPyConnection, source: str, *, fields: Sequence[str], key: bytes,
            optouts: pa.Array | None = None, dates: Literal["month", "day"] = "month", k: int = 5,
            out: Path | None = None, trusts: Sequence[str] | None = None,
            admitted: tuple[date, date] | None = None) -> tuple[pa.Table | None, ExtractReport]:
    """The extract of the episodes in ``source`` (a DuckDB relation, e.g. ``read_parquet('episodes.parquet')``)
    under one agreement's ``key``: as Arrow, or written to ``out`` (Parquet) when given. ``trusts`` and
    ``admitted`` (first and last day) keep only the episodes the request covers."""
    _check_fields(fields)
    columns = [_column(f, dates) for f in fields]
    ipad, opad = hmac_pads(key)
    con.register("_optouts", pa.table({"nhs_number": optouts if optouts is not None else pa.array([], pa.int64())}))
    con.execute("CREATE OR REPLACE TEMP TABLE _optout AS SELECT DISTINCT nhs_number::BIGINT AS nhs_number "
                "FROM _optouts")
    con.unregister("_optouts")
    select = ", ".join(f"{sql} AS {name}" for name, sql in columns)
    age = ("date_diff('year', date_of_birth, admission_date) - (strftime(admission_date, '%m%d') < "
           "strftime(date_of_birth, '%m%d'))::INTEGER")
    scoped, scope_params = _scoped(source, trusts, admitted)
    kept = (f"(SELECT *, {age} AS age FROM {scoped} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM _optout o WHERE o.nhs_number = s.nhs_number))")
    # a patient's pseudonym is computed once, however many episodes they have
    patients = (f" JOIN (SELECT nhs_number, {sql_pseudonym('nhs_number::VARCHAR')} AS patient "
                f"FROM (SELECT DISTINCT nhs_number FROM {scoped} s)) p USING (nhs_number)"
                if "nhs_number" in fields else "")
    query = f"SELECT {select} FROM {kept} e{patients}"
    params = {**scope_params, **({"ipad": ipad, "opad": opad} if "$ipad" in query else {})}
    rows_in = con.execute(f"SELECT count(*) FROM {scoped} s", scope_params or None).fetchall()[0][0]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _extract AS {query}", params or None)
    rows_out = con.execute("SELECT count(*) FROM _extract").fetchall()[0][0]
    names = tuple(name for name, _ in columns)
    quasi = [q for q in QUASI if q in names]
    smallest, below = None, 0
    if quasi and rows_out:
        keys = ", ".join(quasi)
        smallest, below = con.execute(
            f"SELECT min(n), coalesce(sum(n) FILTER (n < {int(k)}), 0) FROM "
            f"(SELECT count(*) AS n FROM _extract GROUP BY {keys})").fetchall()[0]
    report = ExtractReport(rows_in=int(rows_in), opted_out=int(rows_in) - int(rows_out), rows_out=int(rows_out),
                           columns=names, k=k, smallest_group=None if smallest is None else int(smallest),
                           below_k=int(below))
    table = None
    if out is not None:
        target = out.as_posix().replace("'", "''")
        con.execute(f"COPY _extract TO '{target}' (FORMAT parquet)")
    else:
        table = con.sql("SELECT * FROM _extract").to_arrow_table()
    con.execute("DROP TABLE _extract")
    con.execute("DROP TABLE _optout")
    return table, report


@dataclass(frozen=True)
class _Dialect:
    """How one engine's SQL spells what a released column needs (``_column`` is DuckDB's, with parameters)."""
    text: str  # an integer as text, ``{}`` the expression
    hmac: Callable[[str, str, str], str]  # (text expression, ipad hex, opad hex) -> hex HMAC-SHA256
    band: Callable[[int], str]  # the lower bound of ``e.age``'s five-year band plus an offset, as text
    district: str  # the outward code of ``e.postcode``
    month: str  # ``{}`` the date column: "2020-11"


SPARK = _Dialect(
    text="CAST({} AS STRING)",
    hmac=lambda t, ipad, opad: (f"sha2(concat(unhex('{opad}'), unhex(sha2(concat(unhex('{ipad}'), encode({t}, "
                                f"'UTF-8')), 256))), 256)"),
    band=lambda k: f"CAST(floor(e.age / 5) * 5 + {k} AS STRING)", district="split(trim(e.postcode), ' ')[0]",
    month="date_format(e.{}, 'yyyy-MM')")
POSTGRES = _Dialect(
    text="{}::text",
    hmac=lambda t, ipad, opad: (f"encode(sha256(decode('{opad}', 'hex') || sha256(decode('{ipad}', 'hex') || "
                                f"convert_to({t}, 'UTF8'))), 'hex')"),
    band=lambda k: f"(e.age / 5 * 5 + {k})::text", district="split_part(trim(e.postcode), ' ', 1)",
    month="to_char(e.{}, 'YYYY-MM')")


def _dialect_column(field: str, dates: str, ipad: str, opad: str, d: _Dialect) -> tuple[str, str]:
    """The released column for an agreed field in Spark SQL or PostgreSQL: (name, expression), equal to
    ``_column``'s."""
    def pseudonym(text_sql: str) -> str:
        return f"substr({d.hmac(text_sql, ipad, opad)}, 1, {2 * PSEUDONYM_LENGTH})"

    if field == "nhs_number":
        return "patient", pseudonym(d.text.format("e.nhs_number"))
    if field == "episode_id":
        return "episode", pseudonym(f"concat('episode:', {d.text.format('e.episode_id')})")
    if field == "date_of_birth":
        return "age_band", f"CASE WHEN e.age >= 90 THEN '90+' ELSE concat({d.band(0)}, '-', {d.band(4)}) END"
    if field == "postcode":
        return "postcode_district", f"upper({d.district})"
    if field in ("admission_date", "discharge_date"):
        return (field.replace("_date", "_month"), d.month.format(field)) if dates == "month" else (
            field, f"e.{field}")
    return field, f"e.{field}"


def extract_postgres(store: PgStore, table: str, *, fields: Sequence[str], key: bytes,
                     optouts: pa.Array | None = None, dates: Literal["month", "day"] = "month", k: int = 5,
                     out: Path | None = None, trusts: Sequence[str] | None = None,
                     admitted: tuple[date, date] | None = None) -> tuple[pa.Table | None, ExtractReport]:
    """``extract`` as one query on a PostgreSQL data plane, over the episodes in ``table``: the same rules,
    columns, values and report. Opted-out patients are ``optouts``, or when it is None the store's ``optout``
    table, joined on the server."""
    _check_fields(fields)
    ipad, opad = (pad.hex() for pad in hmac_pads(key))
    columns = [_dialect_column(f, dates, ipad, opad, POSTGRES) for f in fields]
    names = tuple(name for name, _ in columns)
    scoped, params = _scoped(table, trusts, admitted)
    age = ("(extract(year FROM s.admission_date) - extract(year FROM s.date_of_birth))::int - CASE WHEN "
           "to_char(s.admission_date, 'MMDD') < to_char(s.date_of_birth, 'MMDD') THEN 1 ELSE 0 END")
    kept = (f"(SELECT s.*, {age} AS age FROM {scoped} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM _optout o WHERE o.nhs_number = s.nhs_number))")
    with store.transaction():
        store.execute("CREATE TEMP TABLE _optout (nhs_number BIGINT PRIMARY KEY) ON COMMIT DROP")
        if optouts is None:
            store.execute("INSERT INTO _optout SELECT DISTINCT nhs_number FROM optout")
        else:
            store.work.register("_optouts", pa.table({"nhs_number": optouts}))
            try:
                store.copy_in("_optout", "SELECT DISTINCT nhs_number::BIGINT FROM _optouts "
                                         "WHERE nhs_number IS NOT NULL")
            finally:
                store.work.unregister("_optouts")
        rows_in = store.rows(f"SELECT count(*) FROM {scoped} s", params)[0][0]
        store.execute(f"CREATE TEMP TABLE _extract ON COMMIT DROP AS SELECT "
                      f"{', '.join(f'{sql} AS {name}' for name, sql in columns)} FROM {kept} e", params)
        rows_out = store.rows("SELECT count(*) FROM _extract")[0][0]
        quasi = [q for q in QUASI if q in names]
        smallest, below = None, 0
        if quasi and rows_out:
            smallest, below = store.rows(
                f"SELECT min(n), coalesce(sum(n) FILTER (WHERE n < {int(k)}), 0) FROM "
                f"(SELECT count(*) AS n FROM _extract GROUP BY {', '.join(quasi)}) g")[0]
        store.fetch("_extract", "SELECT * FROM _extract", {n: _DUCK_TYPES.get(n, "VARCHAR") for n in names})
    report = ExtractReport(rows_in=int(rows_in), opted_out=int(rows_in) - int(rows_out), rows_out=int(rows_out),
                           columns=names, k=k, smallest_group=None if smallest is None else int(smallest),
                           below_k=int(below))
    try:
        if out is not None:
            target = out.as_posix().replace("'", "''")
            store.work.execute(f"COPY _extract TO '{target}' (FORMAT parquet)")
            return None, report
        return store.work.sql("SELECT * FROM _extract").to_arrow_table(), report
    finally:
        store.work.execute("DROP TABLE _extract")


# the types of released columns that are not text, as DuckDB's extract gives them
_DUCK_TYPES = {"critical_care_days": "INTEGER", "ventilated": "BOOLEAN", "admission_date": "DATE",
               "discharge_date": "DATE"}


def extract_spark(spark: Any, source: str, *, fields: Sequence[str], key: bytes, optouts: pa.Array | None = None,
                  dates: Literal["month", "day"] = "month", k: int = 5, out: Path | None = None,
                  trusts: Sequence[str] | None = None,
                  admitted: tuple[date, date] | None = None) -> tuple[pa.Table | None, ExtractReport]:
    """``extract`` as a Spark job, for a national data plane: the episodes in the Parquet at ``source`` (a path
    or URL Spark reads), the same rules in Spark SQL, the same columns and values, the same report."""
    _check_fields(fields)
    from pyspark.sql import functions as F

    ipad, opad = (pad.hex() for pad in hmac_pads(key))
    scoped = spark.read.parquet(source)
    if trusts is not None:
        scoped = scoped.where(F.col("trust").isin(list(trusts)))
    if admitted is not None:
        scoped = scoped.where(F.col("admission_date").between(F.lit(admitted[0]), F.lit(admitted[1])))
    rows_in = scoped.count()
    numbers = [] if optouts is None else sorted({int(n) for n in optouts.to_pylist() if n is not None})
    opted = spark.createDataFrame([(n,) for n in numbers], "nhs_number BIGINT")
    kept = scoped.join(F.broadcast(opted), on="nhs_number", how="left_anti").withColumn(
        "age", F.expr("year(admission_date) - year(date_of_birth) - CASE WHEN date_format(admission_date, 'MMdd') "
                      "< date_format(date_of_birth, 'MMdd') THEN 1 ELSE 0 END"))
    columns = [_dialect_column(f, dates, ipad, opad, SPARK) for f in fields]
    released = kept.alias("e").selectExpr(*(f"{sql} AS {name}" for name, sql in columns)).cache()
    try:
        rows_out = released.count()
        names = tuple(name for name, _ in columns)
        quasi = [q for q in QUASI if q in names]
        smallest, below = None, 0
        if quasi and rows_out:
            groups = released.groupBy(*quasi).count()
            found = groups.agg(F.min("count"), F.sum(F.when(F.col("count") < int(k), F.col("count")).otherwise(0))
                               ).collect()[0]
            smallest, below = int(found[0]), int(found[1] or 0)
        table = released.toArrow()
    finally:
        released.unpersist()
    report = ExtractReport(rows_in=int(rows_in), opted_out=int(rows_in) - int(rows_out), rows_out=int(rows_out),
                           columns=names, k=k, smallest_group=smallest, below_k=below)
    if out is not None:
        pq.write_table(table, out)
        return None, report
    return table, report
