"""The map (``/map``): STPs coloured by a chosen measure on the latest reported day, with the trusts as points.
A GET form picks the measure, so the page works without scripts; the table below the map holds every figure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from mutual.analytics import alerts as al
from mutual.analytics.rollup import Level, RollupQuery, rates, rollup, rollup_rate
from mutual.app import Mutual
from mutual.web.api.common import Analysis, in_scope, workspace
from mutual.web.api.overview import CARRY_DAYS
from mutual.web.auth import visible_orgs
from mutual.web.dashboard.common import Column, csv_response, trust_values
from mutual.web.maps import choropleth
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Measure:
    label: str
    rate: str | None = None
    metric: str | None = None
    dims: str = ""

    @property
    def percent(self) -> bool:
        return self.rate is not None


MEASURES = {
    "ga_occupancy": Measure("G&A bed occupancy", rate="ga_occupancy"),
    "cc_adult_occupancy": Measure("Adult critical care occupancy", rate="cc_adult_occupancy"),
    "covid_patients_in_hospital": Measure("COVID-19 patients in hospital", metric="covid_patients_in_hospital"),
    "ventilators_in_use": Measure("Ventilators in use", metric="ventilators_in_use"),
    "staff_absent": Measure("Staff absent", metric="staff_absent", dims="reason=all;staff_group=all"),
}
COLUMNS: list[Column] = [("code", "STP", "text"), ("name", "Name", "text"), ("value", "Value", "number"),
                         ("trusts", "Trusts reporting", "count"), ("expected", "Trusts expected", "count")]


def stp_rows(m: Mutual, measure: Measure, scope: set[str] | None) -> tuple[list[dict[str, Any]], Any]:
    """One row per STP on the latest day any trust reported the measure: value and coverage."""
    parts = rates()[measure.rate] if measure.rate else None
    rate = al.Rate(numerator=parts[0], denominator=parts[1]) if parts else None
    day = al.latest_day(m.store, [al.Rule(id="map", title="map", metric=measure.metric, rate=rate, op=">",
                                          threshold=0, severity="amber")])
    if day is None:
        return [], None
    if measure.rate is not None:
        table = rollup_rate(m.store, measure.rate, Level.STP, day, day, carry=CARRY_DAYS).to_pylist()
        found = [{"code": r["org"], "name": r["name"], "value": r["value"], "trusts": r["trusts"], "expected": None}
                 for r in table if r["dims"] == measure.dims]
    else:
        assert measure.metric is not None
        table = rollup(m.store, RollupQuery(measure.metric, Level.STP, day, day, carry=CARRY_DAYS)).to_pylist()
        found = [{"code": r["org"], "name": r["name"], "value": r["value"],
                  "trusts": r["reported"] + r["imputed"], "expected": r["expected"]}
                 for r in table if r["dims"] == measure.dims]
    if scope is not None:  # an STP is shown to a regional analyst when one of its trusts is theirs
        parents = {o.parent for o in m.orgs() if o.code in scope}
        found = [r for r in found if r["code"] in parents]
    return sorted(found, key=lambda r: r["code"] or ""), day


def trust_points(m: Mutual, measure: Measure, day: Any, scope: set[str] | None) -> list[dict[str, Any]]:
    known = rates()
    values = trust_values(m.store, day, metric=measure.metric, rate=known[measure.rate] if measure.rate else None,
                          dims=measure.dims)
    return [{"code": o.code, "name": o.name, "lat": o.lat, "lon": o.lon, "value": values[o.code][0]}
            for o in m.orgs() if o.code in values and o.lat is not None and o.lon is not None
            and in_scope(o.code, scope)]


@router.get("/map")
def map_page(request: Request, principal: Analysis,
             measure: Annotated[str, Query(description="What colours the map")] = "ga_occupancy",
             format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    """STPs coloured by ``measure`` with their trusts (CSV of the STP table: ``?format=csv``)."""
    chosen = MEASURES.get(measure)
    if chosen is None:
        chosen, measure = MEASURES["ga_occupancy"], "ga_occupancy"
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        rows, day = stp_rows(m, chosen, scope)
        points = trust_points(m, chosen, day, scope) if day else []
        as_of = m.store.ibis.table("observation").recorded_at.max().to_pyarrow().as_py()
    if format == "csv":
        return csv_response(rows, COLUMNS, f"map-{measure}.csv")
    columns = [(k, h, "fraction" if k == "value" and chosen.percent else kind) for k, h, kind in COLUMNS]
    spec = choropleth([{"code": r["code"], "name": r["name"], "value": r["value"]} for r in rows],
                      label=chosen.label, percent=chosen.percent, trusts=points)
    return render(request, "map.html", {"as_of": as_of, "day": day, "measures": MEASURES, "measure": measure,
                                        "chosen": chosen, "rows": rows, "columns": columns, "spec": spec,
                                        "points": points})
