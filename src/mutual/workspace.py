"""The workspace: one directory that holds all of a deployment's state.

Layout: ``control.sqlite`` (control plane), ``data.duckdb`` (data plane), ``archive/`` (raw files,
content-addressed by sha256) and ``tmp/`` (spill space for large ingests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "MUTUAL_HOME"


def default_home() -> Path:
    """``$MUTUAL_HOME`` if set, else ``~/.mutual``."""
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".mutual"


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def at(cls, home: Path | str | None) -> Workspace:
        return cls(Path(home).expanduser().resolve() if home else default_home().resolve())

    @property
    def control_url(self) -> str:
        return f"sqlite:///{self.home / 'control.sqlite'}"

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
        return (self.home / "control.sqlite").exists()
