"""Roll-ups give the same answer on every engine: the analytics' own Ibis expressions, run by DuckDB on the
workspace and by Spark (``store.spark_store``) both on the warehouse that ingest writes with
``MUTUAL_DATA_ENGINE=spark`` and on the workspace's exported Parquet, agree row for row at every level, by day,
week and month, with values carried forward, as known at a past moment, and for rates."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import ORGS_CSV
from engines import engine_env
from mutual.analytics.completeness import completeness
from mutual.analytics.rollup import Level, Period, RollupQuery, rollup, rollup_rate
from mutual.app import open_mutual
from mutual.store.spark_store import SparkStore
from mutual.transfer import export

START = date(2021, 1, 4)


def rows(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, spark: object) -> tuple[Path, dict[str, SparkStore]]:
    """Three London trusts over three weeks, one with gaps and a correction, ingested into DuckDB and into the
    Spark warehouse; Spark reads the warehouse, and DuckDB's export."""
    tmp = tmp_path_factory.mktemp("rollup")
    lines = ["org,metric,date,value"]
    for day in range(21):
        when = START + timedelta(days=day)
        for org, beds, occupied in (("R1H", 1500, 1300 + 7 * day), ("RAL", 800, 650 + day), ("RYJ", 1000, 900)):
            if org == "RYJ" and day % 4 == 3:
                continue  # a trust that misses days: carried forward when asked
            lines += [f"{org},ga_beds_open,{when},{beds}", f"{org},ga_beds_occupied,{when},{occupied}"]
    (tmp / "orgs.csv").write_text(ORGS_CSV)
    (tmp / "a.csv").write_text("\n".join(lines) + "\n")
    (tmp / "b.csv").write_text(f"org,metric,date,value\nR1H,ga_beds_occupied,{START},1111\n")
    for engine in ("duckdb", "spark"):
        with engine_env(engine), open_mutual(tmp / engine, create=True) as m:
            m.import_orgs(tmp / "orgs.csv")
            m.ingest(tmp / "a.csv", received_at=datetime(2021, 1, 25, 9))
            m.ingest(tmp / "b.csv", received_at=datetime(2021, 1, 26, 9))
            if engine == "duckdb":
                export(m, tmp / "export")
    return tmp / "duckdb", {"warehouse": SparkStore(spark, tmp / "spark" / "warehouse"),
                            "export": SparkStore(spark, tmp / "export" / "data")}


QUERIES = [
    RollupQuery("ga_beds_occupied", Level.STP, START, START + timedelta(days=20), carry=2),
    RollupQuery("ga_beds_occupied", Level.NATION, START, START + timedelta(days=20), period=Period.WEEK),
    RollupQuery("ga_beds_open", Level.REGION, START, START + timedelta(days=20), period=Period.MONTH),
    RollupQuery("ga_beds_occupied", Level.STP, START, START + timedelta(days=6), as_of=datetime(2021, 1, 25, 12)),
]


@pytest.mark.parametrize("q", QUERIES, ids=["stp-carry", "nation-week", "region-month", "as-of"])
def test_duckdb_and_spark_roll_up_alike(stores: tuple[Path, dict[str, SparkStore]], q: RollupQuery) -> None:
    home, on_spark = stores
    with open_mutual(home, read_only=True) as m:
        expected = rollup(m.store, q)
    assert expected.num_rows > 0
    for source, store in on_spark.items():
        assert rows(rollup(store, q)) == rows(expected), source


def test_duckdb_and_spark_compute_rates_alike(stores: tuple[Path, dict[str, SparkStore]]) -> None:
    home, on_spark = stores
    with open_mutual(home, read_only=True) as m:
        expected = rollup_rate(m.store, "ga_occupancy", Level.STP, START, START + timedelta(days=20))
    assert expected.num_rows > 0
    for source, store in on_spark.items():
        assert rows(rollup_rate(store, "ga_occupancy", Level.STP, START, START + timedelta(days=20))) == rows(
            expected), source


@pytest.mark.parametrize("as_of", [None, datetime(2021, 1, 25, 12)], ids=["now", "as-of"])
def test_duckdb_and_spark_judge_completeness_alike(stores: tuple[Path, dict[str, SparkStore]],
                                                   as_of: datetime | None) -> None:
    home, on_spark = stores
    span = (START, START + timedelta(days=20))
    with open_mutual(home, read_only=True) as m:
        expected = completeness(m.store, *span, metric="ga_beds_occupied", as_of=as_of)
    assert expected.num_rows > 0 and 0 < sum(r["received"] for r in expected.to_pylist()) < expected.num_rows
    assert rows(completeness(on_spark["warehouse"], *span, metric="ga_beds_occupied", as_of=as_of)) == rows(expected)
