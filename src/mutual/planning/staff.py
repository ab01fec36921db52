"""Staff loans between nearby trusts, by staff group, to cover absence and demand.

Each day a trust has ``available`` staff of a group on duty and ``required`` of them; the gap is uncovered
staff-days. A loan moves whole people from a lender to a borrower for a run of consecutive days. A lender lends
only its spare (staff above its own requirement that day), at most ``max_loan_share`` of its available staff,
and only to trusts within ``max_km``; so a lender always stays at or above its requirement, and a trust that is
short itself lends nobody. The model minimises uncovered staff-days, then a small cost per person-day on loan
(more for longer journeys) and per loan started, so loans are made only where they cover a gap.

A loan is one ``Move``: ``quantity`` people of group ``resource`` from ``src`` to ``dst``, on loan every day
from ``send_day`` to ``arrive_day`` inclusive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from mutual.planning.graph import Graph
from mutual.planning.lp import Model
from mutual.planning.plan import Move, Plan, SolveSummary

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MIP_MAX_COLUMNS = 3000  # integer loan columns up to which "auto" also solves the MIP
MIP_SECONDS = 10.0


@dataclass(frozen=True)
class StaffProblem:
    """Staff groups ``groups`` at ``n`` trusts (``graph.nodes``) over ``D`` days from ``start``.

    ``available`` ``[n, G, D]`` is the staff on duty (headcount minus absence), ``required`` ``[n, G, D]`` the
    staff needed (e.g. one critical-care nurse per two ventilated patients). Loans run only along arcs no longer
    than ``max_km``; a lender lends at most ``max_loan_share`` of its available staff of a group per day and never
    what it needs itself. A loan lasts at least ``min_loan_days`` consecutive days (a loan may be cut short only
    by the end of the horizon). Cost per person-day on loan: ``lam × (1 + km × distance_scale)``, plus ``lam``
    per person per loan. Trusts in ``unavailable`` neither lend nor borrow. Arrays are checked and stored as
    float64.
    """

    graph: Graph
    start: date
    groups: tuple[str, ...]
    available: NDArray[np.float64]
    required: NDArray[np.float64]
    max_loan_share: float = 0.1
    max_km: float | None = 50.0
    min_loan_days: int = 1
    lam: float = 0.001
    distance_scale: float = 1 / 100
    integer: bool = True
    unavailable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n, G = len(self.graph.nodes), len(self.groups)
        if G == 0:
            raise ValueError("no staff groups given")
        if len(set(self.groups)) != G or not all(self.groups):
            raise ValueError(f"staff groups must be named and unique: {self.groups}")
        available = self._array("available", self.available)
        required = self._array("required", self.required)
        if available.ndim != 3 or available.shape[:2] != (n, G) or available.shape[2] < 1:
            raise ValueError(f"available has shape {available.shape}, expected ({n}, {G}, days): trusts × groups × "
                             f"days with at least one day")
        if required.shape != available.shape:
            raise ValueError(f"required has shape {required.shape}, expected {available.shape} like available")
        for name, value in (("lam", self.lam), ("distance_scale", self.distance_scale)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, not {value}")
        if not 0 <= self.max_loan_share <= 1:
            raise ValueError(f"max_loan_share must be between 0 and 1, not {self.max_loan_share}")
        if self.max_km is not None and not self.max_km >= 0:
            raise ValueError(f"max_km must be a non-negative distance or None, not {self.max_km}")
        if int(self.min_loan_days) != self.min_loan_days or self.min_loan_days < 1:
            raise ValueError(f"min_loan_days must be a whole number ≥ 1, not {self.min_loan_days}")
        unknown = sorted(set(self.unavailable) - set(self.graph.nodes))
        if unknown:
            raise ValueError(f"unavailable names unknown trusts: {', '.join(unknown)}")
        object.__setattr__(self, "available", available)
        object.__setattr__(self, "required", required)
        object.__setattr__(self, "min_loan_days", int(self.min_loan_days))

    def _array(self, name: str, value: object) -> FloatArray:
        try:
            a = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} is not an array of numbers ({e})") from None
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds a missing or infinite value")
        if (a < 0).any():
            first = np.argwhere(a < 0)[0]
            if a.ndim == 3 and a.shape[:2] == (len(self.graph.nodes), len(self.groups)):
                i, g, d = (int(v) for v in first)
                raise ValueError(f"{name} {self.groups[g]} at {self.graph.nodes[i]} on "
                                 f"{self.start + timedelta(days=d)} is negative ({a[i, g, d]:g})")
            raise ValueError(f"{name} holds a negative value")
        return a

    @property
    def days(self) -> int:
        return int(self.available.shape[2])


# -- arcs, rules and cover ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arcs:
    src: IntArray
    dst: IntArray
    km: FloatArray
    day_cost: FloatArray  # per person-day on loan


def _arcs(p: StaffProblem) -> _Arcs:
    g = p.graph.without(p.unavailable) if p.unavailable else p.graph
    keep = np.ones(g.num_arcs, dtype=bool) if p.max_km is None else g.km <= p.max_km
    km = g.km[keep].astype(np.float64)
    return _Arcs(g.src[keep].astype(np.int64), g.dst[keep].astype(np.int64), km,
                 p.lam * (1.0 + km * p.distance_scale))


def _tol(p: StaffProblem) -> float:
    return 1e-6 * max(1.0, float(p.available.max(initial=0.0)), float(p.required.max(initial=0.0)))


def _need(p: StaffProblem) -> FloatArray:
    """Staff short at each trust, group and day with no loans."""
    return np.maximum(p.required - p.available, 0.0)


def _lend_cap(p: StaffProblem) -> FloatArray:
    """Most a trust may lend of a group on a day: its spare above its requirement, and its share cap."""
    cap = np.minimum(p.max_loan_share * p.available, np.maximum(p.available - p.required, 0.0))
    return np.floor(cap + _tol(p)) if p.integer else cap


@dataclass
class _Loan:
    """``q`` people of group ``g`` along arc ``a`` on days ``first`` .. ``last`` (horizon indices)."""

    a: int
    g: int
    first: int
    last: int
    q: float


def _loan_flows(n: int, G: int, D: int, arcs: _Arcs, loans: Sequence[_Loan]) -> tuple[FloatArray, FloatArray]:
    lent = np.zeros((n, G, D))
    borrowed = np.zeros((n, G, D))
    for ln in loans:
        lent[arcs.src[ln.a], ln.g, ln.first:ln.last + 1] += ln.q
        borrowed[arcs.dst[ln.a], ln.g, ln.first:ln.last + 1] += ln.q
    return lent, borrowed


def _objective(p: StaffProblem, arcs: _Arcs, loans: Sequence[_Loan]) -> float:
    n, G, D = p.available.shape
    lent, borrowed = _loan_flows(n, G, D, arcs, loans)
    uncovered = np.maximum(p.required - (p.available - lent + borrowed), 0.0).sum()
    return float(uncovered + sum(ln.q * ((ln.last - ln.first + 1) * arcs.day_cost[ln.a] + p.lam) for ln in loans))


# -- the model ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    pair_arc: IntArray  # [P] arc of each (arc, group) pair that could ever help
    pair_group: IntArray  # [P]
    loan: IntArray  # [P, D] people on loan each day
    start: IntArray  # [P, D] people starting a loan that day


def _pairs(p: StaffProblem, arcs: _Arcs, cap: FloatArray, need: FloatArray) -> tuple[IntArray, IntArray]:
    """(arc, group) pairs on which a loan could ever help: some day the lender has spare and the borrower is
    short. Every other pair would only ever carry cost."""
    useful = ((cap[arcs.src] > 0) & (need[arcs.dst] > 0)).any(axis=2)  # [A, G]
    a, g = np.nonzero(useful)
    return a.astype(np.int64), g.astype(np.int64)


def _build(p: StaffProblem, arcs: _Arcs, cap: FloatArray, need: FloatArray) -> tuple[Model, _Columns]:
    n, G, D = p.available.shape
    m_days = p.min_loan_days
    pa, pg = _pairs(p, arcs, cap, need)
    P = pa.size
    src, dst = arcs.src[pa], arcs.dst[pa]
    upper = cap[src, pg]  # [P, D]
    if m_days == 1:  # a daily loan never needs to exceed what the borrower lacks that day
        upper = np.minimum(upper, np.ceil(need[dst, pg] - _tol(p)) if p.integer else need[dst, pg])
    m = Model()
    loan = m.add_vars((P, D), cost=arcs.day_cost[pa][:, None], upper=upper, integer=p.integer)
    start = m.add_vars((P, D), cost=p.lam, integer=p.integer)
    day = np.tile(np.arange(D, dtype=np.int64), P)

    # lenders: all loans of a group leaving a trust on a day stay within its cap
    lend_cell = (np.repeat(src * G + pg, D) * D + day)
    m.add_constraints(n * G * D, lend_cell, loan.ravel(), 1.0, upper=cap.ravel())

    # borrowers: uncovered + loans arriving >= staff short, on every short trust-group-day
    short = np.flatnonzero(need.ravel() > 0)
    uncovered = m.add_vars(short.size, cost=1.0)
    row_of = np.full(n * G * D, -1, dtype=np.int64)
    row_of[short] = np.arange(short.size)
    borrow_row = row_of[np.repeat(dst * G + pg, D) * D + day]
    hit = borrow_row >= 0
    m.add_constraints(short.size, np.concatenate([np.arange(short.size), borrow_row[hit]]),
                      np.concatenate([uncovered, loan.ravel()[hit]]), 1.0, lower=need.ravel()[short])

    # starts: start[d] >= loan[d] - loan[d-1]
    cells = np.arange(P * D, dtype=np.int64).reshape(P, D)
    m.add_constraints(P * D, np.concatenate([cells.ravel(), cells.ravel(), cells[:, 1:].ravel()]),
                      np.concatenate([start.ravel(), loan.ravel(), loan[:, :-1].ravel()]),
                      np.concatenate([np.ones(P * D), -np.ones(P * D), np.ones(P * (D - 1))]), lower=0.0)
    if m_days > 1:  # whoever started in the last m days is still on loan: loan[d] >= sum of start[d-m+1 .. d]
        rows, cols, vals = [cells.ravel()], [loan.ravel()], [np.ones(P * D)]
        for back in range(min(m_days, D)):
            rows.append(cells[:, back:].ravel())
            cols.append(start[:, : D - back].ravel())
            vals.append(-np.ones(P * (D - back)))
        m.add_constraints(P * D, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), lower=0.0)
    return m, _Columns(pa, pg, loan, start)


# -- from daily numbers to loans ------------------------------------------------------------------------------


def _blocks(series: FloatArray, tol: float) -> list[tuple[int, int, float]]:
    """Split people-on-loan per day into loans (first day, last day, people), first in first out: those who
    came first go home first, so every loan is as long as the daily numbers allow."""
    D = series.size
    open_: list[list[float]] = []  # [first day, people]
    done: list[tuple[int, int, float]] = []
    prev = 0.0
    for d in range(D + 1):
        cur = float(series[d]) if d < D else 0.0
        if cur > prev + tol:
            open_.append([d, cur - prev])
        elif cur < prev - tol:
            ending = prev - cur
            while ending > tol and open_:
                first, q = open_[0]
                take = min(q, ending)
                done.append((int(first), d - 1, take))
                ending -= take
                if q - take > tol:
                    open_[0][1] = q - take
                else:
                    open_.pop(0)
        prev = cur
    return done


def _loans_from(p: StaffProblem, cols: _Columns, values: FloatArray) -> list[_Loan]:
    tol = _tol(p)
    loans = []
    for k in np.flatnonzero(values.max(axis=1, initial=0.0) > tol):
        for first, last, q in _blocks(values[k], tol):
            loans.append(_Loan(int(cols.pair_arc[k]), int(cols.pair_group[k]), first, last,
                               float(round(q)) if p.integer else q))
    return [ln for ln in loans if ln.q > tol]


def _repair(p: StaffProblem, arcs: _Arcs, cap: FloatArray, loans: list[_Loan]) -> tuple[list[_Loan], int]:
    """Make every loan keep the rules: a loan shorter than ``min_loan_days`` (not cut by the horizon's end) is
    lengthened where the lender has spare, else dropped; a lender over its cap has its latest loans cut. Returns
    the loans and how many were changed."""
    n, G, D = p.available.shape
    tol = _tol(p)
    m_days = p.min_loan_days
    lent, _ = _loan_flows(n, G, D, arcs, loans)
    changed = 0
    kept: list[_Loan] = []
    for ln in sorted(loans, key=lambda x: (x.first, x.a, x.g)):
        i = int(arcs.src[ln.a])
        if ln.last - ln.first + 1 < m_days and ln.last < D - 1:
            changed += 1
            lent[i, ln.g, ln.first:ln.last + 1] -= ln.q
            room = cap[i, ln.g] - lent[i, ln.g] >= ln.q - tol
            first, last = ln.first, ln.last
            while last - first + 1 < m_days and last + 1 < D and room[last + 1]:
                last += 1
            while last - first + 1 < m_days and last < D - 1 and first > 0 and room[first - 1]:
                first -= 1
            if (last - first + 1 >= m_days or last == D - 1) and room[first:last + 1].all():
                ln = _Loan(ln.a, ln.g, first, last, ln.q)
                lent[i, ln.g, first:last + 1] += ln.q
            else:
                continue
        kept.append(ln)
    for ln in sorted(kept, key=lambda x: -x.first):  # latest first
        i = int(arcs.src[ln.a])
        over = float((lent[i, ln.g, ln.first:ln.last + 1] - cap[i, ln.g, ln.first:ln.last + 1]).max())
        if over > tol:
            cut = min(ln.q, math.ceil(over - 1e-9) if p.integer else over)
            lent[i, ln.g, ln.first:ln.last + 1] -= cut
            ln.q -= cut
            changed += 1
    return [ln for ln in kept if ln.q > tol], changed


def _restore(p: StaffProblem, arcs: _Arcs, cap: FloatArray, need: FloatArray, cols: _Columns, lp_loan: FloatArray,
             loans: list[_Loan]) -> tuple[list[_Loan], int]:
    """Add one-person loans where the LP lent people that rounding dropped, largest loss first: on a run of
    days the borrower is still short and the lender has a whole person spare (lengthened to ``min_loan_days``
    where the lender can), kept only if it covers more than it costs."""
    n, G, D = p.available.shape
    tol = _tol(p)
    m_days = p.min_loan_days
    lent, borrowed = _loan_flows(n, G, D, arcs, loans)
    kept_series = np.zeros_like(lp_loan)
    pair_of = {(int(a), int(g)): k for k, (a, g) in enumerate(zip(cols.pair_arc, cols.pair_group, strict=True))}
    for ln in loans:
        kept_series[pair_of[(ln.a, ln.g)], ln.first:ln.last + 1] += ln.q
    lost = (lp_loan - kept_series).clip(min=0.0).sum(axis=1)
    added = 0
    for k in np.argsort(-lost, kind="stable")[: int((lost > 1e-6).sum())][:20_000]:
        a, g = int(cols.pair_arc[k]), int(cols.pair_group[k])
        i, j = int(arcs.src[a]), int(arcs.dst[a])
        for _ in range(D):
            room = cap[i, g] - lent[i, g] >= 1.0 - tol
            short = need[j, g] - borrowed[j, g]
            run = room & (short > tol)
            if not run.any():
                break
            first = int(np.argmax(run))
            last = first
            while last + 1 < D and run[last + 1]:
                last += 1
            while last - first + 1 < m_days and last + 1 < D and room[last + 1]:
                last += 1
            while last - first + 1 < m_days and last < D - 1 and first > 0 and room[first - 1]:
                first -= 1
            if last - first + 1 < m_days and last < D - 1:
                break
            gain = float(np.minimum(short[first:last + 1].clip(min=0.0), 1.0).sum())
            if gain <= (last - first + 1) * arcs.day_cost[a] + p.lam + 1e-9:
                break
            loans.append(_Loan(a, g, first, last, 1.0))
            lent[i, g, first:last + 1] += 1.0
            borrowed[j, g, first:last + 1] += 1.0
            added += 1
    return loans, added


# -- measures -------------------------------------------------------------------------------------------------


def _move_flows(p: StaffProblem, moves: Sequence[Move], problems: list[str] | None) -> tuple[FloatArray, FloatArray]:
    """People lent and borrowed ``[n, G, D]`` by moves. Without ``problems`` a move that cannot be placed raises
    ``ValueError``; with it, the move is described there and left out."""
    index = p.graph.index()
    group = {g: k for k, g in enumerate(p.groups)}
    n, G, D = p.available.shape
    lent = np.zeros((n, G, D))
    borrowed = np.zeros((n, G, D))
    for m in moves:
        first, last = (m.send_day - p.start).days, (m.arrive_day - p.start).days
        wrong = ""
        if m.src not in index or m.dst not in index:
            wrong = f"unknown trust {', '.join(c for c in (m.src, m.dst) if c not in index)}"
        elif m.resource not in group:
            wrong = f"unknown staff group {m.resource} (groups: {', '.join(p.groups)})"
        elif not (math.isfinite(m.quantity) and m.quantity >= 0):
            wrong = f"{m.quantity} is not a number of people"
        elif not 0 <= first <= last < D:
            wrong = (f"loan {m.send_day} .. {m.arrive_day} is not a run of days inside the horizon {p.start} .. "
                     f"{p.start + timedelta(days=D - 1)}")
        if wrong:
            text = f"loan of {m.resource} {m.src} -> {m.dst} from {m.send_day}: {wrong}"
            if problems is None:
                raise ValueError(text)
            problems.append(text)
            continue
        g = group[m.resource]
        lent[index[m.src], g, first:last + 1] += m.quantity
        borrowed[index[m.dst], g, first:last + 1] += m.quantity
    return lent, borrowed


def staff_cover(p: StaffProblem, moves: Sequence[Move]) -> FloatArray:
    """Staff on duty ``[n, G, D]`` once the loans in ``moves`` are made: each person counts at the borrower, not
    the lender, on every day of the loan."""
    lent, borrowed = _move_flows(p, moves, None)
    return p.available - lent + borrowed


def _totals(p: StaffProblem, cover: FloatArray, moves: Sequence[Move]) -> dict[str, float]:
    uncovered = np.maximum(p.required - cover, 0.0)
    totals = {"uncovered_staff_days": float(uncovered.sum())}
    for k, g in enumerate(p.groups):
        totals[f"uncovered_staff_days:{g}"] = float(uncovered[:, k].sum())
    totals["staff_days_loaned"] = float(sum(m.quantity * ((m.arrive_day - m.send_day).days + 1) for m in moves))
    totals["loans"] = float(len(moves))
    return totals


# -- explained moves ------------------------------------------------------------------------------------------


def _day(d: date) -> str:
    return f"{d.day} {d:%b}"


def _days(first: date, last: date) -> str:
    if first == last:
        return _day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b}"
    return f"{_day(first)} – {_day(last)}"


def _moves(p: StaffProblem, arcs: _Arcs, loans: list[_Loan]) -> tuple[Move, ...]:
    n, G, D = p.available.shape
    nodes = p.graph.nodes
    need = _need(p)
    lent, borrowed = _loan_flows(n, G, D, arcs, loans)
    margin = p.available - lent + borrowed - p.required
    left = need.copy()  # still short, as loans are credited in order
    moves = []
    for ln in sorted(loans, key=lambda x: (x.first, x.g, int(arcs.dst[x.a]), int(arcs.src[x.a]), x.last)):
        i, j, g = int(arcs.src[ln.a]), int(arcs.dst[ln.a]), ln.g
        days = slice(ln.first, ln.last + 1)
        covered = np.minimum(left[j, g, days], ln.q)
        left[j, g, days] -= covered
        first, last = p.start + timedelta(days=ln.first), p.start + timedelta(days=ln.last)
        tight = ln.first + int(np.argmin(margin[i, g, days]))
        tight_day = _day(p.start + timedelta(days=tight))
        group = p.groups[g]
        people = f"{ln.q:g}" if p.integer else f"{ln.q:.1f}"
        length = ln.last - ln.first + 1
        reason = (f"{people} {group} from {nodes[i]} to {nodes[j]} for {_days(first, last)} ({length} day"
                  f"{'s' if length > 1 else ''}, {arcs.km[ln.a]:.0f} km): covers {covered.sum():.3g} of "
                  f"{nodes[j]}'s {need[j, g, days].sum():.3g} {group}-days short on those days; {nodes[i]} stays "
                  f"at or above its requirement (margin {margin[i, g, tight]:.3g} on {tight_day})")
        moves.append(Move(resource=group, src=nodes[i], dst=nodes[j], quantity=float(ln.q), send_day=first,
                          arrive_day=last, distance_km=float(arcs.km[ln.a]), reason=reason))
    return tuple(moves)


# -- the plan -------------------------------------------------------------------------------------------------


def plan_staff(p: StaffProblem, *, time_limit: float | None = None, method: str = "auto") -> Plan:
    """The staff loans that cover the most uncovered staff-days, explained, with totals before and after.

    ``method``: "lp" solves the LP and rounds to whole people (floor, repair, restore); "mip" also solves the
    MIP and keeps the better plan; "auto" does the MIP only when there are at most ``MIP_MAX_COLUMNS`` integer
    columns. Every plan passes ``check_staff``."""
    if method not in ("auto", "lp", "mip"):
        raise ValueError(f"method must be auto, lp or mip, not {method!r}")
    started = time.perf_counter()
    arcs = _arcs(p)
    cap, need = _lend_cap(p), _need(p)
    notes: list[str] = []
    model, cols = _build(p, arcs, cap, need)
    if cols.pair_arc.size == 0:
        notes.append("nothing to lend: no trust within reach has spare staff of a group on a day another is short"
                     if need.any() else "no trust is short of staff")
        objective = _objective(p, arcs, [])
        summary = SolveSummary(status="nothing to move", optimal=True, objective=objective, lp_bound=objective,
                               gap=0.0, seconds=time.perf_counter() - started, method="lp", variables=0,
                               constraints=0)
        return _plan(p, arcs, [], summary, notes)

    lp = model.solve(time_limit=time_limit, relax=True)
    if not lp.optimal:
        notes.append(f"the LP stopped with status {lp.status}; its solution is repaired into a feasible plan")
    lp_loan = np.clip(lp.x[cols.loan], 0.0, None) if lp.x.size else np.zeros(cols.loan.shape)
    first = np.floor(lp_loan + 1e-6) if p.integer else lp_loan
    loans, changed = _repair(p, arcs, cap, _loans_from(p, cols, first))
    how, sol = ("lp + rounding" if p.integer else "lp"), lp
    if p.integer:
        loans, added = _restore(p, arcs, cap, need, cols, lp_loan, loans)
        rounding = (f"rounded LP loans down to whole people, changed {changed} to keep every rule, then added "
                    f"{added} one-person loans where that helped") if changed or added else ""
        if method == "mip" or (method == "auto" and cols.loan.size + cols.start.size <= MIP_MAX_COLUMNS):
            mip = model.solve(time_limit=MIP_SECONDS if time_limit is None else time_limit)
            if mip.x.size:
                whole = np.rint(np.clip(mip.x[cols.loan], 0.0, None)).astype(np.float64)
                mip_loans, _ = _repair(p, arcs, cap, _loans_from(p, cols, whole))
                if _objective(p, arcs, mip_loans) <= _objective(p, arcs, loans) + 1e-9:
                    loans, how, sol = mip_loans, "mip", mip
            if not mip.optimal:
                notes.append(f"the MIP stopped with status {mip.status}")
        if how != "mip" and rounding:
            notes.append(rounding)
    objective = _objective(p, arcs, loans)
    bound = lp.objective if lp.optimal else float("nan")
    gap = max(0.0, (objective - bound) / max(1.0, abs(objective))) if lp.optimal else float("nan")
    optimal = lp.optimal and (how == "lp" or (how == "mip" and sol.optimal) or gap <= 1e-9)
    summary = SolveSummary(status=sol.status, optimal=bool(optimal), objective=objective, lp_bound=bound,
                           gap=float(gap), seconds=time.perf_counter() - started, method=how,
                           variables=model.num_cols, constraints=model.num_rows)
    return _plan(p, arcs, loans, summary, notes)


def _merged(loans: list[_Loan]) -> list[_Loan]:
    """One loan per lender, borrower, group and run of days: people on the same loan travel together."""
    people: dict[tuple[int, int, int, int], float] = {}
    for ln in loans:
        key = (ln.a, ln.g, ln.first, ln.last)
        people[key] = people.get(key, 0.0) + ln.q
    return [_Loan(a, g, first, last, q) for (a, g, first, last), q in people.items()]


def _plan(p: StaffProblem, arcs: _Arcs, loans: list[_Loan], summary: SolveSummary, notes: list[str]) -> Plan:
    moves = _moves(p, arcs, _merged(loans))
    params = {"groups": list(p.groups), "max_loan_share": p.max_loan_share, "max_km": p.max_km,
              "min_loan_days": p.min_loan_days, "lam": p.lam, "distance_scale": p.distance_scale,
              "integer": p.integer, "unavailable": list(p.unavailable), "trusts": len(p.graph.nodes),
              "arcs": int(arcs.src.size)}
    return Plan(kind="staff", start=p.start, horizon=p.days, params=params, moves=moves,
                before=_totals(p, p.available, ()), after=_totals(p, staff_cover(p, moves), moves), solve=summary,
                notes=tuple(notes))


# -- the check ------------------------------------------------------------------------------------------------


def check_staff(p: StaffProblem, plan: Plan) -> list[str]:
    """Everything wrong with ``plan`` for ``p``, in words (empty when it is feasible): loans along links that do
    not exist, are longer than ``max_km`` or touch an unavailable trust, part people, loans shorter than
    ``min_loan_days``, a lender over its share or below its own requirement, people lost, or totals that do not
    match the moves."""
    problems: list[str] = []
    n, _, D = p.available.shape
    if plan.kind != "staff":
        problems.append(f"plan is for {plan.kind}, not staff")
    if plan.start != p.start or plan.horizon != D:
        problems.append(f"plan covers {plan.horizon} days from {plan.start}, the problem {D} from {p.start}")
    arcs = _arcs(p)
    linked = {(int(s), int(t)): float(km) for s, t, km in zip(arcs.src, arcs.dst, arcs.km, strict=True)}
    index = p.graph.index()
    tol = _tol(p)
    valid: list[Move] = []
    for m in plan.moves:
        where = f"loan of {m.resource} {m.src} -> {m.dst} from {m.send_day}"
        before = len(problems)
        if m.src in index and m.dst in index:
            km = linked.get((index[m.src], index[m.dst]))
            if km is None:
                problems.append(f"{where}: no usable link between them within {p.max_km} km")
            elif p.max_km is not None and m.distance_km > p.max_km + 1e-9:
                problems.append(f"{where}: {m.distance_km:g} km is beyond {p.max_km:g} km")
        if not m.quantity > 0:
            problems.append(f"{where}: {m.quantity} people is not positive")
        elif p.integer and m.quantity != round(m.quantity):
            problems.append(f"{where}: {m.quantity:g} is not a whole number of people")
        length = (m.arrive_day - m.send_day).days + 1
        if 0 < length < p.min_loan_days and (m.arrive_day - p.start).days != D - 1:
            problems.append(f"{where}: lasts {length} days, less than {p.min_loan_days}")
        _move_flows(p, [m], problems)
        if len(problems) == before:
            valid.append(m)
    lent, borrowed = _move_flows(p, valid, None)
    cover = p.available - lent + borrowed
    nodes = p.graph.nodes

    def report(mask: NDArray[np.bool_], what: str) -> None:
        for i, g in np.argwhere(mask.any(axis=2))[:20]:
            d = int(np.argmax(mask[i, g]))
            problems.append(f"{nodes[i]} {p.groups[g]} on {p.start + timedelta(days=d)}: {what}")

    report(lent > p.max_loan_share * p.available + tol, f"lends more than {p.max_loan_share:g} of its staff")
    report((lent > tol) & (p.available - lent < p.required - tol), "lends staff it needs itself")
    report(cover < -tol, "fewer than no staff on duty")
    if np.abs(cover.sum(axis=0) - p.available.sum(axis=0)).max(initial=0.0) > tol * max(1, n):
        problems.append("staff are not conserved: the loans create or lose people")
    for label, totals, want in (("before", plan.before, _totals(p, p.available, ())),
                                ("after", plan.after, _totals(p, cover, valid))):
        for key, value in want.items():
            got = totals.get(key)
            if got is None or not math.isclose(got, value, rel_tol=1e-6, abs_tol=tol):
                problems.append(f"totals {label}: {key} is {got}, the moves give {value:.6g}")
    return problems

