"""Submissions: upload a file of any supported format and see every file sent, per trust; one submission's page
is its quality report, every issue with the line, field and reason.

Uploads go through the API's own intake (``api.submissions.accept_upload``: the file is spooled to the workspace
and ingested on a worker thread), so a page upload and an API upload make the same submission; trust submitters
send for their own trust and see only their own trust's files (``api.submissions.visible``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mutual.app import Mutual
from mutual.control.models import Submission
from mutual.ingest.specs import shipped_specs
from mutual.web.api.common import SUBMITTERS, Everyone, Submitter, rows, workspace
from mutual.web.api.overview import vintage_time
from mutual.web.api.submissions import SubmissionId, _by_rule, _submission, accept_upload, out, visible
from mutual.web.auth import Principal, Role, visible_orgs
from mutual.web.dashboard.common import Column
from mutual.web.dashboard.tables import Table
from mutual.web.errors import ApiError
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
ISSUES_PAGE_SIZE = 500
Status = Literal["received", "loaded", "rejected"]

HISTORY_COLUMNS: list[Column] = [
    ("id", "Submission", "text"), ("received_at", "Received", "date"), ("filename", "File", "text"),
    ("source_org", "Sent by", "text"), ("format", "Read as", "text"), ("status", "Status", "text"),
    ("values_read", "Values read", "count"), ("accepted", "Accepted", "count"), ("stored", "Stored", "count"),
    ("quarantined", "Quarantined", "count"), ("warnings", "Warnings", "count"), ("submitted_by", "By", "text")]
ISSUE_COLUMNS: list[Column] = [
    ("sheet", "Sheet", "text"), ("row_num", "Line", "text"), ("col", "Field", "text"), ("org", "Organisation", "text"),
    ("metric", "Metric", "text"), ("dims", "Dimensions", "text"), ("period", "Day", "text"),
    ("raw", "Value sent", "text"), ("severity", "Severity", "text"), ("rule", "Rule", "text"),
    ("message", "Reason", "text"), ("status", "Status", "text")]


def history(m: Mutual, principal: Principal) -> list[Submission]:
    """The submissions the user may see, newest first (the API's list, without its paging)."""
    scope = visible_orgs(principal, m)
    return [s for s in reversed(m.submissions()) if visible(m, principal, s, scope)]


def history_view(m: Mutual, principal: Principal, org: str | None, status: str | None,
                 page: int) -> dict[str, Any]:
    every = history(m, principal)
    found = [s for s in every if (org is None or s.source_org == org) and (status is None or s.status == status)]
    shown = [out(s) for s in found[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]]
    return {"as_of": vintage_time(m.store), "submissions": shown, "total": len(found), "page": page,
            "pages": max(1, -(-len(found) // PAGE_SIZE)), "org": org or "", "status": status or "",
            "senders": sorted({s.source_org for s in every if s.source_org}), "columns": HISTORY_COLUMNS,
            "can_upload": principal.role in SUBMITTERS, "specs": [s.name for s in shipped_specs()]}


def submissions_page(request: Request, principal: Principal, *, org: str | None = None, status: str | None = None,
                     page: int = 1, error: str | None = None, status_code: int = 200) -> Response:
    with workspace(request) as m:
        view = history_view(m, principal, org, status, page)
    return render(request, "submissions.html", {**view, "error": error}, status_code=status_code)


@router.get("/submissions")
def submissions(request: Request, principal: Everyone,
                org: Annotated[str | None, Query(max_length=20, description="Only this organisation's")] = None,
                status: Annotated[Status | None, Query()] = None,
                page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                format: Annotated[Literal["html", "csv"], Query()] = "html") -> Response:
    """The upload form (for those who submit) and the files the user may see, newest first, per sender."""
    org = (org or "").strip().upper() or None
    if format == "csv":
        with workspace(request) as m:
            found = [out(s) for s in history(m, principal)
                     if (org is None or s.source_org == org) and (status is None or s.status == status)]
        return Table("history", "Submissions", HISTORY_COLUMNS, found).download("submissions")
    return submissions_page(request, principal, org=org, status=status, page=page)


@router.post("/submissions")
async def upload(request: Request, principal: Submitter,
                 file: Annotated[UploadFile | None, File(description="The file, in any supported format")] = None,
                 spec: Annotated[str, Form(max_length=200)] = "",
                 org: Annotated[str, Form(max_length=20)] = "") -> Response:
    """Ingest the file, then show its quality report; a file rejected as a whole has a report too, saying why."""
    if file is None or not file.filename:
        return await run_in_threadpool(submissions_page, request, principal, status_code=422,
                                       error="Choose a file to upload.")
    try:
        _, body = await accept_upload(request, principal, file, spec or None, org or None)
    except ApiError as exc:
        if exc.code == "rejected" and isinstance(exc.details, dict) and "submission" in exc.details:
            return RedirectResponse(f"/submissions/{exc.details['submission']}", status_code=303)
        if exc.status >= 500:
            raise
        return await run_in_threadpool(submissions_page, request, principal, status_code=exc.status,
                                       error=exc.message)
    return RedirectResponse(f"/submissions/{body['id']}", status_code=303)


def report_view(m: Mutual, principal: Principal, submission_id: int, severity: str | None,
                page: int | None) -> dict[str, Any]:
    """A submission, its issues by rule, and its issues (one page of them, or all with ``page=None``)."""
    s = _submission(m, principal, submission_id)
    issues = m.store.issues(s.id)
    if severity is not None:
        issues = issues.filter(issues.severity == severity)
    total = int(issues.count().execute())
    if page is not None:
        issues = issues.limit(ISSUES_PAGE_SIZE, offset=(page - 1) * ISSUES_PAGE_SIZE)
    return {"as_of": vintage_time(m.store), "s": out(s), "by_rule": _by_rule(m, s.id),
            "issues": rows(issues.to_pyarrow()), "total": total, "page": page or 1,
            "pages": max(1, -(-total // ISSUES_PAGE_SIZE)), "severity": severity or "", "columns": ISSUE_COLUMNS,
            "own_trust": principal.role == Role.TRUST_SUBMITTER}


@router.get("/submissions/{submission_id}")
def submission(request: Request, submission_id: SubmissionId, principal: Everyone,
               severity: Annotated[Literal["error", "warning"] | None, Query()] = None,
               page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
               format: Annotated[Literal["html", "csv"], Query()] = "html") -> Response:
    """A submission's counts and its quality report (CSV: every issue)."""
    with workspace(request) as m:
        view = report_view(m, principal, submission_id, severity, None if format == "csv" else page)
    if format == "csv":
        return Table("quality", f"Quality report of submission {submission_id}", ISSUE_COLUMNS,
                     view["issues"]).download(f"submission-{submission_id}")
    return render(request, "submission.html", view)
