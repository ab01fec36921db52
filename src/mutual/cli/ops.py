"""Operations: ``mutual config show`` (the settings in force, passwords masked) and ``mutual db upgrade|current``
(the control plane's Alembic migrations, for a database on a server that several processes share)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from mutual.cli.main import Home, app, friendly, out

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
