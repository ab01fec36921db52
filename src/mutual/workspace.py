"""The workspace: one directory that holds a deployment's state, with its control plane where the settings
put it (``mutual.settings``).

Layout: ``control.sqlite`` (control plane, unless ``MUTUAL_CONTROL_URL`` names a server), ``data.duckdb`` (data
plane, unless ``MUTUAL_DATA_ENGINE`` names another engine), ``archive/`` (raw files, content-addressed by sha256)
and ``tmp/`` (spill space for large ingests).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from mutual.settings import load_settings


def default_home() -> Path:
    """``$MUTUAL_HOME`` if set, else ``~/.mutual``."""
    return load_settings().resolved_home


@dataclass(frozen=True)
class Workspace:
    home: Path
    control: str | None = None  # the control plane's URL when it is not the workspace's SQLite file
    data_engine: str = "duckdb"
    data_url: str | None = None  # the data plane's URL when it is not the workspace's DuckDB file

    @classmethod
    def at(cls, home: Path | str | None, data_engine: str | None = None) -> Workspace:
        """The workspace at ``home`` on the engines the settings name (the data plane on ``data_engine`` when
        given: ``mutual export|import --engine``)."""
        settings = load_settings(home)
        if data_engine is not None:
            settings = settings.model_copy(update={"data_engine": data_engine})
        return cls(settings.resolved_home, settings.control_url, settings.data_engine,
                   settings.data if settings.data_engine != "duckdb" else None)

    @property
    def control_url(self) -> str:
        return self.control or f"sqlite:///{self.home / 'control.sqlite'}"

    @property
    def data_path(self) -> Path:
        return self.home / "data.duckdb"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    def create(self) -> None:
        for path in (self.home, self.archive_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)

    @property
    def exists(self) -> bool:
        return (self.home / "control.sqlite").exists() or self.data_path.exists() or self.archive_dir.is_dir()


def workspace_secret(path: Path, consequence: str) -> bytes:
    """32 random bytes kept (hex, mode 0600) at ``path``, created on first use; a looser mode is tightened.
    ``consequence`` says what replacing a damaged secret does, for the error message."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path} is not a hex secret: delete it to make a new one ({consequence})") from None
    if len(secret) < 32:
        raise ValueError(f"{path} holds a secret shorter than 32 bytes: delete it to make a new one ({consequence})")
    return secret
