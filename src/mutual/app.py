"""One open workspace: its control plane, data plane and archive. The CLI and the web call this."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mutual.catalog.orgs import Org, merge_orgs, read_org_file, reference_orgs, reference_successors
from mutual.control import db
from mutual.control.models import Submission
from mutual.governance import audit
from mutual.store.base import Store
from mutual.store.duckdb_store import DuckStore
from mutual.store.intake import IngestResult, Progress, ingest_file, utcnow
from mutual.store.schema import EPISODE_COLUMNS
from mutual.workspace import Workspace


class WorkspaceError(ValueError):
    pass


def open_store(workspace: Workspace, *, read_only: bool = False) -> Store:
    """The workspace's data plane on the engine the settings name."""
    if workspace.data_engine == "postgres" and workspace.data_url:
        import psycopg

        from mutual.store.postgres_store import PgStore

        try:
            return PgStore(workspace.data_url, workspace.tmp_dir, read_only=read_only)
        except psycopg.OperationalError as exc:
            where = make_url(workspace.data_url).render_as_string(hide_password=True)
            raise WorkspaceError(f"cannot open the data plane at {where}: {str(exc).strip().splitlines()[0]}"
                                 ) from None
    if workspace.data_engine == "spark" and workspace.data_url:
        from mutual.store.warehouse_store import WarehouseStore

        try:
            return WarehouseStore(Path(workspace.data_url), workspace.tmp_dir, read_only=read_only)
        except (OSError, duckdb.Error) as exc:
            raise WorkspaceError(f"cannot open the Spark warehouse at {workspace.data_url}: {exc}") from None
    try:
        return DuckStore(workspace.data_path, workspace.tmp_dir, read_only=read_only)
    except duckdb.IOException as exc:
        raise WorkspaceError(f"{workspace.data_path} is in use by another process ({exc})") from exc


class Mutual:
    def __init__(self, workspace: Workspace, *, create: bool = False, read_only: bool = False) -> None:
        if not workspace.exists and not create:
            raise WorkspaceError(f"no workspace at {workspace.home}: run `mutual init` (or pass --home DIR)")
        workspace.create()
        self.workspace = workspace
        self.engine = db.connect(workspace.control_url)
        try:
            db.upgrade(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            where = self.engine.url.render_as_string(hide_password=True)
            raise WorkspaceError(f"cannot open the control plane at {where}: {str(exc.orig).strip()}") from None
        self.sessions: sessionmaker[Session] = db.session_factory(self.engine)
        try:
            self.store = open_store(workspace, read_only=read_only)
        except WorkspaceError:
            self.engine.dispose()
            raise
        if create and not self.store.orgs():
            self.store.replace_orgs(merge_orgs([], reference_orgs()))

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()

    # -- organisations --------------------------------------------------------------------------------------

    def import_orgs(self, path: Path) -> tuple[str, int]:
        layout, orgs, successors = read_org_file(path)
        merged = merge_orgs(self.store.orgs() or list(reference_orgs()), orgs,
                            [*reference_successors(), *successors])
        self.store.replace_orgs(merged)
        return layout, len(orgs) + len(successors)

    def orgs(self) -> list[Org]:
        return self.store.orgs()

    # -- submissions ----------------------------------------------------------------------------------------

    def ingest(self, path: Path, *, spec: str | None = None, org: str | None = None,
               received_at: datetime | None = None, submitted_by: str = "cli",
               progress: Progress = lambda _: None) -> IngestResult:
        return ingest_file(self.sessions, self.store, self.workspace.archive_dir, self.workspace.tmp_dir, path,
                           spec_name=spec, org=org, received_at=received_at, submitted_by=submitted_by,
                           progress=progress)

    def release(self, submission_id: int, line: int, column: str | None, sheet: str | None = None) -> tuple[str, float]:
        self.submission(submission_id)
        return self.store.release(submission_id, line, column, utcnow(), sheet)

    def submissions(self) -> list[Submission]:
        with self.sessions() as s:
            return list(s.scalars(select(Submission).order_by(Submission.id)))

    def submission(self, submission_id: int) -> Submission:
        with self.sessions() as s:
            sub = s.get(Submission, submission_id)
        if sub is None:
            raise WorkspaceError(f"no submission {submission_id} (see `mutual submissions`)")
        return sub

    # -- record-level data (it leaves only through ``governance.gate``) -----------------------------------------

    def replace_optouts(self, numbers: pa.Array, *, by: str, source: str, invalid: int = 0) -> int:
        """The national data opt-out list becomes ``numbers`` (a full snapshot), and the audit log says so."""
        now = utcnow()
        rows = pa.table({"nhs_number": numbers.cast(pa.int64()),
                         "imported_at": pa.array([now] * len(numbers), pa.timestamp("us"))})
        self.store.append("optout", rows, replace_where="true")
        with self.sessions.begin() as s:
            audit.append(s, actor=by, action="optouts.import", object_type="optout_list", object_id=source,
                         details={"patients": len(numbers), "invalid_lines": invalid})
        return len(numbers)

    def replace_episodes(self, episodes: pa.Table, *, by: str, source: str) -> int:
        """The workspace's admitted-patient-care episodes become ``episodes`` (every column of
        ``schema.EPISODE_COLUMNS``), and the audit log says how many (never a value)."""
        missing = [name for name, _ in EPISODE_COLUMNS if name not in episodes.column_names]
        if missing:
            raise WorkspaceError(f"{source}: episodes need the column(s) {', '.join(missing)}")
        self.store.append("apc_episode", episodes.select([name for name, _ in EPISODE_COLUMNS]),
                          replace_where="true")
        with self.sessions.begin() as s:
            audit.append(s, actor=by, action="episodes.load", object_type="dataset", object_id="apc_episodes",
                         details={"episodes": episodes.num_rows, "source": source})
        return episodes.num_rows


@contextmanager
def open_mutual(home: Path | None, *, create: bool = False, read_only: bool = False,
                data_engine: str | None = None) -> Iterator[Mutual]:
    m = Mutual(Workspace.at(home, data_engine), create=create, read_only=read_only)
    try:
        yield m
    finally:
        m.close()
