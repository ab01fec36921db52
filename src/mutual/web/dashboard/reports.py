"""Public pages, no sign-in: the annual value reports (``/reports/{org}/{year}``, as HTML, CSV or PDF) and the
access register (``/register``: every release of data to a partner, by month)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from mutual.governance.report import ReportError, access_register, annual_report, to_csv, to_pdf
from mutual.web.api.common import workspace
from mutual.web.errors import ApiError
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/reports/{org}/{year}")
def report_page(request: Request, org: Annotated[str, Path(max_length=20)],
                year: Annotated[int, Path(ge=2000, le=2100)],
                format: Annotated[str, Query(pattern="^(html|csv|pdf)$")] = "html") -> Response:
    """What ``org``'s data was shared for in ``year``: every agreement, releases, refusals, what came back."""
    with workspace(request) as m:
        try:
            report = annual_report(m.sessions, m.orgs(), org, year)
        except ReportError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
    name = f"mutual-report-{report.org}-{year}"
    if format == "csv":
        return Response(to_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if format == "pdf":
        return Response(to_pdf(report), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return render(request, "report.html", {"r": report})


@router.get("/register")
def register_page(request: Request) -> Response:
    """Who received data, for what purpose, how often: every release through the policy gate, by month."""
    with workspace(request) as m:
        rows = access_register(m.sessions)
    return render(request, "register.html", {"rows": rows})
