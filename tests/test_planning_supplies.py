"""Consumable supplies: plans that share stock so no trust runs below its minimum days of supply, never robbing
a donor of what it needs, and honest about what they achieve."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.planning.graph import matrix_graph
from mutual.planning.plan import Move
from mutual.planning.supplies import (
    SupplyProblem,
    check_supplies,
    days_of_supply,
    plan_supplies,
    supply_stock,
)

START = date(2021, 1, 11)


def problem(stock: list[float], usage: list[list[float]] | list[float], *, days: int = 10,
            distance: list[list[float]] | None = None, deliveries: np.ndarray | None = None,
            **kw: object) -> SupplyProblem:
    """Trusts RA, RB, ... ; ``usage`` per trust (a number repeated every day, or a list of days)."""
    n = len(stock)
    nodes = tuple(f"R{chr(65 + i)}" for i in range(n))
    if distance is None:
        distance = [[abs(i - j) * 10.0 for j in range(n)] for i in range(n)]
    use = np.array([[u] * days if np.isscalar(u) else u for u in usage], dtype=float)
    return SupplyProblem(graph=matrix_graph(nodes, distance), start=START, item="gloves",
                         stock=np.array(stock, dtype=float), usage=use,
                         deliveries=np.zeros_like(use) if deliveries is None else deliveries, **kw)


def day(d: int) -> date:
    return START + timedelta(days=d)


# -- what a plan does -------------------------------------------------------------------------------------------


def test_a_trust_about_to_run_out_is_supplied_by_a_neighbour_with_spare() -> None:
    p = problem([20, 400], [10, 10])
    plan = plan_supplies(p)

    assert check_supplies(p, plan) == []
    assert plan.kind == "supplies" and plan.horizon == 10 and plan.start == START
    assert {(m.src, m.dst) for m in plan.moves} == {("RB", "RA")}
    assert plan.before["unmet_usage"] == 80  # RA runs out on day 3
    assert plan.after["unmet_usage"] == 0
    assert plan.after["trust_days_below_min"] < plan.before["trust_days_below_min"]
    assert plan.after["units_moved"] == sum(m.quantity for m in plan.moves) > 0
    assert plan.after["shipments"] == len(plan.moves)
    first = plan.moves[0]
    assert first.resource == "gloves" and first.distance_km == 10
    assert "RA" in first.reason and "RB" in first.reason and "days of supply" in first.reason


def test_shipments_arrive_after_the_delay_and_within_the_horizon() -> None:
    p = problem([20, 400], [10, 10], delay=3)
    plan = plan_supplies(p)
    assert plan.moves
    for m in plan.moves:
        assert (m.arrive_day - m.send_day).days == 3
        assert m.arrive_day <= day(9)
    # the first two days cannot be helped: RA holds 1 day on day 1 and nothing by day 2 whatever is sent
    stock = supply_stock(p, plan.moves)
    assert stock[0, 1] == 0


def test_a_donor_keeps_its_own_minimum_days_of_supply() -> None:
    # RB holds 5 days of supply at the end of day 1 and needs 3: at most about 2 days' worth can go
    p = problem([0, 60], [10, 10], days=6, min_days=3, target_days=3)
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    dos = days_of_supply(p, supply_stock(p, plan.moves))
    before = days_of_supply(p, supply_stock(p, []))
    donor_floor = np.minimum(3.0, before[1])
    assert (dos[1] >= donor_floor - 1e-9).all()
    assert plan.after["unmet_usage"] <= plan.before["unmet_usage"]


def test_a_donor_sends_at_most_its_share_of_stock() -> None:
    p = problem([0, 1000], [50, 1], days=8, max_share=0.1)
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    assert sum(m.quantity for m in plan.moves if m.src == "RB") <= 100


def test_a_trust_with_nothing_spare_sends_nothing() -> None:
    # RB starts with 5 days and uses 1 a day: sending anything would take it below 3 days on day 2
    p = problem([0, 50], [10, 10], days=8)
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    assert plan.moves == ()
    assert plan.after == plan.before


def test_nothing_moves_when_every_trust_has_enough() -> None:
    p = problem([100, 100, 100], [1, 1, 1])
    plan = plan_supplies(p)
    assert plan.moves == ()
    assert plan.after == plan.before
    assert plan.before["trust_days_below_min"] == 0


def test_an_unavailable_trust_neither_sends_nor_receives() -> None:
    p = problem([20, 400, 400], [10, 10, 10], unavailable=("RB",))
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    assert all("RB" not in (m.src, m.dst) for m in plan.moves)
    assert {m.src for m in plan.moves} == {"RC"}


def test_the_neighbour_graph_decides_who_may_send() -> None:
    inf = 1e9
    far = [[0, inf, 10], [inf, 0, 10], [10, 10, 0]]
    p = dataclasses.replace(problem([20, 400, 30], [10, 10, 10]),
                            graph=matrix_graph(("RA", "RB", "RC"), far, k=1))  # RA–RC and RB–RC only
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    assert ("RB", "RA") not in {(m.src, m.dst) for m in plan.moves}


def test_deliveries_count_as_stock_on_the_day_they_arrive() -> None:
    deliveries = np.zeros((2, 10))
    deliveries[0, 2] = 500
    p = problem([25, 400], [10, 10], deliveries=deliveries)
    stock = supply_stock(p, [])
    assert stock[0, :3].tolist() == [15, 5, 495]
    assert plan_supplies(p).before["unmet_usage"] == 0


def test_whole_units_and_the_cost_of_rounding_are_reported() -> None:
    p = problem([7, 333, 101, 0], [[3.3] * 10, [4.1] * 10, [2.7] * 10, [5.2] * 10])
    for method in ("lp", "mip"):
        plan = plan_supplies(p, method=method)
        assert check_supplies(p, plan) == []
        assert all(m.quantity == int(m.quantity) for m in plan.moves)
        s = plan.solve
        assert s.lp_bound <= s.objective + 1e-6
        assert s.gap == pytest.approx(max(0.0, (s.objective - s.lp_bound) / max(1.0, abs(s.objective))))
        assert s.variables > 0 and s.constraints > 0 and s.seconds >= 0
        assert s.method in ("lp + rounding", "mip")


def test_divisible_supplies_move_in_fractions() -> None:
    p = problem([2.5, 400], [1.7, 1.7], integer=False)
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    assert plan.solve.method == "lp" and plan.solve.optimal
    assert plan.after["unmet_usage"] == pytest.approx(0.0, abs=1e-6)


def test_days_of_supply_is_stock_over_that_days_usage() -> None:
    p = problem([10, 10], [[2.0, 0.0, 5.0], [1.0, 1.0, 1.0]], days=3)
    dos = days_of_supply(p, np.array([[8.0, 8.0, 3.0], [9.0, 8.0, 7.0]]))
    assert dos[0].tolist() == [4.0, np.inf, 0.6]
    assert dos[1].tolist() == [9.0, 8.0, 7.0]


def test_totals_report_the_lowest_and_highest_days_of_supply() -> None:
    p = problem([20, 400], [10, 10], days=3)
    before = plan_supplies(p).before
    assert before["lowest_days_of_supply"] == 0.0  # RA is empty on day 2
    assert before["highest_days_of_supply"] == 39.0  # RB: 390 units, 10 a day, end of day 1


def test_no_day_left_for_a_shipment_to_arrive_gives_an_empty_plan() -> None:
    p = problem([0, 100], [10, 10], days=2, delay=2)
    plan = plan_supplies(p)
    assert plan.moves == () and plan.solve.status == "nothing to move"
    assert any("delay" in n for n in plan.notes)


# -- the check finds what is wrong ----------------------------------------------------------------------------


def test_the_check_names_every_broken_rule() -> None:
    p = problem([20, 400, 40], [10, 10, 10])
    plan = plan_supplies(p)
    greedy = Move("gloves", "RC", "RA", 39, day(0), day(1), 10, "takes everything RC has")
    half = Move("gloves", "RB", "RA", 2.5, day(0), day(1), 10, "half a box")
    slow = Move("gloves", "RB", "RA", 1, day(0), day(3), 10, "wrong delay")
    late = Move("gloves", "RB", "RA", 1, day(9), day(10), 10, "arrives after the horizon")
    unknown = Move("gloves", "RB", "RZ", 1, day(0), day(1), 10, "nobody")
    bad = dataclasses.replace(plan, moves=(greedy, half, slow, late, unknown))
    problems = "\n".join(check_supplies(p, bad))
    assert "RC" in problems and "floor" in problems
    assert "more than 0.5 of its stock" in problems
    assert "whole number" in problems
    assert "not 1 days after" in problems
    assert "after the horizon" in problems
    assert "unknown trust RZ" in problems
    assert "totals after" in problems


def test_a_move_along_a_missing_link_is_refused() -> None:
    # each trust linked to its nearest only: RA–RB and RB–RC, no RA–RC
    graph = matrix_graph(("RA", "RB", "RC"), [[0, 10, 20], [10, 0, 12], [20, 12, 0]], k=1)
    p = dataclasses.replace(problem([20, 400, 30], [10, 10, 10]), graph=graph)
    plan = plan_supplies(p)
    assert check_supplies(p, plan) == []
    bad = dataclasses.replace(plan, moves=(Move("gloves", "RC", "RA", 1, day(0), day(1), 20, "x"),))
    assert any("no usable link" in s for s in check_supplies(p, bad))


# -- bad input ------------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="stock of RB is negative"):
        problem([10, -1], [1, 1])
    with pytest.raises(ValueError, match="usage of RA on 2021-01-12 is negative"):
        problem([10, 10], [[1, -2, 1], [1, 1, 1]], days=3)
    with pytest.raises(ValueError, match="deliveries has shape"):
        problem([10, 10], [1, 1], deliveries=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="stock has shape"):
        dataclasses.replace(problem([10, 10], [1, 1]), stock=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="unavailable names unknown trusts: RQ"):
        problem([10, 10], [1, 1], unavailable=("RQ",))
    with pytest.raises(ValueError, match="missing or infinite"):
        problem([10, float("nan")], [1, 1])
    with pytest.raises(ValueError, match="target_days"):
        problem([10, 10], [1, 1], min_days=5, target_days=2)
    with pytest.raises(ValueError, match="method"):
        plan_supplies(problem([10, 10], [1, 1]), method="guess")
    with pytest.raises(ValueError, match="unknown trust RZ"):
        supply_stock(problem([10, 10], [1, 1]), [Move("gloves", "RA", "RZ", 1, day(0), day(1), 1, "")])


# -- every plan is feasible -----------------------------------------------------------------------------------


@st.composite
def random_problems(draw: st.DrawFn) -> SupplyProblem:
    n = draw(st.integers(2, 6))
    days = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pos = rng.uniform(0, 100, (n, 2))
    distance = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    nodes = tuple(f"T{i}" for i in range(n))
    usage = np.round(rng.gamma(2, 5, (n, 1)) * rng.uniform(0, 2, (n, days)), 1)
    usage[rng.random((n, days)) < 0.1] = 0
    stock = np.round(rng.gamma(1, 40, n))
    deliveries = np.where(rng.random((n, days)) < 0.15, np.round(rng.uniform(0, 60, (n, days))), 0.0)
    k = draw(st.sampled_from([None, 1, 2]))
    return SupplyProblem(graph=matrix_graph(nodes, distance, k=k), start=START, item="oxygen", stock=stock,
                         usage=usage, deliveries=deliveries, min_days=draw(st.sampled_from([0.0, 1.0, 3.0])),
                         target_days=draw(st.sampled_from([3.0, 7.0])), delay=draw(st.integers(0, 3)),
                         max_share=draw(st.sampled_from([0.1, 0.5, 1.0])), integer=draw(st.booleans()),
                         unavailable=draw(st.sampled_from([(), ("T1",)])))


@settings(max_examples=60, deadline=None)
@given(random_problems(), st.sampled_from(["auto", "lp"]))
def test_every_plan_is_feasible(p: SupplyProblem, method: str) -> None:
    plan = plan_supplies(p, method=method)
    assert check_supplies(p, plan) == []

    index = p.graph.index()
    n, D = p.usage.shape
    stock = supply_stock(p, plan.moves)
    before = supply_stock(p, [])
    tol = 1e-6 * max(1.0, p.stock.max(), p.usage.max(), p.deliveries.max())
    assert (stock >= -tol).all(), "stock never negative"
    sent = np.zeros(n)
    for m in plan.moves:
        sent[index[m.src]] += m.quantity
        assert m.quantity > 0
        assert (m.arrive_day - m.send_day).days == p.delay
        assert (m.arrive_day - p.start).days < D
        assert not {m.src, m.dst} & set(p.unavailable)
        if p.integer:
            assert m.quantity == int(m.quantity)
    assert (sent <= p.max_share * p.stock + tol).all(), "donor caps"
    floor = np.minimum(p.min_days * p.usage, before)
    assert (stock >= floor - tol).all(), "no trust is pushed below its minimum days of supply"
    unmet_after = plan.after["unmet_usage"]
    assert unmet_after <= plan.before["unmet_usage"] + tol
    held = p.stock.sum() + p.deliveries.sum() - (p.usage.sum() - unmet_after)
    assert stock[:, -1].sum() == pytest.approx(held, abs=tol * n * D), "units are conserved"
    assert plan.solve.lp_bound <= plan.solve.objective + 1e-6 * max(1.0, abs(plan.solve.objective))
