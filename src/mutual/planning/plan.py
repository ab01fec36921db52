"""What every planning model returns: an explained plan of moves, totals before and after, and how it was solved."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

KINDS = ("ventilators", "supplies", "staff", "patients")


@dataclass(frozen=True)
class Move:
    """One proposed move: ``quantity`` units of ``resource`` leave ``src`` on ``send_day`` and are usable at ``dst``
    from ``arrive_day``. For staff, a loan from ``send_day`` to ``arrive_day`` inclusive; for patients, the day of
    transfer (both days equal)."""

    resource: str  # "ventilators", a supply item ("gloves"), a staff group ("cc_nurse"), "patients"
    src: str
    dst: str
    quantity: float
    send_day: date
    arrive_day: date
    distance_km: float
    reason: str  # the receiver's shortfall it covers and the donor's margin left, in words


@dataclass(frozen=True)
class SolveSummary:
    """How the plan was found. ``lp_bound`` is the LP relaxation's objective; for a rounded or MIP plan
    ``gap`` = (objective − lp_bound) / max(1, |objective|), so a reader sees what integrality cost."""

    status: str
    optimal: bool
    objective: float
    lp_bound: float
    gap: float
    seconds: float
    method: str  # "lp", "mip", "lp + rounding"
    variables: int
    constraints: int


@dataclass(frozen=True)
class Plan:
    kind: str  # one of KINDS
    start: date  # day 1 of the horizon
    horizon: int
    params: dict[str, Any]
    moves: tuple[Move, ...]
    before: dict[str, float]  # e.g. {"shortfall": 118403.6, "buffer_gap": ...}: with no moves
    after: dict[str, float]  # the same measures with the moves made
    solve: SolveSummary
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def units_moved(self) -> float:
        return float(sum(m.quantity for m in self.moves))
