"""Shortage alerts open on the latest evaluated day (or a chosen one), most severe first, with the numbers behind
each: the same episodes as ``GET /api/v1/alerts`` (``analytics.alerts``), cut to the user's organisations."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from mutual.analytics import alerts as al
from mutual.app import Mutual
from mutual.web import charts
from mutual.web.api.common import Everyone, check_days, in_scope, workspace
from mutual.web.api.data import alert_items, stored_alerts
from mutual.web.api.overview import vintage_time
from mutual.web.auth import Principal, visible_orgs
from mutual.web.dashboard.common import Column
from mutual.web.dashboard.tables import Table
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

ALERT_COLUMNS: list[Column] = [
    ("severity", "Severity", "text"), ("org", "Trust", "text"), ("name", "Name", "text"), ("what", "Alert", "text"),
    ("why", "Why", "text"), ("since", "Since", "date"), ("quality", "Data quality", "text"),
    ("alert_id", "Alert id", "text")]
COUNT_COLUMNS: list[Column] = [("what", "Alert", "text"), ("red", "Red", "count"), ("amber", "Amber", "count")]
Severity = Literal["red", "amber"]


def alerts_view(m: Mutual, principal: Principal, day: date | None, severity: str | None) -> dict[str, Any]:
    """The open alerts (most severe first, as ``open_alerts`` orders them) and their count per kind of alert."""
    scope = visible_orgs(principal, m)
    last, every = stored_alerts(m.store)
    when = day or last
    chosen = al.open_alerts(every, when, al.shipped_rules()) if when is not None else []
    chosen = [a for a in chosen if in_scope(a.org, scope) and (severity is None or a.severity == severity)]
    items = alert_items(chosen, {o.code: o.name for o in m.orgs()})
    counts: dict[str, dict[str, Any]] = {}
    for a in items:
        title = next((r.title for r in al.shipped_rules() if r.id == a["rule"]), a["rule"])
        row = counts.setdefault(title, {"what": title, "red": 0, "amber": 0})
        row[a["severity"]] += 1
    count_rows = sorted(counts.values(), key=lambda r: (-r["red"] - r["amber"], r["what"]))
    spec = charts.bars([{"what": r["what"], "open": r["red"] + r["amber"]} for r in count_rows], category="what",
                       value="open", title="Open alerts by kind", unit="alerts") if count_rows else None
    return {"as_of": vintage_time(m.store), "day": when, "last": last, "severity": severity or "",
            "alerts": Table("alerts", "Open alerts, most severe first", ALERT_COLUMNS, items),
            "counts": Table("counts", "Open alerts by kind and severity", COUNT_COLUMNS, count_rows), "spec": spec}


@router.get("/alerts")
def alerts_page(request: Request, principal: Everyone,
                day: Annotated[date | None, Query(alias="date", description="Day (default: the latest evaluated)")]
                = None,
                severity: Annotated[Severity | None, Query()] = None,
                format: Annotated[Literal["html", "csv"], Query()] = "html",
                table: Annotated[Literal["alerts", "counts"], Query()] = "alerts") -> Response:
    check_days(date=day)
    with workspace(request) as m:
        view = alerts_view(m, principal, day, severity)
    if format == "csv":
        return view[table].download("alerts")
    return render(request, "alerts.html", view)
