"""Take in one file: archive it, record the submission, stage, check and load its values, all or nothing.

The control plane (submission rows) and the data plane (observations) are two databases, so a submission is
committed in three steps, each safe to interrupt:
1. the archived file and a ``received`` submission row;
2. the data-plane transaction that stores the values *and* a load-log row naming the submission;
3. the submission row marked ``loaded`` with its counts.
Re-running after a crash finds the ``received`` row: if the load log has it, step 3 is finished from there;
if not, the values were never committed and the load runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutual.catalog import load_catalog
from mutual.control.models import Submission, SubmissionStatus
from mutual.ingest import rules
from mutual.ingest.csv_stage import EmptyFileError, read_header, stage_csv
from mutual.ingest.rawfile import archive, text_copy
from mutual.ingest.specs import SpecError, detect_spec, find_spec, plan_columns
from mutual.store.duckdb_store import DuckStore, LoadRecord

Progress = Callable[[str], None]


class IngestError(ValueError):
    """A file rejected as a whole (its layout does not match, it is empty, ...). The submission is recorded
    as rejected with this message; the archived bytes are kept."""


@dataclass(frozen=True)
class IngestResult:
    submission: Submission
    already: bool = False
    resumed: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _finish(session: Session, sub: Submission, record: LoadRecord) -> None:
    sub.status = SubmissionStatus.LOADED
    for field in ("rows_read", "values_read", "accepted", "stored", "quarantined", "warnings", "missing"):
        setattr(sub, field, getattr(record, field))
    sub.error = None
    sub.finished_at = utcnow()
    session.commit()


def ingest_file(sessions: sessionmaker[Session], store: DuckStore, archive_dir: Path, tmp_dir: Path,
                path: Path, *, spec_name: str | None = None, org: str | None = None,
                received_at: datetime | None = None, submitted_by: str = "cli",
                progress: Progress = lambda _: None) -> IngestResult:
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    progress("archiving")
    raw = archive(path, archive_dir)
    with sessions() as session:
        sub = session.scalars(select(Submission).where(Submission.sha256 == raw.sha256)).one_or_none()
        if sub is not None and sub.status == SubmissionStatus.LOADED:
            return IngestResult(sub, already=True)
        if sub is not None and sub.status == SubmissionStatus.RECEIVED:
            record = store.loaded(sub.id)
            if record is not None:
                _finish(session, sub, record)
                return IngestResult(sub, resumed=True)
        if sub is None:
            sub = Submission(sha256=raw.sha256, filename=path.name, size_bytes=raw.size, submitted_by=submitted_by,
                             received_at=received_at or utcnow(), status=SubmissionStatus.RECEIVED,
                             options={}, rows_read=0, values_read=0, accepted=0, stored=0, quarantined=0,
                             warnings=0, missing=0)
            session.add(sub)
        else:
            sub.status = SubmissionStatus.RECEIVED
            if received_at is not None:
                sub.received_at = received_at
        sub.source_org = org
        sub.options = {"spec": spec_name, "org": org}
        sub.catalog_version = load_catalog().version
        session.commit()
        try:
            record = _load(store, raw, sub, spec_name, org, tmp_dir, progress)
        except (SpecError, EmptyFileError) as exc:
            sub.status = SubmissionStatus.REJECTED
            sub.error = str(exc)
            sub.finished_at = utcnow()
            session.commit()
            raise IngestError(f"{path.name}: {exc}") from exc
        finally:
            store.drop_staging()
        _finish(session, sub, record)
        return IngestResult(sub)


def _load(store: DuckStore, raw, sub: Submission, spec_name: str | None, org: str | None,  # type: ignore[no-untyped-def]
          tmp_dir: Path, progress: Progress) -> LoadRecord:
    catalog = load_catalog()
    text_path = text_copy(raw, tmp_dir)
    try:
        header = read_header(str(text_path))
        spec = find_spec(spec_name) if spec_name else detect_spec(header)
        sub.format = spec.name
        plan = plan_columns(spec, header, org_given=org is not None)
        orgs = store.orgs()
        if org is not None and org not in {o.code for o in orgs}:
            raise SpecError(f"--org {org} is not a known organisation (see `mutual orgs list`)")
        con = store.con
        progress("reading")
        rules.reference_tables(con, catalog, orgs, spec)
        staged = stage_csv(con, str(text_path), raw, plan, org)
        progress("checking")
        counts = rules.check(con, spec, catalog, orgs, sub.received_at.date(), staged.rows_read)
        store.stage_history()
        rules.history_issues(con)
        file_issues = [("unmapped_column", f"column {h!r} is not mapped by spec {spec.name}; its values were "
                        "not read (they stay in the archived file)") for h in plan.unmapped]
        if not raw.utf8:
            file_issues.append(("encoding", f"the file is not valid UTF-8 (first bad byte at offset "
                                f"{raw.first_bad_byte}); unreadable characters were replaced"))
        for rule, message in file_issues:
            con.execute("INSERT INTO issues VALUES (1, NULL, NULL, NULL, NULL, NULL, NULL, ?, 'warning', ?)",
                        [rule, message])
        counts.warnings = con.execute("SELECT count(*) FROM issues WHERE severity = 'warning'").fetchone()[0]  # type: ignore[index]
        progress("storing")
        return store.load(sub.id, sub.received_at, {
            "rows_read": counts.rows_read, "values_read": counts.values_read, "accepted": counts.accepted,
            "quarantined": counts.quarantined, "warnings": counts.warnings, "missing": counts.missing})
    finally:
        if text_path != raw.path:
            text_path.unlink(missing_ok=True)
