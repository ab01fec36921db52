"""Patient transfers (load balancing): move patients between nearby trusts so that none runs over safe capacity.

A patient moved from trust i to trust j on day d occupies one of j's beds, and frees one of i's, on days
d .. d + los − 1 (clipped at the horizon). The model minimises overflow bed-days (occupancy above safe capacity),
plus a small cost per patient moved and per patient-km, so patients move only to remove overflow. It never
pushes a receiver over its capacity: a trust that had room stays within it, one already over gets no fuller.

The LP has one column per (arc, day), and per trust and day the totals sent and received; each length-of-stay
window is a sum over those totals, so the matrix grows with arcs × days, not arcs × days × length of stay.
Whole patients: the LP (with whole beds of room) is floored, repaired, topped up along the moves that still pay
and pruned of those that do not; small instances are solved as a MIP.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from mutual.planning.graph import Graph
from mutual.planning.lp import INF, Model, Solution
from mutual.planning.plan import Move, Plan, SolveSummary

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

TOL = 1e-6  # slack allowed when checking a plan: solver tolerances, never whole patients
MIP_MAX_VARS = 50_000  # "auto" solves the MIP below this many (arc, day) columns, else rounds the LP
MIP_TIME_LIMIT = 30.0  # seconds, when the caller gives none: the rounded LP is the fallback anyway


@dataclass(frozen=True)
class TransferProblem:
    """One instance: ``n`` trusts (``graph.nodes``) over ``D`` days from ``start``.

    ``capacity`` is the beds a trust can safely use (open G&A beds × safe occupancy), ``occupied`` the occupied
    beds expected without transfers; both ``[n, D]``. ``max_out_per_day`` (a number, ``[n]`` or ``[n, D]``) is the
    transport capacity: patients a trust can send per day. Cost per patient moved: ``transfer_cost`` +
    ``lam × km × distance_scale``. Trusts in ``unavailable`` neither send nor receive. Arcs longer than
    ``max_km`` are not used even when the graph has them.
    """

    graph: Graph
    start: date
    capacity: NDArray[np.float64]
    occupied: NDArray[np.float64]
    los_days: int = 5
    max_km: float | None = 80.0
    max_out_per_day: NDArray[np.float64] | float = 20.0
    transfer_cost: float = 0.1
    lam: float = 0.001
    distance_scale: float = 1 / 100
    integer: bool = True
    unavailable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        nodes = self.graph.nodes
        n = len(nodes)
        capacity = _as_grid("capacity", self.capacity, n, nodes, self.start)
        occupied = _as_grid("occupied", self.occupied, n, nodes, self.start)
        if capacity.shape != occupied.shape:
            raise ValueError(f"capacity is {capacity.shape} but occupied is {occupied.shape}: both must be "
                             "[trusts, days] over the same days")
        object.__setattr__(self, "capacity", capacity)
        object.__setattr__(self, "occupied", occupied)
        if isinstance(self.los_days, bool) or not isinstance(self.los_days, int | np.integer) or self.los_days < 1:
            raise ValueError(f"los_days must be a whole number of days >= 1, not {self.los_days!r}")
        if self.max_km is not None and not (math.isfinite(self.max_km) and self.max_km > 0):
            raise ValueError(f"max_km must be a positive distance or None, not {self.max_km!r}")
        cap = np.asarray(self.max_out_per_day, dtype=np.float64)
        if cap.ndim == 0:
            object.__setattr__(self, "max_out_per_day", float(cap))
        elif cap.shape not in ((n,), capacity.shape):
            raise ValueError(f"max_out_per_day is {cap.shape}: give a number, one per trust ({n},) or one per "
                             f"trust and day {capacity.shape}")
        else:
            object.__setattr__(self, "max_out_per_day", cap)
        if not np.isfinite(cap).all() or (cap < 0).any():
            raise ValueError("max_out_per_day must be finite and not negative")
        for name in ("transfer_cost", "lam", "distance_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and not negative, not {value!r}")
        object.__setattr__(self, "unavailable", tuple(self.unavailable))
        unknown = sorted(set(self.unavailable) - set(nodes))
        if unknown:
            raise ValueError(f"unavailable trusts not in the graph: {', '.join(unknown)}")
        if self.graph.src.size and (self.graph.src.max() >= n or self.graph.dst.max() >= n):
            raise ValueError("the graph has arcs to nodes it does not list")

    @property
    def days(self) -> int:
        return int(self.capacity.shape[1])

    def send_cap(self) -> FloatArray:
        """Patients each trust can send per day, ``[n, D]``."""
        cap = np.asarray(self.max_out_per_day, dtype=np.float64)
        if cap.ndim == 1:
            cap = cap[:, None]
        return np.broadcast_to(cap, self.capacity.shape).astype(np.float64)

    def room(self) -> FloatArray:
        """How far transfers may raise each trust's occupancy: up to its capacity, and not at all when it is
        already over (the receiver rule), ``[n, D]``."""
        return np.maximum(self.capacity, self.occupied) - self.occupied


def _as_grid(name: str, value: Any, n: int, nodes: tuple[str, ...], start: date) -> FloatArray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != n or a.shape[1] < 1:
        raise ValueError(f"{name} is {a.shape}; expected [trusts, days] = ({n}, D) with D >= 1, one row per "
                         "graph node")
    bad = ~np.isfinite(a)
    if bad.any():
        i, d = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"{name} of {nodes[i]} on {start + timedelta(days=d)} is not a number ({a[i, d]}); "
                         "fill gaps before planning")
    neg = a < 0
    if neg.any():
        i, d = (int(v[0]) for v in np.nonzero(neg))
        raise ValueError(f"{name} of {nodes[i]} on {start + timedelta(days=d)} is negative ({a[i, d]:g})")
    return a


# -- arcs, windows and simulation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arcs:
    src: IntArray
    dst: IntArray
    km: FloatArray
    cost: FloatArray  # per patient


def _usable_arcs(p: TransferProblem) -> _Arcs:
    g = p.graph
    keep = np.ones(g.num_arcs, dtype=bool)
    if p.max_km is not None:
        keep &= g.km <= p.max_km
    if p.unavailable:
        off = np.isin(np.asarray(g.nodes, dtype=object), list(p.unavailable))
        keep &= ~(off[g.src] | off[g.dst])
    km = g.km[keep].astype(np.float64)
    return _Arcs(g.src[keep].astype(np.int64), g.dst[keep].astype(np.int64), km,
                 p.transfer_cost + p.lam * km * p.distance_scale)


def _window_sum(f: FloatArray, los: int) -> FloatArray:
    """``w[:, t] = f[:, t-los+1] + ... + f[:, t]``: what patients sent or received in the last ``los`` days
    occupy on day t."""
    cs = np.cumsum(f, axis=1)
    w = cs.copy()
    if los < f.shape[1]:
        w[:, los:] -= cs[:, :-los]
    return w


def _per_trust(n: int, node: IntArray, x: FloatArray) -> FloatArray:
    """Sum arc rows ``x[A, D]`` into their trust's row, ``[n, D]``."""
    out = np.zeros((n, x.shape[1]))
    np.add.at(out, node, x)
    return out


@dataclass(frozen=True)
class _Effect:
    sent: FloatArray  # [n, D] patients sent each day
    out_win: FloatArray  # [n, D] the trust's own patients elsewhere on day t
    net: FloatArray  # [n, D] occupancy change on day t


def _effect(n: int, los: int, arcs: _Arcs, x: FloatArray) -> _Effect:
    sent = _per_trust(n, arcs.src, x)
    out_win = _window_sum(sent, los)
    net = _window_sum(_per_trust(n, arcs.dst, x), los) - out_win
    return _Effect(sent, out_win, net)


def _move_arrays(p: TransferProblem, moves: tuple[Move, ...] | list[Move]
                 ) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    index = p.graph.index()
    src, dst, day, qty = [], [], [], []
    for m in moves:
        for code in (m.src, m.dst):
            if code not in index:
                raise ValueError(f"move {m.src} -> {m.dst}: unknown trust {code}")
        d = (m.send_day - p.start).days
        if not 0 <= d < p.days:
            raise ValueError(f"move {m.src} -> {m.dst} on {m.send_day}: outside the horizon {p.start} .. "
                             f"{p.start + timedelta(days=p.days - 1)}")
        if not math.isfinite(m.quantity):
            raise ValueError(f"move {m.src} -> {m.dst} on {m.send_day}: quantity is not a number")
        src.append(index[m.src])
        dst.append(index[m.dst])
        day.append(d)
        qty.append(m.quantity)
    return (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), np.asarray(day, dtype=np.int64),
            np.asarray(qty, dtype=np.float64))


def _moves_effect(p: TransferProblem, moves: tuple[Move, ...] | list[Move]) -> _Effect:
    src, dst, day, qty = _move_arrays(p, moves)
    n, D = p.capacity.shape
    sent = np.zeros((n, D))
    recv = np.zeros((n, D))
    np.add.at(sent, (src, day), qty)
    np.add.at(recv, (dst, day), qty)
    out_win = _window_sum(sent, p.los_days)
    return _Effect(sent, out_win, _window_sum(recv, p.los_days) - out_win)


def occupancy_after(p: TransferProblem, moves: tuple[Move, ...] | list[Move]) -> FloatArray:
    """Occupied beds ``[n, D]`` once ``moves`` are made: each patient counts at the receiver, not the sender,
    from the day of transfer for ``los_days`` days (to the end of the horizon)."""
    return p.occupied + _moves_effect(p, moves).net


def overflow_bed_days(p: TransferProblem, occupancy: FloatArray) -> float:
    """Bed-days above safe capacity: the sum over trusts and days of max(0, occupancy − capacity)."""
    return float(np.maximum(np.asarray(occupancy, dtype=np.float64) - p.capacity, 0.0).sum())


def _totals(p: TransferProblem, occupancy: FloatArray, moves: tuple[Move, ...]) -> dict[str, float]:
    over = np.maximum(occupancy - p.capacity, 0.0)
    return {"overflow_bed_days": float(over.sum()),
            "trusts_overflowing": float((over > TOL).any(axis=1).sum()),
            "peak_overflow": float(over.max()) if over.size else 0.0,
            "transfers": float(sum(m.quantity for m in moves)),
            "transfer_km": float(sum(m.quantity * m.distance_km for m in moves))}


# -- the model -----------------------------------------------------------------------------------------------


def _window_triplets(entity: IntArray, day: IntArray, col: IntArray, D: int, los: int
                     ) -> tuple[IntArray, IntArray]:
    """(row, col) pairs putting column ``col`` (an amount on ``day``) into rows ``entity × D + t`` for every day
    t it still occupies a bed."""
    t = day[:, None] + np.arange(los)[None, :]
    inside = t < D
    rows = (entity[:, None] * D + t)[inside]
    cols = np.broadcast_to(col[:, None], t.shape)[inside]
    return rows.astype(np.int64), cols.astype(np.int64)


def _direct(p: TransferProblem, arcs: _Arcs) -> NDArray[np.bool_]:
    """``[A, D]``: (arc, day) cells of direct moves: the sender is over capacity on some day of the stay and the
    receiver has room the day they arrive. Every other move relays patients through a trust to reach one
    further away."""
    D = p.days
    over = p.occupied - p.capacity > TOL
    ahead = over.copy()
    for j in range(1, min(p.los_days, D)):
        ahead[:, : D - j] |= over[:, j:]
    return ahead[arcs.src] & (p.room()[arcs.dst] > TOL)


def _build(p: TransferProblem, arcs: _Arcs, integer: bool, relays: bool) -> tuple[Model, IntArray]:
    """Columns: x[arc, day]; per trust and day the patients sent and received, those of its own patients away
    (``away``), the net change in occupancy (``net``, bounded by the receiver rule) and the overflow."""
    n, D = p.capacity.shape
    L = p.los_days
    A = arcs.src.size
    send_cap, own, room = p.send_cap(), p.occupied, p.room()
    if integer:
        # whole patients fit only into whole beds: the same integer plans, a much tighter LP bound
        send_cap, own, room = (np.floor(a + TOL) for a in (send_cap, own, room))
    upper = send_cap[arcs.src]
    if not relays:
        upper = upper * _direct(p, arcs)
    m = Model()
    x = m.add_vars((A, D), cost=arcs.cost[:, None], upper=upper, integer=integer)
    sent = m.add_vars((n, D), upper=send_cap)
    recv = m.add_vars((n, D))
    # a trust sends only its own patients: those away on day t are no more than it would have had
    away = m.add_vars((n, D), upper=own)
    # the receiver rule: transfers raise occupancy only into room below capacity
    net = m.add_vars((n, D), lower=-INF, upper=room)
    over = m.add_vars((n, D), cost=1.0)

    cells = n * D
    every = np.arange(cells, dtype=np.int64)
    ones = np.ones(cells)
    arc_day = np.tile(np.arange(D, dtype=np.int64), A)
    for total, end in ((sent, arcs.src), (recv, arcs.dst)):
        m.add_constraints(cells, np.concatenate([every, np.repeat(end, D) * D + arc_day]),
                          np.concatenate([total.ravel(), x.ravel()]),
                          np.concatenate([ones, -np.ones(A * D)]), lower=0.0, upper=0.0)
    trust = np.repeat(np.arange(n, dtype=np.int64), D)
    day = np.tile(np.arange(D, dtype=np.int64), n)
    s_rows, s_cols = _window_triplets(trust, day, sent.ravel(), D, L)
    r_rows, r_cols = _window_triplets(trust, day, recv.ravel(), D, L)
    # away = patients sent in the last L days; net = patients received in the last L days − away
    m.add_constraints(cells, np.concatenate([every, s_rows]), np.concatenate([away.ravel(), s_cols]),
                      np.concatenate([ones, -np.ones(s_rows.size)]), lower=0.0, upper=0.0)
    m.add_constraints(cells, np.concatenate([every, r_rows, every]),
                      np.concatenate([net.ravel(), r_cols, away.ravel()]),
                      np.concatenate([ones, -np.ones(r_rows.size), ones]), lower=0.0, upper=0.0)
    m.add_constraints(cells, np.concatenate([every, every]), np.concatenate([over.ravel(), net.ravel()]),
                      np.concatenate([ones, -ones]), lower=(p.occupied - p.capacity).ravel())
    return m, x


def _objective(p: TransferProblem, arcs: _Arcs, x: FloatArray, eff: _Effect) -> float:
    return overflow_bed_days(p, p.occupied + eff.net) + float((arcs.cost[:, None] * x).sum())


def _take(x: FloatArray, cells: tuple[IntArray, IntArray], amount: float, integer: bool) -> None:
    """Lower the flows in ``cells`` by ``amount`` in total (whole patients when ``integer``), largest first."""
    need = math.ceil(amount - TOL / 10) if integer else amount
    values = x[cells]
    for k in np.argsort(-values, kind="stable"):
        if need <= 0:
            break
        cut = min(values[k], need)
        x[cells[0][k], cells[1][k]] -= cut
        need -= cut


def _repair(p: TransferProblem, arcs: _Arcs, x: FloatArray, integer: bool) -> FloatArray:
    """Make ``x`` keep every constraint by lowering flows only (zero flow is always feasible, so this ends):
    the daily send cap, the sender's own patients, and the receiver rule."""
    n, D = p.capacity.shape
    L = p.los_days
    x = np.where(x > TOL / 10, x, 0.0)
    if integer:
        x = np.floor(x + TOL / 10)
    out_arcs = [np.nonzero(arcs.src == i)[0] for i in range(n)]
    in_arcs = [np.nonzero(arcs.dst == i)[0] for i in range(n)]
    cap, room, tol = p.send_cap(), p.room(), TOL / 10

    def cells(arc_ids: IntArray, t: int, span: int) -> tuple[IntArray, IntArray]:
        days = np.arange(max(0, t - span + 1), t + 1)
        return np.repeat(arc_ids, days.size), np.tile(days, arc_ids.size)

    for _ in range(10 * n * D + 10):
        eff = _effect(n, L, arcs, x)
        bad_cap = np.argwhere(eff.sent - cap > tol)
        bad_own = np.argwhere(eff.out_win - p.occupied > tol)
        bad_room = np.argwhere(eff.net - room > tol)
        if not (bad_cap.size or bad_own.size or bad_room.size):
            return x
        for i, t in bad_cap:
            c = cells(out_arcs[i], t, 1)
            _take(x, c, x[c].sum() - cap[i, t], integer)
        for i, t in bad_own:
            c = cells(out_arcs[i], t, L)
            _take(x, c, x[c].sum() - p.occupied[i, t], integer)
        for i, t in bad_room:
            c_in, c_out = cells(in_arcs[i], t, L), cells(out_arcs[i], t, L)
            excess = x[c_in].sum() - x[c_out].sum() - room[i, t]
            if excess > tol:
                _take(x, c_in, excess, integer)
    return np.zeros_like(x)  # not reached in practice (every pass lowers flows); no moves is always feasible


def _restore(p: TransferProblem, arcs: _Arcs, x: FloatArray, candidates: IntArray, passes: int = 3
             ) -> FloatArray:
    """Add one patient at a time back on the (arc, day) cells the LP wanted more of, where that keeps every
    constraint and lowers the objective (overflow removed at the sender beats overflow added and the cost)."""
    n, D = p.capacity.shape
    L = p.los_days
    eff = _effect(n, L, arcs, x)
    sent, out_win, net = eff.sent.copy(), eff.out_win.copy(), eff.net.copy()
    cap, room, tol = p.send_cap(), p.room(), TOL / 10
    x = x.copy()
    for _ in range(passes):
        changed = False
        for flat in candidates:
            a, d = divmod(int(flat), D)
            i, j = arcs.src[a], arcs.dst[a]
            w = slice(d, min(d + L, D))
            if (sent[i, d] + 1 > cap[i, d] + tol or (out_win[i, w] + 1 > p.occupied[i, w] + tol).any()
                    or (net[j, w] + 1 > room[j, w] + tol).any()):
                continue
            occ_i = p.occupied[i, w] + net[i, w]
            occ_j = p.occupied[j, w] + net[j, w]
            gain = (np.maximum(occ_i - p.capacity[i, w], 0).sum() - np.maximum(occ_i - 1 - p.capacity[i, w], 0).sum()
                    - np.maximum(occ_j + 1 - p.capacity[j, w], 0).sum()
                    + np.maximum(occ_j - p.capacity[j, w], 0).sum() - arcs.cost[a])
            if gain <= 1e-9:
                continue
            x[a, d] += 1
            sent[i, d] += 1
            out_win[i, w] += 1
            net[i, w] -= 1
            net[j, w] += 1
            changed = True
        if not changed:
            break
    return x


def _augment(p: TransferProblem, arcs: _Arcs, x: FloatArray, relays: bool, rounds: int = 20) -> FloatArray:
    """Add whole patients where they pay, day by day, until none is left: a trust over capacity during the stay
    sends one patient to a trust with a whole bed free, directly or (``relays``) along the cheapest chain of
    trusts that each take one in and send one of their own on the same day (their occupancy unchanged).

    Flooring the LP leaves receivers with fractions of a bed that no whole patient fits into, and breaks relay
    chains (one leg alone never pays); this is the augmenting-path step of integer flows, with the chains for all
    senders of a day found at once (Dijkstra over the links, cost per patient as length)."""
    n, D = p.capacity.shape
    L = p.los_days
    if arcs.src.size == 0:
        return x
    x = x.copy()
    eff = _effect(n, L, arcs, x)
    sent, away, net = eff.sent.copy(), eff.out_win.copy(), eff.net.copy()
    cap, own, room, capacity, tol = p.send_cap(), p.occupied, p.room(), p.capacity, TOL / 10
    keys = arcs.src * n + arcs.dst
    cheapest = float(arcs.cost.min())

    def gain_of(i: int, k: int, w: slice) -> float:
        occ_i, occ_k = own[i, w] + net[i, w], own[k, w] + net[k, w]
        return float(np.minimum(np.maximum(occ_i - capacity[i, w], 0.0), 1.0).sum()
                     - (np.maximum(occ_k + 1 - capacity[k, w], 0.0) - np.maximum(occ_k - capacity[k, w], 0.0)).sum())

    def feasible(path: list[int], d: int, w: slice) -> bool:
        senders, k = path[:-1], path[-1]
        return bool((sent[senders, d] + 1 <= cap[senders, d] + tol).all()
                    and (away[senders, w] + 1 <= own[senders, w] + tol).all()
                    and (net[k, w] + 1 <= room[k, w] + tol).all())

    for _ in range(rounds):
        added = 0
        for d in range(D):
            w = slice(d, min(d + L, D))
            occ = own[:, w] + net[:, w]
            over = np.maximum(occ - capacity[:, w], 0.0)
            can_send = (sent[:, d] + 1 <= cap[:, d] + tol) & (away[:, w] + 1 <= own[:, w] + tol).all(axis=1)
            relief = np.minimum(over, 1.0).sum(axis=1)
            sources = np.nonzero(can_send & (relief > cheapest + 1e-9))[0]
            can_take = (net[:, w] + 1 <= room[:, w] + tol).all(axis=1)
            if not relays:
                can_take &= room[:, d] > TOL  # direct moves only into trusts with room of their own (``_direct``)
            if sources.size == 0 or not can_take.any():
                continue
            burden = (np.maximum(occ + 1 - capacity[:, w], 0.0) - over).sum(axis=1)
            if relays:
                use = can_send[arcs.src]
                graph = sparse.csr_matrix((arcs.cost[use] + 1e-12, (arcs.src[use], arcs.dst[use])), shape=(n, n))
                dist, pred = csgraph.dijkstra(graph, indices=sources, return_predecessors=True)
            else:
                dist = np.full((sources.size, n), np.inf)
                pred = np.full((sources.size, n), -9999)
                at = np.full(n, -1)
                at[sources] = np.arange(sources.size)
                direct = at[arcs.src] >= 0
                dist[at[arcs.src[direct]], arcs.dst[direct]] = arcs.cost[direct]
                pred[at[arcs.src[direct]], arcs.dst[direct]] = arcs.src[direct]
            gain = relief[sources][:, None] - burden[None, :] - dist
            gain[:, ~can_take] = -np.inf
            gain[np.arange(sources.size), sources] = -np.inf
            best = gain.argmax(axis=1)
            for r in np.argsort(-gain[np.arange(sources.size), best], kind="stable"):
                if gain[r, best[r]] <= 1e-9:
                    break
                i, k = int(sources[r]), int(best[r])
                path = [k]
                while path[-1] != i:
                    path.append(int(pred[r, path[-1]]))
                path.reverse()
                legs = np.searchsorted(keys, np.asarray(path[:-1]) * n + np.asarray(path[1:]))
                cost = float(arcs.cost[legs].sum())
                while feasible(path, d, w) and gain_of(i, k, w) - cost > 1e-9:
                    x[legs, d] += 1
                    sent[path[:-1], d] += 1
                    away[path[:-1], w] += 1
                    net[i, w] -= 1
                    net[k, w] += 1
                    added += 1
        if not added:
            break
    return x


def _prune(p: TransferProblem, arcs: _Arcs, x: FloatArray) -> FloatArray:
    """Take back, one patient at a time, moves that cost more than the overflow they remove (adding patients
    greedily can overshoot), where the sender has the room to keep them."""
    n, D = p.capacity.shape
    L = p.los_days
    eff = _effect(n, L, arcs, x)
    net = eff.net.copy()
    room, tol = p.room(), TOL / 10
    x = x.copy()
    a_idx, d_idx = np.nonzero(x > 0)
    dearest = np.argsort(-arcs.cost[a_idx], kind="stable")
    for a, d in zip(a_idx[dearest], d_idx[dearest], strict=True):
        i, j = arcs.src[a], arcs.dst[a]
        w = slice(int(d), min(int(d) + L, D))
        while x[a, d] > 0 and not (net[i, w] + 1 > room[i, w] + tol).any():
            occ_i = p.occupied[i, w] + net[i, w]
            occ_j = p.occupied[j, w] + net[j, w]
            gain = (arcs.cost[a] - np.maximum(occ_i + 1 - p.capacity[i, w], 0).sum()
                    + np.maximum(occ_i - p.capacity[i, w], 0).sum()
                    + np.maximum(occ_j - p.capacity[j, w], 0).sum()
                    - np.maximum(occ_j - 1 - p.capacity[j, w], 0).sum())
            if gain <= 1e-9:
                break
            x[a, d] -= 1
            net[i, w] += 1
            net[j, w] -= 1
    return x


# -- the plan ------------------------------------------------------------------------------------------------


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _n(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def _moves(p: TransferProblem, arcs: _Arcs, x: FloatArray) -> tuple[Move, ...]:
    n, D = p.capacity.shape
    L = p.los_days
    nodes = p.graph.nodes
    eff = _effect(n, L, arcs, x)
    after = p.occupied + eff.net
    a_idx, d_idx = np.nonzero(x > 0)
    order = np.lexsort((arcs.dst[a_idx], arcs.src[a_idx], d_idx))
    moves = []
    for a, d in zip(a_idx[order], d_idx[order], strict=True):
        i, j = int(arcs.src[a]), int(arcs.dst[a])
        w = slice(int(d), min(int(d) + L, D))
        last = p.start + timedelta(days=min(int(d) + L, D) - 1)
        send = p.start + timedelta(days=int(d))
        q = float(x[a, d])
        over_i = p.occupied[i, d] - p.capacity[i, d]
        before_bd = float(np.maximum(p.occupied[i, w] - p.capacity[i, w], 0).sum())
        after_bd = float(np.maximum(after[i, w] - p.capacity[i, w], 0).sum())
        if over_i > TOL:
            why = (f"{nodes[i]} is {over_i:.1f} beds over safe capacity on {_day(send)} "
                   f"({before_bd:.1f} overflow bed-days to {_day(last)}, {after_bd:.1f} after all transfers)")
        elif before_bd > TOL:
            why = (f"{nodes[i]} is within safe capacity on {_day(send)} but has {before_bd:.1f} overflow bed-days "
                   f"by {_day(last)} ({after_bd:.1f} after all transfers)")
        else:
            why = (f"{nodes[i]} is within safe capacity and sends these to make room for patients it takes in "
                   "from busier trusts")
        free_before = p.capacity[j, d] - p.occupied[j, d]
        free_after = float((p.capacity[j, w] - after[j, w]).min())
        if free_after >= -TOL and free_before >= 0:
            keeps = f"{nodes[j]} has {free_before:.1f} beds free and keeps at least {max(free_after, 0):.1f} free"
        elif free_after >= -TOL:
            keeps = f"{nodes[j]} sends patients on to make room and keeps at least {max(free_after, 0):.1f} free"
        else:
            keeps = f"{nodes[j]} is over capacity too but no fuller than it would be without transfers"
        moves.append(Move(
            resource="patients", src=nodes[i], dst=nodes[j], quantity=q, send_day=send, arrive_day=send,
            distance_km=float(arcs.km[a]),
            reason=f"moves {_n(q)} patient{'s' if q != 1 else ''} {arcs.km[a]:.0f} km: {why}; {keeps} "
                   f"until {_day(last)}"))
    return tuple(moves)


def plan_transfers(p: TransferProblem, *, time_limit: float | None = None, method: str = "auto",
                   relays: bool = False) -> Plan:
    """The transfers that remove most overflow bed-days at least cost.

    ``method``: "lp + rounding" (solve the LP, floor, repair, then add whole patients along the chains that pay
    and take back those that do not), "mip" (integer program; the rounded LP is kept if it is better within the
    time limit) or "auto" (the MIP up to ``MIP_MAX_VARS`` (arc, day) columns). A continuous problem
    (``integer=False``) is solved as an LP.

    By default moves are direct: from a trust over capacity on some day of the stay into one with room the day
    they arrive. ``relays=True`` allows any move the rules permit, so a trust may send its own patients on to make
    room for a neighbour's; with a fixed length of stay that also lets a trust send and receive in the same days
    to shift load from one day to another, so plans move several times as many patients for a modest further
    reduction, the LP is much slower, and rounding is weaker (the gap says by how much).
    """
    started = time.perf_counter()
    if method not in ("auto", "mip", "lp + rounding"):
        raise ValueError(f"method must be 'auto', 'mip' or 'lp + rounding', not {method!r}")
    n, D = p.capacity.shape
    arcs = _usable_arcs(p)
    notes: list[str] = []
    if p.unavailable:
        notes.append(f"unavailable (neither send nor receive): {', '.join(p.unavailable)}")
    limit = f" within {p.max_km:g} km" if p.max_km is not None else ""
    notes.append(f"{arcs.src.size} links between trusts{limit} usable")
    if relays:
        notes.append("relays allowed: a trust may send patients on to make room for others")
    if p.los_days > 1:
        notes.append(f"transfers in the last {p.los_days - 1} days count only to the end of the horizon")

    model, cols = _build(p, arcs, integer=p.integer, relays=relays)
    lp = model.solve(time_limit=time_limit, relax=True)
    x_lp = lp.x[cols] if cols.size else np.zeros((0, D))
    if not lp.optimal:
        notes.append(f"the LP stopped with status '{lp.status}'; its solution was repaired to a feasible plan")

    chosen: Solution = lp
    if not p.integer:
        x = _repair(p, arcs, x_lp, integer=False)
        used = "lp"
    else:
        floor = _repair(p, arcs, x_lp, integer=True)
        fractional = np.nonzero((x_lp - floor).ravel() > TOL)[0]
        fractional = fractional[np.argsort(-(x_lp - floor).ravel()[fractional], kind="stable")]
        x = _prune(p, arcs, _augment(p, arcs, _restore(p, arcs, floor, fractional), relays))
        used = "lp + rounding"
        if method == "mip" or (method == "auto" and cols.size <= MIP_MAX_VARS):
            mip = model.solve(time_limit=time_limit if time_limit is not None else MIP_TIME_LIMIT)
            x_mip = _repair(p, arcs, np.round(mip.x[cols]) if cols.size else np.zeros((0, D)), integer=True)
            if _objective(p, arcs, x_mip, _effect(n, p.los_days, arcs, x_mip)) <= _objective(
                    p, arcs, x, _effect(n, p.los_days, arcs, x)) + 1e-9:
                x, used, chosen = x_mip, "mip", mip
            else:
                notes.append(f"the MIP stopped with status '{mip.status}' at a worse plan; the rounded LP is used")

    if _objective(p, arcs, x, _effect(n, p.los_days, arcs, x)) > overflow_bed_days(p, p.occupied) + 1e-9:
        x = np.zeros_like(x)  # no plan is better than one that costs more than it saves
        notes.append("no transfers pay for themselves")
    moves = _moves(p, arcs, x)
    before_occ = p.occupied
    after_occ = occupancy_after(p, moves)
    objective = overflow_bed_days(p, after_occ) + sum(
        m.quantity * (p.transfer_cost + p.lam * m.distance_km * p.distance_scale) for m in moves)
    bound = lp.objective if lp.optimal else float("nan")
    gap = (objective - bound) / max(1.0, abs(objective)) if lp.optimal else float("nan")
    summary = SolveSummary(status=chosen.status, optimal=chosen.optimal, objective=float(objective),
                           lp_bound=float(bound), gap=float(max(gap, 0.0)) if lp.optimal else gap,
                           seconds=time.perf_counter() - started, method=used,
                           variables=model.num_cols, constraints=model.num_rows)
    params: dict[str, Any] = {
        "trusts": n, "days": D, "los_days": p.los_days, "max_km": p.max_km,
        "max_out_per_day": p.max_out_per_day if isinstance(p.max_out_per_day, float) else "per trust",
        "transfer_cost": p.transfer_cost, "lam": p.lam, "distance_scale": p.distance_scale,
        "integer": p.integer, "unavailable": list(p.unavailable), "arcs": int(arcs.src.size), "relays": relays}
    return Plan(kind="patients", start=p.start, horizon=D, params=params, moves=moves,
                before=_totals(p, before_occ, ()), after=_totals(p, after_occ, moves), solve=summary,
                notes=tuple(notes))


# -- checking ------------------------------------------------------------------------------------------------


def check_transfers(p: TransferProblem, plan: Plan) -> list[str]:
    """Everything wrong with ``plan`` for ``p``, in words (empty when it is feasible): moves on links that do not
    exist, too long or touching an unavailable trust; fractional patients; more sent in a day than transport
    allows; a trust sending patients it does not have; a receiver pushed over capacity; totals that do not match
    the moves."""
    problems: list[str] = []
    n, D = p.capacity.shape
    if plan.kind != "patients":
        problems.append(f"plan kind is {plan.kind!r}, not 'patients'")
    if plan.start != p.start or plan.horizon != D:
        problems.append(f"plan covers {plan.horizon} days from {plan.start}, the problem {D} from {p.start}")
    index = p.graph.index()
    g = p.graph
    keys = g.src * n + g.dst
    off = set(p.unavailable)
    valid: list[Move] = []
    for m in plan.moves:
        what = f"{m.src} -> {m.dst} on {m.send_day}"
        if m.resource != "patients":
            problems.append(f"{what}: resource {m.resource!r} is not 'patients'")
        if m.src not in index or m.dst not in index:
            problems.append(f"{what}: unknown trust")
            continue
        if not (math.isfinite(m.quantity) and m.quantity > 0):
            problems.append(f"{what}: quantity {m.quantity} is not a positive number")
            continue
        if p.integer and abs(m.quantity - round(m.quantity)) > TOL:
            problems.append(f"{what}: {m.quantity} is not a whole number of patients")
        if not 0 <= (m.send_day - p.start).days < D:
            problems.append(f"{what}: outside the horizon")
            continue
        if m.arrive_day != m.send_day:
            problems.append(f"{what}: arrives {m.arrive_day}, not the day it leaves")
        key = index[m.src] * n + index[m.dst]
        k = int(np.searchsorted(keys, key))
        if k >= keys.size or keys[k] != key:
            problems.append(f"{what}: no link between these trusts in the graph")
        else:
            if p.max_km is not None and g.km[k] > p.max_km + TOL:
                problems.append(f"{what}: {g.km[k]:.1f} km is beyond the {p.max_km:g} km limit")
            if abs(g.km[k] - m.distance_km) > 1e-6 * max(1.0, g.km[k]):
                problems.append(f"{what}: distance {m.distance_km:.1f} km, the graph says {g.km[k]:.1f}")
        if m.src in off or m.dst in off:
            problems.append(f"{what}: touches an unavailable trust")
        valid.append(m)

    eff = _moves_effect(p, valid)
    after = p.occupied + eff.net
    nodes = g.nodes

    def name(i: int, d: int) -> str:
        return f"{nodes[int(i)]} on {p.start + timedelta(days=int(d))}"

    for i, d in np.argwhere(eff.sent > p.send_cap() + TOL)[:20]:
        problems.append(f"{name(i, d)}: sends {eff.sent[i, d]:g} patients, transport allows {p.send_cap()[i, d]:g}")
    for i, d in np.argwhere(eff.out_win > p.occupied + TOL)[:20]:
        problems.append(f"{name(i, d)}: {eff.out_win[i, d]:g} of its patients are elsewhere but it had only "
                        f"{p.occupied[i, d]:g}")
    for i, d in np.argwhere(after < -TOL)[:20]:
        problems.append(f"{name(i, d)}: occupancy {after[i, d]:g} is negative")
    for i, d in np.argwhere(eff.net > p.room() + TOL)[:20]:
        problems.append(f"{name(i, d)}: transfers push occupancy to {after[i, d]:.1f}, capacity "
                        f"{p.capacity[i, d]:.1f} (it had {p.occupied[i, d]:.1f})")
    drift = np.abs(after.sum(axis=0) - p.occupied.sum(axis=0))
    for d in np.nonzero(drift > TOL * max(1.0, float(p.occupied.sum())))[0][:20]:
        problems.append(f"{p.start + timedelta(days=int(d))}: total occupancy changed by {drift[d]:g} patients")
    for label, stated, actual in (("before", plan.before, _totals(p, p.occupied, ())),
                                  ("after", plan.after, _totals(p, after, tuple(valid)))):
        for key_, value in actual.items():
            if key_ not in stated:
                problems.append(f"totals {label}: {key_} missing")
            elif abs(stated[key_] - value) > 1e-6 * max(1.0, abs(value)):
                problems.append(f"totals {label}: {key_} is {stated[key_]:g}, the moves give {value:g}")
    return problems
