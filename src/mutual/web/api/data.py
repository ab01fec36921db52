"""Reading the data: observations (JSON pages, or the whole result as CSV or Parquet), roll-ups, completeness,
forecasts (stored, or made on request), shortage alerts, organisations and the catalogue. Every read is scoped to
the organisations the caller may see."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mutual.analytics import alerts as al
from mutual.analytics.completeness import completeness as completeness_rows
from mutual.analytics.completeness import summary
from mutual.analytics.rollup import Level, Period, RollupQuery, rates, rollup, rollup_rate
from mutual.catalog import Kind, load_catalog
from mutual.catalog.orgs import OrgKind
from mutual.ingest.specs import shipped_specs
from mutual.store.base import ObservationQuery, Store
from mutual.web.api.common import (
    NOT_MODIFIED,
    Analysis,
    Analysts,
    Everyone,
    NationalAnalyst,
    Page,
    PagingDep,
    Timestamp,
    cached_json,
    check_days,
    check_known_org,
    check_metric,
    check_org,
    check_range,
    clean,
    in_scope,
    naive,
    page_dict,
    page_of,
    rows,
    workspace,
    writing,
)
from mutual.web.auth import visible_orgs
from mutual.web.errors import ApiError

router = APIRouter(tags=["data"])

# -- observations --------------------------------------------------------------------------------------------

OBSERVATION_COLUMNS = ("org", "metric", "period", "value", "dims", "period_end", "submission_id", "sheet",
                       "row_num", "col", "flagged", "recorded_at", "superseded_at")
PARQUET = "application/vnd.apache.parquet"
CSV_BATCH_ROWS = 50_000


class Observation(BaseModel):
    """One stored value with its lineage: the submission, sheet, line and column it came from."""

    org: str = Field(examples=["R1H"])
    metric: str = Field(examples=["ga_beds_occupied"])
    period: date
    value: float
    dims: str = Field(description="Dimensions as k=v;k=v ('' when none)", examples=["", "item=gloves"])
    period_end: date
    submission_id: int
    sheet: str | None
    row_num: int | None
    col: str | None
    flagged: bool = Field(description="Accepted with a quality warning")
    recorded_at: Timestamp = Field(description="When it became known (its submission's received time)")
    superseded_at: Timestamp | None = Field(description="When a later value replaced it (history only)")


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    """The table as CSV, a batch at a time: a plain header line (``org,metric,period,value,...``), then rows
    quoted where needed."""
    yield (",".join(table.column_names) + "\n").encode()
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in table.to_batches(max_chunksize=CSV_BATCH_ROWS):
        sink = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch], table.schema), sink, options)
        yield sink.getvalue()


def table_response(table: pa.Table, format: str, name: str) -> Response:
    """A whole table as a CSV or Parquet download."""
    if format == "csv":
        return StreamingResponse(_csv_chunks(table), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return Response(sink.getvalue(), media_type=PARQUET,
                    headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'})


DOWNLOADS: dict[int | str, dict[str, Any]] = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}},
    PARQUET: {"schema": {"type": "string", "format": "binary"}}},
    "description": "JSON page, or with format=csv|parquet the whole filtered result"}}


@router.get("/observations", response_model=Page[Observation], responses={**DOWNLOADS, **NOT_MODIFIED},
            summary="Stored values, as known now or at as_of, with lineage")
def observations(
        request: Request, p: PagingDep, principal: Everyone,
        metric: Annotated[str | None, Query(description="Metric code (see /api/v1/catalogue)",
                                            examples=["ga_beds_occupied"])] = None,
        org: Annotated[str | None, Query(description="Organisation code", examples=["R1H"])] = None,
        from_: Annotated[date | None, Query(alias="from", description="First day")] = None,
        to: Annotated[date | None, Query(description="Last day")] = None,
        as_of: Annotated[datetime | None, Query(description="What was known at this time")] = None,
        history: Annotated[bool, Query(description="Include superseded versions")] = False,
        format: Annotated[Literal["json", "csv", "parquet"], Query()] = "json") -> Any:
    """JSON is paginated; CSV (header ``org,metric,period,value,...``) and Parquet carry the whole result."""
    check_metric(metric)
    check_days(**{"from": from_, "to": to, "as_of": as_of})
    check_range(from_, to)
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        check_org(org, scope)
        expr = m.store.observations(ObservationQuery(metric=metric, org=org, start=from_, end=to,
                                                     as_of=naive(as_of), include_history=history))
        if scope is not None:
            expr = expr.filter(expr.org.isin(sorted(scope)))
        expr = expr.select(*OBSERVATION_COLUMNS)
        if format == "json":
            return cached_json(request, Page[Observation], scope, lambda: page_dict(
                request, p, rows(expr.limit(p.page_size, offset=p.offset).to_pyarrow()), int(expr.count().execute())))
        table = expr.to_pyarrow()
    return table_response(table, format, f"observations-{metric or 'all'}")


# -- roll-ups ------------------------------------------------------------------------------------------------


class RollupRow(BaseModel):
    """A metric rolled up by its catalogue rule (``metric`` set), or a rate from rolled-up parts (``rate`` set)."""

    level: str = Field(examples=["region"])
    org: str
    name: str | None
    metric: str | None = None
    rate: str | None = None
    dims: str
    period: date
    period_end: date
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    reported: int | None = Field(None, description="Trusts that reported (metrics)")
    imputed: int | None = Field(None, description="Trusts carried forward")
    expected: int | None = Field(None, description="Trusts expected (metrics)")
    trusts: int | None = Field(None, description="Trusts that reported both parts (rates)")
    method: str | None = Field(None, description="How the value was combined (metrics)")


@router.get("/rollups", response_model=Page[RollupRow], responses=NOT_MODIFIED,
            summary="A metric or rate rolled up trust → STP → region → nation, with coverage")
def rollups(
        request: Request, p: PagingDep, principal: Analysis,
        from_: Annotated[date, Query(alias="from", description="First day")],
        to: Annotated[date, Query(description="Last day")],
        metric: Annotated[str | None, Query(description="Metric code")] = None,
        rate: Annotated[str | None, Query(description="A rate from its parts", examples=["ga_occupancy"])] = None,
        level: Annotated[Level, Query()] = Level.REGION,
        period: Annotated[Period, Query()] = Period.DAY,
        as_of: Annotated[datetime | None, Query(description="What was known at this time")] = None,
        carry: Annotated[int, Query(ge=0, le=60, description="Carry a missing trust's last value N days")] = 0,
) -> Any:
    if (metric is None) == (rate is None):
        raise ApiError(422, "invalid_request", "give either metric or rate", {"metric": metric, "rate": rate})
    check_metric(metric)
    if rate is not None and rate not in rates():
        raise ApiError(422, "invalid_request", f"rate {rate!r} is unknown; choose one of {', '.join(sorted(rates()))}",
                       {"parameter": "rate", "value": rate})
    check_days(**{"from": from_, "to": to, "as_of": as_of})
    check_range(from_, to)

    def make() -> dict[str, Any]:
        if rate is not None:
            table = rollup_rate(m.store, rate, level, from_, to, as_of=naive(as_of), period=period, carry=carry)
        else:
            assert metric is not None
            table = rollup(m.store, RollupQuery(metric, level, from_, to, naive(as_of), period, carry))
        return page_of(request, p, [r for r in rows(table) if in_scope(r["org"], scope)])

    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        return cached_json(request, Page[RollupRow], scope, make)


# -- completeness --------------------------------------------------------------------------------------------


class CompletenessRow(BaseModel):
    """Per trust, metric and day with ``detail`` (or one ``org``); else per metric and day."""

    metric: str
    day: date
    org: str | None = None
    name: str | None = None
    received: bool | int | None = Field(None, description="Detail: stored; summary: trusts received")
    received_at: Timestamp | None = None
    deadline: Timestamp | None = None
    late_hours: float | None = None
    missing_streak: int | None = None
    stored: int | None = None
    quarantined: int | None = None
    quarantined_share: float | None = None
    expected: int | None = None
    on_time: int | None = None
    longest_missing_streak: int | None = None


@router.get("/completeness", response_model=Page[CompletenessRow], responses=NOT_MODIFIED,
            summary="Expected against received per trust and metric: lateness, missing streaks, quarantined")
def completeness(
        request: Request, p: PagingDep, principal: Everyone,
        day: Annotated[date, Query(alias="date", description="Day (or first day with to)")],
        to: Annotated[date | None, Query(description="Last day")] = None,
        metric: Annotated[str | None, Query(description="Metric code")] = None,
        org: Annotated[str | None, Query(description="Trust code")] = None,
        deadline: Annotated[time, Query(description="Deadline time of day (UTC)", examples=["11:00"])] = time(11),
        days_after: Annotated[int | None, Query(ge=0, le=31, description="Deadline this many days after")] = None,
        as_of: Annotated[datetime | None, Query(description="What was known at this time")] = None,
        detail: Annotated[bool, Query(description="One row per trust, metric and day")] = False) -> Any:
    check_metric(metric)
    end = to or day
    check_days(date=day, to=to, as_of=as_of)
    check_range(day, end)

    def make() -> dict[str, Any]:
        table = completeness_rows(m.store, day, end, metric=metric, org=org, deadline=deadline.replace(tzinfo=None),
                                  days_after=days_after, as_of=naive(as_of))
        if scope is not None:
            table = table.filter(pa.array([in_scope(o, scope) for o in table.column("org").to_pylist()], pa.bool_()))
        return page_of(request, p, rows(table if detail or org is not None else summary(table)))

    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        check_org(org, scope)
        check_known_org(org, m)
        return cached_json(request, Page[CompletenessRow], scope, make)


# -- forecasts -----------------------------------------------------------------------------------------------


class ForecastRow(BaseModel):
    org: str
    metric: str
    dims: str
    made_at: Timestamp
    vintage: Timestamp | None = Field(description="The data's as-of time the forecast was made from")
    period: date
    horizon: int
    mean: float | None
    lo80: float | None
    hi80: float | None
    lo95: float | None
    hi95: float | None
    model: str


class ForecastRequest(BaseModel):
    metric: str = Field(examples=["ga_beds_occupied"], description="A point-in-time metric")
    orgs: list[str] = Field(min_length=1, max_length=500, examples=[["R1H", "Y56"]],
                            description="Trusts, STPs, regions or the nation (the sum of their trusts); "
                                        "['all'] for every trust")
    horizon: int = Field(7, ge=1, le=14)
    as_of: datetime | None = Field(None, description="Forecast from what was known at this time")
    save: bool = Field(True, description="Keep it in the forecast table")


class ForecastRun(BaseModel):
    saved: bool
    vintage: Timestamp | None
    items: list[ForecastRow]


def stored_forecasts(store: Store, metric: str | None, org: str | None, horizon: int,
                     scope: set[str] | None) -> pa.Table:
    """The latest stored forecast of each series (organisation, metric, dims), ``horizon`` days ahead at most."""
    import ibis

    t = store.ibis.table("forecast")
    if metric is not None:
        t = t.filter(t.metric == metric)
    if org is not None:
        t = t.filter(t.org == org)
    if scope is not None:
        t = t.filter(t.org.isin(sorted(scope)))
    latest = t.made_at.max().over(ibis.window(group_by=[t.org, t.metric, t.dims]))
    t = t.mutate(latest=latest)
    t = t.filter((t.made_at == t.latest) & (t.horizon <= horizon)).drop("latest")
    return t.order_by(["org", "metric", "dims", "period"]).to_pyarrow()


@router.get("/forecasts", response_model=Page[ForecastRow], responses=NOT_MODIFIED,
            summary="The latest stored forecast of each series, with 80% and 95% intervals")
def forecasts(
        request: Request, p: PagingDep, principal: Everyone,
        metric: Annotated[str | None, Query(description="Metric code")] = None,
        org: Annotated[str | None, Query(description="Organisation code")] = None,
        horizon: Annotated[int, Query(ge=1, le=14, description="Days ahead, at most")] = 14) -> Any:
    check_metric(metric)
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        check_org(org, scope)
        return cached_json(request, Page[ForecastRow], scope, lambda: page_of(
            request, p, rows(stored_forecasts(m.store, metric, org, horizon, scope))))


@router.post("/forecasts", response_model=ForecastRun,
             summary="Make a forecast (LightGBM pooled over every trust), and keep it unless save is false")
def make_forecast(
        request: Request, body: ForecastRequest, principal: Analysts) -> Any:
    from mutual.analytics.forecast import forecast_series, store_forecast

    check_metric(body.metric)
    check_days(as_of=body.as_of)
    orgs = [o.strip().upper() if o.strip().lower() != "all" else "all" for o in body.orgs]
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        if scope is not None:
            if "all" in orgs:
                raise ApiError(403, "forbidden", "'all' forecasts every trust: name the organisations you may see",
                               {"orgs": body.orgs})
            for code in orgs:
                check_org(code, scope)
        table = forecast_series(m.store, body.metric, orgs, body.horizon, as_of=naive(body.as_of))
        if body.save:
            with writing(request):
                store_forecast(m.store, table)
    vintages = table.column("vintage").to_pylist()
    return {"saved": body.save, "vintage": vintages[0] if vintages else None, "items": rows(table)}


# -- alerts --------------------------------------------------------------------------------------------------


class AlertItem(BaseModel):
    alert_id: str = Field(examples=["ga_occupancy_critical/R1H/2021-01-04"])
    org: str
    name: str
    rule: str
    what: str
    dims: str
    severity: Literal["amber", "red"]
    since: date
    last_held: date
    status: Literal["open", "closed"]
    closed_on: date | None
    close_reason: str | None
    value: float | None
    quality: str
    why: str


class AlertPage(Page[AlertItem]):
    day: date | None = Field(description="The evaluated day the open alerts are of (null: never evaluated)")


class Evaluated(BaseModel):
    day: date
    checks: int
    open: int
    by_severity: dict[str, int]


def stored_alerts(store: Store) -> tuple[date | None, list[al.Alert]]:
    """Every recorded alert episode, and the latest evaluated day."""
    events = store.ibis.table("alert_event")
    last = events.aggregate(day=events.eval_date.max()).to_pyarrow().to_pylist()[0]["day"]
    alerts = [al.Alert(**r) for r in store.ibis.table("alert").to_pyarrow().to_pylist()]
    return last, alerts


def alert_items(alerts: list[al.Alert], names: dict[str, str]) -> list[dict[str, Any]]:
    by_id = {r.id: r for r in al.shipped_rules()}
    return [{**{k: getattr(a, k) for k in AlertItem.model_fields if hasattr(a, k)}, "name": names.get(a.org, ""),
             "what": (by_id[a.rule].title if a.rule in by_id else a.rule)
             + (f" ({a.dims.replace(';', ', ')})" if a.dims else ""), "value": clean(a.value)}
            for a in alerts]


@router.get("/alerts", response_model=AlertPage, responses=NOT_MODIFIED,
            summary="Shortage alerts open on a day (the latest evaluated by default), or their whole history")
def alerts(
        request: Request, p: PagingDep, principal: Everyone,
        day: Annotated[date | None, Query(alias="date", description="Day (default: the latest evaluated)")] = None,
        show: Annotated[Literal["open", "history"], Query(description="open on the day, or every episode")]
        = "open",
        org: Annotated[str | None, Query(description="Only this trust")] = None) -> Any:
    check_days(date=day)

    def make() -> dict[str, Any]:
        last, every = stored_alerts(m.store)
        names = {o.code: o.name for o in m.orgs()}
        when = day or last
        if show == "open":
            chosen = al.open_alerts(every, when, al.shipped_rules()) if when is not None else []
        else:
            chosen = sorted(every, key=lambda a: (a.org, a.rule, a.dims, a.since))
        chosen = [a for a in chosen if in_scope(a.org, scope) and (org is None or a.org == org)]
        return {**page_of(request, p, alert_items(chosen, names)), "day": when}

    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        check_org(org, scope)
        return cached_json(request, AlertPage, scope, make)


class EvaluateRequest(BaseModel):
    day: date | None = Field(None, alias="date", description="Day to evaluate (default: the latest with data)")
    as_of: datetime | None = Field(None, description="Judge on what was known at this time")


@router.post("/alerts/evaluate", response_model=Evaluated,
             summary="Evaluate the shipped alert rules for a day and record it (alerts open, stay open, close)")
def evaluate_alerts(
        request: Request, body: EvaluateRequest, principal: NationalAnalyst) -> Any:
    check_days(date=body.day, as_of=body.as_of)
    with workspace(request) as m, writing(request):
        ev = al.run_alerts(m.store, body.day, as_of=naive(body.as_of))
    by_severity = {s: sum(a.severity == s for a in ev.open) for s in al.SEVERITIES}
    return {"day": ev.day, "checks": len(ev.checks), "open": len(ev.open), "by_severity": by_severity}


# -- organisations and the catalogue -------------------------------------------------------------------------


class Organisation(BaseModel):
    code: str = Field(examples=["R1H"])
    name: str
    kind: OrgKind
    parent: str | None
    region: str | None
    postcode: str | None
    open_date: date | None
    close_date: date | None
    successor: str | None
    successor_date: date | None
    lat: float | None
    lon: float | None


@router.get("/organisations", response_model=Page[Organisation],
            summary="Organisations with their place in the hierarchy (reference data)")
def organisations(
        request: Request, p: PagingDep, principal: Everyone,
        kind: Annotated[OrgKind | None, Query(description="Only this kind")] = None,
        parent: Annotated[str | None, Query(description="Only the children of this organisation")] = None) -> Any:
    with workspace(request) as m:
        found = [o.model_dump() for o in m.orgs()
                 if (kind is None or o.kind == kind) and (parent is None or o.parent == parent)]
    return page_of(request, p, found)


@router.get("/organisations/{code}", response_model=Organisation, summary="One organisation")
def organisation(request: Request, code: str,
                 principal: Everyone) -> Any:
    with workspace(request) as m:
        for o in m.orgs():
            if o.code == code:
                return o.model_dump()
    raise ApiError(404, "not_found", f"organisation {code!r} is not known (see /api/v1/organisations)",
                   {"code": code})


class MetricInfo(BaseModel):
    code: str
    label: str
    unit: str
    kind: Kind
    bounds: tuple[float, float]
    integer: bool
    dims: list[str]
    capacity: str | None
    parts: list[str]


class SpecInfo(BaseModel):
    name: str
    description: str
    format: str


class Catalogue(BaseModel):
    version: int
    dimensions: dict[str, list[str]]
    metrics: list[MetricInfo]
    rates: dict[str, tuple[str, str]] = Field(description="Rate name -> (numerator, denominator)")
    specs: list[SpecInfo] = Field(description="Shipped mapping specs for uploads")


@router.get("/catalogue", response_model=Catalogue, summary="Metrics, dimensions, rates and shipped specs")
def catalogue(principal: Everyone) -> Any:
    c = load_catalog()
    return {"version": c.version, "dimensions": c.dimensions,
            "metrics": [m.model_dump() for m in c.metrics], "rates": rates(),
            "specs": [{"name": s.name, "description": " ".join(s.description.split()), "format": s.format}
                      for s in shipped_specs()]}
