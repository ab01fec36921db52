"""A shared service on PostgreSQL: two ingests running at once, in two processes, of files that overlap keep
every value and never hold two values for one key at one time; and the record-level extract runs on the server
with the same answer as DuckDB's."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest

from conftest import ORGS_CSV
from engines import drop_schema, pg_schema, postgres_missing
from mutual.app import open_mutual
from mutual.governance import episodes
from mutual.governance.deidentify import extract, extract_postgres
from mutual.governance.pseudonym import agreement_key
from mutual.store.base import ObservationQuery
from mutual.store.postgres_store import conninfo

DAYS = 400
METRICS = ("ga_beds_open", "ga_beds_occupied", "cc_adult_beds_open", "cc_adult_beds_occupied")
ORGS = ("R1H", "RAL", "RYJ")
FIRST, SECOND = datetime(2021, 3, 1, 9), datetime(2021, 3, 2, 9)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Both planes in a fresh PostgreSQL schema: the environment every process of the service runs with."""
    why = postgres_missing()
    if why:
        pytest.skip(why)
    schema, url = pg_schema()
    env = {"MUTUAL_CONTROL_URL": url, "MUTUAL_DATA_ENGINE": "postgres", "MUTUAL_HOME": str(tmp_path / "ws")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        yield env
    finally:
        drop_schema(schema)


def value(org: str, metric: str, day: int, version: int) -> int:
    """Occupied never above open; the second file changes every third value of the days both files cover."""
    base = {"ga_beds_open": 900, "ga_beds_occupied": 800, "cc_adult_beds_open": 60, "cc_adult_beds_occupied": 50}
    changed = version == 2 and day % 3 == 0
    return base[metric] + ORGS.index(org) * 7 + day % 5 - (2 if changed else 0)


def write(path: Path, days: range, version: int) -> int:
    lines = ["org,metric,date,value"]
    for day in days:
        period = date(2020, 1, 1).toordinal() + day
        lines += [f"{o},{m},{date.fromordinal(period)},{value(o, m, day, version)}" for o in ORGS for m in METRICS]
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def test_two_concurrent_ingests_of_overlapping_files_keep_every_value_once(service: dict[str, str],
                                                                          tmp_path: Path) -> None:
    with open_mutual(None, create=True) as m:
        (tmp_path / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp_path / "orgs.csv")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write(first, range(0, 300), 1)
    write(second, range(100, DAYS), 2)  # days 100-299 in both, a third of them with a different value
    env = {**os.environ, **service}
    # the test holds the load log, the last table a load writes, until both loads are in flight and waiting: so
    # they truly overlap, as two trusts' uploads to a busy service do
    with psycopg.connect(conninfo(service["MUTUAL_CONTROL_URL"]), autocommit=True) as gate, gate.transaction():
        gate.execute("LOCK TABLE load_log IN ACCESS EXCLUSIVE MODE")
        runs = [subprocess.Popen([sys.executable, "-m", "mutual", "ingest", str(f), "--received-at",
                                  at.isoformat()], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
                for f, at in ((first, FIRST), (second, SECOND))]
        waiting, deadline = 0, time.monotonic() + 120
        while waiting < 2 and time.monotonic() < deadline and all(r.poll() is None for r in runs):
            time.sleep(0.1)
            waiting = gate.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchall()[0][0]
        assert waiting == 2, "both loads reached the server"
    for run in runs:
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, out
    with open_mutual(None) as m:
        subs = m.submissions()
        assert [(s.status, s.accepted, s.quarantined) for s in subs] == [("loaded", 300 * 12, 0),
                                                                           ("loaded", 300 * 12, 0)]
        history = m.store.observations(ObservationQuery(include_history=True)).to_pyarrow().to_pylist()
        now = m.store.observations(ObservationQuery()).to_pyarrow().to_pylist()
        then = m.store.observations(ObservationQuery(as_of=datetime(2021, 3, 1, 12))).to_pyarrow().to_pylist()
    by_key: dict[tuple[str, str, date], list[dict[str, object]]] = {}
    for r in history:
        by_key.setdefault((r["org"], r["metric"], r["period"]), []).append(r)
    assert len(by_key) == DAYS * 12, "every key of both files is stored"
    for key, versions in by_key.items():
        versions.sort(key=lambda r: r["recorded_at"])  # type: ignore[arg-type, return-value]
        assert len({r["recorded_at"] for r in versions}) == len(versions), f"{key} stored twice at one time"
        for earlier, later in itertools.pairwise(versions):
            assert earlier["superseded_at"] == later["recorded_at"], f"{key}: versions overlap or leave a gap"
        assert versions[-1]["superseded_at"] is None
    assert len(now) == DAYS * 12, "one value in force per key"
    day0 = date(2020, 1, 1).toordinal()
    for r in now:
        day = r["period"].toordinal() - day0
        assert r["value"] == value(r["org"], r["metric"], day, 2 if day >= 100 else 1), "the later file wins"
    assert len(then) == 300 * 12 and all(
        r["value"] == value(r["org"], r["metric"], r["period"].toordinal() - day0, 1) for r in then)


def test_the_extract_on_postgresql_equals_duckdbs(service: dict[str, str]) -> None:
    held = episodes.generate(2000, ("R1H", "RAL", "RYJ"), date(2021, 1, 1), 60, seed=5)
    people = sorted(set(held.column("nhs_number").to_pylist()))
    key = agreement_key(b"s" * 32, "UL-2026-01")
    scope = {"trusts": ("R1H", "RAL"), "admitted": (date(2021, 1, 10), date(2021, 2, 20))}
    fields = ("nhs_number", "episode_id", "date_of_birth", "sex", "postcode", "trust", "admission_date",
              "discharge_date", "critical_care_days", "ventilated", "primary_diagnosis")
    with open_mutual(None, create=True) as m:
        m.replace_episodes(held, by="loader", source="test")
        m.replace_optouts(pa.array(people[::7], pa.int64()), by="ig", source="test")
        store = m.store
        assert store.engine == "postgres"
        for dates in ("month", "day"):
            on_server, report = extract_postgres(store, "apc_episode", fields=fields, key=key,  # type: ignore[arg-type]
                                                 dates=dates, **scope)  # type: ignore[arg-type]
            con = duckdb.connect()
            con.register("episodes", held)
            local, local_report = extract(con, "episodes", fields=fields, key=key, optouts=pa.array(people[::7]),
                                          dates=dates, **scope)  # type: ignore[arg-type]
            assert on_server is not None and local is not None
            assert on_server.schema == local.schema
            assert on_server.sort_by("episode").equals(local.sort_by("episode"))
            assert report == local_report and report.opted_out > 0 and report.rows_out > 500


def test_a_load_killed_mid_transaction_leaves_nothing_and_a_rerun_finishes(service: dict[str, str],
                                                                          tmp_path: Path) -> None:
    with open_mutual(None, create=True) as m:
        (tmp_path / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp_path / "orgs.csv")
    f = tmp_path / "file.csv"
    rows = write(f, range(0, 200), 1)
    f.write_text(f.read_text() + "R1H,ga_beds_open,2020-01-01,lots\n")  # a quarantined value: issues are written too
    command = [sys.executable, "-m", "mutual", "ingest", str(f), "--received-at", FIRST.isoformat()]
    env = {**os.environ, **service}
    with psycopg.connect(conninfo(service["MUTUAL_CONTROL_URL"]), autocommit=True) as gate:
        with gate.transaction():
            gate.execute("LOCK TABLE load_log IN ACCESS EXCLUSIVE MODE")
            run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and run.poll() is None and not gate.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted").fetchall()[0][0]:
                time.sleep(0.1)
            # its values, issues and supersessions are written but not committed: kill it there
            assert run.poll() is None
            run.kill()
            run.wait(timeout=30)
        written = gate.execute("SELECT (SELECT count(*) FROM observation), (SELECT count(*) FROM quality_issue), "
                               "(SELECT count(*) FROM load_log)").fetchall()
        assert written == [(0, 0, 0)], "none of it"
    with open_mutual(None) as m:
        assert [s.status for s in m.submissions()] == ["received"]
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    with open_mutual(None) as m:
        (sub,) = m.submissions()
        assert (sub.status, sub.accepted, sub.quarantined) == ("loaded", rows, 1)
        assert m.store.rows("SELECT count(*), count(DISTINCT (org, metric, period)) FROM observation") == [
            (rows, rows)], "all of it, once"
