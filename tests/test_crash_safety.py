"""One submission is one transaction: a process killed at any moment leaves either all of it or none of it, and
re-running the command finishes the job. A SIGKILL during a large ingest loses nothing and duplicates nothing.

Every kill here is a real SIGKILL of a child ``mutual ingest`` process (``python -m mutual.cli``, never through a
launcher such as ``uv run``, whose own death would leave its child running). Two kinds:

- at a chosen point: a small driver patches one step of the ingest to SIGKILL its own process right there
  (after archiving, after the submission row is committed, before the data-plane COMMIT, after it);
- at a cue or a time: a large file's ingest is killed the moment its data-plane transaction writes its first
  rows, the moment it commits, and at moments spread over the run before that.

Between kills the workspace is inspected from outside (DuckDB read-only, SQLite directly): the store holds
either none or all of the file's values, never a part, and never a key twice.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from mutual.app import open_mutual

ORGS = 50
METRICS = ["ga_beds_open", "cc_adult_beds_open", "covid_patients_in_hospital", "ventilators_total", "beds_total",
           "icu_beds_open", "long_stay_patients_7d", "covid_admissions"]
BAD_EVERY = 1000  # one value in this many is "n/k": quarantined, so the file has issues to store too
LARGE = 300_000
SMALL = 20_000


@dataclass(frozen=True)
class Expected:
    rows: int
    bad: int

    @property
    def accepted(self) -> int:
        return self.rows - self.bad


def write_csv(path: Path, rows: int) -> Expected:
    """``rows`` distinct (org, metric, date) values of metrics with no capacity relation between them."""
    metric_list = "[" + ", ".join(f"'{m}'" for m in METRICS) + "]"
    per_day = ORGS * len(METRICS)
    duckdb.sql(f"""
        COPY (
            SELECT 'T' || lpad((i % {ORGS})::VARCHAR, 3, '0') AS org,
                   {metric_list}[(i // {ORGS}) % {len(METRICS)} + 1] AS metric,
                   (DATE '2000-01-01' + (i // {per_day})::INTEGER)::VARCHAR AS date,
                   CASE WHEN i % {BAD_EVERY} = {BAD_EVERY - 1} THEN 'n/k'
                        ELSE ((i * 7919) % 397 + 10)::VARCHAR END AS value
            FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')""")
    return Expected(rows=rows, bad=rows // BAD_EVERY)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Expected]]:
    root = tmp_path_factory.mktemp("files")
    return {name: (root / f"{name}.csv", write_csv(root / f"{name}.csv", n))
            for name, n in (("large", LARGE), ("small", SMALL))}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace that knows the files' trusts; each test works on a copy."""
    root = tmp_path_factory.mktemp("template")
    orgs = root / "orgs.csv"
    orgs.write_text("code,name,kind,parent,lat,lon\n"
                    + "".join(f"T{i:03d},Trust {i},trust,Y56,,\n" for i in range(ORGS)))
    with open_mutual(root / "ws", create=True) as m:
        m.import_orgs(orgs)
    return root / "ws"


@pytest.fixture
def workspace(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "ws")
    return tmp_path / "ws"


# -- running and killing --------------------------------------------------------------------------------------------

def ingest_command(home: Path, path: Path) -> list[str]:
    return [sys.executable, "-m", "mutual.cli", "ingest", str(path), "--home", str(home)]


def run(home: Path, path: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(ingest_command(home, path), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


# Runs the CLI with one step of the ingest patched to SIGKILL its own process: argv[1] names the step.
DRIVER = r"""
import os, signal, sys
from mutual import cli
from mutual.store import intake
from mutual.store.duckdb_store import DuckStore

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "archiving":  # the raw file copied into the archive's landing area, not yet renamed into place
    from mutual.ingest import rawfile
    class DyingOs:
        def __getattr__(self, name):
            return getattr(os, name)
        def fsync(self, fd):
            die()
    rawfile.os = DyingOs()
elif point == "archived":  # the raw file is archived; no submission row yet
    archive = intake.archive
    def archive_then_die(*args, **kwargs):
        archive(*args, **kwargs)
        die()
    intake.archive = archive_then_die
elif point == "received":  # the submission row is committed as received; nothing staged
    intake._load = die
elif point == "checked":  # staged and checked; the data-plane transaction not begun
    DuckStore.load = die
elif point == "before-commit":  # every row of the transaction written, COMMIT not reached
    load = DuckStore.load
    class DyingConnection:
        def __init__(self, con):
            self.con = con
        def __getattr__(self, name):
            return getattr(self.con, name)
        def execute(self, sql, *args):
            if sql.strip() == "COMMIT":
                die()
            return self.con.execute(sql, *args)
    def load_then_die(self, *args, **kwargs):
        self.con = DyingConnection(self.con)
        return load(self, *args, **kwargs)
    DuckStore.load = load_then_die
elif point == "committed":  # the data plane committed; the submission row not yet marked loaded
    intake._finish = die
else:
    raise SystemExit(f"unknown kill point {point}")
sys.argv = ["mutual", *sys.argv[2:]]
cli.app()
"""


# -- looking at a workspace from outside ----------------------------------------------------------------------------

@dataclass(frozen=True)
class State:
    current: int
    total: int
    duplicate_keys: int
    errors: int
    warnings: int
    load_log: int
    submissions: list[tuple[str, int, int, int, int, int, int]]  # status, rows_read, values_read, accepted, ...


def state(home: Path) -> State:
    con = duckdb.connect(str(home / "data.duckdb"), read_only=True)  # replays a killed writer's WAL in memory
    try:
        current, total = con.execute(
            "SELECT count(*) FILTER (superseded_at IS NULL), count(*) FROM observation").fetchone()  # type: ignore[misc]
        dups = con.execute("""
            SELECT count(*) FROM (SELECT org, metric, dims, period FROM observation WHERE superseded_at IS NULL
                                  GROUP BY ALL HAVING count(*) > 1)""").fetchone()[0]  # type: ignore[index]
        errors, warnings = con.execute(
            "SELECT count(*) FILTER (severity = 'error'), count(*) FILTER (severity = 'warning') "
            "FROM quality_issue").fetchone()  # type: ignore[misc]
        load_log = con.execute("SELECT count(*) FROM load_log").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    db = sqlite3.connect(home / "control.sqlite")
    try:
        subs = db.execute("SELECT status, rows_read, values_read, accepted, quarantined, stored, warnings "
                          "FROM submission ORDER BY id").fetchall()
    finally:
        db.close()
    return State(current, total, dups, errors, warnings, load_log, subs)


def assert_all_or_nothing(home: Path, expected: Expected) -> State:
    return assert_all_or_nothing_state(state(home), expected)


def assert_all_or_nothing_state(s: State, expected: Expected) -> State:
    assert s.duplicate_keys == 0
    assert s.total == s.current, "one submission of distinct keys supersedes nothing"
    assert (s.current, s.errors, s.load_log) in {(0, 0, 0), (expected.accepted, expected.bad, 1)}, s
    assert s.current or not s.warnings, s
    assert len(s.submissions) <= 1
    if s.submissions and s.submissions[0][0] == "loaded":
        assert s.current == expected.accepted
    return s


def assert_finished(home: Path, expected: Expected) -> None:
    s = state(home)
    assert (s.current, s.total, s.duplicate_keys) == (expected.accepted, expected.accepted, 0)
    assert (s.errors, s.load_log) == (expected.bad, 1)
    assert s.submissions == [("loaded", expected.rows, expected.rows, expected.accepted, expected.bad,
                              expected.accepted, s.warnings)]
    _, _, values_read, accepted, quarantined, _, _ = s.submissions[0]
    assert values_read == accepted + quarantined
    archived = [p.name for p in (home / "archive").rglob("*") if p.is_file()]
    assert len(archived) == 1, f"one archived file, and no partial copy left by a killed run: {archived}"


def assert_rerun_is_a_no_op(home: Path, path: Path, expected: Expected) -> None:
    done = run(home, path)
    assert "already ingested" in done.stdout, done.stdout
    assert_finished(home, expected)


# -- tests ----------------------------------------------------------------------------------------------------------

def kill_at(point: str, home: Path, path: Path) -> None:
    killed = subprocess.run([sys.executable, "-c", DRIVER, point, *ingest_command(home, path)[3:]],
                            capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr


# Each run is a rerun of the one before, killed one step further on.
POINTS = ["archiving", "archived", "received", "checked", "before-commit", "committed"]


@dataclass(frozen=True)
class StepKills:
    home: Path
    after: dict[str, State]  # the workspace as each killed run left it
    incoming: dict[str, list[str]]  # the files in the archive's landing area after each killed run
    rerun: str  # what the run after the last kill printed


@pytest.fixture(scope="module")
def step_kills(files: dict[str, tuple[Path, Expected]], template: Path,
               tmp_path_factory: pytest.TempPathFactory) -> StepKills:
    home = tmp_path_factory.mktemp("steps") / "ws"
    shutil.copytree(template, home)
    path, _ = files["small"]
    after, incoming = {}, {}
    for point in POINTS:
        kill_at(point, home, path)
        after[point] = state(home)
        incoming[point] = sorted(p.name for p in (home / "archive").iterdir() if p.name.startswith(".incoming-"))
    return StepKills(home, after, incoming, run(home, path).stdout)


def test_a_kill_at_any_step_leaves_all_or_nothing(files: dict[str, tuple[Path, Expected]],
                                                  step_kills: StepKills) -> None:
    _, expected = files["small"]
    for point in POINTS:
        assert_all_or_nothing_state(step_kills.after[point], expected)
    statuses = {point: [sub[0] for sub in s.submissions] for point, s in step_kills.after.items()}
    assert statuses == {"archiving": [], "archived": [], "received": ["received"], "checked": ["received"],
                        "before-commit": ["received"], "committed": ["received"]}
    # nothing is stored until the data plane commits, and then everything is
    assert {point: s.current for point, s in step_kills.after.items()} == {
        **dict.fromkeys(POINTS[:-1], 0), "committed": expected.accepted}
    # a copy cut short in the archive's landing area is swept away by the next run
    assert len(step_kills.incoming["archiving"]) == 1
    assert all(not step_kills.incoming[point] for point in POINTS[1:])


def test_a_rerun_after_the_kills_finishes_the_job_and_a_second_is_a_no_op(
        files: dict[str, tuple[Path, Expected]], step_kills: StepKills) -> None:
    path, expected = files["small"]
    assert "submission 1" in step_kills.rerun, step_kills.rerun
    assert_finished(step_kills.home, expected)
    assert_rerun_is_a_no_op(step_kills.home, path, expected)


def test_a_resumed_run_says_so(step_kills: StepKills) -> None:
    assert "[resumed]" in step_kills.rerun, step_kills.rerun


def test_a_resumed_submission_keeps_its_format(step_kills: StepKills) -> None:
    assert "(mutual-long)" in step_kills.rerun, step_kills.rerun
    db = sqlite3.connect(step_kills.home / "control.sqlite")
    try:
        assert db.execute("SELECT format FROM submission").fetchall() == [("mutual-long",)]
    finally:
        db.close()


def kill_when(home: Path, path: Path, cue: Callable[[], bool] | None = None, after: float = 600.0) -> tuple[int, float]:
    """Start an ingest and SIGKILL it as soon as ``cue()`` holds (polled every 2 ms) or ``after`` seconds have
    passed; returns its exit status (-SIGKILL, or 0 when it finished first) and when it stopped."""
    start = time.monotonic()
    child = subprocess.Popen(ingest_command(home, path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while child.poll() is None:
        if time.monotonic() - start >= after or (cue is not None and cue()):
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    return child.wait(timeout=120), time.monotonic() - start


def test_sigkills_during_a_large_ingest_lose_nothing_and_duplicate_nothing(
        files: dict[str, tuple[Path, Expected]], workspace: Path) -> None:
    path, expected = files["large"]
    home = workspace
    data, wal = home / "data.duckdb", home / "data.duckdb.wal"

    # 1. inside the data-plane transaction: its first rows reach the database file (the store is fresh, so the
    #    file grows only then)
    size = data.stat().st_size
    status, began = kill_when(home, path, lambda: data.stat().st_size > size)
    assert status == -signal.SIGKILL, "the ingest finished before its transaction could be caught"
    s = assert_all_or_nothing(home, expected)
    assert [sub[0] for sub in s.submissions] == ["received"]

    # 2. at the COMMIT: the moment its write-ahead log appears (before the submission row is marked loaded)
    status, _ = kill_when(home, path, wal.exists)
    assert_all_or_nothing(home, expected)

    # 3. at moments spread over the run up to the transaction: start-up, archiving, staging, checking
    for fraction in (0.35, 0.6, 0.8, 0.95):
        if status == 0:
            break
        status, _ = kill_when(home, path, after=began * fraction)
        assert status in (0, -signal.SIGKILL)
        assert_all_or_nothing(home, expected)

    done = run(home, path)
    assert "submission 1" in done.stdout, done.stdout
    assert_finished(home, expected)
    assert_rerun_is_a_no_op(home, path, expected)
