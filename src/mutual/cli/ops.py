"""Operations: ``mutual config show`` (the settings in force, passwords masked), ``mutual db upgrade|current``
(the control plane's Alembic migrations, for a database on a server that several processes share), and
``mutual export`` / ``mutual import`` (a whole workspace, moved losslessly, see ``mutual.transfer``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from mutual.cli.main import Home, app, err, friendly, out


class DataEngineChoice(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    SPARK = "spark"


EngineOption = Annotated[DataEngineChoice | None, typer.Option(
    "--engine", help="The data plane's engine for this command, instead of MUTUAL_DATA_ENGINE: duckdb, postgres "
                     "(at MUTUAL_DATA_URL) or spark (the Parquet warehouse)")]

if TYPE_CHECKING:
    from sqlalchemy import Engine

config_app = typer.Typer(help="The settings in force (MUTUAL_* environment variables).", no_args_is_help=True)
app.add_typer(config_app, name="config")
db_app = typer.Typer(help="The control plane's schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@config_app.command("show")
@friendly
def config_show(home: Home = None) -> None:
    """Every setting, its value (passwords masked) and where it came from."""
    from mutual.settings import load_settings

    table = Table(title="Mutual settings", title_justify="left")
    for heading in ("setting", "value", "from"):
        table.add_column(heading, overflow="fold")
    for name, value, source in load_settings(home).describe():
        table.add_row(name, value, "--home" if home is not None and name == "home" else source)
    out.print(table)


def _engine(home: Home) -> tuple[Engine, str]:
    from mutual.control import db
    from mutual.workspace import Workspace

    workspace = Workspace.at(home)
    engine = db.connect(workspace.control_url)
    return engine, engine.url.render_as_string(hide_password=True)


@db_app.command("upgrade")
@friendly
def db_upgrade(home: Home = None) -> None:
    """Bring the control plane to the newest migration (a no-op when it is there)."""
    from mutual.control import db

    engine, where = _engine(home)
    try:
        before = db.current_revision(engine)
        db.upgrade(engine)
        after = db.current_revision(engine)
    finally:
        engine.dispose()
    said = "already at" if before == after else f"upgraded from {before or 'an empty database'} to"
    out.print(f"control plane {where}: {said} revision {after} (head {db.HEAD})", highlight=False, soft_wrap=True)


@db_app.command("current")
@friendly
def db_current(home: Home = None) -> None:
    """The control plane's revision and the newest this Mutual knows; exit 1 when it is behind."""
    from mutual.control import db

    engine, where = _engine(home)
    try:
        current = db.current_revision(engine)
    finally:
        engine.dispose()
    out.print(f"control plane {where}: revision {current or 'none (empty)'}, head {db.HEAD}", highlight=False,
              soft_wrap=True)
    if current != db.HEAD:
        out.print("run `mutual db upgrade` to bring it up to date", highlight=False)
        raise typer.Exit(1)


@app.command("export")
@friendly
def export_cmd(folder: Annotated[Path, typer.Argument(help="A new folder to write the export to")],
               engine: EngineOption = None, home: Home = None) -> None:
    """Write the whole workspace (both planes with history and lineage, the raw-file archive, the pseudonym
    secret) to FOLDER as Parquet files and a manifest of their sha256. Keep it as safe as the workspace."""
    from mutual.app import open_mutual
    from mutual.transfer import export

    with open_mutual(home, read_only=True, data_engine=engine and engine.value) as m, \
            Progress(transient=True, console=err) as bar:
        task = bar.add_task("exporting", total=None)
        manifest = export(m, folder, lambda what: bar.update(task, description=what))
    rows = sum(f.get("rows", 0) for f in manifest.files.values())
    out.print(f"exported {rows:,} rows in {sum(1 for n in manifest.files if n.endswith('.parquet'))} tables and "
              f"{sum(1 for n in manifest.files if n.startswith('archive/'))} archived files to {folder}",
              highlight=False, soft_wrap=True)


@app.command("import")
@friendly
def import_cmd(folder: Annotated[Path, typer.Argument(help="A folder written by `mutual export`")],
               engine: EngineOption = None, home: Home = None) -> None:
    """Fill a new workspace from an export, on the engines the settings name (e.g. MUTUAL_CONTROL_URL for a
    PostgreSQL control plane) or the data plane on --engine; every file is checked against the manifest first."""
    from mutual.transfer import load

    with Progress(transient=True, console=err) as bar:
        task = bar.add_task("importing", total=None)
        manifest = load(folder, home, lambda what: bar.update(task, description=what),
                        data_engine=engine and engine.value)
    rows = sum(f.get("rows", 0) for f in manifest.files.values())
    out.print(f"imported {rows:,} rows from {folder}", highlight=False)
