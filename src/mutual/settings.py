"""What is in force: one settings object, read from the environment (``MUTUAL_*``) with embedded defaults.

- ``MUTUAL_HOME``: the workspace directory (archive, spill space, secrets; the SQLite and DuckDB files when
  those engines are used). Default ``~/.mutual``; ``--home`` on every command overrides it.
- ``MUTUAL_CONTROL_URL``: the control plane's SQLAlchemy URL. Default: the SQLite file ``control.sqlite`` in the
  workspace; a shared service uses ``postgresql+psycopg://user:password@host:5432/db``.
- ``MUTUAL_DATA_ENGINE``: the data plane: ``duckdb`` (default, the file ``data.duckdb`` in the workspace),
  ``postgres`` (``MUTUAL_DATA_URL``, default the control URL) or ``spark`` (the Parquet warehouse that ingest
  writes and Spark jobs read, under ``MUTUAL_SPARK_WAREHOUSE``, default ``<home>/warehouse``; Spark's master is
  ``MUTUAL_SPARK_MASTER``, default ``local[*]``).

``mutual config show`` prints ``describe()``: every setting with where it came from, passwords masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

Engine = Literal["duckdb", "postgres", "spark"]
PREFIX = "MUTUAL_"


class SettingsError(ValueError):
    pass


def _check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        url = make_url(value.strip())
    except ArgumentError:
        raise ValueError(f"{value!r} is not a database URL (e.g. postgresql+psycopg://user@127.0.0.1:5432/mutual)"
                         ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"{url.get_backend_name()} is not supported (sqlite or postgresql)")
    return value.strip()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".mutual")
    control_url: str | None = None
    data_engine: Engine = "duckdb"
    data_url: str | None = None
    spark_master: str = "local[*]"
    spark_warehouse: Path | None = None

    @field_validator("control_url", "data_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    def with_home(self, home: Path | str | None) -> Settings:
        """These settings for the workspace at ``home`` (``--home``), or as they are when it is None."""
        if home is None:
            return self
        return self.model_copy(update={"home": Path(home)})

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def control(self) -> str:
        return self.control_url or f"sqlite:///{self.resolved_home / 'control.sqlite'}"

    @property
    def data(self) -> str:
        """Where the data plane lives: a DuckDB file, a PostgreSQL URL or a Spark warehouse folder."""
        if self.data_engine == "duckdb":
            return str(self.resolved_home / "data.duckdb")
        if self.data_engine == "postgres":
            url = self.data_url or self.control_url
            if url is None or not url.startswith("postgresql"):
                raise SettingsError("MUTUAL_DATA_ENGINE=postgres needs MUTUAL_DATA_URL (or a PostgreSQL "
                                    "MUTUAL_CONTROL_URL)")
            return url
        return str((self.spark_warehouse or self.resolved_home / "warehouse").expanduser().resolve())

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, value with any password masked, where it came from) for every setting."""
        def source(name: str) -> str:
            return f"${PREFIX}{name.upper()}" if f"{PREFIX}{name.upper()}" in os.environ else "default"

        def masked(url: str) -> str:
            return make_url(url).render_as_string(hide_password=True) if "://" in url else url

        rows = [("home", str(self.resolved_home), source("home")),
                ("control_url", masked(self.control), source("control_url")),
                ("data_engine", self.data_engine, source("data_engine"))]
        try:
            where = self.data
        except SettingsError as exc:
            where = f"(not usable: {exc})"
        rows.append(("data", masked(where), source("data_url") if self.data_engine == "postgres" else
                     source("spark_warehouse") if self.data_engine == "spark" else "workspace"))
        if self.data_engine == "spark":
            rows.append(("spark_master", self.spark_master, source("spark_master")))
        return rows


def load_settings(home: Path | str | None = None) -> Settings:
    """The settings in force, for the workspace at ``home`` when given; a bad value is a ``SettingsError``
    naming the variable."""
    from pydantic import ValidationError

    try:
        return Settings().with_home(home)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"{PREFIX}{str(first['loc'][0]).upper()}" if first.get("loc") else "a MUTUAL_ setting"
        raise SettingsError(f"{name}: {first['msg'].removeprefix('Value error, ')}") from None
