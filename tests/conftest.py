"""Shared fixtures: a fresh workspace per test, and the real public files in ../shared/data when present."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# fixtures: the control plane on SQLite and PostgreSQL, the data plane on DuckDB and PostgreSQL, Spark
from engines import control_plane, data_plane, module_data_plane, spark  # noqa: F401
from mutual.app import Mutual, open_mutual

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$MUTUAL_SHARED_DATA``, else ``../shared/data`` beside the checkout; None when absent."""
    env = os.environ.get("MUTUAL_SHARED_DATA")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def shared_data() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("the public test files (../shared/data) are not on this machine")
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def mutual(home: Path) -> Iterator[Mutual]:
    with open_mutual(home, create=True) as m:
        yield m


ORGS_CSV = """code,name,kind,parent,lat,lon
E54000029,East London,stp,Y56,,
E54000027,North West London,stp,Y56,,
R1H,Barts Health NHS Trust,trust,E54000029,51.517,-0.056
RAL,Royal Free London NHS Foundation Trust,trust,E54000029,51.553,-0.165
RYJ,Imperial College Healthcare NHS Trust,trust,E54000027,51.517,-0.174
"""


@pytest.fixture
def small_orgs(mutual: Mutual, tmp_path: Path) -> Mutual:
    """A workspace that knows three London trusts (plus the nation and regions every workspace has)."""
    f = tmp_path / "orgs.csv"
    f.write_text(ORGS_CSV)
    mutual.import_orgs(f)
    return mutual


@pytest.fixture
def real_orgs(mutual: Mutual, shared_data: Path) -> Mutual:
    """A workspace with the real ODS trusts, coordinates and STPs imported."""
    import_real_orgs(mutual, shared_data)
    return mutual


REAL_ORG_FILES = ("nhs-ods-trusts/etr.csv", "nhs-ods-trusts/nhs-trusts-geocoded.csv",
                  "nhse-winter-sitrep-2018-19/Trust-STP-lookup.csv")


def import_real_orgs(m: Mutual, data: Path) -> None:
    """The real ODS trusts, their coordinates and STPs."""
    for f in REAL_ORG_FILES:
        m.import_orgs(data / f)
