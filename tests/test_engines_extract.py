"""A record-level extract gives the same answer on every engine: DuckDB (the default) and Spark (a national
data plane) release the same rows (same pseudonyms, age bands, districts, months) from the same episodes,
opt-outs and agreement key, with the same k-anonymity report; through the policy gate, the Spark release is
decided and audited like any other."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mutual.governance import episodes
from mutual.governance.deidentify import extract, extract_spark
from mutual.governance.pseudonym import agreement_key

KEY = agreement_key(b"k" * 32, "UL-2026-01")
FIELD_SETS = [
    ("nhs_number", "date_of_birth", "sex", "postcode", "trust", "admission_date", "primary_diagnosis"),
    ("episode_id", "discharge_date", "critical_care_days", "ventilated"),
    ("date_of_birth", "sex", "postcode"),
]


def ordered(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Array]:
    table = episodes.generate(3000, ("R1H", "RAL", "RYJ"), date(2021, 1, 1), 60, seed=11)
    path = tmp_path_factory.mktemp("episodes") / "episodes.parquet"
    pq.write_table(table, path)
    people = sorted(set(table.column("nhs_number").to_pylist()))
    return path, pa.array(people[::9], pa.int64())


@pytest.mark.parametrize("fields", FIELD_SETS, ids=["identifiers", "stay", "quasi"])
@pytest.mark.parametrize("dates", ["month", "day"])
def test_duckdb_and_spark_release_identical_extracts(spark: object, held: tuple[Path, pa.Array],
                                                     fields: tuple[str, ...], dates: str) -> None:
    path, optouts = held
    scope = {"trusts": ("R1H", "RAL"), "admitted": (date(2021, 1, 10), date(2021, 2, 20))}
    con = duckdb.connect()
    try:
        on_duckdb, duck_report = extract(con, f"read_parquet('{path}')", fields=fields, key=KEY, optouts=optouts,
                                         dates=dates, **scope)  # type: ignore[arg-type]
    finally:
        con.close()
    on_spark, spark_report = extract_spark(spark, str(path), fields=fields, key=KEY, optouts=optouts, dates=dates,
                                           **scope)  # type: ignore[arg-type]
    assert on_duckdb is not None and on_spark is not None
    assert on_spark.column_names == on_duckdb.column_names
    assert ordered(on_spark) == ordered(on_duckdb)
    assert spark_report == duck_report and duck_report.opted_out > 0 and duck_report.rows_out > 1000


def test_a_spark_extract_goes_through_the_gate(spark: object, held: tuple[Path, pa.Array], tmp_path: Path) -> None:
    from mutual.app import open_mutual
    from mutual.governance import audit
    from mutual.governance.agreements import Granularity
    from mutual.governance.gate import GateDenied, release_extract
    from test_governance_gate import RECORDS, TODAY, ask, setup

    path, optouts = held
    with open_mutual(tmp_path / "ws", create=True) as m:
        setup(m, tmp_path, RECORDS)
        request = ask(agreement="REC", dataset="apc_episodes", fields=("nhs_number", "sex", "trust"),
                      orgs=("R1H", "RAL"), start=date(2021, 1, 1), end=date(2021, 1, 31),
                      granularity=Granularity.PSEUDONYMISED)
        on_spark, _ = release_extract(m.sessions, m.workspace.home, str(path), request, actor="partner:uni-leeds",
                                      today=TODAY, optouts=optouts, spark=spark)
        on_duckdb, _ = release_extract(m.sessions, m.workspace.home, f"read_parquet('{path}')", request,
                                       actor="partner:uni-leeds", today=TODAY, optouts=optouts)
        with pytest.raises(GateDenied):
            release_extract(m.sessions, m.workspace.home, str(path), ask(agreement="REC", dataset="apc_episodes",
                                                                         fields=("postcode",), orgs=("R1H",),
                                                                         granularity=Granularity.PSEUDONYMISED),
                            actor="partner:uni-leeds", today=TODAY, spark=spark)
        with m.sessions() as s:
            actions = [e.action for e in audit.events(s) if e.action.startswith("gate.")]
    assert on_spark is not None and on_duckdb is not None and ordered(on_spark) == ordered(on_duckdb)
    assert actions == ["gate.allow", "gate.release", "gate.allow", "gate.release", "gate.deny"]


def test_a_warehouse_workspaces_episodes_are_extracted_by_spark_as_by_duckdb(spark: object, held: tuple[Path, pa.Array],
                                                                            tmp_path: Path) -> None:
    """With ``MUTUAL_DATA_ENGINE=spark`` the episodes live in the warehouse (partitioned by month of admission);
    the gate sends a request to Spark there, and DuckDB reading the same warehouse releases the same rows."""
    from engines import engine_env
    from mutual.app import open_mutual
    from mutual.governance.agreements import Granularity
    from mutual.governance.gate import release_extract
    from test_governance_gate import RECORDS, TODAY, ask, setup

    path, optouts = held
    with engine_env("spark"), open_mutual(tmp_path / "ws", create=True) as m:
        setup(m, tmp_path, RECORDS)
        m.replace_episodes(pq.read_table(path), by="loader", source="test")
        m.replace_optouts(optouts, by="ig", source="test")
        assert len(list((tmp_path / "ws" / "warehouse" / "apc_episode").glob("admission_month=*"))) >= 2
        request = ask(agreement="REC", dataset="apc_episodes", fields=("nhs_number", "sex", "trust"),
                      orgs=("R1H", "RAL"), start=date(2021, 1, 1), end=date(2021, 1, 31),
                      granularity=Granularity.PSEUDONYMISED)
        on_spark, spark_report = release_extract(m.sessions, m.workspace.home, None, request,
                                                 actor="partner:uni-leeds", today=TODAY, store=m.store, spark=spark)
        on_duckdb, duck_report = release_extract(m.sessions, m.workspace.home, None, request,
                                                 actor="partner:uni-leeds", today=TODAY, store=m.store)
    assert on_spark is not None and on_duckdb is not None and ordered(on_spark) == ordered(on_duckdb)
    assert spark_report == duck_report and duck_report.opted_out > 0
