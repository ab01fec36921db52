"""The code stays ruff- and mypy-clean, and the control-plane schema's head is the one the code expects."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from mutual.control import db


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "src", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_nothing() -> None:
    done = _run("mypy", "src")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_head_the_code_expects_is_alembics_head() -> None:
    assert db.alembic_head() == db.HEAD
