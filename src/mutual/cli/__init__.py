"""The ``mutual`` command: one Typer app; each module of this package adds the commands of one capability.

Every command is a thin wrapper over ``mutual.app`` or a pure layer function; errors are one clear line.
"""

from mutual.cli import main  # noqa: F401  (the app and the submission commands)
from mutual.cli.main import app

__all__ = ["app"]
