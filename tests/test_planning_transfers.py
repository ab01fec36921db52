"""Patient transfers: move patients from trusts over safe capacity to nearby trusts with room, never pushing a
receiver over its capacity; every plan passes ``check_transfers``."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.planning.graph import Graph, matrix_graph
from mutual.planning.plan import Move, Plan
from mutual.planning.transfers import (
    TransferProblem,
    check_transfers,
    occupancy_after,
    overflow_bed_days,
    plan_transfers,
)

ROOT = Path(__file__).resolve().parents[1]
START = date(2021, 1, 4)


def line(*km: float, codes: str = "ABCDE") -> Graph:
    """Trusts on a road: ``km[i]`` between the i-th and the next; every pair linked."""
    pos = np.concatenate([[0.0], np.cumsum(km)])
    return matrix_graph(tuple(codes[: pos.size]), np.abs(pos[:, None] - pos[None, :]))


def problem(graph: Graph, capacity: list[list[float]], occupied: list[list[float]], **kw: object) -> TransferProblem:
    return TransferProblem(graph=graph, start=START, capacity=np.array(capacity, dtype=float),
                           occupied=np.array(occupied, dtype=float), **kw)  # type: ignore[arg-type]


def feasible(p: TransferProblem, plan: Plan) -> Plan:
    assert check_transfers(p, plan) == []
    return plan


# -- the basic case --------------------------------------------------------------------------------------------


def test_transfers_remove_overflow_and_the_receiver_stays_within_capacity() -> None:
    p = problem(line(30), [[100] * 4, [100] * 4], [[112, 115, 110, 100], [80, 80, 85, 90]], los_days=2)
    plan = feasible(p, plan_transfers(p))
    assert plan.before["overflow_bed_days"] == 37
    assert plan.after["overflow_bed_days"] == 0
    after = occupancy_after(p, plan.moves)
    assert (after[1] <= 100).all()
    assert (after.sum(axis=0) == p.occupied.sum(axis=0)).all()
    assert {(m.src, m.dst) for m in plan.moves} == {("A", "B")}
    assert plan.after["transfers"] == sum(m.quantity for m in plan.moves)
    assert plan.after["transfer_km"] == 30 * plan.after["transfers"]
    assert plan.before["trusts_overflowing"] == 1 and plan.after["trusts_overflowing"] == 0
    assert plan.before["peak_overflow"] == 15 and plan.after["peak_overflow"] == 0


def test_a_move_explains_itself() -> None:
    p = problem(line(30), [[100] * 3, [100] * 3], [[112, 112, 112], [80, 80, 80]], los_days=3)
    move = feasible(p, plan_transfers(p)).moves[0]
    assert move == Move("patients", "A", "B", 12.0, START, START, 30.0, move.reason)
    assert "A is 12.0 beds over safe capacity on 4 Jan 2021" in move.reason
    assert "B has 20.0 beds free and keeps at least 8.0 free until 6 Jan 2021" in move.reason


def test_transfers_are_only_made_to_remove_overflow() -> None:
    p = problem(line(30), [[100] * 3, [100] * 3], [[90, 95, 99], [50, 50, 50]])
    plan = feasible(p, plan_transfers(p))
    assert plan.moves == ()
    assert plan.after == plan.before


def test_beyond_max_km_nothing_moves() -> None:
    p = problem(line(120), [[100] * 3, [100] * 3], [[130] * 3, [50] * 3], max_km=80.0)
    plan = feasible(p, plan_transfers(p))
    assert plan.moves == ()
    assert plan.after["overflow_bed_days"] == plan.before["overflow_bed_days"] == 90
    assert feasible(replace(p, max_km=150.0), plan_transfers(replace(p, max_km=150.0))).moves


def test_length_of_stay_spreads_a_transfer_over_the_following_days() -> None:
    p = problem(line(10), [[10] * 6, [10] * 6], [[9] * 6, [5] * 6], los_days=3)
    moves = [Move("patients", "A", "B", 2.0, START + timedelta(days=1), START + timedelta(days=1), 10.0, ""),
             Move("patients", "B", "A", 1.0, START + timedelta(days=4), START + timedelta(days=4), 10.0, "")]
    after = occupancy_after(p, moves)
    assert after[0].tolist() == [9, 7, 7, 7, 10, 10]  # back on day 4; the last transfer is clipped at day 6
    assert after[1].tolist() == [5, 7, 7, 7, 4, 4]
    assert overflow_bed_days(p, after) == 0


def test_a_transfer_frees_beds_for_its_length_of_stay() -> None:
    p = problem(line(20), [[100] * 6, [200] * 6], [[100, 110, 110, 110, 100, 100], [100] * 6], los_days=3)
    plan = feasible(p, plan_transfers(p))
    assert [(m.send_day, m.quantity) for m in plan.moves] == [(START + timedelta(days=1), 10.0)]
    assert plan.after["overflow_bed_days"] == 0


def test_an_unavailable_trust_neither_sends_nor_receives() -> None:
    g = line(20, 40)
    p = problem(g, [[100] * 2] * 3, [[120] * 2, [50] * 2, [90] * 2], unavailable=("B",))
    plan = feasible(p, plan_transfers(p))
    assert {(m.src, m.dst) for m in plan.moves} == {("A", "C")}
    assert plan.after["overflow_bed_days"] == 20  # C had room for 10
    assert "unavailable (neither send nor receive): B" in plan.notes
    with pytest.raises(ValueError, match="unavailable trusts not in the graph: X"):
        replace(p, unavailable=("X",))


def test_a_trust_already_over_capacity_receives_nothing() -> None:
    p = problem(line(10), [[100] * 2, [100] * 2], [[130] * 2, [105] * 2])
    plan = feasible(p, plan_transfers(p))
    assert plan.moves == ()


def test_transport_caps_patients_sent_per_day() -> None:
    p = problem(line(10), [[100] * 2, [200] * 2], [[140] * 2, [100] * 2], los_days=2, max_out_per_day=15.0)
    plan = feasible(p, plan_transfers(p))
    assert max(m.quantity for m in plan.moves) == 15
    assert plan.after["overflow_bed_days"] == 40 * 2 - 15 - 30
    per_trust = replace(p, max_out_per_day=np.array([5.0, 0.0]))
    assert sum(m.quantity for m in feasible(per_trust, plan_transfers(per_trust)).moves) == 10


def test_a_trust_sends_no_more_patients_than_it_has() -> None:
    p = problem(line(10), [[0] * 2, [100] * 2], [[3, 3], [0, 0]], los_days=2)
    plan = feasible(p, plan_transfers(p))
    assert plan.after["transfers"] == 3
    assert occupancy_after(p, plan.moves).min() == 0


def test_relays_are_off_by_default_and_reach_further_when_allowed() -> None:
    # A is over; B (30 km) is exactly full; C is 60 km beyond B, out of A's reach but in B's.
    p = problem(line(30, 60), [[100] * 3] * 3, [[110] * 3, [100] * 3, [50] * 3], max_km=80.0, los_days=3)
    assert feasible(p, plan_transfers(p)).moves == ()
    plan = feasible(p, plan_transfers(p, relays=True))
    assert {(m.src, m.dst, m.quantity) for m in plan.moves} == {("A", "B", 10.0), ("B", "C", 10.0)}
    assert plan.after["overflow_bed_days"] == 0
    assert "B is within safe capacity and sends these to make room" in plan.moves[1].reason


def test_mip_and_rounding_agree_on_a_small_case() -> None:
    g = line(15, 25, 10)
    p = problem(g, [[100] * 5] * 4, [[108, 112, 115, 109, 100], [96, 97, 99, 98, 90], [91, 90, 92, 88, 85],
                                    [104, 103, 99, 101, 100]], los_days=2)
    mip = feasible(p, plan_transfers(p, method="mip"))
    rounded = feasible(p, plan_transfers(p, method="lp + rounding"))
    assert mip.solve.method == "mip" and rounded.solve.method == "lp + rounding"
    assert mip.solve.lp_bound <= mip.solve.objective + 1e-9
    assert rounded.solve.objective == pytest.approx(mip.solve.objective, abs=0.5)
    assert mip.after["overflow_bed_days"] < mip.before["overflow_bed_days"]


def test_a_continuous_problem_is_solved_as_an_lp() -> None:
    p = problem(line(10), [[100.5] * 2, [100] * 2], [[110.25] * 2, [95.5] * 2], los_days=1, integer=False)
    plan = feasible(p, plan_transfers(p))
    assert plan.solve.method == "lp" and plan.solve.gap == pytest.approx(0, abs=1e-9)
    assert plan.after["transfers"] == pytest.approx(2 * 4.5)  # all B's room, a fraction of a patient too
    assert plan.after["overflow_bed_days"] == pytest.approx(2 * (9.75 - 4.5))


def test_a_trust_without_links_is_left_alone() -> None:
    p = problem(line(500), [[10], [10]], [[20], [0]])
    plan = feasible(p, plan_transfers(p))
    assert plan.moves == () and plan.params["arcs"] == 0


# -- the checker and bad input ---------------------------------------------------------------------------------


def test_check_transfers_names_what_is_wrong() -> None:
    p = problem(line(30, 100), [[100] * 2] * 3, [[110] * 2, [95] * 2, [50] * 2], max_km=80.0)
    plan = plan_transfers(p)
    day = START
    bad = replace(plan, moves=(
        Move("patients", "A", "B", 10.5, day, day, 30.0, ""),  # fractional, and B had room for 5
        Move("patients", "A", "C", 1.0, day, day, 130.0, ""),  # beyond 80 km
        Move("patients", "A", "Z", 1.0, day, day, 1.0, ""),  # unknown
    ))
    problems = check_transfers(p, bad)
    assert any("10.5 is not a whole number" in x for x in problems)
    assert any("130.0 km is beyond the 80 km limit" in x for x in problems)
    assert any("unknown trust" in x for x in problems)
    assert any("B on 2021-01-04: transfers push occupancy to" in x for x in problems)
    assert any(x.startswith("totals after") for x in problems)


@pytest.mark.parametrize(("change", "message"), [
    ({"occupied": np.array([[1.0, -2.0], [0.0, 0.0]])}, "occupied of A on 2021-01-05 is negative"),
    ({"capacity": np.array([[1.0, np.nan], [0.0, 0.0]])}, "capacity of A on 2021-01-05 is not a number"),
    ({"capacity": np.ones((2, 3))}, "capacity is \\(2, 3\\) but occupied is \\(2, 2\\)"),
    ({"occupied": np.ones((3, 2))}, "occupied is \\(3, 2\\); expected"),
    ({"los_days": 0}, "los_days must be a whole number"),
    ({"max_out_per_day": np.ones(3)}, "max_out_per_day is \\(3,\\)"),
    ({"max_out_per_day": -1.0}, "max_out_per_day must be finite and not negative"),
    ({"max_km": 0.0}, "max_km must be a positive distance"),
    ({"transfer_cost": -0.1}, "transfer_cost must be finite and not negative"),
])
def test_bad_input_is_refused_with_a_clear_message(change: dict[str, object], message: str) -> None:
    p = problem(line(10), [[1, 1], [1, 1]], [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match=message):
        replace(p, **change)  # type: ignore[arg-type]


def test_moves_outside_the_problem_are_refused() -> None:
    p = problem(line(10), [[1, 1], [1, 1]], [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="unknown trust Q"):
        occupancy_after(p, [Move("patients", "A", "Q", 1.0, START, START, 1.0, "")])
    late = START + timedelta(days=2)
    with pytest.raises(ValueError, match="outside the horizon"):
        occupancy_after(p, [Move("patients", "A", "B", 1.0, late, late, 1.0, "")])


# -- every plan is feasible -----------------------------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn) -> tuple[TransferProblem, dict[str, object]]:
    n = draw(st.integers(2, 5))
    D = draw(st.integers(1, 7))
    codes = tuple(f"T{i}" for i in range(n))
    xy = np.array(draw(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=n, max_size=n)))
    graph = matrix_graph(codes, np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)))
    beds = np.array(draw(st.lists(st.integers(0, 30), min_size=n * D, max_size=n * D)), dtype=float).reshape(n, D)
    occupied = np.array(draw(st.lists(st.integers(0, 40), min_size=n * D, max_size=n * D)),
                        dtype=float).reshape(n, D)
    per_trust = draw(st.booleans())
    max_out = (np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), dtype=float) if per_trust
               else float(draw(st.integers(0, 8))))
    p = TransferProblem(graph=graph, start=START, capacity=beds * 0.92, occupied=occupied,
                        los_days=draw(st.integers(1, 4)), max_km=draw(st.sampled_from([None, 40.0, 80.0])),
                        max_out_per_day=max_out, integer=draw(st.booleans()),
                        unavailable=tuple(draw(st.lists(st.sampled_from(codes), max_size=2, unique=True))))
    options = {"method": draw(st.sampled_from(["auto", "mip", "lp + rounding"])), "relays": draw(st.booleans())}
    return p, options


@settings(max_examples=80, deadline=None)
@given(problems())
def test_every_plan_is_feasible(case: tuple[TransferProblem, dict[str, object]]) -> None:
    p, options = case
    plan = plan_transfers(p, **options)  # type: ignore[arg-type]
    assert check_transfers(p, plan) == []
    after = occupancy_after(p, plan.moves)
    tol = 1e-6
    assert (after >= -tol).all()  # occupancy never negative
    # no trust is pushed over capacity: each trust-day ends no fuller than its capacity or its own occupancy
    assert (after <= np.maximum(p.capacity, p.occupied) + tol).all()
    # so overflow never grows anywhere
    assert (np.maximum(after - p.capacity, 0) <= np.maximum(p.occupied - p.capacity, 0) + tol).all()
    np.testing.assert_allclose(after.sum(axis=0), p.occupied.sum(axis=0), atol=tol)  # patients conserved
    sent = np.zeros_like(p.occupied)
    index = p.graph.index()
    for m in plan.moves:
        assert m.src not in p.unavailable and m.dst not in p.unavailable
        assert p.max_km is None or m.distance_km <= p.max_km
        if p.integer:
            assert m.quantity == round(m.quantity)
        sent[index[m.src], (m.send_day - START).days] += m.quantity
    assert (sent <= p.send_cap() + tol).all()  # transport capacity per trust per day
    # transfers pay for themselves
    assert plan.solve.objective <= plan.before["overflow_bed_days"] + tol
    assert plan.after["overflow_bed_days"] == pytest.approx(overflow_bed_days(p, after))
    assert np.isnan(plan.solve.lp_bound) or plan.solve.lp_bound <= plan.solve.objective + 1e-6


# -- real England capacity ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_winter_2020_21_overflow_falls(shared_data: Path) -> None:
    if not (shared_data / "nhse-uec-sitrep-series" / "sitrep2021.csv").is_file():
        pytest.skip("sitrep2021.csv is not on this machine")
    spec = importlib.util.spec_from_file_location("patient_transfers_benchmark",
                                                  ROOT / "benchmarks" / "patient_transfers.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    cap = bench.load_sitrep(shared_data, date(2021, 1, 4), date(2021, 1, 17))
    assert len(cap.codes) > 120
    p = TransferProblem(graph=bench.nearest_graph(cap.codes, cap.lat, cap.lon, k=None, max_km=80.0),
                        start=cap.start, capacity=cap.open * 0.92, occupied=cap.occupied)
    plan = plan_transfers(p)
    assert check_transfers(p, plan) == []
    assert plan.after["overflow_bed_days"] < 0.5 * plan.before["overflow_bed_days"]
    assert plan.solve.gap < 0.1
