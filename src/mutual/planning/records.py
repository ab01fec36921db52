"""Plans in the control plane: saved as proposed, moved through the workflow with every step recorded, and their
expected stock changes mirrored into the data plane while they stand.

Control plane (SQLite) and data plane (DuckDB) are two databases: a step commits in the control plane first, then
``sync_expected`` rewrites the plan's rows in the store. It is idempotent and run before every plan command, so
an interruption between the two is repaired the next time anyone looks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mutual.control.models import PlanEvent, PlanMove, PlanRecord
from mutual.planning.plan import Plan
from mutual.planning.workflow import (
    EXPECTING,
    PROPOSED,
    Actor,
    WorkflowError,
    move_answer,
    plan_transition,
)
from mutual.store.base import Store
from mutual.store.schema import EXPECTED_CHANGE_COLUMNS

# What a move changes in the store: ventilators and supplies are stock (a level from then on); patients occupy
# beds for their stay. Staff loans change no reported figure.
STOCK_METRIC = {"ventilators": "ventilators_total", "supplies": "supply_stock"}


def utcnow() -> datetime:
    return datetime.now().astimezone().replace(tzinfo=None)


def _jsonable(value: Any) -> Any:
    """Plan figures as JSON: dates as ISO text, NaN and infinities as null."""
    return json.loads(json.dumps(value, default=str), parse_constant=lambda _: None)


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in d.items()}


@dataclass(frozen=True)
class PlanView:
    record: PlanRecord
    moves: list[PlanMove]
    events: list[PlanEvent]


def save_plan(sessions: sessionmaker[Session], plan: Plan, *, created_by: str,
              data_as_of: datetime | None = None) -> int:
    """Record a plan as proposed, with its moves and a first event."""
    now = utcnow()
    with sessions.begin() as s:
        rec = PlanRecord(kind=plan.kind, status=PROPOSED, created_at=now, created_by=created_by, start=plan.start,
                         horizon=plan.horizon, data_as_of=data_as_of, params=_jsonable(plan.params),
                         before=_finite(plan.before), after=_finite(plan.after),
                         solve=_jsonable(asdict(plan.solve)), notes=list(plan.notes))
        s.add(rec)
        s.flush()
        for seq, m in enumerate(plan.moves, start=1):
            s.add(PlanMove(plan_id=rec.id, seq=seq, resource=m.resource, src=m.src, dst=m.dst,
                           quantity=float(m.quantity), send_day=m.send_day, arrive_day=m.arrive_day,
                           distance_km=float(m.distance_km), reason=m.reason, src_answer="pending",
                           dst_answer="pending"))
        s.add(PlanEvent(plan_id=rec.id, at=now, actor=created_by, role="planner", org=None, action="propose",
                        from_status="", to_status=PROPOSED, move_seq=None, reason=None))
        return rec.id


def list_plans(sessions: sessionmaker[Session]) -> list[PlanRecord]:
    with sessions() as s:
        return list(s.scalars(select(PlanRecord).order_by(PlanRecord.id)))


def move_counts(sessions: sessionmaker[Session]) -> dict[int, int]:
    with sessions() as s:
        rows = s.execute(select(PlanMove.plan_id, func.count()).group_by(PlanMove.plan_id)).all()
        return {int(pid): int(n) for pid, n in rows}


def get_plan(sessions: sessionmaker[Session], plan_id: int) -> PlanView:
    with sessions() as s:
        rec = s.get(PlanRecord, plan_id)
        if rec is None:
            raise WorkflowError(f"no plan {plan_id} (see `mutual plans`)")
        moves = list(s.scalars(select(PlanMove).where(PlanMove.plan_id == plan_id).order_by(PlanMove.seq)))
        events = list(s.scalars(select(PlanEvent).where(PlanEvent.plan_id == plan_id).order_by(PlanEvent.id)))
        return PlanView(rec, moves, events)


def act(sessions: sessionmaker[Session], store: Store, plan_id: int, action: str, actor: Actor, *,
        reason: str | None = None) -> PlanRecord:
    """Apply a plan-level step (approve, reject, dispatch, complete, cancel) as ``actor``, and record it."""
    with sessions.begin() as s:
        rec = s.get(PlanRecord, plan_id)
        if rec is None:
            raise WorkflowError(f"no plan {plan_id} (see `mutual plans`)")
        moves = list(s.scalars(select(PlanMove).where(PlanMove.plan_id == plan_id).order_by(PlanMove.seq)))
        new = plan_transition(rec.status, action, actor, reason=reason,
                              move_answers=tuple((m.src_answer, m.dst_answer) for m in moves))
        s.add(PlanEvent(plan_id=plan_id, at=utcnow(), actor=actor.name, role=actor.role, org=actor.org,
                        action=action, from_status=rec.status, to_status=new, move_seq=None, reason=reason))
        rec.status = new
    sync_expected(sessions, store, [plan_id])
    return get_plan(sessions, plan_id).record


def answer(sessions: sessionmaker[Session], plan_id: int, action: str, actor: Actor, *,
           moves: Sequence[int] = (), reason: str | None = None) -> list[int]:
    """A trust accepts or declines its moves of a plan (the ones numbered in ``moves``, else all of its own).
    Returns the move numbers answered."""
    with sessions.begin() as s:
        rec = s.get(PlanRecord, plan_id)
        if rec is None:
            raise WorkflowError(f"no plan {plan_id} (see `mutual plans`)")
        all_moves = list(s.scalars(select(PlanMove).where(PlanMove.plan_id == plan_id).order_by(PlanMove.seq)))
        by_seq = {m.seq: m for m in all_moves}
        if moves:
            unknown = [n for n in moves if n not in by_seq]
            if unknown:
                raise WorkflowError(f"plan {plan_id} has no move {', '.join(map(str, unknown))} "
                                    f"(it has 1-{len(all_moves)})")
            chosen = [by_seq[n] for n in moves]
        else:
            chosen = [m for m in all_moves if actor.org in (m.src, m.dst)]
            if not chosen:
                raise WorkflowError(f"{actor.org} has no moves in plan {plan_id}")
        now = utcnow()
        for m in chosen:
            end, verdict = move_answer(rec.status, action, actor, m.src, m.dst, reason=reason)
            if end == "src":
                m.src_answer = verdict
            else:
                m.dst_answer = verdict
            s.add(PlanEvent(plan_id=plan_id, at=now, actor=actor.name, role=actor.role, org=actor.org,
                            action=action, from_status=rec.status, to_status=rec.status, move_seq=m.seq,
                            reason=reason))
        return [m.seq for m in chosen]


def expected_rows(rec: PlanRecord, moves: Sequence[PlanMove], recorded_at: datetime) -> pa.Table:
    """The store rows a plan's moves imply: stock leaves the donor on the send day and reaches the receiver on
    arrival (from then on); a transferred patient frees a bed at the sender and fills one at the receiver for
    the length of stay."""
    rows: list[dict[str, Any]] = []

    def add(seq: int, org: str, metric: str, dims: str, first: date, last: date | None, delta: float) -> None:
        rows.append({"plan_id": rec.id, "move_seq": seq, "org": org, "metric": metric, "dims": dims,
                     "first_day": first, "last_day": last, "delta": delta, "plan_status": rec.status,
                     "recorded_at": recorded_at})

    for m in moves:
        if rec.kind in STOCK_METRIC:
            dims = f"item={m.resource}" if rec.kind == "supplies" else ""
            add(m.seq, m.src, STOCK_METRIC[rec.kind], dims, m.send_day, None, -m.quantity)
            add(m.seq, m.dst, STOCK_METRIC[rec.kind], dims, m.arrive_day, None, m.quantity)
        elif rec.kind == "patients":
            los = int(rec.params.get("los_days", 5))
            last = m.send_day + timedelta(days=los - 1)
            add(m.seq, m.src, "ga_beds_occupied", "", m.send_day, last, -m.quantity)
            add(m.seq, m.dst, "ga_beds_occupied", "", m.send_day, last, m.quantity)
    schema = pa.schema([(name, _ARROW[kind.split()[0]]) for name, kind in EXPECTED_CHANGE_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


_ARROW = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(), "DOUBLE": pa.float64(),
          "TIMESTAMP": pa.timestamp("us")}


def sync_expected(sessions: sessionmaker[Session], store: Store, plan_ids: Sequence[int] | None = None) -> int:
    """Make the store's expected changes match the plans' statuses: rows for approved, dispatched and completed
    plans, none for the rest. Returns how many plans were rewritten."""
    have = {(r[0], r[1]) for r in store.rows("SELECT DISTINCT plan_id, plan_status FROM expected_change")}
    have_ids = {pid for pid, _ in have}
    with sessions() as s:
        query = select(PlanRecord)
        if plan_ids is not None:
            query = query.where(PlanRecord.id.in_(list(plan_ids)))
        records = list(s.scalars(query))
        changed = 0
        for rec in records:
            wanted = rec.status in EXPECTING and rec.kind in (*STOCK_METRIC, "patients")
            if wanted and (rec.id, rec.status) not in have:
                moves = list(s.scalars(select(PlanMove).where(PlanMove.plan_id == rec.id)))
                store.append("expected_change", expected_rows(rec, moves, utcnow()),
                             replace_where="plan_id = $plan_id", params={"plan_id": rec.id})
                changed += 1
            elif not wanted and rec.id in have_ids:
                store.delete("expected_change", "plan_id = $plan_id", {"plan_id": rec.id})
                changed += 1
    return changed
