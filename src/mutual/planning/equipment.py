"""Reusable equipment (ventilators, CPAP, beds-as-equipment): who should send how many units to whom, and when.

Our own implementation of the published COVIDAnalytics ventilator-sharing LP (Bertsimas et al., 2020), generalised
from all pairs of states to a sparse neighbour ``Graph``. Days d = 1..D, trusts s, base stock b_s on day 0:

    supply[s,d] = supply[s,d-1] - Σ_t ship[s,t,d] + Σ_o ship[o,s,d-delay]     (units sent on d arrive on d+delay)
    supply[s,d] >= floor(f · b_s)                                              (every trust keeps a share f)
    Σ_t ship[s,t,d] <= max_ship_per_day
    short[s,d] >= demand[s,d] - supply[s,d];  buffer[s,d] >= (1+α)·demand[s,d] - supply[s,d] - short[s,d]
    minimise Σ short + ρ Σ buffer + λ Σ (scale · distance + offset) · ship

Units received can be sent on (the balance allows it), as in the published model; on a sparse graph that is how
units reach trusts beyond the nearest k. With an all-pairs ``matrix_graph`` and ``integer=False`` the optimum is
the published one (a property test compares it with the plain formulation). The LP is kept lean without changing
its optimum, so that 6,000 hospitals × 30 days solve in seconds:

- no shipment may arrive after day D (it would only cost);
- a shipment exists only if it could pay for itself: the most one unit arriving at trust j on day τ can earn is
  a longest path over later days (1 per day j could be short, ρ where it could only miss its buffer, less the
  transport of any onward leg). Every trust keeps its floor from its own stock, so removing a shipment that
  cannot earn its transport never makes the objective worse;
- the LP is first solved without the daily cap, on the shipments such a plan needs: a unit that would arrive on a
  day its receiver cannot use it can be sent later instead, and a unit passed on at once from i through j to k
  can go directly when i links to k, or through the cheapest trust linking them. If that plan keeps the cap it
  is optimal for the capped problem too (it solves a relaxation); otherwise every useful shipment comes back and
  cap rows are added for the trust-days over the cap until none is;
- supply above the floor is three bounded slices (up to demand, up to the buffer target, the rest) that earn 1,
  ρ and 0 a unit-day, so the penalty needs no rows; a trust has a balance row only on days its supply matters
  (days it could earn, the day before units arrive, the last day), since in between it only falls as the trust
  sends; trusts with no shipment at all are constants;
- with whole units, a trust whose stock has a fraction (b = 849.6) can only send whole units above its floor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mutual.planning.graph import Graph
from mutual.planning.lp import Model
from mutual.planning.plan import Move, Plan, SolveSummary

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

EPS = 1e-7  # a shipment below this is solver noise, not a move
TOL = 1e-6  # units: how far a checked quantity may be off before it is a violation
MIP_MAX_SHIPMENT_COLUMNS = 2000  # "auto" solves the MIP itself up to this many shipment columns


@dataclass(frozen=True)
class EquipmentProblem:
    """Sharing one kind of reusable equipment among the trusts of ``graph`` over ``demand.shape[1]`` days.

    ``stock`` is the base stock b_s on day 0 (the units usable by the patients being planned for) and ``demand``
    the units needed each day from ``start`` (day 1). A trust keeps at least ``floor(keep_share · b_s)`` every
    day, sends at most ``max_ship_per_day`` units a day, and units sent on day d are usable on day d + ``delay``.

    Weights, in unit-days of shortfall: ``rho`` per unit-day below the buffer target (1 + ``alpha``) × demand, and
    ``lam · (distance_scale · km + distance_offset)`` per unit shipped. The defaults suit a km graph of trusts:
    one unit shipped costs 0.1 × (km / 100 + 10), i.e. about one unit-day of shortfall plus 0.1 per 100 km, so a
    unit moves only where it covers more than a day of shortfall (or about four days below the buffer). The
    published instance uses state centroid distances in degrees: pass ``distance_scale=1.0`` for it.

    ``integer``: units are indivisible; the plan rounds the LP with a repair step (or solves the MIP when small)
    and reports the gap to the LP bound. Trusts in ``unavailable`` neither send nor receive.
    """

    graph: Graph
    start: date
    stock: FloatArray
    demand: FloatArray
    resource: str = "ventilators"
    delay: int = 3
    keep_share: float = 0.8
    max_ship_per_day: float = 3000.0
    alpha: float = 0.1
    rho: float = 0.25
    lam: float = 0.1
    distance_offset: float = 10.0
    distance_scale: float = 1 / 100
    integer: bool = True
    unavailable: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Data:
    """A validated problem as arrays: arcs without the unavailable trusts, floors and per-unit arc costs."""

    n: int
    days: int
    delay: int
    stock: FloatArray
    demand: FloatArray
    floor: FloatArray  # the rule: supply never below floor(f · b)
    keep: FloatArray  # what the model may go down to: the floor; with whole units, b less the whole units above it
    src: IntArray
    dst: IntArray
    km: FloatArray
    cost: FloatArray  # objective cost of one unit on each arc


@dataclass(frozen=True)
class _LP:
    """One LP: shipment column ``x[i]`` is arc ``arc[i]`` sent on day index ``day[i]`` (0-based); ``constant`` is
    the objective of what the LP leaves out (trusts without shipments, supply up to the floor)."""

    model: Model
    x: IntArray
    arc: IntArray
    day: IntArray
    constant: float
    active: int  # trusts in the LP


@dataclass(frozen=True)
class EquipmentSolve:
    """The proven optimum of a problem's LP (or MIP), and what it took: ``shipments`` ``[arcs, days]`` over the
    arcs of the graph without unavailable trusts (``arc_src``/``arc_dst`` index ``graph.nodes``)."""

    status: str
    optimal: bool
    objective: float  # the full objective, including what the LP leaves out
    shipments: FloatArray
    arc_src: IntArray
    arc_dst: IntArray
    build_seconds: float
    solve_seconds: float
    rounds: int  # solves: 1 when the uncapped plan kept the cap
    variables: int  # of the last LP solved
    constraints: int
    shipment_columns: int
    left_out: int  # shipment columns (arc × day) never needed
    active_trusts: int
    notes: tuple[str, ...]


def _validate(p: EquipmentProblem) -> _Data:
    g = p.graph
    n = len(g.nodes)
    stock = np.asarray(p.stock, dtype=np.float64)
    demand = np.asarray(p.demand, dtype=np.float64)
    if stock.shape != (n,):
        raise ValueError(f"stock has shape {stock.shape}; the graph has {n} trusts, so expected ({n},)")
    if demand.ndim != 2 or demand.shape[0] != n or demand.shape[1] < 1:
        raise ValueError(f"demand has shape {demand.shape}; expected ({n}, days) with at least one day")
    for name, arr in (("stock", stock), ("demand", demand)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} has missing or infinite values")
        if (arr < 0).any():
            where = np.argwhere(arr < 0)[0]
            raise ValueError(f"{name} is negative for {g.nodes[int(where[0])]} ({arr[tuple(where)]:g})")
    if isinstance(p.delay, bool) or not isinstance(p.delay, int | np.integer) or p.delay < 0:
        raise ValueError(f"delay must be a whole number of days >= 0, not {p.delay!r}")
    checks = {"keep_share": (p.keep_share, 0.0, 1.0), "rho": (p.rho, 0.0, 1.0),
              "max_ship_per_day": (p.max_ship_per_day, 0.0, math.inf), "alpha": (p.alpha, 0.0, math.inf),
              "lam": (p.lam, 0.0, math.inf), "distance_offset": (p.distance_offset, 0.0, math.inf),
              "distance_scale": (p.distance_scale, 0.0, math.inf)}
    for name, (value, lo, hi) in checks.items():
        if not (lo <= float(value) <= hi) or math.isnan(float(value)):
            raise ValueError(f"{name} must be between {lo:g} and {hi:g}, not {value!r}")
    if math.isinf(p.alpha) or math.isinf(p.lam) or math.isinf(p.distance_offset) or math.isinf(p.distance_scale):
        raise ValueError("alpha, lam, distance_offset and distance_scale must be finite")
    unknown = sorted(set(p.unavailable) - set(g.nodes))
    if unknown:
        raise ValueError(f"unavailable trusts not in the graph: {', '.join(unknown)}")
    if g.src.shape != g.dst.shape or g.src.shape != g.km.shape:
        raise ValueError("graph arrays src, dst and km differ in length")
    if g.num_arcs and (min(g.src.min(), g.dst.min()) < 0 or max(g.src.max(), g.dst.max()) >= n):
        raise ValueError("graph arcs name trusts outside its nodes")
    if not np.isfinite(g.km).all() or (g.km < 0).any():
        raise ValueError("graph distances must be finite and >= 0")
    live = g.without(p.unavailable) if p.unavailable else g
    # round first so that 0.29 × 100 keeps 29, not 28
    floor = np.floor(np.round(p.keep_share * stock, 9))
    # whole units sent from a fractional stock (b = 849.6) leave the fraction behind: only 849.6 - 679 = 170.6,
    # i.e. 170 whole units, can go, so the model never goes below 679.6 (and with f = 1 nobody can send)
    keep = stock - np.floor(np.round(stock - floor, 9)) if p.integer else floor
    cost = p.lam * (p.distance_scale * live.km + p.distance_offset)
    return _Data(n=n, days=demand.shape[1], delay=int(p.delay), stock=stock, demand=demand, floor=floor, keep=keep,
                 src=live.src.astype(np.int64), dst=live.dst.astype(np.int64), km=live.km.astype(np.float64),
                 cost=cost.astype(np.float64))


def _penalty(p: EquipmentProblem, demand: FloatArray, supply: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Shortfall and buffer gap per trust-day, as the LP would set its slack variables."""
    short = np.maximum(0.0, demand - supply)
    buffer = np.maximum(0.0, (1 + p.alpha) * demand - supply - short)
    return short, buffer


def shortfall(p: EquipmentProblem, supply: NDArray[Any]) -> float:
    """Realised shortfall in unit-days: Σ max(0, demand − supply) over trusts and days."""
    demand = np.asarray(p.demand, dtype=np.float64)
    s = np.asarray(supply, dtype=np.float64)
    if s.shape != demand.shape:
        raise ValueError(f"supply has shape {s.shape}; demand has {demand.shape}")
    return float(np.maximum(0.0, demand - s).sum())


def _segment_max(values: FloatArray, src: IntArray, n: int) -> FloatArray:
    """Max of ``values`` per source node (arcs sorted by src); -inf for nodes without arcs."""
    out = np.full(n, -np.inf)
    if values.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
    out[src[starts]] = np.maximum.reduceat(values, starts)
    return out


def _earn(p: EquipmentProblem, d: _Data) -> FloatArray:
    """What one more unit can earn at a trust on a day, at most: 1 where it could be short, rho where it could
    only miss its buffer, 0 where even its floor covers the buffer target."""
    return np.where(d.keep[:, None] < d.demand, 1.0,
                    np.where(d.keep[:, None] < (1 + p.alpha) * d.demand, p.rho, 0.0))


def _unit_value_bound(p: EquipmentProblem, d: _Data) -> FloatArray:
    """``W[j, k]``: an upper bound on what one more unit at trust j, usable from day index k, can earn.

    A trust never goes below its floor from its own stock, so an extra unit there earns at most 1 on a day the
    trust could be short (floor < demand), ρ on a day it could only miss its buffer, and nothing otherwise; or it
    is sent on and earns what it earns there, less the transport."""
    n, days, delay = d.n, d.days, d.delay
    earn = _earn(p, d)
    w = np.zeros((n, days + 1))
    for k in range(days - 1, -1, -1):
        w[:, k] = earn[:, k] + w[:, k + 1]
        if k + delay <= days - 1 and d.src.size:
            if delay > 0:
                w[:, k] = np.maximum(w[:, k], _segment_max(w[d.dst, k + delay] - d.cost, d.src, n))
            else:
                for _ in range(n):  # same-day relays: relax until nothing improves
                    better = np.maximum(w[:, k], _segment_max(w[d.dst, k] - d.cost, d.src, n))
                    if np.array_equal(better, w[:, k]):
                        break
                    w[:, k] = better
    return w


def _useful(p: EquipmentProblem, d: _Data, w: FloatArray) -> NDArray[np.bool_]:
    """``[arcs, send days]``: shipments that could pay for themselves and whose sender could hold a unit to
    spare (its own, or one it may have received)."""
    send_days = d.days - d.delay
    k = np.arange(send_days)
    useful = w[d.dst][:, k + d.delay] - d.cost[:, None] > 1e-12
    has_spare = d.stock - d.keep > 1e-9
    received = np.zeros((d.n, d.days), dtype=bool)
    for day in range(send_days):
        could = useful[:, day].copy()
        for _ in range(d.n):  # with no delay, a unit received today can be sent on today
            useful[:, day] = could & (has_spare | received[:, day])[d.src]
            got = np.zeros(d.n, dtype=bool)
            got[d.dst[useful[:, day]]] = True
            new = got & ~received[:, day + d.delay]
            received[:, day + d.delay:] |= got[:, None]
            if d.delay > 0 or not new.any():
                break
    return useful


def _needed_without_cap(p: EquipmentProblem, d: _Data, w: FloatArray,
                        useful: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Of the useful shipments, those a plan without the daily cap needs: arriving on a day the receiver could
    use the unit, or passed on that same day to a trust the sender does not link to (more cheaply than
    directly), by a shipment needed in turn."""
    send_days = useful.shape[1]
    delay, n, arcs = d.delay, d.n, d.src.size
    needed = useful & (_earn(p, d)[d.dst][:, delay: delay + send_days] > 0)
    if delay == 0:
        return useful  # same-day relays could chain without end; keep them all
    starts = np.searchsorted(d.src, np.arange(n + 1))
    onward = np.diff(starts)[d.dst]  # i -> j -> k: one triple per arc (i, j) and arc (j, k)
    first = np.repeat(np.arange(arcs), onward)
    second = np.repeat(starts[d.dst], onward) + (np.arange(first.size) - np.repeat(np.cumsum(onward) - onward,
                                                                                    onward))
    i, k = d.src[first], d.dst[second]
    key = d.src * n + d.dst  # sorted, as the graph's arcs are
    want = i * n + k
    at = np.minimum(np.searchsorted(key, want), max(arcs - 1, 0))
    direct = np.where(key[at] == want, d.cost[at], np.inf)
    legs = d.cost[first] + d.cost[second]
    relay = (k != i) & (direct > legs + 1e-12)
    first, second, legs, i, k = first[relay], second[relay], legs[relay], i[relay], k[relay]
    # of the trusts that could pass units from i to k, only the cheapest (lowest index on a tie) is needed
    order = np.lexsort((d.dst[first], legs, i * n + k))
    pair = (i * n + k)[order]
    cheapest = np.ones(pair.size, dtype=bool)
    cheapest[1:] = pair[1:] != pair[:-1]
    best = order[cheapest]
    first, second, legs = first[best], second[best], legs[best]
    for t in range(send_days - 1 - delay, -1, -1):  # onward legs leave later: decide them first
        go = needed[second, t + delay] & (w[d.dst[second], t + 2 * delay] - legs > 1e-12)
        passes = np.zeros(arcs, dtype=bool)
        passes[first[go]] = True
        needed[:, t] |= passes & useful[:, t]
    return needed


def _build(p: EquipmentProblem, d: _Data, arc: IntArray, day: IntArray, *, integer: bool, upper: float,
           cap_groups: IntArray) -> _LP:
    """The LP over shipment columns (arc, day), with cap rows for the sender-days ``cap_groups``
    (``src * days + day``)."""
    n, days, delay = d.n, d.days, d.delay
    src, dst = d.src[arc], d.dst[arc]
    active = np.unique(np.concatenate([src, dst]))
    inactive = np.setdiff1d(np.arange(n), active)
    short0, buffer0 = _penalty(p, d.demand[inactive], np.broadcast_to(d.stock[inactive, None],
                                                                      (inactive.size, days)))
    constant = float(short0.sum() + p.rho * buffer0.sum())

    m = Model()
    x = m.add_vars(arc.size, cost=d.cost[arc], upper=upper, integer=integer)
    na = active.size
    loc = np.full(n, -1, dtype=np.int64)
    loc[active] = np.arange(na)
    keep = d.keep[active][:, None]
    dem = d.demand[active]
    short0, buffer0 = _penalty(p, dem, np.broadcast_to(keep, (na, days)))
    constant += float(short0.sum() + p.rho * buffer0.sum())
    # supply above the floor in three slices, filled in order because each earns less than the one before:
    # up to demand (earns 1 a unit-day), up to the buffer target (earns rho), and the rest (earns nothing)
    short_w = np.maximum(0.0, dem - keep)
    buffer_w = np.maximum(0.0, (1 + p.alpha) * dem - np.maximum(dem, keep)) if p.rho > 0 else np.zeros_like(dem)
    # a trust's supply matters only on days it could earn, the day before units arrive and the last day: in
    # between it only falls as the trust sends, so the next such day keeps the floor for the days before it
    check = (short_w > 0) | (buffer_w > 0)
    arrive = day + delay
    after_first = arrive >= 1
    check[loc[dst[after_first]], arrive[after_first] - 1] = True
    check[:, -1] = True
    count = np.cumsum(check, axis=1)
    first_row = np.r_[0, np.cumsum(count[:, -1])[:-1]]
    row_of = first_row[:, None] + count - check  # the balance row that closes each trust-day
    node, when = np.nonzero(check)  # row-major: in row order
    rows = node.size
    first = count[node, when] == 1
    not_last = when < days - 1
    r = [row_of[loc[src], day], row_of[loc[dst], arrive]]
    c = [x, x]
    val = [np.ones(arc.size), -np.ones(arc.size)]
    for width, cost in ((short_w[node, when], -1.0), (buffer_w[node, when], -p.rho), (np.full(rows, np.inf), 0.0)):
        has = width > 0
        y = m.add_vars(int(has.sum()), cost=cost, upper=width[has])
        at = np.flatnonzero(has)
        carried = has & not_last  # held on into the next row
        r += [at, np.flatnonzero(carried) + 1]
        c += [y, y[carried[has]]]
        val += [np.ones(at.size), -np.ones(int(carried.sum()))]
    # held[row] - held[row before] + sent - arrived = 0, and b - floor for a trust's first row
    rhs = np.where(first, d.stock[active][node] - d.keep[active][node], 0.0)
    m.add_constraints(rows, np.concatenate(r), np.concatenate(c), np.concatenate(val), lower=rhs, upper=rhs)

    if cap_groups.size:
        group = src * days + day
        inside = np.isin(group, cap_groups)
        _, crow = np.unique(group[inside], return_inverse=True)
        m.add_constraints(int(crow.max(initial=-1)) + 1, crow, x[inside], 1.0, upper=p.max_ship_per_day)
    return _LP(model=m, x=x, arc=arc, day=day, constant=constant, active=na)


def solve_equipment_lp(p: EquipmentProblem, *, integer: bool = False,
                       time_limit: float | None = None) -> EquipmentSolve:
    """Solve the LP of ``p`` (the MIP with ``integer``) to proven optimality, building it lean (module
    docstring): uncapped on the shipments that plan needs, and only if that breaks the cap, capped on every
    useful shipment with cap rows added for the trust-days over it."""
    started = time.perf_counter()
    d = _validate(p)
    send_days = d.days - d.delay
    empty = np.zeros(0, dtype=np.int64)
    shipments = np.zeros((d.src.size, d.days))
    notes: list[str] = []
    if send_days <= 0 or d.src.size == 0:
        useful = needed = np.zeros((d.src.size, max(send_days, 0)), dtype=bool)
    else:
        w = _unit_value_bound(p, d)
        useful = _useful(p, d, w)
        needed = _needed_without_cap(p, d, w, useful)
    cap = p.max_ship_per_day
    arc, day = (a.astype(np.int64) for a in np.nonzero(needed))
    lp = _build(p, d, arc, day, integer=integer, upper=math.inf, cap_groups=empty)
    build = time.perf_counter() - started
    total_cells = d.src.size * max(send_days, 0)
    if arc.size == 0:
        return EquipmentSolve(status="optimal", optimal=True, objective=lp.constant, shipments=shipments,
                              arc_src=d.src, arc_dst=d.dst, build_seconds=build, solve_seconds=0.0, rounds=0,
                              variables=0, constraints=0, shipment_columns=0, left_out=total_cells,
                              active_trusts=0, notes=("no shipment can help: no trust has a unit to spare "
                                                      "where one could earn its transport",))
    seconds, rounds = 0.0, 0
    cap_groups = empty
    while True:
        remaining = None if time_limit is None else max(0.1, time_limit - seconds)
        sol = lp.model.solve(time_limit=remaining)
        seconds += sol.seconds
        rounds += 1
        qty = sol.x[lp.x] if sol.x.size == lp.model.num_cols else np.zeros(lp.x.size)
        shipments = _flows(d, lp.arc, lp.day, qty)
        if not sol.optimal or not math.isfinite(cap):
            break
        over = np.argwhere(_sent(d, shipments) > cap * (1 + 1e-9) + 1e-7)
        new = np.setdiff1d(over[:, 0] * d.days + over[:, 1], cap_groups)
        if new.size == 0:  # rows already there are kept to the solver's tolerance; the repair takes the rest
            break
        if rounds == 1:
            notes.append("the uncapped plan broke the daily cap: solved again with every useful shipment")
            arc, day = (a.astype(np.int64) for a in np.nonzero(useful))
        cap_groups = np.union1d(cap_groups, new)
        t0 = time.perf_counter()
        lp = _build(p, d, arc, day, integer=integer, upper=cap, cap_groups=cap_groups)
        build += time.perf_counter() - t0
    return EquipmentSolve(status=sol.status, optimal=sol.optimal, objective=sol.objective + lp.constant,
                          shipments=shipments, arc_src=d.src, arc_dst=d.dst, build_seconds=build,
                          solve_seconds=seconds, rounds=rounds, variables=lp.model.num_cols,
                          constraints=lp.model.num_rows, shipment_columns=int(lp.x.size),
                          left_out=int(total_cells - lp.x.size), active_trusts=lp.active, notes=tuple(notes))


def _flows(d: _Data, arc: IntArray, day: IntArray, qty: FloatArray) -> FloatArray:
    """Dense shipments ``[arcs, days]`` (arc of the live graph, send day index)."""
    q = np.zeros((d.src.size, d.days))
    np.add.at(q, (arc, day), qty)
    return q


def _simulate(d: _Data, q: FloatArray) -> FloatArray:
    """Supply ``[n, days]`` given dense shipments ``q`` (arrivals after the horizon never happen here)."""
    sent = np.zeros((d.n, d.days))
    got = np.zeros((d.n, d.days))
    np.add.at(sent, d.src, q)
    if d.delay < d.days:
        np.add.at(got[:, d.delay:], d.dst, q[:, : d.days - d.delay])
    return d.stock[:, None] + np.cumsum(got - sent, axis=1)


def _cut(qk: FloatArray, src: IntArray, cost: FloatArray, need: FloatArray) -> None:
    """Take ``need[i]`` units off trust i's shipments of one day (``qk``, in place), most expensive first."""
    pos = np.flatnonzero((qk > 0) & (need[src] > 0))
    if pos.size == 0:
        return
    order = pos[np.lexsort((-cost[pos], src[pos]))]
    qs = qk[order]
    owner = src[order]
    cum = np.cumsum(qs)
    first = np.r_[True, owner[1:] != owner[:-1]]
    base = np.maximum.accumulate(np.where(first, cum - qs, 0.0))
    before = cum - qs - base
    qk[order] = qs - np.clip(need[owner] - before, 0.0, qs)


def _repair(d: _Data, q: FloatArray, cap: float, integer: bool) -> FloatArray:
    """Make shipments feasible day by day: drop noise, then cut a trust's shipments of day k until it keeps its
    floor and the daily cap. Cutting day-k shipments is always enough, because supply on day k-1 already kept
    the floor; it only lowers receivers' later days, which are repaired in turn."""
    q = q.copy()
    q[q < EPS] = 0.0
    if integer:
        q = np.floor(q + 1e-6)
    prev = d.stock.copy()
    for k in range(d.days):
        for _ in range(d.n + 1):  # with no delay a cut can lower a receiver on the same day
            qk = q[:, k]
            sent = np.bincount(d.src, qk, minlength=d.n)
            arrived = np.bincount(d.dst, q[:, k - d.delay], minlength=d.n) if k >= d.delay else np.zeros(d.n)
            supply = prev + arrived - sent
            need = np.maximum(d.floor - supply, sent - cap)
            need = np.where(need > 1e-9, need, 0.0)
            if not need.any():
                break
            if integer:
                need = np.ceil(need - 1e-9)
            _cut(qk, d.src, d.cost, need)
            qk[qk < EPS] = 0.0
            q[:, k] = qk
        prev = supply
    return q


def _objective(p: EquipmentProblem, d: _Data, supply: FloatArray, q: FloatArray) -> float:
    short, buffer = _penalty(p, d.demand, supply)
    return float(short.sum() + p.rho * buffer.sum() + (d.cost[:, None] * q).sum())


def _restore(p: EquipmentProblem, d: _Data, q: FloatArray, lp: FloatArray, cap: float) -> FloatArray:
    """After flooring, add back single units where the LP wanted part of one, if that keeps every constraint
    and lowers the objective (largest fractions first)."""
    frac = lp - q
    arcs, days = np.nonzero(frac > 1e-6)
    if arcs.size == 0:
        return q
    order = np.argsort(-frac[arcs, days], kind="stable")
    q = q.copy()
    supply = _simulate(d, q)
    sent = np.zeros((d.n, d.days))
    np.add.at(sent, d.src, q)
    dem, a1 = d.demand, 1 + p.alpha

    def pen(s: FloatArray, dm: FloatArray) -> FloatArray:
        short = np.maximum(0.0, dm - s)
        return short + p.rho * np.maximum(0.0, a1 * dm - s - short)

    for a, k in zip(arcs[order], days[order], strict=True):
        i, j, t = d.src[a], d.dst[a], k + d.delay
        if sent[i, k] + 1 > cap + 1e-9 or supply[i, k:].min() - 1 < d.floor[i] - 1e-9:
            continue
        si, sj = supply[i, k:], supply[j, t:]
        loss = pen(si - 1, dem[i, k:]).sum() - pen(si, dem[i, k:]).sum()
        gain = pen(sj, dem[j, t:]).sum() - pen(sj + 1, dem[j, t:]).sum()
        if loss - gain + d.cost[a] < -1e-9:
            q[a, k] += 1
            sent[i, k] += 1
            supply[i, k:] -= 1
            supply[j, t:] += 1
    return q


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-6 else f"{x:,.1f}"


def _unit(resource: str) -> str:
    return resource[:-1] if resource.endswith("s") and len(resource) > 1 else resource


def _moves(p: EquipmentProblem, d: _Data, q: FloatArray, before: FloatArray, after: FloatArray) -> list[Move]:
    """One explained move per non-zero shipment: the receiver's shortfall (or buffer gap) from the day it
    arrives, without moves and with the plan, and what the sender keeps."""
    arcs, days = np.nonzero(q > 0)
    order = np.lexsort((d.dst[arcs], d.src[arcs], days))
    arcs, days = arcs[order], days[order]
    short_b, buf_b = _penalty(p, d.demand, before)
    short_a, buf_a = _penalty(p, d.demand, after)

    def suffix(a: FloatArray) -> FloatArray:
        return np.cumsum(a[:, ::-1], axis=1)[:, ::-1]

    sb, sa, bb, ba = suffix(short_b), suffix(short_a), suffix(buf_b), suffix(buf_a)
    keeps = np.minimum.accumulate(after[:, ::-1], axis=1)[:, ::-1]
    sent = _sent(d, q)
    sends_later = suffix(sent)
    sent_before = np.cumsum(sent, axis=1) - sent
    nodes, unit = p.graph.nodes, _unit(p.resource)
    moves: list[Move] = []
    for a, k in zip(arcs, days, strict=True):
        i, j, t = int(d.src[a]), int(d.dst[a]), int(k) + d.delay
        arrive = p.start + timedelta(days=t)
        when = f"{arrive.day} {arrive:%b}"
        short_text = (f"{nodes[j]} would be short {_fmt(sb[j, t])} {unit}-days from {when} without moves, "
                      f"{_fmt(sa[j, t])} with this plan")
        buffer_text = (f"{nodes[j]} would be {_fmt(bb[j, t])} {unit}-days below its {1 + p.alpha:.0%} buffer "
                       f"from {when} without moves, {_fmt(ba[j, t])} with this plan")
        if sb[j, t] > sa[j, t] + TOL:
            why = short_text
        elif bb[j, t] > ba[j, t] + TOL:
            why = buffer_text
        elif sends_later[j, t] > 0:
            why = f"{nodes[j]} passes units on to trusts beyond it"
        elif sb[j, t] > TOL or bb[j, t] > TOL:
            earlier = f"{nodes[j]} sent units earlier, when it could spare them; " if sent_before[j, t] > 0 else ""
            why = earlier + (short_text if sb[j, t] > TOL else buffer_text)
        else:
            why = f"{nodes[j]} holds them from {when}"
        why += f"; {nodes[i]} keeps at least {_fmt(keeps[i, k])} (floor {_fmt(d.floor[i])})"
        moves.append(Move(resource=p.resource, src=nodes[i], dst=nodes[j], quantity=float(q[a, k]),
                          send_day=p.start + timedelta(days=int(k)), arrive_day=arrive,
                          distance_km=float(d.km[a]), reason=why))
    return moves


def _sent(d: _Data, q: FloatArray) -> FloatArray:
    sent = np.zeros((d.n, d.days))
    np.add.at(sent, d.src, q)
    return sent


def _totals(p: EquipmentProblem, d: _Data, supply: FloatArray, moves: Sequence[Move]) -> dict[str, float]:
    short, buffer = _penalty(p, d.demand, supply)
    return {"shortfall": float(short.sum()), "buffer_gap": float(buffer.sum()),
            "shipments": float(len(moves)), "units_moved": float(sum(m.quantity for m in moves)),
            "trusts_short": float((short.sum(axis=1) > TOL).sum())}


def plan_equipment(p: EquipmentProblem, *, time_limit: float | None = None, method: str | None = None,
                   solved: EquipmentSolve | None = None) -> Plan:
    """Solve ``p`` and return the explained plan.

    ``method``: "lp" (fractional units), "lp + rounding" or "mip"; by default "lp" when ``p.integer`` is False,
    else the MIP when it has at most ``MIP_MAX_SHIPMENT_COLUMNS`` shipment columns (the better of it and the
    rounded LP is kept) and "lp + rounding" above that. ``solve.optimal`` says whether the solver proved its
    problem (the LP, or the MIP) optimal; ``solve.gap`` is what rounding cost against the LP bound. ``solved``:
    the LP already solved by ``solve_equipment_lp(p)`` (not the MIP), to reuse."""
    if method not in (None, "lp", "lp + rounding", "mip"):
        raise ValueError(f"method must be 'lp', 'lp + rounding' or 'mip', not {method!r}")
    if method is None:
        method = "lp" if not p.integer else "auto"
    elif method == "lp" and p.integer:
        raise ValueError("method 'lp' gives fractional units; set integer=False or use 'lp + rounding'")
    elif method != "lp" and not p.integer:
        raise ValueError(f"method {method!r} rounds units; set integer=True")
    d = _validate(p)
    lp = solved if solved is not None else solve_equipment_lp(p, time_limit=time_limit)
    notes = list(lp.notes)
    if lp.left_out:
        notes.append(f"{lp.left_out:,} of {lp.left_out + lp.shipment_columns:,} possible shipments (arc × day) "
                     "left out of the LP: none could change its optimum")
    lp_bound = lp.objective if lp.optimal else float("nan")
    seconds = lp.solve_seconds
    cap = p.max_ship_per_day
    used = "lp" if method == "lp" else "lp + rounding"
    status, optimal = lp.status, lp.optimal
    q = _repair(d, lp.shipments, cap, integer=p.integer)
    if p.integer:
        # rounding down loses units passed on through a trust (one leg without the other earns nothing), rounding
        # to the nearest keeps both legs; either is repaired, topped up where it pays, and the better one kept
        tries = [_repair(d, _restore(p, d, _repair(d, start, cap, integer=True), lp.shipments, cap), cap, True)
                 for start in (lp.shipments, np.round(lp.shipments))]
        q = min(tries, key=lambda t: _objective(p, d, _simulate(d, t), t))
        if method == "mip" or (method == "auto" and 0 < lp.shipment_columns <= MIP_MAX_SHIPMENT_COLUMNS):
            remaining = 30.0 if time_limit is None else max(1.0, time_limit - seconds)
            mip = solve_equipment_lp(p, integer=True, time_limit=remaining)
            seconds += mip.solve_seconds
            q_mip = _repair(d, np.round(mip.shipments), cap, integer=True)
            better = _objective(p, d, _simulate(d, q_mip), q_mip) <= _objective(p, d, _simulate(d, q), q) + 1e-9
            if method == "mip" or better:
                q, used, status, optimal = q_mip, "mip", mip.status, mip.optimal
            else:
                notes.append(f"the MIP stopped ({mip.status}) worse than the rounded LP; the rounded LP is kept")
    before = np.broadcast_to(d.stock[:, None], (d.n, d.days)).astype(np.float64)
    after = _simulate(d, q)
    objective = _objective(p, d, after, q)
    moves = _moves(p, d, q, before, after)
    # rounding noise can put a proven optimum a hair below its own bound
    gap = max(0.0, objective - lp_bound) / max(1.0, abs(objective)) if math.isfinite(lp_bound) else float("nan")
    if not lp.optimal:
        notes.append(f"the LP was not solved to optimality ({lp.status}); the plan is feasible but may not be best")
    if p.unavailable:
        notes.append(f"unavailable (neither send nor receive): {', '.join(p.unavailable)}")
    summary = SolveSummary(status=status, optimal=optimal, objective=objective, lp_bound=lp_bound, gap=gap,
                           seconds=seconds, method=used, variables=lp.variables, constraints=lp.constraints)
    params: dict[str, Any] = {"resource": p.resource, "delay": p.delay, "keep_share": p.keep_share,
                              "max_ship_per_day": p.max_ship_per_day, "alpha": p.alpha, "rho": p.rho,
                              "lam": p.lam, "distance_offset": p.distance_offset,
                              "distance_scale": p.distance_scale, "integer": p.integer,
                              "unavailable": list(p.unavailable), "trusts": d.n, "arcs": int(d.src.size)}
    return Plan(kind="ventilators", start=p.start, horizon=d.days, params=params, moves=tuple(moves),
                before=_totals(p, d, before, ()), after=_totals(p, d, after, moves), solve=summary,
                notes=tuple(notes))


def _move_days(p: EquipmentProblem, m: Move) -> tuple[int, int]:
    return (m.send_day - p.start).days, (m.arrive_day - p.start).days


def equipment_supply(p: EquipmentProblem, moves: Sequence[Move]) -> FloatArray:
    """Supply ``[n, days]`` of every trust each day with ``moves`` made: stock, less what it has sent, plus what
    has arrived. Units arriving after the horizon have left and not arrived."""
    d = _validate(p)
    index = p.graph.index()
    delta = np.zeros((d.n, d.days + 1))
    for m in moves:
        if m.src not in index or m.dst not in index:
            raise ValueError(f"move {m.src} -> {m.dst} names a trust not in the graph")
        sent, arrive = _move_days(p, m)
        if sent < 0 or sent >= d.days:
            raise ValueError(f"move {m.src} -> {m.dst} is sent on {m.send_day}, outside the horizon")
        if arrive < sent:
            raise ValueError(f"move {m.src} -> {m.dst} arrives before it is sent")
        delta[index[m.src], sent] -= m.quantity
        delta[index[m.dst], min(arrive, d.days)] += m.quantity
    return d.stock[:, None] + np.cumsum(delta, axis=1)[:, : d.days]


def check_equipment(p: EquipmentProblem, plan: Plan) -> list[str]:
    """Every way ``plan`` breaks the rules of ``p``, in words; [] when it keeps them all."""
    d = _validate(p)
    index = p.graph.index()
    arcs = {(int(a), int(b)) for a, b in zip(d.src, d.dst, strict=True)}
    out: list[str] = []
    if plan.kind != "ventilators":
        out.append(f"plan is a {plan.kind} plan, not reusable equipment (ventilators)")
    if plan.horizon != d.days or plan.start != p.start:
        out.append(f"plan covers {plan.horizon} days from {plan.start}; the problem {d.days} from {p.start}")
    sent_per_day: dict[tuple[str, date], float] = {}
    valid: list[Move] = []
    for m in plan.moves:
        what = f"{_fmt(m.quantity)} {m.resource} {m.src} -> {m.dst} on {m.send_day}"
        if m.src not in index or m.dst not in index:
            out.append(f"{what}: unknown trust")
            continue
        sent, arrive = _move_days(p, m)
        problems = []
        if m.resource != p.resource:
            problems.append(f"moves {m.resource}, the problem is about {p.resource}")
        if m.src in p.unavailable or m.dst in p.unavailable:
            problems.append("involves an unavailable trust")
        elif (index[m.src], index[m.dst]) not in arcs:
            problems.append("the two trusts are not linked")
        if not (m.quantity > 0 and math.isfinite(m.quantity)):
            problems.append("quantity is not positive")
        if p.integer and abs(m.quantity - round(m.quantity)) > 1e-9:
            problems.append("quantity is not a whole number of units")
        if sent < 0 or sent >= d.days:
            problems.append("sent outside the horizon")
        if arrive - sent != d.delay:
            problems.append(f"arrives {arrive - sent} days after it is sent, not {d.delay}")
        if arrive >= d.days:
            problems.append("arrives after the last day")
        if problems:
            out.append(f"{what}: {'; '.join(problems)}")
            continue
        key = (m.src, m.send_day)
        sent_per_day[key] = sent_per_day.get(key, 0.0) + m.quantity
        valid.append(m)
    for (code, day), total in sorted(sent_per_day.items()):
        if total > p.max_ship_per_day + TOL:
            out.append(f"{code} sends {_fmt(total)} on {day}, over the cap of {_fmt(p.max_ship_per_day)} a day")
    supply = equipment_supply(p, valid)
    below = np.argwhere(supply < d.floor[:, None] - TOL)
    for i, k in below[:20]:
        out.append(f"{p.graph.nodes[i]} has {_fmt(supply[i, k])} on {p.start + timedelta(days=int(k))}, "
                   f"below its floor of {_fmt(d.floor[i])}")
    if len(below) > 20:
        out.append(f"... and {len(below) - 20} more trust-days below their floor")
    if abs(supply[:, -1].sum() - d.stock.sum()) > TOL * max(1.0, d.stock.sum()):
        out.append(f"units are not conserved: {_fmt(supply[:, -1].sum())} at the end, {_fmt(d.stock.sum())} "
                   "at the start")
    for label, stated, sim in (("before", plan.before, np.broadcast_to(d.stock[:, None], supply.shape)),
                               ("after", plan.after, supply)):
        real = _totals(p, d, np.asarray(sim, dtype=np.float64), valid if label == "after" else ())
        for name, value in real.items():
            if name in stated and abs(stated[name] - value) > TOL * max(1.0, abs(value)):
                out.append(f"plan says {name} {label} is {_fmt(stated[name])}; the moves give {_fmt(value)}")
    return out
