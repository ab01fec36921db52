"""Mutual-aid plans: list, read, propose (planner), the workflow steps (planner = the regional operations role of
``mutual.planning.workflow``) and each trust's answer to its own moves (trust submitters).

Control plane first, then ``sync_expected`` mirrors approved plans' moves into the data plane, as the CLI does
before every plan command, so an interruption between the two is repaired by the next request."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mutual.app import Mutual
from mutual.planning.inputs import Scenario
from mutual.planning.records import PlanView, act, answer, get_plan, list_plans, move_counts, save_plan, sync_expected
from mutual.planning.runner import make_plan
from mutual.planning.workflow import REGIONAL_OPS, TRUST, Actor, WorkflowError
from mutual.web.api.common import (
    Everyone,
    Page,
    PagingDep,
    Planner,
    Timestamp,
    TrustSubmitter,
    api_words,
    check_days,
    error_doc,
    naive,
    page_of,
    workspace,
    writing,
)
from mutual.web.auth import visible_orgs
from mutual.web.errors import ApiError

router = APIRouter(tags=["plans"])

Kind = Literal["ventilators", "supplies", "staff", "patients"]
PlanAction = Literal["approve", "reject", "dispatch", "complete", "cancel"]
MoveAnswer = Literal["accept", "decline"]
Status = Literal["proposed", "approved", "dispatched", "completed", "rejected", "cancelled"]


class MoveOut(BaseModel):
    seq: int
    resource: str = Field(examples=["ventilators", "gloves", "nursing", "patients"])
    src: str
    dst: str
    quantity: float
    send_day: date
    arrive_day: date
    distance_km: float
    reason: str
    src_answer: str = Field(examples=["pending", "accepted", "declined"])
    dst_answer: str


class EventOut(BaseModel):
    at: Timestamp
    actor: str
    role: str
    org: str | None
    action: str
    from_status: str
    to_status: str
    move: int | None
    reason: str | None


class PlanSummary(BaseModel):
    id: int
    kind: str
    status: str = Field(examples=["proposed"])
    start: date
    horizon: int
    created_at: Timestamp
    created_by: str
    data_as_of: Timestamp | None
    moves: int
    before: dict[str, float | None]
    after: dict[str, float | None]


class PlanDetail(BaseModel):
    id: int
    kind: str
    status: str
    start: date
    horizon: int
    created_at: Timestamp
    created_by: str
    data_as_of: Timestamp | None
    params: dict[str, Any]
    before: dict[str, float | None]
    after: dict[str, float | None]
    solve: dict[str, Any]
    notes: list[str]
    moves: list[MoveOut] = Field(description="The moves the caller may see (a trust: its own)")
    events: list[EventOut]


class ScenarioIn(BaseModel):
    name: str = Field("baseline", max_length=100)
    demand_factor: float = Field(1.0, ge=0, le=100)
    unavailable: list[str] = Field(default_factory=list, max_length=1000,
                                   description="Trusts that can neither send nor receive")
    delay_days: int | None = Field(None, ge=0, le=60)


class PlanRequest(BaseModel):
    kind: Kind
    horizon: int = Field(14, ge=1, le=120)
    k: int = Field(10, ge=1, le=50, description="Link each trust to its k nearest")
    demand: Literal["mean", "hi80", "hi95"] = "mean"
    start: date | None = Field(None, description="First day (default: the day after the latest report)")
    as_of: datetime | None = Field(None, description="Plan from what was known at this time")
    items: list[str] | None = Field(None, max_length=50, description="Supply items (supplies plans)")
    max_km: float | None = Field(None, gt=0, le=1000, description="Travel limit (staff, patients)")
    scenario: ScenarioIn | None = Field(None, description="What-if settings (default: the baseline)")


class StepRequest(BaseModel):
    reason: str | None = Field(None, max_length=2000, description="Why (required to reject or cancel)")


class AnswerRequest(BaseModel):
    moves: list[int] = Field(default_factory=list, max_length=10_000,
                             description="Move numbers; empty = every move of the caller's trust")
    reason: str | None = Field(None, max_length=2000, description="Why (required to decline)")


class Answered(BaseModel):
    answered: list[int]
    plan: PlanDetail


def _touches(v: PlanView, scope: set[str] | None) -> bool:
    return scope is None or any(mv.src in scope or mv.dst in scope for mv in v.moves)


def detail(v: PlanView, scope: set[str] | None) -> dict[str, Any]:
    r = v.record
    return {"id": r.id, "kind": r.kind, "status": r.status, "created_at": r.created_at, "created_by": r.created_by,
            "start": r.start, "horizon": r.horizon, "data_as_of": r.data_as_of, "params": r.params,
            "before": r.before, "after": r.after, "solve": r.solve, "notes": r.notes,
            "moves": [{"seq": mv.seq, "resource": mv.resource, "src": mv.src, "dst": mv.dst,
                       "quantity": mv.quantity, "send_day": mv.send_day, "arrive_day": mv.arrive_day,
                       "distance_km": mv.distance_km, "reason": mv.reason, "src_answer": mv.src_answer,
                       "dst_answer": mv.dst_answer}
                      for mv in v.moves if scope is None or mv.src in scope or mv.dst in scope],
            "events": [{"at": e.at, "actor": e.actor, "role": e.role, "org": e.org, "action": e.action,
                        "from_status": e.from_status, "to_status": e.to_status, "move": e.move_seq,
                        "reason": e.reason} for e in v.events]}


def _plan(m: Mutual, plan_id: int, scope: set[str] | None) -> PlanView:
    """The plan, or 404: also for a plan none of whose moves are the caller's (its existence is not theirs)."""
    try:
        v = get_plan(m.sessions, plan_id)
    except WorkflowError as exc:
        raise ApiError(404, "not_found", api_words(str(exc)), {"plan": plan_id}) from None
    if not _touches(v, scope):
        raise ApiError(404, "not_found", f"no plan {plan_id} among those you may see", {"plan": plan_id})
    return v


PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Plan id")]


@router.get("/plans", response_model=Page[PlanSummary], summary="Every mutual-aid plan with its status")
def plans(request: Request, p: PagingDep, principal: Everyone,
          status: Annotated[Status | None, Query(description="Only this status")] = None,
          kind: Annotated[Kind | None, Query(description="Only this kind")] = None) -> Any:
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        records = [r for r in list_plans(m.sessions)
                   if (status is None or r.status == status) and (kind is None or r.kind == kind)]
        if scope is not None:
            records = [r for r in records if _touches(get_plan(m.sessions, r.id), scope)]
        counts = move_counts(m.sessions)
    found = [{"id": r.id, "kind": r.kind, "status": r.status, "start": r.start, "horizon": r.horizon,
              "created_at": r.created_at, "created_by": r.created_by, "data_as_of": r.data_as_of,
              "moves": counts.get(r.id, 0), "before": r.before, "after": r.after}
             for r in sorted(records, key=lambda r: -r.id)]
    return page_of(request, p, found)


@router.get("/plans/{plan_id}", response_model=PlanDetail,
            summary="A plan: its moves and why, totals before and after, solver figures and its history")
def plan(request: Request, plan_id: PlanId, principal: Everyone) -> Any:
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        return detail(_plan(m, plan_id, scope), scope)


@router.post("/plans", response_model=PlanDetail, status_code=201,
             summary="Propose a plan (solved now, recorded as proposed)")
def propose(request: Request, response: Response, body: PlanRequest, principal: Planner) -> Any:
    check_days(start=body.start, as_of=body.as_of)
    s = body.scenario
    scenario = Scenario() if s is None else Scenario(
        name=s.name, demand_factor=s.demand_factor, unavailable=tuple(u.strip().upper() for u in s.unavailable),
        delay_days=s.delay_days)
    extra: dict[str, Any] = {}
    if body.kind == "supplies":
        extra["items"] = body.items or None
    if body.kind in ("staff", "patients") and body.max_km is not None:
        extra["max_km"] = body.max_km
    as_of = naive(body.as_of)
    with workspace(request) as m:
        with writing(request):
            sync_expected(m.sessions, m.store)
        made = make_plan(m.store, body.kind, horizon=body.horizon, k=body.k, start=body.start, scenario=scenario,
                         demand_level=body.demand, as_of=as_of, **extra)
        plan_id = save_plan(m.sessions, made, created_by=principal.username, data_as_of=as_of)
        out = detail(get_plan(m.sessions, plan_id), None)
    response.headers["Location"] = f"/api/v1/plans/{plan_id}"
    return out


CONFLICT: dict[int | str, dict[str, Any]] = {
    409: error_doc("The workflow does not allow this step now (the message says why)")}


@router.post("/plans/{plan_id}/moves/{action}", response_model=Answered, responses=CONFLICT,
             summary="A donor or receiver trust accepts or declines its moves of a plan")
def answer_moves(request: Request, plan_id: PlanId, action: MoveAnswer, principal: TrustSubmitter,
                 body: AnswerRequest | None = None) -> Any:
    if principal.org is None:
        raise ApiError(403, "forbidden", "your account speaks for no trust", {"user": principal.username})
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        _plan(m, plan_id, scope)
        try:
            done = answer(m.sessions, plan_id, action, Actor(principal.username, TRUST, principal.org),
                          moves=body.moves if body else (), reason=body.reason if body else None)
        except WorkflowError as exc:
            raise ApiError(409, "conflict", str(exc).replace("(--reason)", "(reason)"), {"plan": plan_id}) from None
        return {"answered": done, "plan": detail(get_plan(m.sessions, plan_id), scope)}


@router.post("/plans/{plan_id}/{action}", response_model=PlanDetail, responses=CONFLICT,
             summary="A workflow step: approve, reject, dispatch, complete or cancel (regional operations)")
def step(request: Request, plan_id: PlanId, action: PlanAction, principal: Planner,
         body: StepRequest | None = None) -> Any:
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        _plan(m, plan_id, scope)
        try:
            with writing(request):
                sync_expected(m.sessions, m.store, [plan_id])
                act(m.sessions, m.store, plan_id, action, Actor(principal.username, REGIONAL_OPS),
                    reason=body.reason if body else None)
        except WorkflowError as exc:
            raise ApiError(409, "conflict", str(exc).replace("(--reason)", "(reason)"),
                           {"plan": plan_id, "action": action}) from None
        return detail(get_plan(m.sessions, plan_id), scope)
