"""Settings in force come from MUTUAL_* variables with embedded defaults; `mutual config show` prints them with
passwords masked; a bad value is one line naming the variable; `mutual db upgrade|current` manage the control
plane's migrations on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engines import PG_URL, drop_schema, pg_schema, postgres_missing
from mutual.cli import app
from mutual.control import db
from mutual.settings import Settings, SettingsError, load_settings

runner = CliRunner()


def test_defaults_keep_everything_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MUTUAL_HOME", "MUTUAL_CONTROL_URL", "MUTUAL_DATA_ENGINE", "MUTUAL_DATA_URL"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings(tmp_path / "ws")
    assert s.control == f"sqlite:///{(tmp_path / 'ws').resolve() / 'control.sqlite'}"
    assert s.data_engine == "duckdb" and s.data == str((tmp_path / "ws").resolve() / "data.duckdb")
    monkeypatch.setenv("MUTUAL_HOME", str(tmp_path / "elsewhere"))
    assert load_settings().resolved_home == (tmp_path / "elsewhere").resolve()
    assert load_settings(tmp_path / "ws").resolved_home == (tmp_path / "ws").resolve(), "--home wins"


def test_a_postgres_data_plane_needs_a_postgres_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUTUAL_CONTROL_URL", raising=False)
    monkeypatch.delenv("MUTUAL_DATA_URL", raising=False)
    monkeypatch.setenv("MUTUAL_DATA_ENGINE", "postgres")
    with pytest.raises(SettingsError, match="needs MUTUAL_DATA_URL"):
        _ = load_settings().data
    monkeypatch.setenv("MUTUAL_CONTROL_URL", "postgresql+psycopg://app:pw@db.internal/mutual")
    assert load_settings().data == "postgresql+psycopg://app:pw@db.internal/mutual"


@pytest.mark.parametrize(("name", "value", "words"), [
    ("MUTUAL_DATA_ENGINE", "oracle", "MUTUAL_DATA_ENGINE: Input should be 'duckdb', 'postgres' or 'spark'"),
    ("MUTUAL_CONTROL_URL", "not a url", "MUTUAL_CONTROL_URL: 'not a url' is not a database URL"),
    ("MUTUAL_CONTROL_URL", "mysql://x@y/z", "MUTUAL_CONTROL_URL: mysql is not supported"),
])
def test_a_bad_setting_is_one_line_naming_it(name: str, value: str, words: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "--home", str(tmp_path)], env={name: value})
    assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output


def test_config_show_masks_passwords_and_says_where_each_value_came_from(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "--home", str(tmp_path)],
                           env={"MUTUAL_CONTROL_URL": "postgresql+psycopg://app:s3cret@db.internal:5432/mutual",
                                "MUTUAL_DATA_ENGINE": "spark", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output and "app:***@db.internal" in result.output
    assert "$MUTUAL_CONTROL_URL" in result.output and "--home" in result.output and "local[*]" in result.output
    assert Settings(control_url=None).data_engine == "duckdb"


def test_db_current_and_upgrade_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUTUAL_CONTROL_URL", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    behind = runner.invoke(app, ["db", "current", "--home", str(home)])
    assert behind.exit_code == 1 and "revision none (empty)" in behind.output and "mutual db upgrade" in behind.output
    up = runner.invoke(app, ["db", "upgrade", "--home", str(home)])
    assert up.exit_code == 0 and f"upgraded from an empty database to revision {db.HEAD}" in up.output
    again = runner.invoke(app, ["db", "upgrade", "--home", str(home)])
    assert f"already at revision {db.HEAD}" in again.output
    assert runner.invoke(app, ["db", "current", "--home", str(home)]).exit_code == 0


def test_db_upgrade_on_postgresql_and_a_server_that_is_not_there(tmp_path: Path) -> None:
    down = runner.invoke(app, ["init", "--home", str(tmp_path / "x")],
                         env={"MUTUAL_CONTROL_URL": "postgresql+psycopg://app:pw@127.0.0.1:9/mutual"})
    assert down.exit_code == 1 and "cannot open the control plane at postgresql+psycopg://app:***@127.0.0.1:9" in (
        down.output) and "pw@" not in down.output
    why = postgres_missing()
    if why:
        pytest.skip(why)
    name, url = pg_schema()
    try:
        env = {"MUTUAL_CONTROL_URL": url}
        assert runner.invoke(app, ["db", "current", "--home", str(tmp_path)], env=env).exit_code == 1
        up = runner.invoke(app, ["db", "upgrade", "--home", str(tmp_path)], env=env)
        assert up.exit_code == 0 and f"to revision {db.HEAD}" in up.output and PG_URL.split("@")[1] in up.output
        assert runner.invoke(app, ["db", "current", "--home", str(tmp_path)], env=env).exit_code == 0
    finally:
        drop_schema(name)
