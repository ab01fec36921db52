"""The national overview (``/``): headline figures with their trend over a week, open alerts and the trusts
under most pressure. The same snapshot as ``GET /api/v1/overview``, computed once per data vintage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from mutual.web.accounts import Role
from mutual.web.api.common import Everyone, workspace
from mutual.web.api.overview import overview_cache, snapshot, view
from mutual.web.auth import visible_orgs
from mutual.web.caching import current_vintage
from mutual.web.dashboard.common import Column, csv_response
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

HEADLINE_COLUMNS: list[Column] = [("label", "Measure", "text"), ("value", "Latest", "number"),
                                  ("previous", "A week before", "number"), ("day", "Day", "date"),
                                  ("trusts", "Trusts", "count")]
ALERT_COLUMNS: list[Column] = [("severity", "Severity", "text"), ("org", "Trust", "text"),
                               ("name", "Name", "text"), ("what", "Alert", "text"), ("value", "Value", "decimal"),
                               ("since", "Since", "date")]
PRESSURE_COLUMNS: list[Column] = [("org", "Trust", "text"), ("name", "Name", "text"),
                                  ("occupancy", "G&A occupancy", "fraction"), ("period", "Day", "date"),
                                  ("quality", "Data quality", "text")]


@router.get("/")
def overview_page(request: Request, principal: Everyone,
                  format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    """Headline figures (CSV: ``?format=csv``), open alerts and the most pressured trusts. A trust's data team
    starts from its own submissions instead."""
    if principal.role == Role.TRUST_SUBMITTER:
        return RedirectResponse("/submissions", status_code=303)
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        data: dict[str, Any] = view(overview_cache(request).get(current_vintage(request), lambda: snapshot(m)), scope)
    if format == "csv":
        return csv_response(data["headline"], HEADLINE_COLUMNS, "overview-headline.csv")
    return render(request, "overview.html", {**data, "headline_columns": HEADLINE_COLUMNS,
                                             "alert_columns": ALERT_COLUMNS, "pressure_columns": PRESSURE_COLUMNS})
