"""The Spark warehouse (``MUTUAL_DATA_ENGINE=spark``): its files are never changed, so a submission is one batch
of new files made visible by a commit marker. A process killed before the marker leaves nothing visible and a
re-run stores everything once; two ingests at once take turns; values are partitioned by the month of their
period."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from conftest import ORGS_CSV
from engines import engine_env
from mutual.app import open_mutual
from mutual.store.base import ObservationQuery

DRIVER = """
import os, signal, sys
from mutual.store.warehouse_store import WarehouseStore
from mutual.cli import app

def die(self, batch):  # every file of the batch is written; the marker that makes it visible is not
    os.kill(os.getpid(), signal.SIGKILL)

WarehouseStore._commit = die
app(sys.argv[1:])
"""


def lines(days: range, bump: int = 0) -> str:
    rows = ["org,metric,date,value"]
    for day in days:
        when = f"2021-{1 + day // 28:02d}-{1 + day % 28:02d}"
        rows += [f"{o},ga_beds_open,{when},{900 + i * 10 + day % 7 + bump}" for i, o in enumerate(("R1H", "RAL"))]
    return "\n".join(rows) + "\n"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    with engine_env("spark"), open_mutual(tmp_path / "ws", create=True) as m:
        (tmp_path / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp_path / "orgs.csv")
    return tmp_path / "ws"


def run(args: list[str], home: Path, driver: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUTUAL_DATA_ENGINE": "spark", "MUTUAL_HOME": str(home)}
    env.pop("MUTUAL_CONTROL_URL", None)
    command = [sys.executable, "-c", DRIVER] if driver else [sys.executable, "-m", "mutual"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_kill_before_the_commit_marker_leaves_nothing_and_a_rerun_stores_all_once(warehouse: Path,
                                                                                   tmp_path: Path) -> None:
    f = tmp_path / "file.csv"
    f.write_text(lines(range(0, 56)) + "R1H,ga_beds_open,2021-03-01,lots\n")
    killed = run(["ingest", str(f), "--received-at", "2021-03-02T09:00"], warehouse, driver=True)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert list((warehouse / "warehouse" / "observation").glob("month=2021-0*/*.parquet")), "its files were written"
    with engine_env("spark"), open_mutual(warehouse) as m:
        assert m.store.rows("SELECT count(*) FROM observation") == [(0,)], "none of it is visible"
        assert m.store.rows("SELECT count(*) FROM quality_issue") == [(0,)]
        assert [s.status for s in m.submissions()] == ["received"]
    again = run(["ingest", str(f), "--received-at", "2021-03-02T09:00"], warehouse)
    assert again.returncode == 0, again.stdout + again.stderr
    with engine_env("spark"), open_mutual(warehouse) as m:
        (sub,) = m.submissions()
        assert (sub.status, sub.accepted, sub.quarantined) == ("loaded", 112, 1)
        assert m.store.rows("SELECT count(*), count(DISTINCT (org, metric, period)) FROM observation") == [(112, 112)]
        assert m.store.rows("SELECT count(*) FROM quality_issue") == [(1,)]
    months = sorted(p.name for p in (warehouse / "warehouse" / "observation").iterdir())
    assert months == ["month=0000-00", "month=2021-01", "month=2021-02"], "partitioned by the month of the period"


def test_two_ingests_at_once_take_turns_and_keep_every_value_once(warehouse: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(lines(range(0, 40)))
    second.write_text(lines(range(20, 56), bump=1))  # days 20-39 in both, every value changed
    env = {**os.environ, "MUTUAL_DATA_ENGINE": "spark", "MUTUAL_HOME": str(warehouse)}
    env.pop("MUTUAL_CONTROL_URL", None)
    runs = [subprocess.Popen([sys.executable, "-m", "mutual", "ingest", str(f), "--received-at", at], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for f, at in ((first, "2021-03-01T09:00"), (second, "2021-03-02T09:00"))]
    for r in runs:
        out, _ = r.communicate(timeout=300)
        assert r.returncode == 0, out
    with engine_env("spark"), open_mutual(warehouse) as m:
        now = m.store.observations(ObservationQuery()).to_pyarrow().to_pylist()
        history = m.store.observations(ObservationQuery(include_history=True)).to_pyarrow().to_pylist()
        then = m.store.observations(ObservationQuery(as_of=datetime(2021, 3, 1, 12))).to_pyarrow().to_pylist()
    assert len(now) == 56 * 2 and len({(r["org"], r["period"]) for r in now}) == 56 * 2, "one value per key"
    assert len(then) == 40 * 2
    overlapping = [r for r in history if r["period"].day > 20 or r["period"].month == 2]
    assert all(r["superseded_at"] is None or r["superseded_at"] == datetime(2021, 3, 2, 9) for r in overlapping)
