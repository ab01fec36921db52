"""The reusable-equipment model (ventilators, CPAP): who sends how many units to whom, and when.

Hand-made cases say what a plan must do; hypothesis checks that every plan keeps every rule (no trust below its
floor or below zero, the daily cap, units conserved) and that the lean LP has exactly the optimum of the plain
published formulation; the slow test reproduces the published COVIDAnalytics figures.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from mutual.planning.equipment import (
    EquipmentProblem,
    check_equipment,
    equipment_supply,
    plan_equipment,
    shortfall,
    solve_equipment_lp,
)
from mutual.planning.graph import matrix_graph
from mutual.planning.lp import Model
from mutual.planning.plan import Plan

START = date(2021, 1, 4)


def day(n: int) -> date:
    """Day n of the horizon (day 1 is START)."""
    return START + timedelta(days=n - 1)


def pair(*, b_demand_late: float = 7.0, days: int = 8, **kw: Any) -> EquipmentProblem:
    """RAA holds 20 and needs 5 a day; RBB holds 4, needs 2 a day and from day 5 ``b_demand_late``; 100 km."""
    demand = np.array([[5.0] * days, [2.0] * 4 + [b_demand_late] * (days - 4)])
    graph = matrix_graph(["RAA", "RBB"], [[0, 100], [100, 0]])
    return EquipmentProblem(graph=graph, start=START, stock=np.array([20.0, 4.0]), demand=demand, **kw)


def three(**kw: Any) -> EquipmentProblem:
    """RAA and RCC have units to spare, RBB runs short from day 5."""
    demand = np.array([[5.0] * 8, [2.0] * 4 + [9.0] * 4, [3.0] * 8])
    graph = matrix_graph(["RAA", "RBB", "RCC"], [[0, 100, 150], [100, 0, 120], [150, 120, 0]])
    return EquipmentProblem(graph=graph, start=START, stock=np.array([20.0, 4.0, 30.0]), demand=demand, **kw)


def feasible(p: EquipmentProblem, plan: Plan) -> None:
    assert check_equipment(p, plan) == []


# -- what a plan does ------------------------------------------------------------------------------------------


def test_a_spare_trust_ships_exactly_what_the_short_one_needs_to_arrive_when_needed() -> None:
    p = pair()
    plan = plan_equipment(p)
    feasible(p, plan)
    assert plan.before["shortfall"] == 12  # 3 short on each of days 5-8
    assert [(m.src, m.dst, m.quantity, m.send_day, m.arrive_day) for m in plan.moves] == [
        ("RAA", "RBB", 3.0, day(2), day(5))]
    assert plan.after["shortfall"] == 0
    assert plan.after["shipments"] == 1 and plan.after["units_moved"] == 3
    assert plan.after["trusts_short"] == 0 and plan.before["trusts_short"] == 1
    move = plan.moves[0]
    assert move.distance_km == 100
    assert "RBB would be short 12 ventilator-days from 5 Jan" not in move.reason  # day 5 is 8 Jan
    assert "RBB would be short 12 ventilator-days from 8 Jan without moves, 0 with this plan" in move.reason
    assert "RAA keeps at least 17 (floor 16)" in move.reason


def test_the_fractional_lp_gives_the_same_plan_here() -> None:
    p = pair(integer=False)
    plan = plan_equipment(p)
    feasible(p, plan)
    assert plan.solve.method == "lp" and plan.solve.optimal
    assert [(m.quantity, m.send_day) for m in plan.moves] == [(pytest.approx(3.0), day(2))]


def test_a_donor_never_goes_below_its_floor() -> None:
    p = pair(b_demand_late=50.0)
    plan = plan_equipment(p)
    feasible(p, plan)
    supply = equipment_supply(p, plan.moves)
    assert supply[0].min() == 16  # floor(0.8 × 20)
    assert plan.units_moved == 4
    assert plan.after["shortfall"] == plan.before["shortfall"] - 4 * 4


def test_an_unavailable_trust_neither_sends_nor_receives() -> None:
    p = three()
    base = plan_equipment(p)
    assert "RAA" in {m.src for m in base.moves}  # the nearer donor gives all it can spare
    without_a = three(unavailable=("RAA",))
    plan = plan_equipment(without_a)
    feasible(without_a, plan)
    assert plan.moves and all("RAA" not in (m.src, m.dst) for m in plan.moves)
    assert {m.src for m in plan.moves} == {"RCC"}
    assert plan.after["shortfall"] == base.after["shortfall"] == 0  # RCC can cover it alone, further away
    assert plan.solve.objective > base.solve.objective
    nobody = three(unavailable=("RBB",))
    plan = plan_equipment(nobody)
    feasible(nobody, plan)
    assert plan.moves == () and plan.after == plan.before
    assert any("RBB" in note for note in plan.notes)


def test_demand_twenty_percent_higher_leaves_more_shortfall() -> None:
    p = pair(b_demand_late=12.0)  # more than RAA can spare
    higher = EquipmentProblem(graph=p.graph, start=START, stock=p.stock, demand=p.demand * 1.2)
    a, b = plan_equipment(p), plan_equipment(higher)
    feasible(higher, b)
    assert b.before["shortfall"] > a.before["shortfall"]
    assert b.after["shortfall"] > a.after["shortfall"]


def test_a_five_day_delay_shifts_arrivals_and_misses_the_first_short_day() -> None:
    p = pair(delay=5, days=10)
    plan = plan_equipment(p)
    feasible(p, plan)
    assert plan.moves and all(m.arrive_day - m.send_day == timedelta(days=5) for m in plan.moves)
    assert min(m.arrive_day for m in plan.moves) == day(6)  # sent on day 1 at the earliest
    assert plan.after["shortfall"] == 3  # day 5 stays short
    assert plan_equipment(pair(days=10)).after["shortfall"] == 0


@pytest.mark.parametrize("delay", [2, 0])
def test_units_received_can_be_passed_on_to_a_trust_beyond_the_sender(delay: int) -> None:
    # RAA links only to RBB, RBB to RAA and RCC: RAA's spare reaches RCC through RBB, which holds nothing itself
    graph = matrix_graph(["RAA", "RBB", "RCC"], [[0, 60, 200], [60, 0, 50], [200, 50, 0]], k=1)
    assert graph.num_arcs == 4
    demand = np.array([[5.0] * 10, [0.0] * 10, [2.0] * 7 + [7.0] * 3])
    p = EquipmentProblem(graph=graph, start=START, stock=np.array([20.0, 0.0, 4.0]), demand=demand, delay=delay)
    plan = plan_equipment(p)
    feasible(p, plan)
    assert [(m.src, m.dst, m.quantity) for m in plan.moves] == [("RAA", "RBB", 3.0), ("RBB", "RCC", 3.0)]
    if delay:
        assert [(m.send_day, m.arrive_day) for m in plan.moves] == [(day(4), day(6)), (day(6), day(8))]
        assert plan.moves[0].reason.startswith("RBB passes units on")
    assert plan.after["shortfall"] == 0
    lp = EquipmentProblem(**{**p.__dict__, "integer": False})
    assert solve_equipment_lp(lp).objective == pytest.approx(plain_published_lp(lp))


def test_nothing_moves_when_the_horizon_is_shorter_than_the_delay() -> None:
    p = EquipmentProblem(graph=pair().graph, start=START, stock=np.array([20.0, 4.0]),
                         demand=np.array([[5.0, 5.0, 5.0], [9.0, 9.0, 9.0]]))
    plan = plan_equipment(p)
    assert plan.moves == () and plan.solve.optimal and plan.after == plan.before
    assert plan.before["shortfall"] == 15


def test_the_daily_cap_spreads_shipments_over_days() -> None:
    p = pair(max_ship_per_day=1.0)
    plan = plan_equipment(p)
    feasible(p, plan)
    sends: dict[date, float] = {}
    for m in plan.moves:
        sends[m.send_day] = sends.get(m.send_day, 0.0) + m.quantity
    assert max(sends.values()) == 1 and plan.units_moved == 3
    # one unit a day from day 1 reaches RBB on days 4, 5 and 6: day 5 is 1 short
    assert plan.after["shortfall"] == 1
    lp = solve_equipment_lp(pair(max_ship_per_day=1.0, integer=False))
    assert lp.optimal and lp.rounds == 2  # the uncapped plan broke the cap, so the capped LP was solved


def test_the_rounded_plan_reports_its_gap_to_the_lp_bound() -> None:
    p = three(keep_share=0.75)
    rounded = plan_equipment(p, method="lp + rounding")
    mip = plan_equipment(p, method="mip")
    lp = plan_equipment(EquipmentProblem(graph=p.graph, start=START, stock=p.stock, demand=p.demand,
                                         keep_share=0.75, integer=False))
    for plan in (rounded, mip):
        feasible(p, plan)
        assert all(m.quantity == round(m.quantity) for m in plan.moves)
        assert plan.solve.lp_bound <= plan.solve.objective + 1e-9
        assert plan.solve.gap == pytest.approx((plan.solve.objective - plan.solve.lp_bound)
                                               / max(1.0, plan.solve.objective))
    assert rounded.solve.method == "lp + rounding" and mip.solve.method == "mip" and mip.solve.optimal
    assert lp.solve.objective <= mip.solve.objective + 1e-9 <= rounded.solve.objective + 2e-9


def test_shortfall_is_the_realised_unit_days_short() -> None:
    p = pair()
    assert shortfall(p, np.broadcast_to(p.stock[:, None], p.demand.shape)) == 12
    with pytest.raises(ValueError, match="shape"):
        shortfall(p, np.zeros((2, 3)))


@pytest.mark.parametrize(("change", "message"), [
    ({"stock": np.array([20.0, -1.0])}, "stock is negative for RBB"),
    ({"stock": np.array([20.0])}, "stock has shape"),
    ({"demand": np.ones((3, 8))}, "demand has shape"),
    ({"unavailable": ("RZZ",)}, "not in the graph: RZZ"),
    ({"keep_share": 1.5}, "keep_share"),
    ({"rho": 2.0}, "rho"),
    ({"delay": -1}, "delay"),
])
def test_bad_input_is_named(change: dict[str, Any], message: str) -> None:
    p = pair()
    fields = {"graph": p.graph, "start": START, "stock": p.stock, "demand": p.demand, **change}
    with pytest.raises(ValueError, match=message):
        plan_equipment(EquipmentProblem(**fields))


def test_check_names_what_a_tampered_plan_breaks() -> None:
    p = pair()
    plan = plan_equipment(p)
    move = plan.moves[0]
    greedy = type(move)(**{**move.__dict__, "quantity": 10.0})
    bad = Plan(kind=plan.kind, start=plan.start, horizon=plan.horizon, params=plan.params, moves=(greedy,),
               before=plan.before, after=plan.after, solve=plan.solve)
    problems = check_equipment(p, bad)
    assert any("below its floor of 16" in s for s in problems)
    assert any("the moves give" in s for s in problems)  # stated totals no longer match


# -- every plan keeps every rule (hypothesis) ------------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn) -> EquipmentProblem:
    n = draw(st.integers(2, 5))
    days = draw(st.integers(1, 9))
    codes = [f"T{i}" for i in range(n)]
    dist = np.array(draw(st.lists(st.integers(0, 300), min_size=n * n, max_size=n * n)), dtype=float).reshape(n, n)
    dist = dist + dist.T
    k = draw(st.one_of(st.none(), st.integers(1, n - 1)))
    stock = np.array(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)), dtype=float)
    if draw(st.booleans()):
        stock = stock + 0.5  # fractional base stock, as b = stock × (1 − u) gives
    demand = np.array(draw(st.lists(st.integers(0, 25), min_size=n * days, max_size=n * days)),
                      dtype=float).reshape(n, days)
    unavailable = tuple(c for c in codes if draw(st.integers(0, 5)) == 0)
    return EquipmentProblem(
        graph=matrix_graph(codes, dist, k=k), start=START, stock=stock, demand=demand,
        delay=draw(st.integers(0, 3)), keep_share=draw(st.sampled_from([0.0, 0.5, 0.8, 1.0])),
        max_ship_per_day=draw(st.sampled_from([1.0, 2.0, 5.0, 3000.0, math.inf])),
        alpha=draw(st.sampled_from([0.0, 0.1])), rho=draw(st.sampled_from([0.0, 0.25, 1.0])),
        lam=draw(st.sampled_from([0.0, 0.1])), distance_offset=draw(st.sampled_from([0.0, 10.0])),
        integer=draw(st.booleans()), unavailable=unavailable)


@given(problems(), st.sampled_from([None, "lp + rounding", "mip"]))
@settings(max_examples=80, deadline=None)
def test_every_plan_keeps_every_rule(p: EquipmentProblem, method: str | None) -> None:
    plan = plan_equipment(p, method=method if p.integer else None)
    assert check_equipment(p, plan) == []
    supply = equipment_supply(p, plan.moves)
    floor = np.floor(np.round(p.keep_share * p.stock, 9))
    assert (supply >= -1e-9).all()
    assert (supply >= floor[:, None] - 1e-6).all()
    assert supply[:, -1].sum() == pytest.approx(p.stock.sum())  # every unit sent has arrived somewhere
    sent: dict[tuple[str, date], float] = {}
    for m in plan.moves:
        assert m.src not in p.unavailable and m.dst not in p.unavailable
        assert m.quantity > 0 and m.arrive_day - m.send_day == timedelta(days=p.delay)
        assert not p.integer or m.quantity == round(m.quantity)
        sent[(m.src, m.send_day)] = sent.get((m.src, m.send_day), 0.0) + m.quantity
    assert all(v <= p.max_ship_per_day + 1e-6 for v in sent.values())
    assert plan.after["shortfall"] == pytest.approx(shortfall(p, supply))
    if not math.isnan(plan.solve.lp_bound):
        assert plan.solve.lp_bound <= plan.solve.objective + 1e-6 * max(1.0, plan.solve.objective)


def plain_published_lp(p: EquipmentProblem) -> float:
    """The published formulation as written: every arc every day (arrivals after the horizon allowed), supply,
    shortfall and buffer variables for every trust-day, a cap row per trust-day."""
    g = p.graph.without(p.unavailable)
    n, days, delay = len(g.nodes), p.demand.shape[1], p.delay
    floor = np.floor(np.round(p.keep_share * p.stock, 9))
    m = Model()
    cost = p.lam * (p.distance_scale * g.km + p.distance_offset)
    ship = m.add_vars((g.num_arcs, days), cost=np.repeat(cost[:, None], days, axis=1))
    s = m.add_vars((n, days), lower=np.repeat(floor[:, None], days, axis=1))
    short = m.add_vars((n, days), cost=1.0)
    buffer = m.add_vars((n, days), cost=p.rho)
    rows, cols, vals = [], [], []
    for i in range(n):
        for d in range(days):
            r = i * days + d
            rows += [r]
            cols += [s[i, d]]
            vals += [1.0]
            if d:
                rows += [r]
                cols += [s[i, d - 1]]
                vals += [-1.0]
            for a in np.flatnonzero(g.src == i):
                rows += [r]
                cols += [ship[a, d]]
                vals += [1.0]
            for a in np.flatnonzero(g.dst == i):
                if d - delay >= 0:
                    rows += [r]
                    cols += [ship[a, d - delay]]
                    vals += [-1.0]
    rhs = np.zeros((n, days))
    rhs[:, 0] = p.stock
    m.add_constraints(n * days, rows, cols, vals, lower=rhs.ravel(), upper=rhs.ravel())
    if math.isfinite(p.max_ship_per_day) and g.num_arcs:
        cap_rows = (g.src[:, None] * days + np.arange(days)[None, :]).ravel()
        m.add_constraints(n * days, cap_rows, ship.ravel(), 1.0, upper=p.max_ship_per_day)
    idx = np.arange(n * days)
    m.add_constraints(n * days, np.r_[idx, idx], np.r_[short.ravel(), s.ravel()], 1.0, lower=p.demand.ravel())
    m.add_constraints(n * days, np.r_[idx, idx, idx], np.r_[short.ravel(), buffer.ravel(), s.ravel()], 1.0,
                      lower=((1 + p.alpha) * p.demand).ravel())
    sol = m.solve()
    assert sol.optimal
    return sol.objective


@given(problems())
@settings(max_examples=60, deadline=None)
def test_the_lean_lp_has_the_optimum_of_the_plain_published_lp(p: EquipmentProblem) -> None:
    p = EquipmentProblem(**{**p.__dict__, "integer": False})
    lean = solve_equipment_lp(p)
    assert lean.optimal
    assert lean.objective == pytest.approx(plain_published_lp(p), rel=1e-7, abs=1e-6)


# -- the published instance -------------------------------------------------------------------------------------


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("covidanalytics_benchmark", ROOT / "benchmarks" / "covidanalytics.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_published_covidanalytics_figures_are_reproduced(shared_data: Path) -> None:
    data = shared_data / "covidanalytics-ventilators"
    if not (data / "AllStates-2020_04_01.csv").is_file():
        pytest.skip("covidanalytics-ventilators is not on this machine")
    bench = _benchmark()
    inst = bench.load_instance(data)
    assert inst.demand.shape == (50, 126) and inst.demand.sum() == 1_062_612 and inst.stock.sum() == 65_798
    for u, expected in ((0.1, 118_403.6), (0.3, 158_482.3), (0.5, 224_672.0)):
        plan, _ = bench.solve(inst, u, 1.0, integer=True)
        assert plan.moves == ()
        assert plan.after["shortfall"] == pytest.approx(expected, abs=0.1)
    plan, _ = bench.solve(inst, 0.1, 0.8, integer=False)
    assert plan.solve.optimal and plan.solve.seconds < 5
    assert plan.after["shortfall"] == pytest.approx(15_364.3, rel=0.02)
    rounded, _ = bench.solve(inst, 0.1, 0.8, integer=True)
    assert rounded.after["shortfall"] == pytest.approx(15_364.3, rel=0.02) and rounded.solve.gap < 0.01
