"""Data quality: which trusts reported each collection day and how late (``analytics.completeness``), the values
held in quarantine with the reasons, and the two ways out of quarantine.

- **Release** (analysts): the value was right after all; ``Mutual.release``, the same as ``mutual release``.
- **Correct** (submitters): send the right value. It is one more submission through the same ingest as an upload
  (a one-line file in Mutual's long layout), so it is checked by every rule, and once stored the quarantined
  value's issue is ``corrected``.
"""

from __future__ import annotations

import csv
import functools
import io
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mutual.analytics.alerts import decode_dims
from mutual.analytics.completeness import completeness
from mutual.app import Mutual
from mutual.catalog import load_catalog
from mutual.ingest.specs import Spec, find_spec
from mutual.web.api.common import (
    ANALYSTS,
    SUBMITTERS,
    Analysts,
    Everyone,
    Submitter,
    check_days,
    check_metric,
    in_scope,
    workspace,
    writing,
)
from mutual.web.api.overview import vintage_time
from mutual.web.api.submissions import accept_upload
from mutual.web.auth import Principal, Role, visible_orgs
from mutual.web.dashboard.common import Column
from mutual.web.dashboard.tables import Table, latest_day, pick
from mutual.web.errors import ApiError
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

GRID_DAYS = 14
SHOWN_CELLS = 200  # quarantined values listed on the page; the CSV has them all
CORRECTION_SPEC = "mutual-long"

# -- the completeness grid -------------------------------------------------------------------------------------

GRID_COLUMNS: list[Column] = [
    ("org", "Trust", "text"), ("name", "Name", "text"), ("day", "Day", "date"), ("status", "Status", "text"),
    ("expected", "Metrics expected", "count"), ("received", "Received", "count"), ("on_time", "On time", "count"),
    ("late_hours", "Latest arrival, hours late", "decimal"), ("missing_streak", "Longest missing streak", "count"),
    ("quarantined", "Values quarantined", "count")]


def cell_status(expected: int, received: int, on_time: int) -> str:
    """``missing`` (nothing), ``partial`` (some metrics), ``late`` (all, some after the deadline), ``on-time``."""
    if received == 0:
        return "missing"
    if received < expected:
        return "partial"
    return "on-time" if on_time == received else "late"


def cell_text(c: dict[str, Any]) -> str:
    if c["status"] == "missing":
        return "missing"
    if c["status"] == "partial":
        return f"{c['received']} of {c['expected']}"
    return "on time" if c["status"] == "on-time" else f"late {c['late_hours']:.0f}h"


def grid_cells(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completeness rows (trust × metric × day) folded into one cell per trust and day."""
    cells: dict[tuple[str, date], dict[str, Any]] = {}
    for r in rows:
        c = cells.setdefault((r["org"], r["day"]), {
            "org": r["org"], "name": r["name"], "day": r["day"], "expected": 0, "received": 0, "on_time": 0,
            "late_hours": None, "missing_streak": 0, "quarantined": 0})
        c["expected"] += 1
        c["received"] += bool(r["received"])
        c["on_time"] += bool(r["received"]) and (r["late_hours"] or 0) <= 0
        if r["late_hours"] is not None:
            c["late_hours"] = max(c["late_hours"] or 0.0, r["late_hours"])
        c["missing_streak"] = max(c["missing_streak"], r["missing_streak"] or 0)
        c["quarantined"] += r["quarantined"] or 0
    out = sorted(cells.values(), key=lambda c: (c["name"] or c["org"], c["org"], c["day"]))
    for c in out:
        c["status"] = cell_status(c["expected"], c["received"], c["on_time"])
        c["text"] = cell_text(c)
    return out


def grid(cells: list[dict[str, Any]]) -> tuple[list[date], list[dict[str, Any]]]:
    """The collection days, and per trust its cells by day (a trust not expected on a day has no cell)."""
    days = sorted({c["day"] for c in cells})
    trusts: dict[str, dict[str, Any]] = {}
    for c in cells:
        trusts.setdefault(c["org"], {"org": c["org"], "name": c["name"], "cells": {}})["cells"][c["day"]] = c
    return days, list(trusts.values())


# -- quarantined values ----------------------------------------------------------------------------------------

QUARANTINE_COLUMNS: list[Column] = [
    ("submission_id", "Submission", "text"), ("sheet", "Sheet", "text"), ("row_num", "Line", "text"),
    ("col", "Field", "text"), ("org", "Organisation", "text"), ("metric", "Metric", "text"),
    ("dims", "Dimensions", "text"), ("period", "Day", "text"), ("raw", "Value sent", "text"),
    ("reasons", "Why it is held", "text")]


def _visible_issues(m: Mutual, principal: Principal, scope: set[str] | None) -> Any:
    """Open quarantined values (errors) the user may see: about their organisations, or in files they sent."""
    t = m.store.ibis.table("quality_issue")
    t = t.filter(t.severity == "error", t.status == "open")
    if scope is None:
        return t
    sent = [s.id for s in m.submissions() if s.source_org is not None and s.source_org in scope
            and (principal.role != Role.TRUST_SUBMITTER or s.source_org == principal.org)]
    mine = t.org.isin(sorted(scope))
    return t.filter(mine | t.submission_id.isin(sent) if sent else mine)


def quarantined(m: Mutual, principal: Principal, scope: set[str] | None,
                limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """One row per quarantined cell (a cell can break several rules), newest submission first; and how many."""
    t = _visible_issues(m, principal, scope)
    keys = ["submission_id", "sheet", "row_num", "col", "org", "metric", "dims", "period", "raw"]
    cells = t.group_by(keys).aggregate(reasons=t.message.group_concat("; "))
    total = int(cells.count().execute())
    cells = cells.order_by([cells.submission_id.desc(), cells.sheet, cells.row_num, cells.col])
    if limit is not None:
        cells = cells.limit(limit)
    return cells.to_pyarrow().to_pylist(), total


def find_cell(m: Mutual, principal: Principal, scope: set[str] | None, submission_id: int, line: int,
              column: str | None, sheet: str | None) -> dict[str, Any]:
    """The quarantined cell a release or correction names, if the user may see it; 404 otherwise."""
    t = _visible_issues(m, principal, scope)
    t = t.filter(t.submission_id == submission_id, t.row_num == line,
                 t.col.isnull() if column is None else t.col == column)
    if sheet is not None:
        t = t.filter(t.sheet == sheet)
    found = t.select("submission_id", "sheet", "row_num", "col", "org", "metric", "dims", "period", "raw").limit(1)
    rows = found.to_pyarrow().to_pylist()
    if not rows:
        where = f"submission {submission_id}, line {line}" + (f", field {column!r}" if column else "")
        raise ApiError(404, "not_found", f"no open quarantined value at {where} among those you may see",
                       {"submission": submission_id, "line": line, "column": column})
    return rows[0]


def can_release(principal: Principal, cell: dict[str, Any]) -> bool:
    return principal.role in ANALYSTS and None not in (cell["org"], cell["metric"], cell["period"], cell["dims"])


def can_correct(principal: Principal, cell: dict[str, Any]) -> bool:
    """A trust corrects its own values; the correction must be expressible in the long layout."""
    if principal.role not in SUBMITTERS or None in (cell["org"], cell["metric"], cell["period"], cell["dims"]):
        return False
    if principal.role == Role.TRUST_SUBMITTER and cell["org"] != principal.org:
        return False
    long = correction_spec().long
    return long is not None and set(decode_dims(cell["dims"])) <= set(long.dims_columns)


@functools.cache
def correction_spec() -> Spec:
    return find_spec(CORRECTION_SPEC)


def correction_file(cell: dict[str, Any], value: str) -> bytes:
    """A one-line file in Mutual's long layout carrying the corrected value of ``cell``."""
    spec = correction_spec()
    assert spec.long is not None and spec.org.column is not None
    dims = decode_dims(cell["dims"])
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow([spec.org.column, spec.long.metric_column, spec.period.column, spec.long.value_column,
                     *(spec.long.dims_columns[d] for d in dims)])
    writer.writerow([cell["org"], cell["metric"], cell["period"], value, *dims.values()])
    return sink.getvalue().encode()


# -- the page --------------------------------------------------------------------------------------------------


def quality_view(m: Mutual, principal: Principal, to: date | None, days: int, metric: str | None,
                 limit: int | None = SHOWN_CELLS) -> dict[str, Any]:
    scope = visible_orgs(principal, m)
    end = to or latest_day(m.store) or date.today()
    start = end - timedelta(days=days - 1)
    rows = [r for r in completeness(m.store, start, end, metric=metric).to_pylist() if in_scope(r["org"], scope)]
    cells = grid_cells(rows)
    grid_days, trusts = grid(cells)
    held, total = quarantined(m, principal, scope, limit)
    for c in held:
        c["can_release"] = can_release(principal, c)
        c["can_correct"] = can_correct(principal, c)
    return {"as_of": vintage_time(m.store), "start": start, "end": end, "days": days, "metric": metric or "",
            "grid_days": grid_days, "trusts": trusts, "held": held, "held_total": total,
            "tables": [Table("grid", "Completeness and timeliness per trust and day", GRID_COLUMNS, cells),
                       Table("quarantined", "Quarantined values", QUARANTINE_COLUMNS, held)],
            "metrics": [(mt.code, mt.label) for mt in load_catalog().metrics]}


def page(request: Request, principal: Principal, *, to: date | None = None, days: int = GRID_DAYS,
         metric: str | None = None, done: str | None = None, error: str | None = None,
         status_code: int = 200) -> Response:
    with workspace(request) as m:
        view = quality_view(m, principal, to, days, metric)
    return render(request, "quality.html", {**view, "done": done, "error": error}, status_code=status_code)


@router.get("/quality")
def quality_page(request: Request, principal: Everyone,
                 to: Annotated[date | None, Query(description="Last day (default: the latest with data)")] = None,
                 days: Annotated[int, Query(ge=1, le=62, description="Days shown")] = GRID_DAYS,
                 metric: Annotated[str | None, Query(description="Only this metric")] = None,
                 done: Annotated[Literal["released"] | None, Query()] = None,
                 format: Annotated[Literal["html", "csv"], Query()] = "html",
                 table: Annotated[str | None, Query()] = None) -> Response:
    metric = metric or None
    check_metric(metric)
    check_days(to=to)
    if format == "csv":
        with workspace(request) as m:
            view = quality_view(m, principal, to, days, metric, limit=None)
        return pick(view["tables"], table).download("quality")
    return page(request, principal, to=to, days=days, metric=metric, done=done)


CellForm = Annotated[int, Form(ge=1, le=2**31 - 1)]


def _text(value: str) -> str | None:
    return value.strip() or None


@router.post("/quality/release")
def release(request: Request, principal: Analysts, submission_id: CellForm,
            line: Annotated[int, Form(ge=0, le=2**31 - 1)], column: Annotated[str, Form(max_length=500)] = "",
            sheet: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Accept a quarantined value after all (an analyst confirmed it): ``mutual release``."""
    with workspace(request) as m:
        find_cell(m, principal, visible_orgs(principal, m), submission_id, line, _text(column), _text(sheet))
        try:
            with writing(request):
                m.release(submission_id, line, _text(column), _text(sheet))
        except ValueError as exc:
            return page(request, principal, error=str(exc).replace("--sheet", "the sheet"), status_code=409)
    return RedirectResponse("/quality?done=released#quarantined", status_code=303)


@router.post("/quality/correct")
async def correct(request: Request, principal: Submitter, submission_id: CellForm,
                  line: Annotated[int, Form(ge=0, le=2**31 - 1)], value: Annotated[str, Form(max_length=100)] = "",
                  column: Annotated[str, Form(max_length=500)] = "",
                  sheet: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Send the right value for a quarantined one, as a new submission through the upload's ingest; its page shows
    whether the correction passed the rules."""
    if not value.strip():
        return await run_in_threadpool(page, request, principal, status_code=422,
                                       error="Enter the corrected value before sending it.")

    def look_up() -> dict[str, Any]:
        with workspace(request) as m:
            return find_cell(m, principal, visible_orgs(principal, m), submission_id, line, _text(column),
                             _text(sheet))

    cell = await run_in_threadpool(look_up)
    if not can_correct(principal, cell):
        raise ApiError(403, "forbidden", f"you may not correct {cell['org']}'s values here; send a corrected file "
                                         "from the submissions page", {"org": cell["org"]})
    upload = UploadFile(io.BytesIO(correction_file(cell, value.strip())),
                        filename=f"correction-{submission_id}-line-{line}.csv")
    try:
        _, body = await accept_upload(request, principal, upload, CORRECTION_SPEC, cell["org"])
    except ApiError as exc:
        if exc.code != "rejected" or not isinstance(exc.details, dict):
            raise
        body = {"id": exc.details["submission"]}
    return RedirectResponse(f"/submissions/{body['id']}", status_code=303)

