"""Make a plan of one kind from the store: build the problem, solve it, attach the notes on its inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime

from mutual.planning.equipment import plan_equipment
from mutual.planning.inputs import (
    BASELINE,
    Scenario,
    staff_problem,
    supply_problems,
    transfer_problem,
    ventilator_problem,
)
from mutual.planning.plan import KINDS, Plan, SolveSummary
from mutual.planning.staff import plan_staff
from mutual.planning.supplies import plan_supplies
from mutual.planning.transfers import plan_transfers
from mutual.store.base import Store

Step = Callable[[str], None]


def make_plan(store: Store, kind: str, *, horizon: int = 14, k: int = 10, max_km: float | None = None,
              start: date | None = None, scenario: Scenario = BASELINE, demand_level: str = "mean",
              items: Sequence[str] | None = None, as_of: datetime | None = None,
              time_limit: float | None = 120.0, step: Step = lambda _: None) -> Plan:
    """A plan of ``kind`` (ventilators, supplies, staff or patients); ``step`` hears what is happening."""
    if kind not in KINDS:
        raise ValueError(f"unknown plan kind {kind!r}: {', '.join(KINDS)}")
    if demand_level not in ("mean", "hi80", "hi95"):
        raise ValueError(f"demand level {demand_level!r}: mean, hi80 or hi95")
    step("reading stock, capacity and forecasts")
    if kind == "ventilators":
        vp, notes = ventilator_problem(store, k=k, demand_level=demand_level, horizon=horizon, start=start,
                                       scenario=scenario, as_of=as_of)
        step(f"solving: {len(vp.graph.nodes)} trusts, {vp.graph.num_arcs} links, {horizon} days")
        plan = plan_equipment(vp, time_limit=time_limit)
    elif kind == "supplies":
        problems, notes = supply_problems(store, k=k, items=items, horizon=horizon, start=start, scenario=scenario,
                                          as_of=as_of)
        plans = []
        for sp in problems:
            step(f"solving {sp.item}: {len(sp.graph.nodes)} trusts, {horizon} days")
            plans.append(plan_supplies(sp, time_limit=time_limit))
        plan = merge_plans(plans, [sp.item for sp in problems])
    elif kind == "staff":
        stp, notes = staff_problem(store, max_km=max_km or 50.0, horizon=horizon, start=start, scenario=scenario,
                                   as_of=as_of)
        step(f"solving: {len(stp.graph.nodes)} trusts, {stp.graph.num_arcs} links within {stp.max_km} km")
        plan = plan_staff(stp, time_limit=time_limit)
    else:
        tp, notes = transfer_problem(store, k=k, max_km=max_km or 80.0, demand_level=demand_level, horizon=horizon,
                                     start=start, scenario=scenario, as_of=as_of)
        step(f"solving: {len(tp.graph.nodes)} trusts, {tp.graph.num_arcs} links within {tp.max_km} km")
        plan = plan_transfers(tp, time_limit=time_limit)
    params = {**plan.params, "scenario": scenario.name, "demand_factor": scenario.demand_factor,
              "demand_level": demand_level, "k": k, "as_of": as_of.isoformat() if as_of else None}
    if scenario.unavailable:
        params["unavailable"] = list(scenario.unavailable)
    if scenario != BASELINE:
        what = [f"demand × {scenario.demand_factor:g}"] if scenario.demand_factor != 1 else []
        what += [f"unavailable: {', '.join(scenario.unavailable)}"] if scenario.unavailable else []
        what += [f"delay {scenario.delay_days} days"] if scenario.delay_days is not None else []
        notes = [f"scenario {scenario.name}: {'; '.join(what) or 'as given'}", *notes]
    return replace(plan, params=params, notes=(*notes, *plan.notes))


ADDITIVE_MIN = ("lowest",)
ADDITIVE_MAX = ("highest", "peak")


def merge_plans(plans: Sequence[Plan], labels: Sequence[str]) -> Plan:
    """Several plans of one kind (one per supply item) as one: moves together, totals summed (lowest and highest
    figures taken as such) and also kept per label, solver figures combined."""
    if not plans:
        raise ValueError("nothing to merge")
    if len(plans) == 1:
        return plans[0]

    def combine(key: str, values: list[float]) -> float:
        if key.startswith(ADDITIVE_MIN):
            return min(values)
        if key.startswith(ADDITIVE_MAX):
            return max(values)
        return float(sum(values))

    before: dict[str, float] = {}
    after: dict[str, float] = {}
    for side, target in (("before", before), ("after", after)):
        keys = list(dict.fromkeys(k for p in plans for k in getattr(p, side)))
        for key in keys:
            target[key] = combine(key, [getattr(p, side)[key] for p in plans if key in getattr(p, side)])
        for p, label in zip(plans, labels, strict=True):
            for key, value in getattr(p, side).items():
                target[f"{key}:{label}"] = value
    solves = [p.solve for p in plans]
    objective = sum(s.objective for s in solves)
    bound = sum(s.lp_bound for s in solves)
    solve = SolveSummary(status=next((s.status for s in solves if not s.optimal), solves[0].status),
                         optimal=all(s.optimal for s in solves), objective=objective, lp_bound=bound,
                         gap=(objective - bound) / max(1.0, abs(objective)), seconds=sum(s.seconds for s in solves),
                         method=solves[0].method, variables=sum(s.variables for s in solves),
                         constraints=sum(s.constraints for s in solves))
    first = plans[0]
    return Plan(kind=first.kind, start=first.start, horizon=first.horizon,
                params={**first.params, "items": list(labels)},
                moves=tuple(m for p in plans for m in p.moves), before=before, after=after, solve=solve,
                notes=tuple(n for p in plans for n in p.notes))
