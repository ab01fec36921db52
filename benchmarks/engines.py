"""Engines benchmark: the same N-row data through each engine: ingest, a national roll-up and a record-level
extract, timed, with each engine's answers compared to DuckDB's.

    uv run --all-extras python benchmarks/engines.py --rows 10000000

Generates an N-row long-format CSV of trusts' values (as ``benchmarks/ingest.py``) and N synthetic episodes with
1 % of patients opted out. DuckDB: ``mutual ingest`` into a fresh workspace, ``rollup`` to the nation of one
metric over every day, and ``deidentify.extract`` of every field. Spark (local mode, when pyspark and Java are
here): ``mutual ingest`` into a workspace whose data plane is the Spark warehouse (``MUTUAL_DATA_ENGINE=spark``:
Parquet partitioned by month, written by DuckDB; the time includes writing the episodes there), the roll-up's own
Ibis expressions as a Spark job on that warehouse (``store.spark_store``) and ``deidentify.extract_spark`` on its
episodes. PostgreSQL (``MUTUAL_BENCH_PG_URL``, default the build machine's 127.0.0.1:5432 database ``test``, in
a schema of its own dropped afterwards): ``mutual ingest`` into a workspace whose data plane is there, the same
roll-up, the episodes and opt-outs loaded with COPY, and ``deidentify.extract_postgres`` on the server. Prints a
table of seconds and, last, ``engines_ok <engines whose answers are identical to DuckDB's, DuckDB included>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ingest import generate, orgs_file

METRIC = "ga_beds_open"
FIELDS = ("nhs_number", "date_of_birth", "sex", "postcode", "trust", "admission_date", "discharge_date",
          "primary_diagnosis", "critical_care_days", "ventilated")


def rows_of(table: pa.Table) -> pa.Table:
    """A table in a fixed order, to compare engines' answers (neither promises one)."""
    return table.sort_by([(c, "ascending") for c in table.column_names])


def spark_session() -> Any:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[*]").appName("mutual-engines")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "8g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


PG_URL = os.environ.get("MUTUAL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_data_plane() -> Iterator[None]:
    """Workspaces opened inside use a new PostgreSQL schema as their data plane; it is dropped at the end."""
    import psycopg

    from mutual.store.postgres_store import conninfo

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo(PG_URL), autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    saved = {k: os.environ.get(k) for k in ("MUTUAL_DATA_ENGINE", "MUTUAL_DATA_URL")}
    os.environ["MUTUAL_DATA_ENGINE"] = "postgres"
    os.environ["MUTUAL_DATA_URL"] = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with psycopg.connect(conninfo(PG_URL), autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


def timed(fn: Any, what: str) -> tuple[Any, float]:
    """``fn()`` and its seconds, said as soon as it is done (a long run shows its progress)."""
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    print(f"  {what}: {seconds:.1f} s", flush=True)
    return out, seconds


def spark_ingest(d: Path) -> tuple[Path, float]:
    """``mutual ingest`` into a workspace whose data plane is the Spark warehouse; then its episodes are written
    there (partitioned by month of admission): (the warehouse folder, seconds to write the episodes)."""
    from mutual.app import open_mutual

    saved = os.environ.get("MUTUAL_DATA_ENGINE")
    os.environ["MUTUAL_DATA_ENGINE"] = "spark"
    try:
        with open_mutual(d / "ws-spark", create=True) as m:
            m.import_orgs(d / "orgs.csv")
            m.ingest(d / "long.csv", received_at=datetime(2030, 1, 1))
            t = time.perf_counter()
            m.store.append("apc_episode", pq.read_table(d / "episodes.parquet"), replace_where="true")
            return d / "ws-spark" / "warehouse", time.perf_counter() - t
    finally:
        if saved is None:
            os.environ.pop("MUTUAL_DATA_ENGINE", None)
        else:
            os.environ["MUTUAL_DATA_ENGINE"] = saved


def postgres(d: Path, q: Any, nation: pa.Table, records: pa.Table, optouts: pa.Array,
             key: bytes) -> tuple[dict[str, str], bool]:
    """The same ingest, roll-up and extract with the data plane on PostgreSQL: (figures, same answers)."""
    from mutual.analytics.rollup import rollup
    from mutual.app import open_mutual
    from mutual.governance.deidentify import extract_postgres
    from mutual.store.postgres_store import PgStore

    with postgres_data_plane(), open_mutual(d / "ws-pg", create=True) as m:
        assert isinstance(m.store, PgStore)
        store = m.store
        m.import_orgs(d / "orgs.csv")
        _, ingest_s = timed(lambda: m.ingest(d / "long.csv", received_at=datetime(2030, 1, 1)), "postgres ingest")
        on_pg, rollup_s = timed(lambda: rollup(store, q), "postgres national roll-up")
        _, load_s = timed(lambda: (
            store.append("apc_episode", pq.read_table(d / "episodes.parquet"), replace_where="true"),
            store.append("optout", pa.table({"nhs_number": optouts,
                                             "imported_at": pa.array([datetime(2030, 1, 1)] * len(optouts),
                                                                     pa.timestamp("us"))}), replace_where="true")),
            "postgres COPY of episodes and opt-outs")
        (pg_records, _), extract_s = timed(lambda: extract_postgres(store, "apc_episode", fields=FIELDS, key=key),
                                           "postgres extract")
    same = rows_of(on_pg).equals(rows_of(nation)) and rows_of(pg_records).equals(rows_of(records))
    return {"ingest": f"{ingest_s:.1f}", "rollup": f"{rollup_s:.1f}", "extract": f"{extract_s:.1f}",
            "same": "yes" if same else "NO",
            "note": f"127.0.0.1 server; COPY load of the episodes {load_s:.1f} s"}, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from mutual.analytics.rollup import Level, RollupQuery, rollup
    from mutual.app import open_mutual
    from mutual.governance import episodes
    from mutual.governance.deidentify import extract, extract_spark
    from mutual.governance.pseudonym import agreement_key
    from mutual.transfer import export

    key = agreement_key(b"b" * 32, "BENCH-1")
    figures: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="mutual-engines-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        generate(d / "long.csv", args.rows)
        orgs_file(d / "orgs.csv")
        held = episodes.generate(args.rows, [f"T{i:03d}" for i in range(150)], date(2020, 1, 1), 365, seed=5)
        pq.write_table(held, d / "episodes.parquet")
        people = pa.compute.unique(held.column("nhs_number"))
        optouts = people.filter(pa.compute.equal(pa.compute.bit_wise_and(people, 127), 0))
        del held
        print(f"generated {args.rows:,} values and {args.rows:,} episodes in {time.perf_counter() - t:.1f} s",
              flush=True)

        with open_mutual(d / "ws", create=True) as m:
            m.import_orgs(d / "orgs.csv")
            _, ingest_s = timed(lambda: m.ingest(d / "long.csv", received_at=datetime(2030, 1, 1)), "duckdb ingest")
            days = m.store.rows(f"SELECT min(period), max(period) FROM observation WHERE metric = '{METRIC}'")[0]
            q = RollupQuery(METRIC, Level.NATION, days[0], days[1])
            nation, rollup_s = timed(lambda: rollup(m.store, q), "duckdb national roll-up")
            _, export_s = timed(lambda: export(m, d / "export"), "duckdb export to Parquet")
        con = duckdb.connect()
        (records, _), extract_s = timed(lambda: extract(con, f"read_parquet('{d / 'episodes.parquet'}')",
                                                        fields=FIELDS, key=key, optouts=optouts), "duckdb extract")
        con.close()
        figures["duckdb"] = {"ingest": f"{ingest_s:.1f}", "rollup": f"{rollup_s:.1f}", "extract": f"{extract_s:.1f}",
                             "same": "reference", "note": f"export to Parquet {export_s:.1f} s"}
        ok = 1

        from mutual.store.spark_store import SparkStore

        try:
            spark, start_s = timed(spark_session, "spark session start")
        except Exception as exc:  # no pyspark or no Java: say so, measure the rest
            figures["spark"] = {"note": f"not run: {type(exc).__name__}: {exc}"}
        else:
            (store, write_s), spark_ingest_s = timed(lambda: spark_ingest(d), "spark warehouse ingest and episodes")
            on_spark, spark_rollup_s = timed(lambda: rollup(SparkStore(spark, store), q), "spark national roll-up")
            (spark_records, _), spark_extract_s = timed(lambda: extract_spark(
                spark, str(store / "apc_episode"), fields=FIELDS, key=key, optouts=optouts), "spark extract")
            same = rows_of(on_spark).equals(rows_of(nation)) and rows_of(spark_records).equals(rows_of(records))
            ok += int(same)
            figures["spark"] = {"ingest": f"{spark_ingest_s - write_s:.1f}", "rollup": f"{spark_rollup_s:.1f}",
                                "extract": f"{spark_extract_s:.1f}", "same": "yes" if same else "NO",
                                "note": f"local[*]; session start {start_s:.1f} s; episodes to the warehouse "
                                        f"{write_s:.1f} s"}
            spark.stop()
        try:
            figures["postgres"], same = postgres(d, q, nation, records, optouts, key)
            ok += int(same)
        except Exception as exc:  # no server or no psycopg: say so
            figures["postgres"] = {"note": f"not run: {type(exc).__name__}: {str(exc).splitlines()[0]}"}

    print(f"\n{'engine':<10} {'ingest s':>9} {'roll-up s':>10} {'extract s':>10} {'same':>10}  note")
    for engine, f in figures.items():
        print(f"{engine:<10} {f.get('ingest', '—'):>9} {f.get('rollup', '—'):>10} {f.get('extract', '—'):>10} "
              f"{f.get('same', '—'):>10}  {f.get('note', '')}")
    print(f"engines_ok {ok}")


if __name__ == "__main__":
    main()
