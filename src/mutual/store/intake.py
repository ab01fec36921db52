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
from mutual.ingest import formats, rules
from mutual.ingest.cells import ReadContext, ReadError
from mutual.ingest.csv_stage import HeaderError
from mutual.ingest.rawfile import RawFile, archive
from mutual.ingest.specs import SpecError
from mutual.store.base import LoadRecord, Store

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


def ingest_file(sessions: sessionmaker[Session], store: Store, archive_dir: Path, tmp_dir: Path,
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
            record = _load(session, store, raw, sub, spec_name, org, tmp_dir, progress)
        except (SpecError, HeaderError, ReadError) as exc:
            sub.status = SubmissionStatus.REJECTED
            sub.error = str(exc)
            sub.finished_at = utcnow()
            session.commit()
            raise IngestError(f"{path.name}: {exc}") from exc
        finally:
            store.drop_staging()
        _finish(session, sub, record)
        return IngestResult(sub)


def _load(session: Session, store: Store, raw: RawFile, sub: Submission, spec_name: str | None,
          org: str | None, tmp_dir: Path, progress: Progress) -> LoadRecord:
    catalog = load_catalog()
    orgs = store.orgs()
    if org is not None and org not in {o.code for o in orgs}:
        raise SpecError(f"--org {org} is not a known organisation (see `mutual orgs list`)")
    con = store.work
    progress("reading")
    ctx = ReadContext(raw=raw, filename=sub.filename, spec_name=spec_name, org=org, catalog=catalog,
                      orgs=tuple(orgs), tmp_dir=tmp_dir)
    staged = formats.stage(con, ctx)
    sub.format = staged.spec.name
    session.commit()  # the format is known before the values are stored, so a resumed run still has it
    progress("checking")
    rules.reference_tables(con, catalog, orgs, staged.spec)
    counts = rules.check(con, staged.spec, catalog, orgs, sub.received_at.date(), staged.rows_read)
    store.stage_history()
    rules.history_issues(con)
    for rule, message in staged.file_issues:
        con.execute("INSERT INTO issues VALUES (NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, ?, 'warning', ?)",
                    [rule, message])
    counts.warnings = con.execute("SELECT count(*) FROM issues WHERE severity = 'warning'").fetchone()[0]  # type: ignore[index]
    progress("storing")
    return store.load(sub.id, sub.received_at, {
        "rows_read": counts.rows_read, "values_read": counts.values_read, "accepted": counts.accepted,
        "quarantined": counts.quarantined, "warnings": counts.warnings, "missing": counts.missing})
