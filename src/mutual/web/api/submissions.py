"""Submissions: upload a file of any supported format (the same ingest as ``mutual ingest``), its status, and
its quality report. Trust submitters send only for their own trust and see only their own submissions.

An upload is written to the workspace's ``tmp/`` under its own name (the NDJSON reader looks at the name), then
ingested in a worker thread, so the server keeps answering while a large file is checked and stored."""

from __future__ import annotations

import hashlib
import re
import tempfile
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mutual.app import Mutual
from mutual.control.models import Submission
from mutual.ingest.specs import shipped_specs
from mutual.store.intake import IngestError
from mutual.web.api.common import (
    Everyone,
    Page,
    PagingDep,
    Submitter,
    Timestamp,
    check_known_org,
    error_doc,
    page_dict,
    page_of,
    rows,
    workspace,
    writing,
)
from mutual.web.auth import Principal, Role, visible_orgs
from mutual.web.deps import get_mutual
from mutual.web.errors import ApiError

router = APIRouter(tags=["submissions"])

CHUNK = 1 << 20  # the body's size is limited before it gets here (``web.deps.WebSettings.max_body_bytes``)
SubmissionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Submission id")]


class Links(BaseModel):
    self: str = Field(examples=["/api/v1/submissions/12"])
    quality: str = Field(examples=["/api/v1/submissions/12/quality"])


class SubmissionOut(BaseModel):
    """One file a trust sent: what it was, who sent it, when, and what became of its values."""

    id: int
    filename: str
    size_bytes: int
    format: str | None = Field(description="The spec or reader that read it")
    source_org: str | None
    received_at: Timestamp
    submitted_by: str
    status: Literal["received", "loaded", "rejected"]
    rows_read: int
    values_read: int = Field(description="= accepted + quarantined")
    accepted: int
    stored: int = Field(description="Accepted values new or changed")
    quarantined: int
    warnings: int
    missing: int
    error: str | None = Field(description="Why the file was rejected as a whole")
    finished_at: Timestamp | None
    links: Links


class RuleCount(BaseModel):
    severity: str
    rule: str
    n: int
    example: str | None


class SubmissionDetail(SubmissionOut):
    already: bool = Field(False, description="The same file was ingested before: nothing changed")
    by_rule: list[RuleCount]


class Issue(BaseModel):
    """One quality issue, where it is in the file and what to fix; ``raw`` keeps the value as sent."""

    sheet: str | None
    row_num: int | None
    col: str | None
    org: str | None
    metric: str | None
    dims: str | None
    period: str | None
    raw: str | None
    rule: str
    severity: Literal["error", "warning"] | str
    message: str
    status: str = Field(examples=["open", "corrected", "released"])


class QualityPage(Page[Issue]):
    submission: SubmissionOut
    by_rule: list[RuleCount]


def out(s: Submission) -> dict[str, Any]:
    fields = [f for f in SubmissionOut.model_fields if f != "links"]
    return {**{f: getattr(s, f) for f in fields},
            "links": {"self": f"/api/v1/submissions/{s.id}", "quality": f"/api/v1/submissions/{s.id}/quality"}}


def visible(m: Mutual, principal: Principal, s: Submission, scope: set[str] | None) -> bool:
    """A trust submitter sees what its trust sent; a regional analyst what its organisations sent or what
    reported for them; everyone else everything."""
    if scope is None:
        return True
    if principal.role == Role.TRUST_SUBMITTER:
        return s.source_org is not None and s.source_org == principal.org
    if s.source_org is not None:
        return s.source_org in scope
    return bool(m.store.submission_orgs(s.id) & scope)


def _submission(m: Mutual, principal: Principal, submission_id: int) -> Submission:
    s = m.submission(submission_id)
    if not visible(m, principal, s, visible_orgs(principal, m)):
        raise ApiError(404, "not_found", f"no submission {submission_id} among those you may see",
                       {"submission": submission_id})
    return s


def _by_rule(m: Mutual, submission_id: int) -> list[dict[str, Any]]:
    return rows(m.store.issue_summary(submission_id).to_pyarrow())


@router.get("/submissions", response_model=Page[SubmissionOut], summary="Submissions, newest first")
def submissions(request: Request, p: PagingDep, principal: Everyone,
                org: Annotated[str | None, Query(description="Only this organisation's")] = None,
                status: Annotated[Literal["received", "loaded", "rejected"] | None, Query()] = None,
                since: Annotated[date | None, Query(description="Received on or after this day")] = None) -> Any:
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        found = [s for s in reversed(m.submissions())
                 if (org is None or s.source_org == org) and (status is None or s.status == status)
                 and (since is None or s.received_at.date() >= since) and visible(m, principal, s, scope)]
    return page_of(request, p, [out(s) for s in found])


@router.get("/submissions/{submission_id}", response_model=SubmissionDetail,
            summary="One submission: status, counts and issues by rule")
def submission(request: Request, submission_id: SubmissionId,
               principal: Everyone) -> Any:
    with workspace(request) as m:
        s = _submission(m, principal, submission_id)
        return {**out(s), "by_rule": _by_rule(m, s.id)}


@router.get("/submissions/{submission_id}/quality", response_model=QualityPage,
            summary="The quality report: every issue with where it is in the file and what to fix")
def quality(request: Request, p: PagingDep, submission_id: SubmissionId,
            principal: Everyone,
            severity: Annotated[Literal["error", "warning"] | None, Query()] = None) -> Any:
    with workspace(request) as m:
        s = _submission(m, principal, submission_id)
        issues = m.store.issues(s.id)
        if severity is not None:
            issues = issues.filter(issues.severity == severity)
        total = int(issues.count().execute())
        items = rows(issues.limit(p.page_size, offset=p.offset).to_pyarrow())
        by_rule = _by_rule(m, s.id)
    return {**page_dict(request, p, items, total), "submission": out(s), "by_rule": by_rule}


SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_filename(name: str | None) -> str:
    """The client's file name without any path, reduced to plain characters (it names the submission)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = SAFE_NAME.sub("_", base).strip(" .")[:200]
    return base or "upload"


def _ingest(request: Request, principal: Principal, path: FilePath, sha256: str, spec: str | None,
            org: str | None) -> tuple[int, dict[str, Any]]:
    with workspace(request) as m:
        check_known_org(org, m)
        try:
            with writing(request):
                result = m.ingest(path, spec=spec, org=org, submitted_by=principal.username)
        except IngestError as exc:
            rejected = next((s for s in m.submissions() if s.sha256 == sha256), None)
            details = {"submission": rejected.id, "links": out(rejected)["links"]} if rejected else None
            raise ApiError(422, "rejected", str(exc), details) from None
        s = result.submission
        return (200 if result.already else 201), {**out(s), "already": result.already, "by_rule": _by_rule(m, s.id)}


@router.post("/submissions", response_model=SubmissionDetail, status_code=201,
             responses={200: {"model": SubmissionDetail, "description": "The same file was already ingested"},
                        413: error_doc("The file is larger than the upload limit"),
                        422: error_doc("The file was rejected as a whole (details name its submission), or a "
                                       "parameter is wrong")},
             summary="Upload a file (CSV, XLSX, sitrep workbook, FHIR, DHIS2): checked and stored as one submission")
async def upload(request: Request, response: Response,
                 principal: Submitter,
                 file: Annotated[UploadFile, File(description="The file, in any supported format")],
                 spec: Annotated[str | None, Form(description="Mapping spec name (default: detected)")] = None,
                 org: Annotated[str | None, Form(description="The organisation that sent it")] = None) -> Any:
    status, body = await accept_upload(request, principal, file, spec, org)
    response.status_code = status
    response.headers["Location"] = body["links"]["self"]
    return body


async def accept_upload(request: Request, principal: Principal, file: UploadFile, spec: str | None,
                        org: str | None) -> tuple[int, dict[str, Any]]:
    """Check the upload's parameters, write it to the workspace's ``tmp/`` and ingest it on a worker thread (the
    server keeps answering meanwhile); the submission as the API shows it. The upload page calls this too."""
    spec = spec or None
    org = (org or "").strip().upper() or None
    if spec is not None and spec not in {s.name for s in shipped_specs()}:
        raise ApiError(422, "invalid_request", f"spec {spec!r} is not a shipped spec (see /api/v1/catalogue)",
                       {"parameter": "spec", "value": spec})
    if principal.role == Role.TRUST_SUBMITTER:
        if org is not None and org != principal.org:
            raise ApiError(403, "forbidden", f"you submit for {principal.org}, not {org}",
                           {"org": org, "yours": principal.org})
        org = principal.org
    tmp_dir = get_mutual(request).workspace.tmp_dir
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="upload-") as folder:
        path = FilePath(folder) / safe_filename(file.filename)
        digest = hashlib.sha256()
        with path.open("wb") as f:
            while chunk := await file.read(CHUNK):
                digest.update(chunk)
                f.write(chunk)
        return await run_in_threadpool(_ingest, request, principal, path, digest.hexdigest(), spec, org)
