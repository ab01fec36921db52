"""The engines the specification tests run on. ``control_plane`` runs a test once with the control plane in the
workspace's SQLite file and once in PostgreSQL (127.0.0.1:5432, database ``test``, user ``postgres``, as on the
build machines), each PostgreSQL run in a schema of its own that is dropped afterwards. PostgreSQL is skipped,
with the reason, only where it is truly absent: psycopg not installed or no server answering."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import Engine, create_engine, text

PG_URL = os.environ.get("MUTUAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@cache
def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (uv run --all-extras pytest installs it)"
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as con:
            con.execute(text("SELECT 1"))
    except Exception as exc:
        return f"no PostgreSQL at {PG_URL}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def pg_schema() -> tuple[str, str]:
    """A new empty schema: (its name, a URL whose connections use it)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_URL)
    with engine.begin() as con:
        con.execute(text(f"CREATE SCHEMA {name}"))
    engine.dispose()
    return name, f"{PG_URL}?options=-csearch_path%3D{name}"


def drop_schema(name: str) -> None:
    engine = create_engine(PG_URL)
    with engine.begin() as con:
        con.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def control_plane(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The control plane's dialect for this run; workspaces opened during the test use it."""
    if request.param == "sqlite":
        monkeypatch.delenv("MUTUAL_CONTROL_URL", raising=False)
        yield "sqlite"
        return
    why = postgres_missing()
    if why:
        pytest.skip(why)
    name, url = pg_schema()
    monkeypatch.setenv("MUTUAL_CONTROL_URL", url)
    try:
        yield "postgresql"
    finally:
        drop_schema(name)


@contextmanager
def engine_env(engine: str) -> Iterator[str]:
    """The environment of a data plane on ``engine`` (a fresh PostgreSQL schema for ``postgres``), for as long as
    the context lasts. The control plane stays in the workspace's SQLite file unless ``control_plane`` moves it."""
    with pytest.MonkeyPatch.context() as mp:
        if engine == "duckdb":
            mp.delenv("MUTUAL_DATA_ENGINE", raising=False)
            yield engine
            return
        if engine == "spark":  # the Parquet warehouse Spark reads, in the workspace's own folder
            mp.setenv("MUTUAL_DATA_ENGINE", "spark")
            mp.delenv("MUTUAL_SPARK_WAREHOUSE", raising=False)
            yield engine
            return
        why = postgres_missing()
        if why:
            pytest.skip(why)
        name, url = pg_schema()
        mp.setenv("MUTUAL_DATA_ENGINE", "postgres")
        mp.setenv("MUTUAL_DATA_URL", url)
        try:
            yield engine
        finally:
            drop_schema(name)


DATA_ENGINES = ["duckdb", "postgres", "spark"]


@pytest.fixture(params=DATA_ENGINES)
def data_plane(request: pytest.FixtureRequest) -> Iterator[str]:
    """The data plane's engine for this test; workspaces opened during it use it."""
    with engine_env(request.param) as engine:
        yield engine


@pytest.fixture(params=DATA_ENGINES, scope="module")
def module_data_plane(request: pytest.FixtureRequest) -> str:
    """The engine for a module's shared workspaces (each opened inside ``engine_env(module_data_plane)``, so each
    has a data plane of its own): every test of the module runs once per engine."""
    if request.param == "postgres" and postgres_missing():
        pytest.skip(postgres_missing() or "")
    return str(request.param)


def drop_append_only(engine: Engine, table: str, *verbs: str) -> None:
    """What someone with the database's owner rights can do: drop the triggers that keep ``table`` append-only."""
    with engine.begin() as con:
        for verb in verbs:
            on = f" ON {table}" if engine.dialect.name == "postgresql" else ""
            con.exec_driver_sql(f"DROP TRIGGER {table}_no_{verb}{on}")


@cache
def spark_missing() -> str | None:
    """Why Spark local mode cannot run here, or None when it can."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (uv run --all-extras pytest installs it)"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (Spark needs Java 17)"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One Spark session in local mode for the whole test run (one takes ~10 s to start), on loopback only."""
    why = spark_missing()
    if why:
        pytest.skip(why)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("mutual-tests")
               .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "4").config("spark.ui.showConsoleProgress", "false")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
