"""``python -m mutual``: the same command as ``mutual``."""

from mutual.cli import app

app(prog_name="mutual")
