"""Moving a workspace: `mutual export` writes all of it (both planes with history and lineage, the raw-file
archive, the pseudonym secret); `mutual import` fills a new workspace from it on the engines the settings name;
exporting again gives the same bytes. A damaged or foreign export, or a target that is not empty, is refused
with the file named and nothing written."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from conftest import ORGS_CSV
from engines import engine_env
from mutual.app import open_mutual
from mutual.cli import app
from mutual.governance import audit, episodes
from mutual.governance.agreements import Agreement
from mutual.governance.gate import PSEUDONYM_SECRET
from mutual.governance.records import add_partner, draft
from mutual.store.base import ObservationQuery
from mutual.transfer import TransferError, export, load
from mutual.web import accounts
from mutual.web.accounts import Role
from mutual.workspace import workspace_secret

runner = CliRunner()
AGREEMENT = {"id": "A1", "partner": "uni-leeds", "title": "Study", "purpose": "A study of winter bed pressure.",
             "purpose_category": "research", "legal_basis_art6": "6(1)(e) public task",
             "confidentiality_basis": "anonymised", "datasets": ["capacity"],
             "fields": {"capacity": ["org", "value"]}, "granularity": "aggregate", "orgs": ["R1H"],
             "data_from": "2021-01-01", "data_to": "2021-01-31", "start": "2026-01-01", "end": "2030-12-31",
             "retention_days": 30}


def build(home: Path, tmp: Path) -> datetime:
    """A workspace with a little of everything; returns a moment between the first file and its correction."""
    with open_mutual(home, create=True) as m:
        (tmp / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp / "orgs.csv")
        (tmp / "a.csv").write_text("org,metric,date,value\nR1H,ga_beds_occupied,2021-01-05,452\n"
                                   "R1H,ga_beds_open,2021-01-05,lots\n")
        m.ingest(tmp / "a.csv", received_at=datetime(2021, 1, 6, 9))
        (tmp / "b.csv").write_text("org,metric,date,value\nR1H,ga_beds_occupied,2021-01-05,460\n")
        m.ingest(tmp / "b.csv", received_at=datetime(2021, 1, 7, 9))
        add_partner(m.sessions, "uni-leeds", "University of Leeds", "university", by="lead")
        draft(m.sessions, Agreement.model_validate(AGREEMENT), by="lead")
        accounts.add_user(m.sessions, "analyst", Role.NATIONAL_ANALYST, password="a-long-password-1")
        accounts.create_token(m.sessions, "analyst")
        held = episodes.generate(200, ("R1H",), date(2021, 1, 1), 31, seed=3)
        m.replace_episodes(held, by="loader", source="test")
        m.replace_optouts(pa.array(held.column("nhs_number").to_pylist()[:5], pa.int64()), by="ig", source="test")
        workspace_secret(m.workspace.home / PSEUDONYM_SECRET, "pseudonyms change")  # made by the first extract
    return datetime(2021, 1, 6, 12)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.usefixtures("control_plane")
def test_a_workspace_moves_losslessly_and_exports_again_byte_for_byte(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target_url = os.environ.get("MUTUAL_CONTROL_URL")
    monkeypatch.delenv("MUTUAL_CONTROL_URL", raising=False)  # the source: SQLite and DuckDB in its folder
    between = build(tmp_path / "a", tmp_path)
    with open_mutual(tmp_path / "a") as m:
        first = export(m, tmp_path / "export-a")
        before = m.store.observations(ObservationQuery(as_of=between)).to_pyarrow()
        history = m.store.observations(ObservationQuery(include_history=True)).to_pyarrow()
    if target_url:  # the target: this run's engine
        monkeypatch.setenv("MUTUAL_CONTROL_URL", target_url)
    result = runner.invoke(app, ["import", str(tmp_path / "export-a"), "--home", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    with open_mutual(tmp_path / "b") as m:
        export(m, tmp_path / "export-b")
        assert m.store.observations(ObservationQuery(as_of=between)).to_pyarrow().equals(before), "what we knew then"
        assert m.store.observations(ObservationQuery(include_history=True)).to_pyarrow().equals(history)
        with m.sessions() as s:
            assert audit.verify(s)[0] == []
        accounts.add_user(m.sessions, "second", Role.PLANNER, password=None)  # ids carry on after the loaded ones
        assert accounts.get_user(m.sessions, "second").id == 2
        assert accounts.sign_in(m.sessions, "analyst", "a-long-password-1").username == "analyst"
        assert (m.workspace.home / "pseudonym_secret").read_bytes() == (tmp_path / "a" / "pseudonym_secret"
                                                                        ).read_bytes()
    assert files(tmp_path / "export-a") == files(tmp_path / "export-b")
    assert first.files["data/observation.parquet"]["rows"] == 2 and first.files["data/apc_episode.parquet"][
        "rows"] == 200
    assert sum(name.startswith("archive/") for name in first.files) == 2


def test_a_damaged_or_foreign_export_and_a_full_target_are_refused(tmp_path: Path) -> None:
    build(tmp_path / "a", tmp_path)
    with open_mutual(tmp_path / "a") as m:
        export(m, tmp_path / "ex")
        with pytest.raises(TransferError, match="is not empty"):
            export(m, tmp_path / "ex")
    with pytest.raises(TransferError, match="already holds a workspace"):
        load(tmp_path / "ex", tmp_path / "a")
    with pytest.raises(TransferError, match=r"has no manifest\.json"):
        load(tmp_path, tmp_path / "c")
    damaged = tmp_path / "ex" / "data" / "observation.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    result = runner.invoke(app, ["import", str(tmp_path / "ex"), "--home", str(tmp_path / "c")])
    assert result.exit_code == 1 and "observation.parquet: its contents changed since the export" in result.output
    assert not (tmp_path / "c").exists(), "nothing written"


@pytest.mark.parametrize("middle", ["postgres", "spark"])
def test_a_workspace_moved_from_duckdb_to_another_engine_and_back_exports_the_same_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, middle: str) -> None:
    """In the middle, both planes on PostgreSQL (a regional service), or the data plane in the Parquet warehouse
    Spark reads (national scale); the workspace's own files at either end."""
    monkeypatch.delenv("MUTUAL_CONTROL_URL", raising=False)
    monkeypatch.delenv("MUTUAL_DATA_ENGINE", raising=False)
    between = build(tmp_path / "a", tmp_path)
    with open_mutual(tmp_path / "a") as m:
        export(m, tmp_path / "export-a")
        before = m.store.observations(ObservationQuery(as_of=between)).to_pyarrow()
    with engine_env(middle if middle == "postgres" else "duckdb"), monkeypatch.context() as there:
        if middle == "postgres":  # both planes named by the settings, as a service would run
            there.setenv("MUTUAL_CONTROL_URL", os.environ["MUTUAL_DATA_URL"])
            there.setenv("MUTUAL_DATA_ENGINE", "postgres")
        engine = ["--engine", middle]  # the data plane named on the command line
        result = runner.invoke(app, ["import", str(tmp_path / "export-a"), "--home", str(tmp_path / "b"), *engine])
        assert result.exit_code == 0, result.output
        with open_mutual(tmp_path / "b", data_engine=middle) as m:
            assert m.store.engine == middle and not (tmp_path / "b" / "data.duckdb").exists()
            found = m.store.observations(ObservationQuery(as_of=between)).to_pyarrow()
            assert found.to_pylist() == before.to_pylist(), "what we knew then"
            assert [f.type for f in found.schema] == [f.type for f in before.schema]
        result = runner.invoke(app, ["export", str(tmp_path / "export-b"), "--home", str(tmp_path / "b"), *engine])
        assert result.exit_code == 0, result.output
    load(tmp_path / "export-b", tmp_path / "c")
    with open_mutual(tmp_path / "c") as m:
        export(m, tmp_path / "export-c")
    assert files(tmp_path / "export-a") == files(tmp_path / "export-b") == files(tmp_path / "export-c")
