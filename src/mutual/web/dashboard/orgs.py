"""Organisation pages: the list of nations, regions, STPs and trusts a user may see, and one organisation's page
with its key metrics and their stored forecasts, capacity against occupancy, days of supply and staff absence.

A trust shows its own reported values; a nation, region or STP shows the roll-up of its trusts by the catalogue's
rules (``analytics.rollup``) with how many trusts stand behind each day, so a missing trust is never read as a
zero. Users see what their scope allows, as in the API: a regional analyst their region's roll-ups and trusts, a
trust its own page. Every chart's rows are its table and its CSV download (``?format=csv&table=KEY``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from mutual.analytics.alerts import decode_dims
from mutual.analytics.rollup import Level, RollupQuery, rates, rollup, rollup_rate
from mutual.catalog import load_catalog
from mutual.catalog.orgs import Org, OrgKind
from mutual.store.base import ObservationQuery, Store
from mutual.web import charts
from mutual.web.api.common import Everyone, check_days, check_org, clean, in_scope, workspace
from mutual.web.api.data import stored_forecasts
from mutual.web.api.overview import vintage_time
from mutual.web.auth import visible_orgs
from mutual.web.dashboard.common import Column
from mutual.web.dashboard.tables import Table, latest_day, pick
from mutual.web.errors import ApiError
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

LISTED = (OrgKind.NATION, OrgKind.REGION, OrgKind.STP, OrgKind.TRUST)
LEVELS = {OrgKind.NATION: Level.NATION, OrgKind.REGION: Level.REGION, OrgKind.STP: Level.STP}
KEY_METRICS = ("ga_beds_occupied", "cc_adult_beds_occupied", "covid_patients_in_hospital", "ventilators_in_use")
CAPACITY_RATES = (("ga", "ga_occupancy", "General and acute beds"),
                  ("cc", "cc_adult_occupancy", "Adult critical care beds"))
FORECAST_DAYS = 14
WINDOW_DAYS = 28


# -- reading one organisation's values -------------------------------------------------------------------------


def values(store: Store, org: Org, metric: str, start: date, end: date) -> list[dict[str, Any]]:
    """``{day, dims, value[, reported, expected, method]}`` of ``metric``: the organisation's own values, or for a
    nation, region or STP its roll-up with the trusts behind each value."""
    level = LEVELS.get(org.kind)
    if level is None:
        t = store.observations(ObservationQuery(metric=metric, org=org.code, start=start, end=end))
        return [{"day": r["period"], "dims": r["dims"], "value": r["value"]}
                for r in t.select("period", "dims", "value").to_pyarrow().to_pylist()]
    table = rollup(store, RollupQuery(metric, level, start, end))
    return [{"day": r["period"], "dims": r["dims"], "value": clean(r["value"]), "reported": r["reported"],
             "expected": r["expected"], "method": r["method"]}
            for r in table.to_pylist() if r["org"] == org.code and r["value"] is not None]


def occupancy(store: Store, org: Org, rate: str, start: date, end: date) -> list[dict[str, Any]]:
    """``{day, open, occupied, occupancy[, trusts]}`` per day: for a roll-up, over the trusts that reported both
    parts (``rollup_rate``); for a trust, the days it reported both."""
    level = LEVELS.get(org.kind)
    if level is not None:
        table = rollup_rate(store, rate, level, start, end)
        return [{"day": r["period"], "open": r["denominator"], "occupied": r["numerator"],
                 "occupancy": clean(r["value"]), "trusts": r["trusts"]}
                for r in table.to_pylist() if r["org"] == org.code and r["dims"] == ""]
    occupied_code, open_code = rates()[rate]
    by_day: dict[date, dict[str, Any]] = {}
    for key, code in (("occupied", occupied_code), ("open", open_code)):
        for r in values(store, org, code, start, end):
            if r["dims"] == "":
                by_day.setdefault(r["day"], {"day": r["day"]})[key] = r["value"]
    both = [r for _, r in sorted(by_day.items()) if "open" in r and "occupied" in r]
    return [{**r, "occupancy": r["occupied"] / r["open"] if r["open"] else None} for r in both]


def latest_by_dims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each series' (dims') latest value in the window, with its dimensions spelt out."""
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["day"]):
        latest[r["dims"]] = r
    return [{**decode_dims(dims), **r} for dims, r in sorted(latest.items())]


# -- the page's sections ---------------------------------------------------------------------------------------


@dataclass
class Section:
    """A chart (``spec``, or none) over its table."""

    id: str
    title: str
    table: Table
    spec: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class OrgPage:
    org: Org
    start: date
    end: date
    rolled_up: bool
    metrics: list[Section] = field(default_factory=list)
    capacity: list[Section] = field(default_factory=list)
    supplies: Section | None = None
    staff: Section | None = None

    @property
    def tables(self) -> list[Table]:
        found = [*self.metrics, *self.capacity, *([self.supplies] if self.supplies else []),
                 *([self.staff] if self.staff else [])]
        return [s.table for s in found]


def coverage_columns(rolled_up: bool) -> list[Column]:
    return [("reported", "Trusts reported", "count"), ("expected", "Trusts expected", "count")] if rolled_up else []


INTERVAL = ("mean", "lo80", "hi80", "lo95", "hi95")


def metric_section(store: Store, org: Org, metric: str, start: date, end: date, rolled_up: bool) -> Section | None:
    """A key metric's values and, after them, its latest stored forecast with 80 % and 95 % intervals."""
    m = load_catalog().get(metric)
    observed = [r for r in values(store, org, metric, start, end) if r["dims"] == ""]
    forecast = [r for r in stored_forecasts(store, metric, org.code, FORECAST_DAYS, None).to_pylist()
                if r["dims"] == "" and (not observed or r["period"] > observed[-1]["day"])]
    if not observed and not forecast:
        return None
    rows = [{"date": r["day"], **r} for r in observed]
    rows += [{"date": r["period"], **{k: clean(r[k]) for k in INTERVAL}} for r in forecast]
    columns: list[Column] = [("date", "Day", "date"), ("value", "Rolled up" if rolled_up else "Reported", "number"),
                             *coverage_columns(rolled_up), ("mean", "Forecast", "number"),
                             ("lo80", "80% interval from", "number"), ("hi80", "80% interval to", "number"),
                             ("lo95", "95% interval from", "number"), ("hi95", "95% interval to", "number")]
    table = Table(metric, f"{m.label} ({m.unit}), by day", columns, rows)
    spec = charts.time_series([{"date": r["day"].isoformat(), "value": r["value"]} for r in observed],
                              [{"date": r["period"].isoformat(), **{k: clean(r[k]) for k in INTERVAL}}
                               for r in forecast] or None, title=m.label, unit=m.unit)
    note = None if forecast else "No stored forecast for this organisation yet (analysts make them)."
    return Section(f"metric-{metric}", m.label, table, spec, note)


def capacity_section(store: Store, org: Org, key: str, rate: str, label: str, start: date, end: date,
                     rolled_up: bool) -> Section | None:
    rows = occupancy(store, org, rate, start, end)
    if not rows:
        return None
    columns: list[Column] = [("day", "Day", "date"), ("open", "Open", "count"), ("occupied", "Occupied", "count"),
                             ("occupancy", "Occupancy", "fraction")]
    if rolled_up:
        columns.append(("trusts", "Trusts that reported both", "count"))
    table = Table(f"capacity-{key}", f"{label}: open and occupied, by day", columns, rows)
    spec = charts.capacity([{"date": r["day"].isoformat(), "open": r["open"], "occupied": r["occupied"]}
                            for r in rows], title=f"{label}: open and occupied", unit="beds")
    return Section(f"capacity-{key}", label, table, spec)


def supplies_section(store: Store, org: Org, start: date, end: date, rolled_up: bool) -> Section | None:
    """Each item's latest days of supply (a range's lower end says "at least"); a roll-up's days are stock over
    usage, or the shortest trust's when usage is missing (``method``)."""
    rows = latest_by_dims(values(store, org, "days_of_supply", start, end))
    if not rows:
        return None
    for r in rows:
        r["item"] = r.get("item", "(all)")
        r["bound"] = {"lower": "at least", "upper": "at most"}.get(r.get("bound", ""), "exact")
    columns: list[Column] = [("item", "Item", "text"), ("value", "Days of supply", "decimal"),
                             ("bound", "Reported as", "text"), ("day", "On", "date")]
    if rolled_up:
        columns += [*coverage_columns(True), ("method", "Combined by", "text")]
    table = Table("supplies", "Days of supply on hand, latest per item", columns, rows)
    spec = charts.bars([{"item": r["item"], "days": r["value"]} for r in rows], category="item", value="days",
                       title="Days of supply on hand", unit="days")
    return Section("supplies", "Supplies", table, spec)


def staff_section(store: Store, org: Org, start: date, end: date, rolled_up: bool) -> Section | None:
    """Staff absent on the latest day reported, by staff group and reason."""
    rows = latest_by_dims(values(store, org, "staff_absent", start, end))
    if not rows:
        return None
    for r in rows:
        r["staff_group"] = r.get("staff_group", "all")
        r["reason"] = r.get("reason", "all")
    columns: list[Column] = [("staff_group", "Staff group", "text"), ("reason", "Reason", "text"),
                             ("value", "Absent", "count"), ("day", "On", "date"), *coverage_columns(rolled_up)]
    table = Table("staff", "Staff absent, latest per staff group and reason", columns, rows)
    all_reasons = [{"group": r["staff_group"], "absent": r["value"]} for r in rows if r["reason"] == "all"]
    spec = charts.bars(all_reasons, category="group", value="absent", title="Staff absent (all reasons), by group",
                       unit="staff") if all_reasons else None
    return Section("staff", "Staff", table, spec)


def org_page(store: Store, org: Org, start: date, end: date) -> OrgPage:
    rolled_up = org.kind in LEVELS
    page = OrgPage(org, start, end, rolled_up)
    page.metrics = [s for metric in KEY_METRICS
                    if (s := metric_section(store, org, metric, start, end, rolled_up)) is not None]
    page.capacity = [s for key, rate, label in CAPACITY_RATES
                     if (s := capacity_section(store, org, key, rate, label, start, end, rolled_up)) is not None]
    page.supplies = supplies_section(store, org, start, end, rolled_up)
    page.staff = staff_section(store, org, start, end, rolled_up)
    return page


# -- the organisation list -------------------------------------------------------------------------------------


def org_list(orgs: list[Org], scope: set[str] | None, q: str, kind: OrgKind | None) -> list[dict[str, Any]]:
    """The nations, regions, STPs and trusts the user may see, matching ``q`` in code or name."""
    names = {o.code: o.name for o in orgs}
    needle = q.strip().casefold()
    found = [o for o in orgs if o.kind in LISTED and in_scope(o.code, scope) and (kind is None or o.kind == kind)
             and (not needle or needle in o.code.casefold() or needle in o.name.casefold())]
    found.sort(key=lambda o: (LISTED.index(o.kind), o.name))
    return [{"code": o.code, "name": o.name, "kind": o.kind.value,
             "parent": names.get(o.parent or "", o.parent or ""), "closed": o.close_date} for o in found]


def children(orgs: list[Org], org: Org, scope: set[str] | None) -> list[Org]:
    """The organisations directly under ``org`` that the user may see (a trust without an STP sits in its region)."""
    under = [o for o in orgs if o.kind in LISTED and o.code != org.code and in_scope(o.code, scope)
             and (o.parent == org.code or (org.kind == OrgKind.REGION and o.kind == OrgKind.TRUST
                                           and o.region == org.code and o.parent in (None, org.code)))]
    return sorted(under, key=lambda o: (LISTED.index(o.kind), o.name))


def find_org(orgs: list[Org], code: str) -> Org:
    for o in orgs:
        if o.code == code.upper():
            return o
    raise ApiError(404, "not_found", f"organisation {code!r} is not known (see the list at /orgs)", {"code": code})


# -- routes ----------------------------------------------------------------------------------------------------


@router.get("/orgs")
def orgs_page(request: Request, principal: Everyone,
              q: Annotated[str, Query(max_length=100, description="Code or name contains")] = "",
              kind: Annotated[OrgKind | None, Query()] = None) -> Response:
    with workspace(request) as m:
        rows = org_list(m.orgs(), visible_orgs(principal, m), q, kind)
        as_of = vintage_time(m.store)
    return render(request, "orgs.html", {"as_of": as_of, "rows": rows, "q": q, "kind": kind.value if kind else "",
                                         "kinds": [k.value for k in LISTED]})


@router.get("/orgs/{code}")
def org_detail(request: Request, code: Annotated[str, Path(max_length=40, description="Organisation code")],
               principal: Everyone,
               to: Annotated[date | None, Query(description="Last day shown (default: the latest with data)")] = None,
               days: Annotated[int, Query(ge=7, le=366, description="Days shown")] = WINDOW_DAYS,
               format: Annotated[Literal["html", "csv"], Query()] = "html",
               table: Annotated[str | None, Query(max_length=40, description="Which table to download")] = None,
               ) -> Response:
    check_days(to=to)
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        orgs = m.orgs()
        org = find_org(orgs, code)
        check_org(org.code, scope)
        end = to or latest_day(m.store) or date.today()
        page = org_page(m.store, org, end - timedelta(days=days - 1), end)
        if format == "csv":
            return pick(page.tables, table).download(org.code)
        names = {o.code: o.name for o in orgs}
        parent = (org.parent, names.get(org.parent, org.parent), in_scope(org.parent, scope)) if org.parent else None
        context = {"as_of": vintage_time(m.store), "page": page, "org": org, "days": days, "parent": parent,
                   "children": children(orgs, org, scope)}
    return render(request, "org.html", context)
