"""Mutual-aid plans: the list, and a plan with its moves (table and map), totals before and after, notes and
history, and the workflow's forms: approve, reject, dispatch, complete or cancel for the planner (the regional
operations role), accept or decline for each trust on its own moves.

The forms call the API's own handlers (``api.plans.step`` and ``answer_moves``: ``planning.records.act`` and
``answer`` after ``sync_expected``), so a page and a program take exactly the same steps; a step the workflow
refuses (a reason missing, moves not yet accepted) is shown on the plan's page with the workflow's words."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from mutual.app import Mutual
from mutual.planning.records import get_plan, list_plans, move_counts
from mutual.planning.workflow import ANSWERABLE, NEEDS_REASON, TRANSITIONS
from mutual.web import maps
from mutual.web.api import plans as api_plans
from mutual.web.api.common import Everyone, Planner, TrustSubmitter, workspace
from mutual.web.api.overview import vintage_time
from mutual.web.api.plans import AnswerRequest, Kind, MoveAnswer, PlanAction, PlanId, Status, StepRequest
from mutual.web.auth import Principal, Role, visible_orgs
from mutual.web.dashboard.common import Column
from mutual.web.dashboard.tables import Table
from mutual.web.errors import ApiError
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

LIST_COLUMNS: list[Column] = [
    ("id", "Plan", "text"), ("kind", "Kind", "text"), ("status", "Status", "text"), ("start", "From", "date"),
    ("horizon", "Days", "count"), ("moves", "Moves", "count"), ("created_by", "Proposed by", "text"),
    ("created_at", "Proposed", "date")]
MOVE_COLUMNS: list[Column] = [
    ("seq", "Move", "text"), ("resource", "Resource", "text"), ("quantity", "Quantity", "number"),
    ("src", "From", "text"), ("src_name", "Donor", "text"), ("dst", "To", "text"), ("dst_name", "Receiver", "text"),
    ("send_day", "Sent", "date"), ("arrive_day", "Arrives", "date"), ("distance_km", "Distance (km)", "decimal"),
    ("reason", "Why", "text"), ("src_answer", "Donor's answer", "text"), ("dst_answer", "Receiver's answer", "text")]
TOTAL_COLUMNS: list[Column] = [("measure", "Measure", "text"), ("before", "Without the plan", "number"),
                               ("after", "With the plan", "number")]
STEP_BUTTONS = {"approve": "Approve", "reject": "Reject", "dispatch": "Dispatch", "complete": "Complete",
                "cancel": "Cancel plan"}


def plan_list(m: Mutual, principal: Principal, status: str | None, kind: str | None) -> list[dict[str, Any]]:
    """Plans newest first, those with a move of the user's organisations when they are scoped."""
    scope = visible_orgs(principal, m)
    counts = move_counts(m.sessions)
    found = [r for r in list_plans(m.sessions) if (status is None or r.status == status)
             and (kind is None or r.kind == kind)]
    if scope is not None:
        found = [r for r in found if api_plans._touches(get_plan(m.sessions, r.id), scope)]
    return [{"id": r.id, "kind": r.kind, "status": r.status, "start": r.start, "horizon": r.horizon,
             "moves": counts.get(r.id, 0), "created_by": r.created_by, "created_at": r.created_at}
            for r in sorted(found, key=lambda r: -r.id)]


@router.get("/plans")
def plans_page(request: Request, principal: Everyone,
               status: Annotated[Status | None, Query()] = None, kind: Annotated[Kind | None, Query()] = None,
               format: Annotated[Literal["html", "csv"], Query()] = "html") -> Response:
    with workspace(request) as m:
        table = Table("plans", "Mutual-aid plans, newest first", LIST_COLUMNS, plan_list(m, principal, status, kind))
        as_of = vintage_time(m.store)
    if format == "csv":
        return table.download("plans")
    return render(request, "plans.html", {"as_of": as_of, "plans": table, "status": status or "",
                                          "kind": kind or "", "statuses": list(get_args(Status)),
                                          "kinds": list(get_args(Kind))})


def plan_view(m: Mutual, principal: Principal, plan_id: int) -> dict[str, Any]:
    """The plan as the user may see it (a trust: its own moves), and which forms to offer them."""
    scope = visible_orgs(principal, m)
    plan = api_plans.detail(api_plans._plan(m, plan_id, scope), scope)
    orgs = {o.code: o for o in m.orgs()}
    moves = [{**mv, "src_name": orgs[mv["src"]].name if mv["src"] in orgs else "",
              "dst_name": orgs[mv["dst"]].name if mv["dst"] in orgs else ""} for mv in plan["moves"]]
    places = {c: (o.lat, o.lon, o.name) for c, o in orgs.items() if o.lat is not None and o.lon is not None}
    measures = sorted(set(plan["before"]) | set(plan["after"]))
    totals = [{"measure": k.replace("_", " "), "before": plan["before"].get(k), "after": plan["after"].get(k)}
              for k in measures]
    mine = [mv for mv in moves if principal.org in (mv["src"], mv["dst"])] \
        if principal.role == Role.TRUST_SUBMITTER else []
    steps = [(a, STEP_BUTTONS.get(a, a.capitalize()), a in NEEDS_REASON)
             for (s, a) in TRANSITIONS if s == plan["status"]] if principal.role == Role.PLANNER else []
    return {"as_of": plan["data_as_of"] or vintage_time(m.store), "plan": plan,
            "moves": Table("moves", f"Moves of plan {plan_id}", MOVE_COLUMNS, moves),
            "totals": Table("totals", "Totals without and with the plan", TOTAL_COLUMNS, totals),
            "map": maps.plan_moves([{k: mv[k] for k in ("src", "dst", "quantity", "resource")} for mv in moves],
                                   places) if moves else None,
            "steps": steps, "mine": mine, "can_answer": bool(mine) and plan["status"] in ANSWERABLE,
            "decline_needs_reason": "decline" in NEEDS_REASON}


def plan_page(request: Request, principal: Principal, plan_id: int, *, done: str | None = None,
              error: str | None = None, error_action: str | None = None, status_code: int = 200) -> Response:
    with workspace(request) as m:
        view = plan_view(m, principal, plan_id)
    return render(request, "plan.html", {**view, "done": done, "error": error, "error_action": error_action},
                  status_code=status_code)


@router.get("/plans/{plan_id}")
def plan(request: Request, plan_id: PlanId, principal: Everyone,
         done: Annotated[str | None, Query(max_length=20)] = None,
         format: Annotated[Literal["html", "csv"], Query()] = "html",
         table: Annotated[Literal["moves", "totals"], Query()] = "moves") -> Response:
    if format == "csv":
        with workspace(request) as m:
            chosen: Table = plan_view(m, principal, plan_id)[table]
        return chosen.download(f"plan-{plan_id}")
    return plan_page(request, principal, plan_id, done=done if done in (*STEP_BUTTONS, "accept", "decline") else None)


Reason = Annotated[str, Form(max_length=2000)]


@router.post("/plans/{plan_id}/moves/{action}")
def answer_moves(request: Request, plan_id: PlanId, action: MoveAnswer, principal: TrustSubmitter,
                 moves: Annotated[list[int] | None, Form()] = None, reason: Reason = "") -> Response:
    """A trust accepts or declines its moves (those ticked, else all of its own)."""
    try:
        api_plans.answer_moves(request, plan_id, action, principal,
                               AnswerRequest(moves=moves or [], reason=reason.strip() or None))
    except ApiError as exc:
        if exc.status != 409:
            raise
        return plan_page(request, principal, plan_id, error=exc.message, error_action=action, status_code=409)
    return RedirectResponse(f"/plans/{plan_id}?done={action}", status_code=303)


@router.post("/plans/{plan_id}/{action}")
def step(request: Request, plan_id: PlanId, action: PlanAction, principal: Planner, reason: Reason = "") -> Response:
    """A workflow step by the regional operations role."""
    try:
        api_plans.step(request, plan_id, action, principal, StepRequest(reason=reason.strip() or None))
    except ApiError as exc:
        if exc.status != 409:
            raise
        return plan_page(request, principal, plan_id, error=exc.message, error_action=action, status_code=409)
    return RedirectResponse(f"/plans/{plan_id}?done={action}", status_code=303)
