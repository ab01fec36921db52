"""The life of a mutual-aid plan: who may do what, in which state. Pure rules; the control plane records them.

    proposed ──approve──► approved ──dispatch──► dispatched ──complete──► completed
        │                    │                      │
        └─reject─► rejected  └──cancel─► cancelled ◄┘ (and proposed ──cancel──► cancelled)

The regional operations role approves, rejects, dispatches, completes and cancels. Each donor and receiver trust
accepts (or declines) its own moves; a plan is dispatched only when every move is accepted by both ends.
Rejecting, cancelling and declining need a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONAL_OPS = "regional_ops"
TRUST = "trust"
ROLES = (REGIONAL_OPS, TRUST)

PROPOSED, APPROVED, DISPATCHED, COMPLETED, REJECTED, CANCELLED = (
    "proposed", "approved", "dispatched", "completed", "rejected", "cancelled")
STATUSES = (PROPOSED, APPROVED, DISPATCHED, COMPLETED, REJECTED, CANCELLED)
FINAL = frozenset({COMPLETED, REJECTED, CANCELLED})

# (status, action) -> new status. Everything not listed is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    (PROPOSED, "approve"): APPROVED,
    (PROPOSED, "reject"): REJECTED,
    (PROPOSED, "cancel"): CANCELLED,
    (APPROVED, "dispatch"): DISPATCHED,
    (APPROVED, "cancel"): CANCELLED,
    (DISPATCHED, "complete"): COMPLETED,
    (DISPATCHED, "cancel"): CANCELLED,
}
PLAN_ACTIONS = tuple(sorted({action for _, action in TRANSITIONS}))
NEEDS_REASON = frozenset({"reject", "cancel", "decline"})

# A move's answer from one end: pending until that trust accepts or declines.
PENDING, ACCEPTED, DECLINED = "pending", "accepted", "declined"
# Trusts answer for their moves while the plan is still open to change.
ANSWERABLE = frozenset({PROPOSED, APPROVED})
# Stock changes the store should expect: from approval until the plan ends other than by completion.
EXPECTING = frozenset({APPROVED, DISPATCHED, COMPLETED})


class WorkflowError(ValueError):
    pass


@dataclass(frozen=True)
class Actor:
    name: str
    role: str  # REGIONAL_OPS or TRUST
    org: str | None = None  # the trust a TRUST actor speaks for


def plan_transition(status: str, action: str, actor: Actor, *, reason: str | None = None,
                    move_answers: tuple[tuple[str, str], ...] = ()) -> str:
    """The plan's next status, or a ``WorkflowError`` saying why not. ``move_answers`` holds each move's
    (donor answer, receiver answer); dispatch needs every one accepted."""
    if actor.role != REGIONAL_OPS:
        raise WorkflowError(f"only the regional operations role may {action} a plan ({actor.name} is {actor.role})")
    new = TRANSITIONS.get((status, action))
    if new is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status)
        hint = f"; from {status} it can: {', '.join(allowed)}" if allowed else f"; {status} is final"
        raise WorkflowError(f"a {status} plan cannot be {_past(action)}{hint}")
    if action in NEEDS_REASON and not (reason and reason.strip()):
        raise WorkflowError(f"say why the plan is {_past(action)} (--reason)")
    if action == "dispatch":
        waiting = [i + 1 for i, answers in enumerate(move_answers) if answers != (ACCEPTED, ACCEPTED)]
        if waiting:
            declined = [i + 1 for i, answers in enumerate(move_answers) if DECLINED in answers]
            if declined:
                raise WorkflowError(f"move(s) {_list(declined)} declined: cancel this plan and plan again")
            raise WorkflowError(f"move(s) {_list(waiting)} not yet accepted by both trusts")
    return new


def move_answer(plan_status: str, action: str, actor: Actor, src: str, dst: str, *,
                reason: str | None = None) -> tuple[str, str]:
    """Which end of a move the actor answers for ("src" or "dst") and the answer, or a ``WorkflowError``.
    A trust that is both ends (never in a valid plan) answers as donor."""
    if action not in ("accept", "decline"):
        raise WorkflowError(f"unknown answer {action!r}: accept or decline")
    if actor.role != TRUST or actor.org is None:
        raise WorkflowError("moves are accepted or declined by the donor and receiver trusts (--org CODE)")
    if plan_status not in ANSWERABLE:
        raise WorkflowError(f"the plan is {plan_status}: its moves can no longer be answered")
    if action == "decline" and not (reason and reason.strip()):
        raise WorkflowError("say why the move is declined (--reason)")
    if actor.org == src:
        end = "src"
    elif actor.org == dst:
        end = "dst"
    else:
        raise WorkflowError(f"{actor.org} is neither the donor ({src}) nor the receiver ({dst}) of this move")
    return end, ACCEPTED if action == "accept" else DECLINED


def _past(action: str) -> str:
    return {"approve": "approved", "reject": "rejected", "cancel": "cancelled", "dispatch": "dispatched",
            "complete": "completed", "decline": "declined"}.get(action, action)


def _list(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")
