"""Build planning problems from the store: stock and capacity as last reported (plus the changes approved plans
expect), demand from the forecasts, and what-if scenarios from a small YAML file.

Every choice made on the user's behalf (a trust left out for lack of coordinates or recent data, a forecast
carried beyond its horizon) is returned as a note and shown with the plan.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from mutual.analytics.forecast import MAX_HORIZON, ForecastError, forecast_series
from mutual.catalog.orgs import Org, OrgKind
from mutual.planning.equipment import EquipmentProblem
from mutual.planning.graph import Graph, nearest_graph
from mutual.planning.staff import StaffProblem
from mutual.planning.supplies import SupplyProblem
from mutual.planning.transfers import TransferProblem
from mutual.store.base import ObservationQuery, Store

STALE_DAYS = 7  # a trust whose last report is older than this before the plan starts is left out
STAFF_GROUPS = ("nursing", "medical", "ahp")
# Share of staff in post a rota expects to be away on an ordinary day (leave, training, routine sickness):
# absence above it is what loans are for.
STAFF_ALLOWANCE = {"nursing": 0.065, "medical": 0.065, "ahp": 0.065}
SCENARIO_KEYS = {"name", "demand_factor", "unavailable", "delay_days", "demand"}


class PlanInputError(ValueError):
    pass


@dataclass(frozen=True)
class Scenario:
    """A what-if: demand scaled, trusts unable to send or receive, a longer delay, or demand given outright
    (``demand``: a CSV of org,date,value replacing the forecast)."""

    name: str = "baseline"
    demand_factor: float = 1.0
    unavailable: tuple[str, ...] = ()
    delay_days: int | None = None
    demand: Path | None = None


BASELINE = Scenario()


def read_scenario(path: Path) -> Scenario:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PlanInputError(f"{path}: cannot read the scenario ({exc})") from exc
    if not isinstance(raw, dict):
        raise PlanInputError(f"{path}: a scenario is a YAML mapping of {', '.join(sorted(SCENARIO_KEYS))}")
    unknown = set(raw) - SCENARIO_KEYS
    if unknown:
        raise PlanInputError(f"{path}: unknown scenario key(s) {', '.join(sorted(unknown))}; "
                             f"use {', '.join(sorted(SCENARIO_KEYS))}")
    try:
        factor = float(raw.get("demand_factor", 1.0))
        delay = None if raw.get("delay_days") is None else int(raw["delay_days"])
    except (TypeError, ValueError) as exc:
        raise PlanInputError(f"{path}: demand_factor must be a number and delay_days a whole number") from exc
    if not 0 <= factor <= 100 or (delay is not None and not 0 <= delay <= 60):
        raise PlanInputError(f"{path}: demand_factor must be 0-100 and delay_days 0-60")
    unavailable = raw.get("unavailable") or []
    if isinstance(unavailable, str):
        unavailable = [unavailable]
    if not isinstance(unavailable, list) or not all(isinstance(u, str) for u in unavailable):
        raise PlanInputError(f"{path}: unavailable is a list of organisation codes")
    demand = raw.get("demand")
    demand_path = None if demand is None else (path.parent / str(demand))
    if demand_path is not None and not demand_path.is_file():
        raise PlanInputError(f"{path}: demand file {demand_path} does not exist")
    return Scenario(name=str(raw.get("name", path.stem)), demand_factor=factor,
                    unavailable=tuple(u.strip().upper() for u in unavailable), delay_days=delay, demand=demand_path)


def read_demand(path: Path) -> dict[tuple[str, date], float]:
    """A scenario's demand file: CSV with header org,date,value (ISO dates)."""
    out: dict[tuple[str, date], float] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"org", "date", "value"} <= set(reader.fieldnames):
                raise PlanInputError(f"{path}: the demand file needs the columns org,date,value")
            for line, row in enumerate(reader, start=2):
                try:
                    out[(row["org"].strip().upper(), date.fromisoformat(row["date"].strip()))] = float(row["value"])
                except (ValueError, AttributeError) as exc:
                    raise PlanInputError(f"{path}, line {line}: expected org, an ISO date and a number "
                                         f"({exc})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanInputError(f"{path}: cannot read the demand file ({exc})") from exc
    return out


@dataclass
class Frame:
    """The trusts a plan covers, its days, and notes on what was left out or assumed."""

    orgs: list[Org]
    start: date
    horizon: int
    notes: list[str] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [o.code for o in self.orgs]

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.horizon)]

    def graph(self, *, k: int | None, max_km: float | None = None) -> Graph:
        lat = [o.lat if o.lat is not None else float("nan") for o in self.orgs]
        lon = [o.lon if o.lon is not None else float("nan") for o in self.orgs]
        return nearest_graph(self.codes, lat, lon, k=k, max_km=max_km)


def latest(store: Store, metric: str, as_of: datetime | None = None,
           dims: str | None = "") -> dict[tuple[str, str], tuple[date, float]]:
    """Each (org, dims)'s latest reported value of ``metric``: its day and value."""
    t = store.observations(ObservationQuery(metric=metric, as_of=as_of))
    if dims is not None:
        t = t.filter(t.dims == dims)
    rows = t.select("org", "dims", "period", "value").to_pyarrow().to_pylist()
    out: dict[tuple[str, str], tuple[date, float]] = {}
    for r in rows:
        key = (r["org"], r["dims"])
        if key not in out or r["period"] >= out[key][0]:
            out[key] = (r["period"], float(r["value"]))
    return out


def recent_mean(store: Store, metric: str, days: int, as_of: datetime | None = None) -> dict[tuple[str, str],
                                                                                                  float]:
    """Each (org, dims)'s mean of ``metric`` over its last ``days`` reported days."""
    t = store.observations(ObservationQuery(metric=metric, as_of=as_of))
    rows = t.select("org", "dims", "period", "value").to_pyarrow().to_pylist()
    series: dict[tuple[str, str], list[tuple[date, float]]] = {}
    for r in rows:
        series.setdefault((r["org"], r["dims"]), []).append((r["period"], float(r["value"])))
    return {k: float(np.mean([v for _, v in sorted(pts)[-days:]])) for k, pts in series.items()}


def frame(store: Store, reported: dict[str, date], horizon: int, *, start: date | None,
          unavailable: Sequence[str]) -> Frame:
    """Trusts with coordinates and a recent report; the plan starts the day after the latest report."""
    if not reported:
        raise PlanInputError("no trust has reported the figures this plan needs")
    if not 1 <= horizon <= 120:
        raise PlanInputError(f"horizon {horizon} is outside 1-120 days")
    begin = start or max(reported.values()) + timedelta(days=1)
    known = {o.code: o for o in store.orgs()}
    missing = [u for u in unavailable if u not in known]
    if missing:
        raise PlanInputError(f"unknown organisation(s) in the scenario: {', '.join(missing)}")
    notes: list[str] = []
    orgs, stale, no_place = [], [], []
    for code in sorted(reported):
        org = known.get(code)
        if org is None or org.kind != OrgKind.TRUST:
            continue
        if (begin - reported[code]).days > STALE_DAYS:
            stale.append(code)
        elif org.lat is None or org.lon is None:
            no_place.append(code)
        else:
            orgs.append(org)
    if stale:
        notes.append(f"{len(stale)} trust(s) left out: last report over {STALE_DAYS} days before {begin} "
                     f"({_some(stale)})")
    if no_place:
        notes.append(f"{len(no_place)} trust(s) left out: no coordinates ({_some(no_place)})")
    if len(orgs) < 2:
        raise PlanInputError(f"a plan needs at least two trusts with recent data and coordinates; found {len(orgs)}")
    return Frame(orgs, begin, horizon, notes)


def _some(codes: Sequence[str], limit: int = 8) -> str:
    return ", ".join(codes[:limit]) + (f" and {len(codes) - limit} more" if len(codes) > limit else "")


def expected_since(store: Store, metric: str, dims: str, reported: dict[str, date]) -> dict[str, float]:
    """Per org, the net change of stock approved plans expect after its last report: moves its reported figure
    cannot show yet. Units still in transit count as arrived, so that a move is never counted at the
    donor without the receiver (the models have no in-transit stock at day 0)."""
    table = store.expected_changes(metric)
    if table is None:
        return {}
    rows = table.to_pyarrow().to_pylist()
    out: dict[str, float] = {}
    for r in rows:
        last = reported.get(r["org"])
        if r["dims"] == dims and last is not None and last < r["first_day"] and r["last_day"] is None:
            out[r["org"]] = out.get(r["org"], 0.0) + float(r["delta"])
    return out


def forecast_grid(store: Store, metric: str, fr: Frame, level: str, as_of: datetime | None,
                  scenario: Scenario) -> NDArray[np.float64]:
    """[n, D] demand: the scenario's demand file, else the forecast (mean or an upper interval bound) carried
    flat beyond its horizon; scaled by the scenario's demand factor."""
    n, d = len(fr.orgs), fr.horizon
    grid = np.full((n, d), np.nan)
    if scenario.demand is not None:
        given = read_demand(scenario.demand)
        for i, code in enumerate(fr.codes):
            for j, day in enumerate(fr.days):
                if (code, day) in given:
                    grid[i, j] = given[(code, day)]
        fr.notes.append(f"demand from {scenario.demand.name}")
    else:
        column = {"mean": "mean", "hi80": "hi80", "hi95": "hi95"}[level]
        try:
            table = forecast_series(store, metric, fr.codes, min(MAX_HORIZON, fr.horizon + STALE_DAYS), as_of,
                                    skip_missing=True)
        except ForecastError as exc:
            raise PlanInputError(f"cannot forecast {metric}: {exc}") from exc
        index = {c: i for i, c in enumerate(fr.codes)}
        for r in table.select(["org", "period", column]).to_pylist():
            j = (r["period"] - fr.start).days
            if 0 <= j < d and r["org"] in index:
                grid[index[r["org"]], j] = r[column]
        fr.notes.append(f"demand: forecast {metric} ({'mean' if level == 'mean' else 'upper ' + level[2:] + '%'})")
    # carry the last known demand forward; a trust with none at all is taken at its latest reported value
    for i in range(n):
        row = grid[i]
        if np.isnan(row).all():
            continue
        last = row[~np.isnan(row)][0]
        for j in range(d):
            last = row[j] = last if np.isnan(row[j]) else row[j]
    if np.isnan(grid).any():
        carried = int(np.isnan(grid).all(axis=1).sum())
        fr.notes.append(f"{carried} trust(s) without a forecast: their latest value is held flat")
    if fr.horizon > MAX_HORIZON and scenario.demand is None:
        fr.notes.append(f"the forecast reaches {MAX_HORIZON} days; later days repeat its last day")
    return grid * scenario.demand_factor


def _fill_latest(grid: NDArray[np.float64], fr: Frame, values: dict[str, float]) -> NDArray[np.float64]:
    for i, code in enumerate(fr.codes):
        if np.isnan(grid[i]).any():
            grid[i] = np.where(np.isnan(grid[i]), values.get(code, 0.0), grid[i])
    return grid


def ventilator_problem(store: Store, *, horizon: int = 14, k: int = 10, start: date | None = None,
                       scenario: Scenario = BASELINE, demand_level: str = "mean", keep_share: float = 0.8,
                       as_of: datetime | None = None) -> tuple[EquipmentProblem, list[str]]:
    """Ventilators: stock = each trust's latest ``ventilators_total`` (plus moves approved since), demand = the
    forecast of ``ventilators_in_use``."""
    totals = {org: v for (org, _), v in latest(store, "ventilators_total", as_of).items()}
    fr = frame(store, {o: d for o, (d, _) in totals.items()}, horizon, start=start, unavailable=scenario.unavailable)
    moved = expected_since(store, "ventilators_total", "", {o: d for o, (d, _) in totals.items()})
    stock = np.array([max(0.0, totals[c][1] + moved.get(c, 0.0)) for c in fr.codes])
    in_use = {org: v for (org, _), (_, v) in latest(store, "ventilators_in_use", as_of).items()}
    demand = _fill_latest(forecast_grid(store, "ventilators_in_use", fr, demand_level, as_of, scenario), fr, in_use)
    if moved:
        fr.notes.append(f"stock includes {len(moved)} trust(s)' moves from approved plans not yet reported")
    problem = EquipmentProblem(graph=fr.graph(k=k), start=fr.start, stock=stock, demand=np.maximum(demand, 0.0),
                               resource="ventilators", keep_share=keep_share,
                               unavailable=scenario.unavailable, **_delay(scenario, 1))
    return problem, fr.notes


def _delay(scenario: Scenario, default: int) -> dict[str, Any]:
    return {"delay": scenario.delay_days if scenario.delay_days is not None else default}


def supply_problems(store: Store, *, horizon: int = 14, k: int = 10, start: date | None = None,
                    scenario: Scenario = BASELINE, items: Sequence[str] | None = None, min_days: float = 3.0,
                    target_days: float = 7.0, as_of: datetime | None = None) -> tuple[list[SupplyProblem], list[str]]:
    """One problem per supply item: stock = latest ``supply_stock`` (plus approved moves since), usage = each
    trust's mean daily ``supply_usage`` over its last 7 reported days (scaled by the scenario)."""
    stock_by = latest(store, "supply_stock", as_of, dims=None)
    found = sorted({dims.removeprefix("item=") for (_, dims) in stock_by if dims.startswith("item=")})
    wanted = list(items) if items else found
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise PlanInputError(f"no trust reports stock of {', '.join(unknown)} (items reported: "
                             f"{', '.join(found) or 'none'})")
    usage = recent_mean(store, "supply_usage", 7, as_of)
    reported = {o: d for (o, _), (d, _) in stock_by.items()}
    fr = frame(store, reported, horizon, start=start, unavailable=scenario.unavailable)
    graph = fr.graph(k=k)
    problems = []
    for item in wanted:
        dims = f"item={item}"
        moved = expected_since(store, "supply_stock", dims, {o: d for (o, dm), (d, _) in stock_by.items()
                                                             if dm == dims})
        stock = np.array([max(0.0, stock_by.get((c, dims), (fr.start, 0.0))[1] + moved.get(c, 0.0))
                          for c in fr.codes])
        use = np.array([usage.get((c, dims), 0.0) for c in fr.codes]) * scenario.demand_factor
        problems.append(SupplyProblem(graph=graph, start=fr.start, item=item, stock=stock,
                                      usage=np.repeat(use[:, None], horizon, axis=1),
                                      deliveries=np.zeros((len(fr.codes), horizon)), min_days=min_days,
                                      target_days=target_days, unavailable=scenario.unavailable,
                                      **_delay(scenario, 1)))
    fr.notes.append("usage: each trust's mean over its last 7 reported days, held flat; no deliveries assumed")
    return problems, fr.notes


def staff_problem(store: Store, *, horizon: int = 14, max_km: float = 50.0, start: date | None = None,
                  scenario: Scenario = BASELINE, groups: Sequence[str] = STAFF_GROUPS,
                  max_loan_share: float = 0.1, as_of: datetime | None = None) -> tuple[StaffProblem, list[str]]:
    """Staff: available = staff in post − the mean absence of the last 3 reported days (held flat); required =
    staff in post less the absence a rota absorbs (``STAFF_ALLOWANCE``), scaled by the scenario."""
    in_post = latest(store, "staff_in_post", as_of, dims=None)
    if not in_post:
        raise PlanInputError("no trust reports staff_in_post: staff loans need each trust's staff in post by group")
    absent = recent_mean(store, "staff_absent", 3, as_of)
    reported = {o: d for (o, _), (d, _) in in_post.items()}
    fr = frame(store, reported, horizon, start=start, unavailable=scenario.unavailable)
    n, g = len(fr.codes), len(groups)
    available, required = np.zeros((n, g, horizon)), np.zeros((n, g, horizon))
    for i, code in enumerate(fr.codes):
        for j, group in enumerate(groups):
            post = in_post.get((code, f"staff_group={group}"), (fr.start, 0.0))[1]
            away = sum(v for (o, dims), v in absent.items()
                       if o == code and f"staff_group={group}" in dims.split(";") and "reason=all" not in dims)
            available[i, j] = max(0.0, np.floor(post - away))
            required[i, j] = np.ceil(post * (1 - STAFF_ALLOWANCE.get(group, 0.065)) * scenario.demand_factor)
    fr.notes.append("available = staff in post − mean absence of the last 3 reported days; required = staff in "
                    "post less " + ", ".join(f"{STAFF_ALLOWANCE.get(gr, 0.065):.1%} ({gr})" for gr in groups)
                    + " routine absence")
    problem = StaffProblem(graph=fr.graph(k=None, max_km=max_km), start=fr.start, groups=tuple(groups),
                           available=available, required=required, max_loan_share=max_loan_share, max_km=max_km,
                           unavailable=scenario.unavailable)
    return problem, fr.notes


def transfer_problem(store: Store, *, horizon: int = 14, k: int = 10, max_km: float = 80.0,
                     start: date | None = None, scenario: Scenario = BASELINE, safe_occupancy: float = 0.92,
                     los_days: int = 5, demand_level: str = "mean",
                     as_of: datetime | None = None) -> tuple[TransferProblem, list[str]]:
    """Patients: capacity = latest ``ga_beds_open`` × safe occupancy, held flat; occupancy = the forecast of
    ``ga_beds_occupied`` (with earlier approved transfers already in it)."""
    if not 0 < safe_occupancy <= 1:
        raise PlanInputError("safe occupancy is a share between 0 and 1")
    beds = {org: v for (org, _), v in latest(store, "ga_beds_open", as_of).items()}
    fr = frame(store, {o: d for o, (d, _) in beds.items()}, horizon, start=start, unavailable=scenario.unavailable)
    occupied_now = {org: v for (org, _), (_, v) in latest(store, "ga_beds_occupied", as_of).items()}
    occupied = _fill_latest(forecast_grid(store, "ga_beds_occupied", fr, demand_level, as_of, scenario), fr,
                            occupied_now)
    capacity = np.array([beds[c][1] * safe_occupancy for c in fr.codes])
    fr.notes.append(f"capacity: G&A beds open × {safe_occupancy:.0%} safe occupancy, held flat")
    problem = TransferProblem(graph=fr.graph(k=k, max_km=max_km), start=fr.start,
                              capacity=np.repeat(capacity[:, None], horizon, axis=1),
                              occupied=np.maximum(occupied, 0.0), los_days=los_days, max_km=max_km,
                              unavailable=scenario.unavailable)
    return problem, fr.notes

