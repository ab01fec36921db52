"""``python -m mutual.cli``: the same command as ``mutual``."""

from mutual.cli import app

app()
