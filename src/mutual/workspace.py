"""The workspace: one directory that holds all of a deployment's state.

Layout: ``control.sqlite`` (control plane), ``data.duckdb`` (data plane), ``archive/`` (raw files,
content-addressed by sha256) and ``tmp/`` (spill space for large ingests).
"""

from __future__ import annotations

import os
import secrets
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
