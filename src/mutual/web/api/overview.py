"""The national overview the dashboard opens on: headline figures with their trend over a week, open alerts by
severity, and the trusts under most pressure, as of the data's vintage.

It is computed once per data vintage (roll-ups and rule evaluations cost tens of milliseconds to seconds) and
kept in memory; a repeat read with the same vintage is a dictionary lookup, and a client that sends the ETag back
gets 304 without a body. Headline figures are national totals (no trust's own values), so every role allowed
the overview sees the same ones; the lists of trusts are cut to the caller's organisations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mutual.analytics import alerts as al
from mutual.analytics.rollup import Level, RollupQuery, rollup, rollup_rate
from mutual.app import Mutual
from mutual.store.base import Store
from mutual.web.api.common import NOT_MODIFIED, Analysis, Timestamp, cached_json, clean, in_scope, workspace
from mutual.web.api.data import AlertItem, alert_items, stored_alerts
from mutual.web.auth import visible_orgs
from mutual.web.caching import current_vintage

router = APIRouter(tags=["overview"])

TREND_DAYS = 7  # the latest day is compared with the same weekday a week before
CARRY_DAYS = 3  # a trust's figure missing on a day is carried from up to this many days before (levels only)
TOP_TRUSTS = 10
FLAT = 0.005  # a change smaller than this share of the earlier value is "flat"


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    unit: Literal["fraction", "count", "trusts"]
    rate: str | None = None  # a rate from rolled-up parts
    metric: str | None = None  # a metric rolled up by its catalogue rule
    dims: str = ""
    better: Literal["lower", "higher"] = "lower"


HEADLINES = (
    Headline("ga_occupancy", "G&A bed occupancy", "fraction", rate="ga_occupancy"),
    Headline("cc_adult_occupancy", "Adult critical care occupancy", "fraction", rate="cc_adult_occupancy"),
    Headline("ventilators_in_use", "Ventilators in use", "count", metric="ventilators_in_use"),
    Headline("covid_patients", "COVID-19 patients in hospital", "count", metric="covid_patients_in_hospital"),
    Headline("staff_absent", "Staff absent", "count", metric="staff_absent", dims="reason=all;staff_group=all"),
    Headline("trusts_low_supply", "Trusts with less than 3 days of a supply", "trusts"),
)
SUPPLY_RULE = "supply_critical"  # the shipped alert rule "less than 3 days of supply"


class Figure(BaseModel):
    key: str = Field(examples=["ga_occupancy"])
    label: str
    unit: Literal["fraction", "count", "trusts"]
    day: date | None = Field(description="The latest day")
    value: float | None
    previous_day: date | None = Field(description=f"{TREND_DAYS} days before")
    previous: float | None
    change: float | None
    trend: Literal["up", "down", "flat"] | None
    better: Literal["lower", "higher"]
    trusts: int | None = Field(description="Trusts behind the latest value (reported or carried)")


class Pressured(BaseModel):
    org: str
    name: str
    occupancy: float | None
    period: date | None
    why: str
    quality: str


class AlertCounts(BaseModel):
    day: date | None = Field(description="The latest evaluated day (null: alerts never evaluated)")
    open: int
    by_severity: dict[str, int] = Field(examples=[{"red": 3, "amber": 5}])


class Overview(BaseModel):
    as_of: Timestamp | None = Field(description="The data's vintage: when the latest value stored was recorded")
    day: date | None = Field(description="The latest day any trust reported")
    headline: list[Figure]
    alerts: AlertCounts
    open_alerts: list[AlertItem] = Field(description="Open alerts, most severe first (at most 50)")
    pressure: list[Pressured] = Field(description="Trusts with the highest G&A occupancy")


def _trend(value: float | None, previous: float | None) -> str | None:
    if value is None or previous is None:
        return None
    if abs(value - previous) <= FLAT * max(abs(previous), 1e-9):
        return "flat"
    return "up" if value > previous else "down"


def _series(store: Store, h: Headline, start: date, end: date) -> dict[date, tuple[float | None, int]]:
    """Per day: the national value and how many trusts it stands on (over every nation-level parent, so a
    trust placed nowhere is not lost)."""
    if h.rate is not None:
        table = rollup_rate(store, h.rate, Level.NATION, start, end, carry=CARRY_DAYS)
        sums: dict[date, list[float]] = {}
        for r in table.to_pylist():
            if r["dims"] == h.dims and r["numerator"] is not None and r["denominator"] is not None:
                acc = sums.setdefault(r["period"], [0.0, 0.0, 0])
                acc[0] += r["numerator"]
                acc[1] += r["denominator"]
                acc[2] += r["trusts"]
        return {d: ((n / den) if den > 0 else None, int(t)) for d, (n, den, t) in sums.items()}
    assert h.metric is not None
    table = rollup(store, RollupQuery(h.metric, Level.NATION, start, end, carry=CARRY_DAYS))
    totals: dict[date, list[float]] = {}
    for r in table.to_pylist():
        if r["dims"] == h.dims and r["value"] is not None:
            acc = totals.setdefault(r["period"], [0.0, 0])
            acc[0] += r["value"]
            acc[1] += r["reported"] + r["imputed"]
    return {d: (v, int(n)) for d, (v, n) in totals.items()}


def _low_supply(store: Store, day: date) -> tuple[float, int]:
    """Trusts whose lowest supply is under 3 days on ``day``, by the shipped alert rule (same staleness and
    quality limits), and how many trusts were judged."""
    rule = next(r for r in al.shipped_rules() if r.id == SUPPLY_RULE)
    checks = [c for c in al.evaluate(store, [rule], day) if c.status != "not_reported"]
    return float(len({c.org for c in checks if c.status == "alert"})), len({c.org for c in checks})


def figures(store: Store, day: date) -> list[dict[str, Any]]:
    before = day - timedelta(days=TREND_DAYS)
    out = []
    for h in HEADLINES:
        if h.unit == "trusts":  # no trust judged is no figure, not zero
            (now, judged), (then, judged_then) = _low_supply(store, day), _low_supply(store, before)
            values = {day: (now if judged else None, judged), before: (then if judged_then else None, judged_then)}
        else:
            values = _series(store, h, before, day)
        value, trusts = values.get(day, (None, 0))
        previous = values.get(before, (None, 0))[0]
        out.append({"key": h.key, "label": h.label, "unit": h.unit, "day": day, "value": clean(value),
                    "previous_day": before, "previous": clean(previous),
                    "change": clean(value - previous) if value is not None and previous is not None else None,
                    "trend": _trend(value, previous), "better": h.better, "trusts": trusts or None})
    return out


@dataclass(frozen=True)
class Snapshot:
    """The overview of one data vintage, before it is cut to a caller's organisations."""

    as_of: datetime | None
    day: date | None
    headline: list[dict[str, Any]]
    alerts_day: date | None
    open_alerts: list[dict[str, Any]]
    pressure: list[dict[str, Any]]


def snapshot(m: Mutual) -> Snapshot:
    """Everything the overview shows, for every organisation."""
    store = m.store
    day = al.latest_day(store, al.shipped_rules())
    names = {o.code: o.name for o in m.orgs()}
    alerts_day, every = stored_alerts(store)
    open_now = al.open_alerts(every, alerts_day, al.shipped_rules()) if alerts_day else []
    if day is None:
        return Snapshot(vintage_time(store), None, [], alerts_day, alert_items(open_now, names), [])
    ranked = al.pressure(store, day, top=len(names))
    pressure = [{**{k: clean(v) for k, v in p.items()}, "name": names.get(p["org"], "")} for p in ranked]
    return Snapshot(vintage_time(store), day, figures(store, day), alerts_day, alert_items(open_now, names),
                    pressure)


def vintage_time(store: Store) -> datetime | None:
    obs = store.ibis.table("observation")
    found = obs.aggregate(last=obs.recorded_at.max()).to_pyarrow().to_pylist()[0]["last"]
    return found if isinstance(found, datetime) else None


def view(s: Snapshot, scope: set[str] | None) -> dict[str, Any]:
    """The snapshot as one caller sees it: national figures, their own organisations' alerts and trusts."""
    mine = [a for a in s.open_alerts if in_scope(a["org"], scope)]
    return {"as_of": s.as_of, "day": s.day, "headline": s.headline,
            "alerts": {"day": s.alerts_day, "open": len(mine),
                       "by_severity": {sev: sum(a["severity"] == sev for a in mine) for sev in al.SEVERITIES}},
            "open_alerts": mine[:50],
            "pressure": [p for p in s.pressure if in_scope(p["org"], scope)][:TOP_TRUSTS]}


class OverviewCache:
    """The snapshot of the latest vintage; a newer vintage replaces it. One computation at a time, so a burst of
    requests after new data costs one snapshot, not one each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[str, Snapshot] | None = None

    def get(self, vintage: str, compute: Callable[[], Snapshot]) -> Snapshot:
        entry = self._entry
        if entry is not None and entry[0] == vintage:
            return entry[1]
        with self._lock:
            if self._entry is None or self._entry[0] != vintage:
                self._entry = (vintage, compute())
            return self._entry[1]


def overview_cache(request: Request) -> OverviewCache:
    state = request.app.state
    cache: OverviewCache | None = getattr(state, "overview_cache", None)
    if cache is None:
        cache = state.overview_cache = OverviewCache()
    return cache


@router.get("/overview", response_model=Overview, responses=NOT_MODIFIED,
            summary="The national overview: headline figures with trend, open alerts, worst-pressured trusts")
def overview(request: Request, principal: Analysis) -> Any:
    """Send ``If-None-Match`` with the last ETag: the answer is 304 until the data changes."""
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        vintage = current_vintage(request)
        return cached_json(request, Overview, scope,
                           lambda: view(overview_cache(request).get(vintage, lambda: snapshot(m)), scope))
