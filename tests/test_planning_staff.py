"""Staff loans: whole people lent for runs of days to nearby trusts that are short, never by a trust that needs
them itself, never beyond the lender's share or the travel limit."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.planning.graph import matrix_graph
from mutual.planning.plan import Move
from mutual.planning.staff import StaffProblem, check_staff, plan_staff, staff_cover

START = date(2021, 1, 14)


def problem(available: list[list[float]] | np.ndarray, required: list[list[float]] | np.ndarray, *,
            distance: list[list[float]] | None = None, groups: tuple[str, ...] = ("cc_nurse",),
            **kw: object) -> StaffProblem:
    """Trusts RA, RB, ... in a row 10 km apart unless ``distance`` is given; ``available`` and ``required`` are
    ``[trust][day]`` for one group, or ``[trust, group, day]`` arrays."""
    a, r = np.asarray(available, dtype=float), np.asarray(required, dtype=float)
    if a.ndim == 2:
        a, r = a[:, None, :], r[:, None, :]
    n = a.shape[0]
    nodes = tuple(f"R{chr(65 + i)}" for i in range(n))
    if distance is None:
        distance = [[abs(i - j) * 10.0 for j in range(n)] for i in range(n)]
    return StaffProblem(graph=matrix_graph(nodes, distance), start=START, groups=groups, available=a, required=r,
                        **kw)


def day(d: int) -> date:
    return START + timedelta(days=d)


# -- what a plan does -------------------------------------------------------------------------------------------


def test_a_short_trust_borrows_from_a_neighbour_with_spare() -> None:
    # RA needs 12 nurses and has 10 for five days; RB has 40 and needs 30
    p = problem([[10] * 5, [40] * 5], [[12] * 5, [30] * 5])
    plan = plan_staff(p)

    assert check_staff(p, plan) == []
    assert plan.kind == "staff" and plan.horizon == 5
    assert plan.before["uncovered_staff_days"] == 10
    assert plan.after["uncovered_staff_days"] == 0
    assert plan.after["uncovered_staff_days:cc_nurse"] == 0
    assert plan.after["staff_days_loaned"] == 10
    (loan,) = plan.moves  # one loan block: 2 nurses for the five days
    assert (loan.resource, loan.src, loan.dst, loan.quantity) == ("cc_nurse", "RB", "RA", 2)
    assert (loan.send_day, loan.arrive_day) == (day(0), day(4))
    assert loan.distance_km == 10
    assert "2 cc_nurse from RB to RA for 14–18 Jan" in loan.reason
    assert "covers 10 of RA's 10 cc_nurse-days short" in loan.reason
    assert plan.after["loans"] == 1


def test_a_lender_never_lends_what_it_needs_or_more_than_its_share() -> None:
    # RB has 3 spare but its 10 % share of 40 is 4; RC has 1 spare
    p = problem([[0] * 3, [40] * 3, [21] * 3], [[10] * 3, [37] * 3, [20] * 3], max_km=None)
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    cover = staff_cover(p, plan.moves)
    assert (cover[1:, 0] >= p.required[1:, 0]).all()
    assert plan.after["uncovered_staff_days"] == (10 - 3 - 1) * 3


def test_the_share_cap_binds_when_the_lender_has_plenty() -> None:
    p = problem([[0] * 2, [100] * 2], [[50] * 2, [10] * 2], max_loan_share=0.1)
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    assert staff_cover(p, plan.moves)[0, 0].tolist() == [10, 10]


def test_a_trust_that_is_short_itself_lends_nobody() -> None:
    p = problem([[5] * 3, [9] * 3], [[10] * 3, [10] * 3])
    plan = plan_staff(p)
    assert plan.moves == ()
    assert plan.after == plan.before
    assert any("nothing to lend" in n for n in plan.notes)


def test_loans_go_only_as_far_as_max_km() -> None:
    # RC has spare but is 60 km from RA; RB is 30 km away but has none
    distance = [[0, 30, 60], [30, 0, 30], [60, 30, 0]]
    p = problem([[8] * 3, [10] * 3, [50] * 3], [[10] * 3, [10] * 3, [20] * 3], distance=distance, max_km=50)
    plan = plan_staff(p)
    assert plan.moves == ()
    wider = dataclasses.replace(p, max_km=70)
    plan = plan_staff(wider)
    assert check_staff(wider, plan) == []
    assert {(m.src, m.dst) for m in plan.moves} == {("RC", "RA")}
    assert all(m.distance_km <= 70 for m in plan.moves)


def test_loans_last_at_least_min_loan_days() -> None:
    # RA is short on days 2 and 5 only; with three-day loans the nurse stays through the gap
    available = [[10, 10, 9, 10, 10, 9, 10], [30] * 7]
    required = [[10] * 7, [20] * 7]
    daily = plan_staff(problem(available, required))
    assert sorted((m.send_day, m.arrive_day) for m in daily.moves) == [(day(2), day(2)), (day(5), day(5))]
    p = problem(available, required, min_loan_days=3)
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    assert plan.after["uncovered_staff_days"] == 0
    for m in plan.moves:
        assert (m.arrive_day - m.send_day).days + 1 >= 3 or m.arrive_day == day(6)


def test_a_loan_may_be_cut_short_only_by_the_end_of_the_horizon() -> None:
    p = problem([[10, 10, 10, 9], [30] * 4], [[10] * 4, [20] * 4], min_loan_days=3)
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    assert [(m.send_day, m.arrive_day) for m in plan.moves] == [(day(3), day(3))]


def test_each_staff_group_is_planned_and_totalled_on_its_own() -> None:
    available = np.array([[[10] * 2, [4] * 2], [[20] * 2, [9] * 2]], dtype=float)
    required = np.array([[[11] * 2, [6] * 2], [[10] * 2, [9] * 2]], dtype=float)
    p = problem(available, required, groups=("cc_nurse", "doctor"))
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    assert plan.before["uncovered_staff_days:cc_nurse"] == 2 and plan.before["uncovered_staff_days:doctor"] == 4
    assert plan.after["uncovered_staff_days:cc_nurse"] == 0  # RB lends 1 nurse
    assert plan.after["uncovered_staff_days:doctor"] == 4  # RB has no spare doctor
    assert {m.resource for m in plan.moves} == {"cc_nurse"}


def test_a_fractional_requirement_is_covered_by_a_whole_person() -> None:
    # one nurse per two ventilated patients: 5 patients need 2.5 nurses
    p = problem([[2] * 3, [30] * 3], [[2.5] * 3, [20] * 3])
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    assert [m.quantity for m in plan.moves] == [1]
    assert plan.after["uncovered_staff_days"] == 0


def test_whole_people_by_lp_and_rounding_and_by_mip() -> None:
    rng = np.random.default_rng(3)
    available = np.round(rng.uniform(5, 30, (6, 2, 5)))
    required = np.round(2 * rng.uniform(5, 30, (6, 2, 5))) / 2
    p = problem(available, required, groups=("cc_nurse", "ahp"), max_km=None, min_loan_days=2)
    for method in ("lp", "mip"):
        plan = plan_staff(p, method=method)
        assert check_staff(p, plan) == []
        assert all(m.quantity == int(m.quantity) for m in plan.moves)
        assert plan.solve.lp_bound <= plan.solve.objective + 1e-6
    assert plan.solve.method in ("mip", "lp + rounding")


def test_an_unavailable_trust_neither_lends_nor_borrows() -> None:
    p = problem([[10] * 2, [30] * 2, [30] * 2], [[12] * 2, [20] * 2, [20] * 2], unavailable=("RB",))
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    assert {m.src for m in plan.moves} == {"RC"}


# -- the check finds what is wrong ----------------------------------------------------------------------------


def test_the_check_names_every_broken_rule() -> None:
    p = problem([[10] * 4, [40] * 4, [12] * 4], [[12] * 4, [30] * 4, [12] * 4], min_loan_days=2)
    plan = plan_staff(p)
    assert check_staff(p, plan) == []
    too_many = Move("cc_nurse", "RB", "RA", 6, day(0), day(1), 10, "more than 10 %")
    needy = Move("cc_nurse", "RC", "RA", 1, day(0), day(1), 20, "RC needs all of its own")
    short = Move("cc_nurse", "RB", "RA", 1, day(1), day(1), 10, "one day only")
    half = Move("cc_nurse", "RB", "RA", 0.5, day(2), day(3), 10, "half a nurse")
    alien = Move("porter", "RB", "RA", 1, day(0), day(1), 10, "no such group")
    outside = Move("cc_nurse", "RB", "RA", 1, day(3), day(5), 10, "past the horizon")
    bad = dataclasses.replace(plan, moves=(too_many, needy, short, half, alien, outside))
    problems = "\n".join(check_staff(p, bad))
    assert "lends more than 0.1 of its staff" in problems
    assert "RC cc_nurse on 2021-01-14: lends staff it needs itself" in problems
    assert "lasts 1 days, less than 2" in problems
    assert "whole number of people" in problems
    assert "unknown staff group porter" in problems
    assert "inside the horizon" in problems
    assert "totals after" in problems


def test_a_loan_beyond_max_km_is_refused() -> None:
    distance = [[0, 30, 60], [30, 0, 30], [60, 30, 0]]
    p = problem([[8] * 3, [10] * 3, [50] * 3], [[10] * 3, [10] * 3, [20] * 3], distance=distance, max_km=50)
    plan = plan_staff(p)
    far = Move("cc_nurse", "RC", "RA", 1, day(0), day(0), 60, "too far")
    assert any("within 50" in s for s in check_staff(p, dataclasses.replace(plan, moves=(far,))))


# -- bad input ------------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="available cc_nurse at RB on 2021-01-15 is negative"):
        problem([[1, 1], [1, -1]], [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="required has shape"):
        problem(np.ones((2, 1, 3)), np.ones((2, 1, 2)))
    with pytest.raises(ValueError, match="available has shape"):
        problem(np.ones((2, 2, 3)), np.ones((2, 2, 3)))  # two groups of numbers, one group named
    with pytest.raises(ValueError, match="unique"):
        problem(np.ones((2, 2, 3)), np.ones((2, 2, 3)), groups=("doctor", "doctor"))
    with pytest.raises(ValueError, match="min_loan_days"):
        problem([[1], [1]], [[1], [1]], min_loan_days=0)
    with pytest.raises(ValueError, match="max_loan_share"):
        problem([[1], [1]], [[1], [1]], max_loan_share=1.5)
    with pytest.raises(ValueError, match="unknown trusts: RZ"):
        problem([[1], [1]], [[1], [1]], unavailable=("RZ",))
    with pytest.raises(ValueError, match="unknown trust RZ"):
        staff_cover(problem([[1], [1]], [[1], [1]]), [Move("cc_nurse", "RA", "RZ", 1, day(0), day(0), 1, "")])


# -- every plan is feasible -----------------------------------------------------------------------------------


@st.composite
def random_problems(draw: st.DrawFn) -> StaffProblem:
    n = draw(st.integers(2, 6))
    G = draw(st.integers(1, 2))
    days = draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pos = rng.uniform(0, 80, (n, 2))
    distance = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    head = rng.gamma(2, 8, (n, G, 1))
    available = np.round(head * rng.uniform(0.6, 1.0, (n, G, days)))
    required = np.round(2 * head * rng.uniform(0.3, 1.2, (n, G, days))) / 2
    graph = matrix_graph(tuple(f"T{i}" for i in range(n)), distance, k=draw(st.sampled_from([None, 2])))
    return StaffProblem(graph=graph, start=START, groups=("cc_nurse", "doctor")[:G], available=available,
                        required=required,
                        max_loan_share=draw(st.sampled_from([0.1, 0.3, 1.0])),
                        max_km=draw(st.sampled_from([None, 30.0, 60.0])),
                        min_loan_days=draw(st.integers(1, 3)), integer=draw(st.booleans()),
                        unavailable=draw(st.sampled_from([(), ("T0",)])))


@settings(max_examples=60, deadline=None)
@given(random_problems(), st.sampled_from(["auto", "lp"]))
def test_every_plan_is_feasible(p: StaffProblem, method: str) -> None:
    plan = plan_staff(p, method=method)
    assert check_staff(p, plan) == []

    index, group = p.graph.index(), {g: k for k, g in enumerate(p.groups)}
    n, G, D = p.available.shape
    lent = np.zeros((n, G, D))
    arcs = {(int(s), int(t)): km for s, t, km in zip(p.graph.src, p.graph.dst, p.graph.km, strict=True)}
    for m in plan.moves:
        i, j, g = index[m.src], index[m.dst], group[m.resource]
        first, last = (m.send_day - p.start).days, (m.arrive_day - p.start).days
        assert 0 <= first <= last < D
        assert (i, j) in arcs and (p.max_km is None or arcs[(i, j)] <= p.max_km), "loans only along arcs within max_km"
        assert not {m.src, m.dst} & set(p.unavailable)
        assert m.quantity > 0
        if p.integer:
            assert m.quantity == int(m.quantity), "whole people"
        assert last - first + 1 >= p.min_loan_days or last == D - 1
        lent[i, g, first:last + 1] += m.quantity
    tol = 1e-6 * max(1.0, p.available.max(), p.required.max())
    assert (lent <= p.max_loan_share * p.available + tol).all(), "lender cap"
    assert (p.available - lent >= p.required - tol)[lent > tol].all(), "a lender keeps its own requirement"
    cover = staff_cover(p, plan.moves)
    assert cover.sum(axis=0) == pytest.approx(p.available.sum(axis=0)), "people are conserved"
    assert plan.after["uncovered_staff_days"] <= plan.before["uncovered_staff_days"] + tol
