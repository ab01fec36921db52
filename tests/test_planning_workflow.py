"""The mutual-aid plan workflow: its transition table, who may take each step, and what each step records."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from mutual.planning.workflow import (
    ACCEPTED,
    APPROVED,
    CANCELLED,
    COMPLETED,
    DECLINED,
    DISPATCHED,
    FINAL,
    PENDING,
    PLAN_ACTIONS,
    PROPOSED,
    REGIONAL_OPS,
    REJECTED,
    STATUSES,
    TRUST,
    Actor,
    WorkflowError,
    move_answer,
    plan_transition,
)

OPS = Actor("Jo Ops", REGIONAL_OPS)
ALL_ACCEPTED = ((ACCEPTED, ACCEPTED), (ACCEPTED, ACCEPTED))

# The whole table, written out: (status, action) -> new status; every pair not listed is refused.
EXPECTED_TABLE = {
    (PROPOSED, "approve"): APPROVED,
    (PROPOSED, "reject"): REJECTED,
    (PROPOSED, "cancel"): CANCELLED,
    (APPROVED, "dispatch"): DISPATCHED,
    (APPROVED, "cancel"): CANCELLED,
    (DISPATCHED, "complete"): COMPLETED,
    (DISPATCHED, "cancel"): CANCELLED,
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(STATUSES, PLAN_ACTIONS)))
def test_transition_table_is_exactly_the_documented_one(status: str, action: str) -> None:
    expected = EXPECTED_TABLE.get((status, action))
    if expected is None:
        with pytest.raises(WorkflowError, match=f"a {status} plan cannot be"):
            plan_transition(status, action, OPS, reason="because", move_answers=ALL_ACCEPTED)
    else:
        assert plan_transition(status, action, OPS, reason="because", move_answers=ALL_ACCEPTED) == expected


def test_final_statuses_allow_nothing() -> None:
    for status in FINAL:
        for action in PLAN_ACTIONS:
            with pytest.raises(WorkflowError, match="final"):
                plan_transition(status, action, OPS, reason="x")


def test_only_regional_operations_take_plan_steps() -> None:
    trust = Actor("Sam", TRUST, "RXX")
    with pytest.raises(WorkflowError, match="only the regional operations role"):
        plan_transition(PROPOSED, "approve", trust)


@pytest.mark.parametrize("action", ["reject", "cancel"])
def test_rejecting_or_cancelling_needs_a_reason(action: str) -> None:
    with pytest.raises(WorkflowError, match="--reason"):
        plan_transition(PROPOSED, action, OPS, reason="  ")
    assert plan_transition(PROPOSED, action, OPS, reason="demand fell") in (REJECTED, CANCELLED)


def test_dispatch_waits_for_both_ends_of_every_move() -> None:
    with pytest.raises(WorkflowError, match=r"move\(s\) 2 not yet accepted"):
        plan_transition(APPROVED, "dispatch", OPS, move_answers=((ACCEPTED, ACCEPTED), (ACCEPTED, PENDING)))
    with pytest.raises(WorkflowError, match=r"move\(s\) 1 declined: cancel this plan and plan again"):
        plan_transition(APPROVED, "dispatch", OPS, move_answers=((DECLINED, ACCEPTED), (ACCEPTED, PENDING)))
    assert plan_transition(APPROVED, "dispatch", OPS, move_answers=ALL_ACCEPTED) == DISPATCHED
    assert plan_transition(APPROVED, "dispatch", OPS, move_answers=()) == DISPATCHED  # a plan with no moves


def test_each_trust_answers_for_its_own_end_of_a_move() -> None:
    assert move_answer(PROPOSED, "accept", Actor("a", TRUST, "RSRC"), "RSRC", "RDST") == ("src", ACCEPTED)
    assert move_answer(APPROVED, "decline", Actor("b", TRUST, "RDST"), "RSRC", "RDST",
                       reason="no beds") == ("dst", DECLINED)
    with pytest.raises(WorkflowError, match="neither the donor"):
        move_answer(PROPOSED, "accept", Actor("c", TRUST, "ROTHER"), "RSRC", "RDST")
    with pytest.raises(WorkflowError, match="--org"):
        move_answer(PROPOSED, "accept", OPS, "RSRC", "RDST")
    with pytest.raises(WorkflowError, match="--reason"):
        move_answer(PROPOSED, "decline", Actor("a", TRUST, "RSRC"), "RSRC", "RDST")
    with pytest.raises(WorkflowError, match="no longer be answered"):
        move_answer(DISPATCHED, "accept", Actor("a", TRUST, "RSRC"), "RSRC", "RDST")


def test_a_plan_goes_through_its_life_in_the_control_plane(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Saved as proposed; trusts accept; approved (expected stock changes appear in the store); dispatched;
    completed; every step recorded with who and when. A cancelled plan withdraws its expected changes."""
    from mutual.app import open_mutual
    from mutual.planning.plan import Move, Plan, SolveSummary
    from mutual.planning.records import act, answer, get_plan, save_plan

    solve = SolveSummary("optimal", True, 10.0, 10.0, 0.0, 0.01, "lp", 4, 3)
    plan = Plan(kind="ventilators", start=date(2021, 1, 10), horizon=7, params={"delay": 1}, moves=(
        Move("ventilators", "RAAA", "RBBB", 3, date(2021, 1, 10), date(2021, 1, 11), 12.5, "covers 3 short"),),
        before={"shortfall": 9.0}, after={"shortfall": 6.0}, solve=solve)
    with open_mutual(tmp_path / "ws", create=True) as m:
        pid = save_plan(m.sessions, plan, created_by="planner")
        act(m.sessions, m.store, pid, "approve", OPS)
        with pytest.raises(WorkflowError, match="not yet accepted"):
            act(m.sessions, m.store, pid, "dispatch", OPS)
        assert get_plan(m.sessions, pid).record.status == APPROVED
        rows = m.store.con.execute("SELECT org, metric, first_day, last_day, delta FROM expected_change "
                                   "ORDER BY delta").fetchall()
        assert rows == [("RAAA", "ventilators_total", date(2021, 1, 10), None, -3.0),
                        ("RBBB", "ventilators_total", date(2021, 1, 11), None, 3.0)]
        assert answer(m.sessions, pid, "accept", Actor("Ann", TRUST, "RAAA")) == [1]
        assert answer(m.sessions, pid, "accept", Actor("Bob", TRUST, "RBBB")) == [1]
        act(m.sessions, m.store, pid, "dispatch", OPS)
        act(m.sessions, m.store, pid, "complete", OPS)
        view = get_plan(m.sessions, pid)
        assert view.record.status == COMPLETED
        assert [(e.action, e.actor, e.to_status) for e in view.events] == [
            ("propose", "planner", PROPOSED), ("approve", "Jo Ops", APPROVED), ("accept", "Ann", APPROVED),
            ("accept", "Bob", APPROVED), ("dispatch", "Jo Ops", DISPATCHED), ("complete", "Jo Ops", COMPLETED)]
        assert all(e.at is not None for e in view.events)

        other = save_plan(m.sessions, plan, created_by="planner")
        act(m.sessions, m.store, other, "approve", OPS)
        assert m.store.con.execute(f"SELECT count(*) FROM expected_change WHERE plan_id = {other}").fetchone() == (2,)
        act(m.sessions, m.store, other, "cancel", OPS, reason="the receiver found its own")
        assert m.store.con.execute(f"SELECT count(*) FROM expected_change WHERE plan_id = {other}").fetchone() == (0,)
