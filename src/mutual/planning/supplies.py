"""Consumable supplies (PPE items, oxygen, drugs, ventilator consumables): share stock between nearby trusts so
that none runs below its minimum days of supply while another holds many weeks.

Each day a trust's stock grows by its deliveries and the shipments arriving, falls by what it sends and what it
uses; use that stock cannot meet is *unmet usage* (stock never goes below zero). The model minimises, in order of
weight: unmet usage, units short of ``min_days`` of supply, units short of ``target_days``, then transport. A
trust gives only what it holds spare: with the plan its stock never falls below ``min_days`` of supply where it
would otherwise have had that much (nor below what it would otherwise have had), and it meets no less of its own
usage; a trust that would run out without the plan sends nothing from that day on. Days of supply on day d =
end-of-day stock ÷ usage on day d.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from mutual.planning.graph import Graph
from mutual.planning.lp import Model, Solution
from mutual.planning.plan import Move, Plan, SolveSummary

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

W_MIN = 1.0  # per unit-day short of min_days of supply
W_TARGET = 0.1  # per unit-day short of target_days of supply
CHURN = 1e-6  # per unit moved, so that equally good plans prefer fewer units in motion
MIP_MAX_SENDS = 2000  # shipment columns up to which "auto" also solves the MIP
MIP_SECONDS = 10.0


@dataclass(frozen=True)
class SupplyProblem:
    """One item at ``n`` trusts (``graph.nodes``) over ``D`` days from ``start``.

    ``stock`` ``[n]`` is the units on hand at the start of day 1; ``usage`` and ``deliveries`` ``[n, D]`` are the
    units expected to be used, and already due to arrive, each day. Days of supply = end-of-day stock ÷ that day's
    usage. A unit sent on day d is usable by the receiver on day d + ``delay``. A donor sends at most
    ``max_share`` of its starting stock over the horizon. Transport costs ``lam × km × distance_scale`` per unit.
    Trusts in ``unavailable`` neither send nor receive. Arrays are checked and stored as float64.
    """

    graph: Graph
    start: date
    item: str
    stock: NDArray[np.float64]
    usage: NDArray[np.float64]
    deliveries: NDArray[np.float64]
    min_days: float = 3.0
    target_days: float = 7.0
    delay: int = 1
    max_share: float = 0.5
    lam: float = 0.01
    distance_scale: float = 1 / 100
    integer: bool = True
    unavailable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.graph.nodes)
        if not self.item:
            raise ValueError("the supply item has no name")
        stock = _array("stock", self.stock, self.graph.nodes, self.start)
        usage = _array("usage", self.usage, self.graph.nodes, self.start)
        deliveries = _array("deliveries", self.deliveries, self.graph.nodes, self.start)
        if stock.shape != (n,):
            raise ValueError(f"stock has shape {stock.shape}, expected ({n},): one value per trust")
        if usage.ndim != 2 or usage.shape[0] != n or usage.shape[1] < 1:
            raise ValueError(f"usage has shape {usage.shape}, expected ({n}, days) with at least one day")
        if deliveries.shape != usage.shape:
            raise ValueError(f"deliveries has shape {deliveries.shape}, expected {usage.shape} like usage")
        for name, value in (("min_days", self.min_days), ("target_days", self.target_days), ("lam", self.lam),
                            ("distance_scale", self.distance_scale)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, not {value}")
        if self.target_days < self.min_days:
            raise ValueError(f"target_days ({self.target_days:g}) is below min_days ({self.min_days:g})")
        if int(self.delay) != self.delay or self.delay < 0:
            raise ValueError(f"delay must be a whole number of days ≥ 0, not {self.delay}")
        if not 0 <= self.max_share <= 1:
            raise ValueError(f"max_share must be between 0 and 1, not {self.max_share}")
        unknown = sorted(set(self.unavailable) - set(self.graph.nodes))
        if unknown:
            raise ValueError(f"unavailable names unknown trusts: {', '.join(unknown)}")
        object.__setattr__(self, "stock", stock)
        object.__setattr__(self, "usage", usage)
        object.__setattr__(self, "deliveries", deliveries)
        object.__setattr__(self, "delay", int(self.delay))

    @property
    def days(self) -> int:
        return int(self.usage.shape[1])


def _array(name: str, value: object, nodes: tuple[str, ...], start: date) -> FloatArray:
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not an array of numbers ({e})") from None
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds a missing or infinite value")
    if a.ndim in (1, 2) and a.shape[0] == len(nodes) and (a < 0).any():
        first = np.argwhere(a < 0)[0]
        when = f" on {start + timedelta(days=int(first[1]))}" if a.ndim == 2 else ""
        raise ValueError(f"{name} of {nodes[int(first[0])]}{when} is negative ({a[tuple(first)]:g})")
    if (a < 0).any():
        raise ValueError(f"{name} holds a negative value")
    return a


# -- arcs, flows and the day-by-day simulation ----------------------------------------------------------------


@dataclass(frozen=True)
class _Arcs:
    src: IntArray
    dst: IntArray
    km: FloatArray
    cost: FloatArray  # per unit sent


def _arcs(p: SupplyProblem) -> _Arcs:
    g = p.graph.without(p.unavailable) if p.unavailable else p.graph
    km = g.km.astype(np.float64)
    return _Arcs(g.src.astype(np.int64), g.dst.astype(np.int64), km, p.lam * km * p.distance_scale + CHURN)


def _tol(p: SupplyProblem) -> float:
    """Slack allowed for solver round-off, relative to the size of the numbers in the problem."""
    scale = max(1.0, float(p.stock.max(initial=0.0)), float(p.usage.max(initial=0.0)),
                float(p.deliveries.max(initial=0.0)))
    return 1e-6 * scale


@dataclass(frozen=True)
class _Flows:
    out: FloatArray  # [n, D] units sent each day
    inn: FloatArray  # [n, D] units arriving (usable) each day


def _arc_flows(p: SupplyProblem, arcs: _Arcs, x: FloatArray) -> _Flows:
    """Per-trust flows from shipments ``x[A, S]`` (S = sending days, those whose arrival is inside the horizon)."""
    n, D = p.usage.shape
    out = np.zeros((n, D))
    inn = np.zeros((n, D))
    A, S = x.shape
    if S and A:
        ones, arc = np.ones(A), np.arange(A)
        out[:, :S] = sparse.csr_matrix((ones, (arcs.src, arc)), shape=(n, A)) @ x
        inn[:, p.delay:p.delay + S] = sparse.csr_matrix((ones, (arcs.dst, arc)), shape=(n, A)) @ x
    return _Flows(out, inn)


def _simulate(stock: FloatArray, deliveries: FloatArray, usage: FloatArray, out: FloatArray, inn: FloatArray
              ) -> tuple[FloatArray, FloatArray]:
    """End-of-day stock and unmet usage, row by row: each day deliveries and arrivals come in, shipments leave,
    then use takes what it can. Stock goes negative only when a trust sends more than it holds."""
    k, D = usage.shape
    end = np.empty((k, D))
    unmet = np.empty((k, D))
    prev = stock
    for d in range(D):
        avail = prev + deliveries[:, d] + inn[:, d] - out[:, d]
        used = np.clip(avail, 0.0, usage[:, d])
        unmet[:, d] = usage[:, d] - used
        end[:, d] = avail - used
        prev = end[:, d]
    return end, unmet


def _baseline(p: SupplyProblem) -> tuple[FloatArray, FloatArray]:
    zero = np.zeros_like(p.usage)
    return _simulate(p.stock, p.deliveries, p.usage, zero, zero)


@dataclass(frozen=True)
class _Rules:
    """What every plan is held to and scored by, worked out once from the plan with no moves."""

    min_units: FloatArray  # [n, D] min_days × usage
    target_units: FloatArray  # [n, D] target_days × usage
    floor: FloatArray  # [n, D] lowest end-of-day stock allowed: min(min_units, stock without moves)
    end0: FloatArray  # [n, D] end-of-day stock without moves
    unmet0: FloatArray  # [n, D] unmet usage without moves: the most allowed with them
    send_cap: FloatArray  # [n] units a trust may send over the horizon
    runs_out: IntArray  # [n] first day a trust runs out without moves (D if never): it sends nothing from then
    w_unmet: FloatArray  # [D] per unit of use unmet on each day
    tol: float


def _rules(p: SupplyProblem, arcs: _Arcs) -> _Rules:
    """The unmet-use weight is what keeps the LP honest about use: the simulation uses stock as soon as it is
    needed, and the LP must not prefer to leave use unmet while holding stock. It is above anything a unit could
    earn elsewhere (so use is always met when possible), and falls each day by more than a unit earns by staying
    in stock a day (so meeting use earlier is always worth more than meeting it later)."""
    end0, unmet0 = _baseline(p)
    min_units = p.min_days * p.usage
    tol = _tol(p)
    D = p.days
    short = unmet0 > tol
    runs_out = np.where(short.any(axis=1), np.argmax(short, axis=1), D).astype(np.int64)
    base = (W_MIN + W_TARGET) * D + 1.0 + float(arcs.cost.max(initial=0.0))
    w_unmet = base + (W_MIN + W_TARGET + 0.01) * np.arange(D - 1, -1, -1, dtype=np.float64)
    return _Rules(min_units=min_units, target_units=p.target_days * p.usage, floor=np.minimum(min_units, end0),
                  end0=end0, unmet0=unmet0, send_cap=p.max_share * p.stock, runs_out=runs_out, w_unmet=w_unmet,
                  tol=tol)


def _row_objective(r: _Rules, rows: IntArray | slice, end: FloatArray, unmet: FloatArray) -> FloatArray:
    """Each trust's part of the objective, transport aside: why the unmet weight dominates is in ``_rules``:
    it exceeds what a unit kept unused could ever earn by staying in stock to the end of the horizon."""
    return ((unmet * r.w_unmet).sum(axis=1) + W_MIN * np.maximum(r.min_units[rows] - end, 0.0).sum(axis=1)
            + W_TARGET * np.maximum(r.target_units[rows] - end, 0.0).sum(axis=1))


def _violations(r: _Rules, rows: IntArray | slice, end: FloatArray, unmet: FloatArray) -> NDArray[np.bool_]:
    """Trust-days that break a rule: below the floor (which is ≥ 0, so negative stock too) or more unmet use."""
    slack = r.tol / 10
    return (end < r.floor[rows] - slack) | (unmet > r.unmet0[rows] + slack)


# -- the model ------------------------------------------------------------------------------------------------


def _build(p: SupplyProblem, arcs: _Arcs, r: _Rules, integer: bool) -> tuple[Model, IntArray]:
    n, D = p.usage.shape
    S = max(0, D - p.delay)
    A = arcs.src.size
    cap = r.send_cap[arcs.src]
    m = Model()
    may_send = np.arange(S)[None, :] < r.runs_out[arcs.src][:, None]
    upper = np.where(may_send, (np.floor(cap + r.tol) if integer else cap)[:, None], 0.0)
    x = m.add_vars((A, S), cost=arcs.cost[:, None], upper=upper, integer=integer)
    s = m.add_vars((n, D), lower=r.floor)
    u = m.add_vars((n, D), cost=r.w_unmet[None, :], upper=r.unmet0)

    cells = np.arange(n * D, dtype=np.int64).reshape(n, D)
    arc_day = np.tile(np.arange(S, dtype=np.int64), A)
    send_row = np.repeat(arcs.src, S) * D + arc_day
    arrive_row = np.repeat(arcs.dst, S) * D + arc_day + p.delay
    # s[d] - s[d-1] + sent[d] - arrived[d] - unmet[d] = deliveries[d] - usage[d] (+ starting stock on day 1)
    rhs = p.deliveries - p.usage
    rhs[:, 0] += p.stock
    m.add_constraints(n * D,
                      np.concatenate([cells.ravel(), cells[:, 1:].ravel(), send_row, arrive_row, cells.ravel()]),
                      np.concatenate([s.ravel(), s[:, :-1].ravel(), x.ravel(), x.ravel(), u.ravel()]),
                      np.concatenate([np.ones(n * D), -np.ones(n * (D - 1)), np.ones(A * S), -np.ones(A * S),
                                      -np.ones(n * D)]),
                      lower=rhs.ravel(), upper=rhs.ravel())
    used = np.flatnonzero(p.usage.ravel() > 0)  # only days with use can fall short of days of supply
    for weight, units in ((W_MIN, r.min_units), (W_TARGET, r.target_units)):
        short = m.add_vars(used.size, cost=weight)
        k = np.arange(used.size, dtype=np.int64)
        m.add_constraints(used.size, np.concatenate([k, k]), np.concatenate([short, s.ravel()[used]]), 1.0,
                          lower=units.ravel()[used])
    m.add_constraints(n, np.repeat(arcs.src, S), x.ravel(), 1.0, upper=r.send_cap)
    return m, x


# -- rounding: floor, repair, restore -------------------------------------------------------------------------


def _out_arcs(arcs: _Arcs, n: int) -> list[IntArray]:
    """Each trust's outgoing arcs, longest first (trimmed first when a donor has sent too much)."""
    order = np.lexsort((-arcs.km, arcs.src))
    bounds = np.searchsorted(arcs.src[order], np.arange(n + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n)]


def _trim(x: FloatArray, arcs_of: IntArray, last_day: int, amount: float) -> list[tuple[int, int, float]]:
    """Take ``amount`` off a trust's shipments sent up to ``last_day``, latest first (in place); returns the
    (arc, day, units) taken."""
    taken: list[tuple[int, int, float]] = []
    for d in range(min(last_day, x.shape[1] - 1), -1, -1):
        for a in arcs_of:
            if amount <= 0:
                return taken
            take = min(float(x[a, d]), amount)
            if take > 0:
                x[a, d] -= take
                amount -= take
                taken.append((int(a), d, take))
    return taken


def _repair(p: SupplyProblem, arcs: _Arcs, r: _Rules, x: FloatArray, integer: bool) -> tuple[FloatArray, float]:
    """Trim shipments until every rule holds in simulation. Sending less never hurts the sender and arriving
    more never hurts the receiver, so trimming a breaking trust's own earlier shipments always mends it, and the
    loop ends (at worst with no moves). Only trusts whose flows changed are simulated again. Returns the
    shipments and the units trimmed."""
    x = x.copy()
    before = float(x.sum())
    n = p.usage.shape[0]
    arcs_of = _out_arcs(arcs, n)
    f = _arc_flows(p, arcs, x)
    out, inn = f.out, f.inn
    rows = np.arange(n, dtype=np.int64)
    slack = r.tol / 10
    for _ in range(100_000):
        end, unmet = _simulate(p.stock[rows], p.deliveries[rows], p.usage[rows], out[rows], inn[rows])
        bad = _violations(r, rows, end, unmet)
        excess = out[rows].sum(axis=1) - r.send_cap[rows]
        broken = np.flatnonzero(bad.any(axis=1) | (excess > slack))
        if broken.size == 0:
            return x, before - float(x.sum())
        touched: set[int] = set()
        for k in broken:
            i = int(rows[k])
            if excess[k] > slack:
                last, amount = x.shape[1] - 1, float(excess[k])
            else:
                d = int(np.argmax(bad[k]))
                last = d
                amount = float(max(r.floor[i, d] - end[k, d], unmet[k, d] - r.unmet0[i, d]))
            amount = max(1.0, math.ceil(amount - 1e-9)) if integer else amount + r.tol / 100
            if float(x[arcs_of[i], : last + 1].sum()) <= 0:  # round-off only: a rule breaks only after sending
                last, amount = x.shape[1] - 1, float(x[arcs_of[i]].sum())
            for a, d, take in _trim(x, arcs_of[i], last, amount):
                out[i, d] -= take
                inn[arcs.dst[a], d + p.delay] -= take
                touched.update((i, int(arcs.dst[a])))
            touched.add(i)
        rows = np.fromiter(sorted(touched), dtype=np.int64)
    return np.zeros_like(x), before


def _restore(p: SupplyProblem, arcs: _Arcs, r: _Rules, x: FloatArray, x_lp: FloatArray) -> tuple[FloatArray, int]:
    """Add back, one unit at a time, the shipments the LP wanted and rounding dropped, largest loss first,
    keeping a unit only if every rule still holds and the objective falls. Only the sender's and receiver's
    days change, so each try simulates just those two trusts."""
    x = x.copy()
    f = _arc_flows(p, arcs, x)
    out, inn = f.out, f.inn
    sent = out.sum(axis=1)
    end, unmet = _simulate(p.stock, p.deliveries, p.usage, out, inn)
    row_obj = _row_objective(r, slice(None), end, unmet)
    added = 0
    budget = 50_000  # single-unit tries, so a huge problem cannot stall here
    for _ in range(5):  # a later pass can add what an earlier addition upstream made possible
        lost = x_lp - x
        cand = np.argwhere(lost > 1e-6)
        cand = cand[np.lexsort((-lost[cand[:, 0], cand[:, 1]], cand[:, 1]))]  # earliest first: relays feed on them
        added_before = added
        for a, d in cand:
            s, t = int(arcs.src[a]), int(arcs.dst[a])
            rows = np.array([s, t], dtype=np.int64)
            for _ in range(math.ceil(lost[a, d] - 1e-6)):
                budget -= 1
                if budget < 0 or sent[s] + 1 > r.send_cap[s] + r.tol / 10:
                    break
                out[s, d] += 1
                inn[t, d + p.delay] += 1
                e2, u2 = _simulate(p.stock[rows], p.deliveries[rows], p.usage[rows], out[rows], inn[rows])
                new = _row_objective(r, rows, e2, u2)
                if (not _violations(r, rows, e2, u2).any()
                        and new.sum() + arcs.cost[a] < row_obj[rows].sum() - 1e-9):
                    x[a, d] += 1
                    sent[s] += 1
                    row_obj[rows] = new
                    added += 1
                else:
                    out[s, d] -= 1
                    inn[t, d + p.delay] -= 1
                    break
        if added == added_before or budget < 0:
            break
    return x, added


def _score(p: SupplyProblem, arcs: _Arcs, r: _Rules, x: FloatArray) -> float:
    f = _arc_flows(p, arcs, x)
    end, unmet = _simulate(p.stock, p.deliveries, p.usage, f.out, f.inn)
    return float(_row_objective(r, slice(None), end, unmet).sum() + (arcs.cost[:, None] * x).sum())


# -- measures -------------------------------------------------------------------------------------------------


def days_of_supply(p: SupplyProblem, stock: NDArray[np.float64]) -> FloatArray:
    """End-of-day stock ``[n, D]`` ÷ that day's usage; infinite where no use is expected."""
    a = np.asarray(stock, dtype=np.float64)
    if a.shape != p.usage.shape:
        raise ValueError(f"stock has shape {a.shape}, expected {p.usage.shape} like usage")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p.usage > 0, a / np.where(p.usage > 0, p.usage, 1.0), np.inf)


def _totals(p: SupplyProblem, end: FloatArray, unmet: FloatArray, units: float, shipments: int) -> dict[str, float]:
    tol = _tol(p)
    used = p.usage > 0
    dos = days_of_supply(p, end)[used]
    return {"trust_days_below_min": float((used & (end < p.min_days * p.usage - tol)).sum()),
            "trust_days_below_target": float((used & (end < p.target_days * p.usage - tol)).sum()),
            "unmet_usage": float(unmet.sum()),
            "lowest_days_of_supply": float(dos.min()) if dos.size else 0.0,
            "highest_days_of_supply": float(dos.max()) if dos.size else 0.0,
            "units_moved": float(units),
            "shipments": float(shipments)}


def _move_flows(p: SupplyProblem, moves: Sequence[Move], problems: list[str] | None) -> _Flows:
    """Per-trust flows from moves. Without ``problems`` a move that cannot be placed raises ``ValueError``;
    with it, the move is described there and left out. Units arriving after the horizon leave but never
    arrive."""
    index = p.graph.index()
    n, D = p.usage.shape
    out = np.zeros((n, D))
    inn = np.zeros((n, D))
    for m in moves:
        wrong = ""
        if m.src not in index or m.dst not in index:
            unknown = [c for c in (m.src, m.dst) if c not in index]
            wrong = f"unknown trust {', '.join(unknown)}"
        elif not (math.isfinite(m.quantity) and m.quantity >= 0):
            wrong = f"quantity {m.quantity} is not a number of units"
        elif not 0 <= (m.send_day - p.start).days < D:
            wrong = f"sent {m.send_day}, outside the horizon {p.start} .. {p.start + timedelta(days=D - 1)}"
        elif m.arrive_day < m.send_day:
            wrong = f"arrives {m.arrive_day}, before it is sent"
        if wrong:
            text = f"move {m.src} -> {m.dst} sent {m.send_day}: {wrong}"
            if problems is None:
                raise ValueError(text)
            problems.append(text)
            continue
        out[index[m.src], (m.send_day - p.start).days] += m.quantity
        t = (m.arrive_day - p.start).days
        if t < D:
            inn[index[m.dst], t] += m.quantity
    return _Flows(out, inn)


def supply_stock(p: SupplyProblem, moves: Sequence[Move]) -> FloatArray:
    """End-of-day stock ``[n, D]`` with ``moves`` made (negative only where a trust sends more than it holds)."""
    f = _move_flows(p, moves, None)
    return _simulate(p.stock, p.deliveries, p.usage, f.out, f.inn)[0]


# -- explained moves ------------------------------------------------------------------------------------------


def _day(d: date) -> str:
    return f"{d.day} {d:%b}"


def _dos_text(units: float, usage: float) -> str:
    return f"{units / usage:.1f} days of supply" if usage > 0 else f"{units:,.0f} units (no use forecast)"


def _moves(p: SupplyProblem, arcs: _Arcs, r: _Rules, x: FloatArray, end: FloatArray) -> tuple[Move, ...]:
    """One move per shipment, with the receiver's days of supply without and with the plan, and what the donor
    keeps against its floor."""
    nodes = p.graph.nodes
    used = p.usage > 0
    lowest = np.where(used, end / np.where(used, p.usage, 1.0), np.inf).min(axis=1)
    a_idx, d_idx = np.nonzero(x > 0)
    order = np.lexsort((arcs.dst[a_idx], arcs.src[a_idx], d_idx))

    def units(v: float) -> str:
        return f"{v:,.0f}" if p.integer else f"{v:,.2f}"

    moves = []
    for a, d in zip(a_idx[order], d_idx[order], strict=True):
        s, t, q = int(arcs.src[a]), int(arcs.dst[a]), float(x[a, d])
        arrive = int(d) + p.delay
        send_day, arrive_day = p.start + timedelta(days=int(d)), p.start + timedelta(days=arrive)
        u_t = p.usage[t, arrive]
        ran_out = float(r.unmet0[t, arrive:].sum())
        reason = (f"{units(q)} {p.item} from {nodes[s]} to {nodes[t]}, arriving {_day(arrive_day)}: {nodes[t]} "
                  f"would otherwise hold {_dos_text(r.end0[t, arrive], u_t)} that day (minimum {p.min_days:g} days)"
                  + (f" and leave {ran_out:,.0f} units of use unmet from then on" if ran_out > 0 else "")
                  + f"; with the plan {_dos_text(end[t, arrive], u_t)}. {nodes[s]} keeps {units(end[s, d])} on "
                  f"{_day(send_day)} (floor {units(r.floor[s, d])})"
                  + (f" and never falls below {lowest[s]:.1f} days of supply" if math.isfinite(lowest[s]) else "")
                  + ".")
        moves.append(Move(resource=p.item, src=nodes[s], dst=nodes[t], quantity=float(round(q)) if p.integer else q,
                          send_day=send_day, arrive_day=arrive_day, distance_km=float(arcs.km[a]), reason=reason))
    return tuple(moves)


# -- the plan -------------------------------------------------------------------------------------------------


def plan_supplies(p: SupplyProblem, *, time_limit: float | None = None, method: str = "auto") -> Plan:
    """The shipments that best balance days of supply, explained, with totals before and after.

    ``method``: "lp" solves the LP and rounds whole units (floor, repair, restore); "mip" also solves the MIP
    and keeps the better plan; "auto" does the MIP only when there are at most ``MIP_MAX_SENDS`` shipment
    columns. Every plan passes ``check_supplies``."""
    if method not in ("auto", "lp", "mip"):
        raise ValueError(f"method must be auto, lp or mip, not {method!r}")
    started = time.perf_counter()
    D = p.days
    arcs = _arcs(p)
    r = _rules(p, arcs)
    S = max(0, D - p.delay)
    notes: list[str] = []
    if arcs.src.size == 0 or S == 0:
        x = np.zeros((arcs.src.size, S))
        notes.append(f"{p.item}: nothing can move: no usable links between trusts" if arcs.src.size == 0 else
                     f"{p.item}: nothing can move: a {p.delay}-day delay leaves no day on which a shipment would "
                     f"arrive inside the {D}-day horizon")
        objective = _score(p, arcs, r, x)
        summary = SolveSummary(status="nothing to move", optimal=True, objective=objective, lp_bound=objective,
                               gap=0.0, seconds=time.perf_counter() - started, method="lp", variables=0,
                               constraints=0)
        return _plan(p, arcs, r, x, summary, notes)

    model, cols = _build(p, arcs, r, p.integer)
    lp = model.solve(time_limit=time_limit, relax=True)
    x_lp = lp.x[cols] if lp.x.size else np.zeros(cols.shape)
    if not lp.optimal:
        notes.append(f"{p.item}: the LP stopped with status {lp.status}; its solution is repaired into a feasible "
                     "plan")
    x_lp = np.clip(x_lp, 0.0, None)
    chosen: tuple[FloatArray, str, Solution]
    if not p.integer:
        x, _ = _repair(p, arcs, r, np.where(x_lp > r.tol / 100, x_lp, 0.0), integer=False)
        chosen = (x, "lp", lp)
    else:
        x, trimmed = _repair(p, arcs, r, np.floor(x_lp + 1e-6), integer=True)
        x, restored = _restore(p, arcs, r, x, x_lp)
        chosen = (x, "lp + rounding", lp)
        rounding = (f"{p.item}: rounded LP shipments down to whole units, trimmed {trimmed:,.0f} to keep every "
                    f"rule, then restored {restored:,} single units where that helped")
        if method == "mip" or (method == "auto" and cols.size <= MIP_MAX_SENDS):
            mip = model.solve(time_limit=MIP_SECONDS if time_limit is None else time_limit)
            if mip.x.size:
                whole = np.rint(np.clip(mip.x[cols], 0.0, None)).astype(np.float64)
                x_mip, _ = _repair(p, arcs, r, whole, integer=True)
                x_mip, _ = _restore(p, arcs, r, x_mip, x_lp)
                if _score(p, arcs, r, x_mip) <= _score(p, arcs, r, x) + 1e-9:
                    chosen = (x_mip, "mip", mip)
            if not mip.optimal:
                notes.append(f"{p.item}: the MIP stopped with status {mip.status}")
        if chosen[1] != "mip" and (trimmed or restored):
            notes.append(rounding)
    x, how, sol = chosen
    objective = _score(p, arcs, r, x)
    bound = lp.objective if lp.optimal else float("nan")
    gap = max(0.0, (objective - bound) / max(1.0, abs(objective))) if lp.optimal else float("nan")
    optimal = lp.optimal and (how == "lp" or (how == "mip" and sol.optimal) or gap <= 1e-9)
    summary = SolveSummary(status=sol.status, optimal=bool(optimal), objective=objective, lp_bound=bound,
                           gap=float(gap), seconds=time.perf_counter() - started, method=how,
                           variables=model.num_cols, constraints=model.num_rows)
    return _plan(p, arcs, r, x, summary, notes)


def _plan(p: SupplyProblem, arcs: _Arcs, r: _Rules, x: FloatArray, summary: SolveSummary, notes: list[str]
          ) -> Plan:
    moves = _moves(p, arcs, r, x, _simulate_x(p, arcs, x)[0])
    f = _move_flows(p, moves, None)
    end, unmet = _simulate(p.stock, p.deliveries, p.usage, f.out, f.inn)
    units = float(sum(m.quantity for m in moves))
    params = {"item": p.item, "min_days": p.min_days, "target_days": p.target_days, "delay": p.delay,
              "max_share": p.max_share, "lam": p.lam, "distance_scale": p.distance_scale, "integer": p.integer,
              "unavailable": list(p.unavailable), "trusts": len(p.graph.nodes), "arcs": int(arcs.src.size),
              "weights": {"unmet_first_day": float(r.w_unmet[0]), "unmet_last_day": float(r.w_unmet[-1]),
                          "below_min": W_MIN, "below_target": W_TARGET}}
    return Plan(kind="supplies", start=p.start, horizon=p.days, params=params, moves=moves,
                before=_totals(p, r.end0, r.unmet0, 0.0, 0), after=_totals(p, end, unmet, units, len(moves)),
                solve=summary, notes=tuple(notes))


def _simulate_x(p: SupplyProblem, arcs: _Arcs, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    f = _arc_flows(p, arcs, x)
    return _simulate(p.stock, p.deliveries, p.usage, f.out, f.inn)


# -- the check ------------------------------------------------------------------------------------------------


def check_supplies(p: SupplyProblem, plan: Plan) -> list[str]:
    """Everything wrong with ``plan`` for ``p``, in words (empty when it is feasible): moves on links that do not
    exist or touch an unavailable trust, part units, wrong delays, negative stock, a donor over its share or
    below its floor, more unmet use than without the plan, units lost, or totals that do not match the moves."""
    problems: list[str] = []
    n, D = p.usage.shape
    if plan.kind != "supplies":
        problems.append(f"plan is for {plan.kind}, not supplies")
    if plan.start != p.start or plan.horizon != D:
        problems.append(f"plan covers {plan.horizon} days from {plan.start}, the problem {D} from {p.start}")
    arcs = _arcs(p)
    linked = set(zip(arcs.src.tolist(), arcs.dst.tolist(), strict=True))
    index = p.graph.index()
    valid: list[Move] = []
    for m in plan.moves:
        where = f"move {m.src} -> {m.dst} sent {m.send_day}"
        before = len(problems)
        if m.resource != p.item:
            problems.append(f"{where}: moves {m.resource}, the plan is for {p.item}")
        if m.src in index and m.dst in index and (index[m.src], index[m.dst]) not in linked:
            problems.append(f"{where}: no usable link between them")
        if not m.quantity > 0:
            problems.append(f"{where}: quantity {m.quantity} is not positive")
        elif p.integer and m.quantity != round(m.quantity):
            problems.append(f"{where}: {m.quantity:g} is not a whole number of units")
        if (m.arrive_day - m.send_day).days != p.delay:
            problems.append(f"{where}: arrives {m.arrive_day}, not {p.delay} days after it is sent")
        if (m.arrive_day - p.start).days >= D:
            problems.append(f"{where}: arrives {m.arrive_day}, after the horizon")
        _move_flows(p, [m], problems)
        if len(problems) == before:
            valid.append(m)
    f = _move_flows(p, valid, None)
    end, unmet = _simulate(p.stock, p.deliveries, p.usage, f.out, f.inn)
    r = _rules(p, arcs)
    tol = r.tol
    nodes = p.graph.nodes

    def first(mask: NDArray[np.bool_], what: str) -> None:
        for i in np.flatnonzero(mask.any(axis=1))[:20]:
            d = int(np.argmax(mask[i]))
            problems.append(f"{nodes[i]} on {p.start + timedelta(days=d)}: {what} (stock {end[i, d]:,.6g})")

    first(end < -tol, "stock below zero")
    first((end >= -tol) & (end < r.floor - tol),
          f"stock below its floor of {p.min_days:g} days of supply or what it would have held without the plan")
    first(unmet > r.unmet0 + tol, "more use unmet than without the plan")
    sent = f.out.sum(axis=1)
    for i in np.flatnonzero(sent > r.send_cap + tol):
        problems.append(f"{nodes[i]} sends {sent[i]:,.6g}, more than {p.max_share:g} of its stock "
                        f"({r.send_cap[i]:,.6g})")
    held = p.stock.sum() + p.deliveries.sum() - (p.usage - unmet).sum()
    if abs(held - end[:, -1].sum() - (f.out.sum() - f.inn.sum())) > tol * max(1, n):
        problems.append(f"units are not conserved: {held:,.6g} held expected, {end[:, -1].sum():,.6g} found")
    if f.out.sum() - f.inn.sum() > tol:
        problems.append(f"{f.out.sum() - f.inn.sum():,.6g} units sent do not arrive inside the horizon")
    end0, unmet0 = _baseline(p)
    for label, totals, want in (("before", plan.before, _totals(p, end0, unmet0, 0.0, 0)),
                                ("after", plan.after,
                                 _totals(p, end, unmet, float(sum(m.quantity for m in valid)), len(valid)))):
        for key, value in want.items():
            got = totals.get(key)
            if got is None or not math.isclose(got, value, rel_tol=1e-6, abs_tol=tol):
                problems.append(f"totals {label}: {key} is {got}, the moves give {value:.6g}")
    return problems
