"""Reproduce the published COVIDAnalytics ventilator-sharing results with Mutual's reusable-equipment model.

    uv run python benchmarks/covidanalytics.py [--data DIR]

The instance (``--data``, default ``../shared/data/covidanalytics-ventilators``, see its PROVENANCE.md): 50 US
states × 126 days (1 April to 4 August 2020), demand = IHME's 1 April 2020 ventilator forecast, stock =
VentCalc_2019, base stock b = stock × (1 − u), all pairs of states linked at their centroid distance in degrees
(``distance_scale=1``), delay 3 days, at most 3,000 sent a day, α = 0.1, ρ = 0.25, λ = 0.1, offset 10.

Sharing rows are solved as the LP (``integer=False``), as the published figures were; the rounded whole-unit
plan is shown beside them for information. The no-sharing rows (f = 1) use whole units: b = stock × (1 − u)
leaves a fraction of a unit above floor(b) that only a fractional LP could send, and the published run moved
nothing there. Prints ours beside the published shortfall and shipment counts, with solve times, and as its last
line ``covidanalytics_shortfall <realised shortfall at u=0.1, f=0.8>``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from mutual.planning.equipment import EquipmentProblem, check_equipment, plan_equipment
from mutual.planning.graph import matrix_graph
from mutual.planning.plan import Plan

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "covidanalytics-ventilators"
# (u, f) rows compared; the first three are the no-sharing baselines, (0.1, 0.8) the headline sharing figure
CASES = [(0.1, 1.0), (0.3, 1.0), (0.5, 1.0), (0.1, 0.8), (0.1, 0.5), (0.1, 0.9), (0.3, 0.8), (0.5, 0.8)]


@dataclass(frozen=True)
class Instance:
    states: list[str]
    start: date
    demand: np.ndarray  # [states, days]
    stock: np.ndarray  # VentCalc_2019
    distance: np.ndarray  # [states, states], degrees


def load_instance(data: Path) -> Instance:
    """The published instance from the repository's four processed files."""
    with open(data / "state_list.csv", newline="") as f:
        states = [row["State"] for row in csv.DictReader(f)]
    demand: dict[str, dict[str, float]] = {s: {} for s in states}
    with open(data / "AllStates-2020_04_01.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["State"] in demand:
                demand[row["State"]][row["Day"]] = float(row["Ventilators"])
    days = sorted(demand[states[0]])
    if any(sorted(demand[s]) != days for s in states):
        raise ValueError("the IHME file does not give every state the same days")
    with open(data / "ventilator_table_calculated.csv", newline="") as f:
        stock = {row["STNAME"]: float(row["VentCalc_2019"]) for row in csv.DictReader(f)}
    with open(data / "state_distances.csv", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0][1:]
    table = {r[0]: dict(zip(header, map(float, r[1:]), strict=True)) for r in rows[1:]}
    return Instance(states=states, start=date.fromisoformat(days[0]),
                    demand=np.array([[demand[s][d] for d in days] for s in states]),
                    stock=np.array([stock[s] for s in states]),
                    distance=np.array([[table[a][b] for b in states] for a in states]))


def published(data: Path) -> dict[tuple[float, float], tuple[int, float]]:
    """(u, f) -> (shipments, shortfall) of the published rows this formulation reproduces (only_send_excess
    false)."""
    out: dict[tuple[float, float], tuple[int, float]] = {}
    with open(data / "parameter_sensitivity_ihme.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["only_send_excess"] == "false":
                key = (float(row["utilization"]), float(row["minimum_stock_fraction"]))
                out[key] = (int(row["transfer_count"]), float(row["shortfall"]))
    return out


def problem(inst: Instance, u: float, f: float, *, integer: bool) -> EquipmentProblem:
    return EquipmentProblem(graph=matrix_graph(inst.states, inst.distance), start=inst.start,
                            stock=inst.stock * (1 - u), demand=inst.demand, resource="ventilators", delay=3,
                            keep_share=f, max_ship_per_day=3000.0, alpha=0.1, rho=0.25, lam=0.1,
                            distance_offset=10.0, distance_scale=1.0, integer=integer)


def solve(inst: Instance, u: float, f: float, *, integer: bool) -> tuple[Plan, float]:
    """The plan and its wall time (build, solve, round, explain); ``check_equipment`` must pass."""
    p = problem(inst, u, f, integer=integer)
    started = time.perf_counter()
    plan = plan_equipment(p)
    seconds = time.perf_counter() - started
    problems = check_equipment(p, plan)
    if problems:
        raise RuntimeError(f"u={u} f={f}: infeasible plan: {problems[0]}")
    return plan, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the covidanalytics-ventilators folder")
    args = parser.parse_args()
    if not (args.data / "AllStates-2020_04_01.csv").is_file():
        sys.exit(f"error: {args.data} does not hold the covidanalytics-ventilators files")
    inst = load_instance(args.data)
    ref = published(args.data)
    print(f"{len(inst.states)} states × {inst.demand.shape[1]} days from {inst.start}; total demand "
          f"{inst.demand.sum():,.0f} ventilator-days, stock {inst.stock.sum():,.0f}")
    print(f"{'u':>4} {'f':>4} {'model':<26} {'shortfall':>11} {'published':>11} {'diff':>7} "
          f"{'moves':>6} {'pub.':>5} {'solve s':>8} {'wall s':>7}")
    headline = float("nan")
    for u, f in CASES:
        pub_moves, pub_short = ref[(u, f)]
        models = [("whole units", True)] if f == 1.0 else [("LP", False), ("whole units", True)]
        for name, integer in models:
            plan, wall = solve(inst, u, f, integer=integer)
            ours = plan.after["shortfall"]
            label = f"{name} ({plan.solve.method})"
            print(f"{u:>4} {f:>4} {label:<26} {ours:>11,.1f} {pub_short:>11,.1f} "
                  f"{100 * (ours - pub_short) / pub_short:>+6.2f}% {len(plan.moves):>6} {pub_moves:>5} "
                  f"{plan.solve.seconds:>8.2f} {wall:>7.2f}")
            if f == 1.0:
                print(f"{'':>10}no sharing: shortfall with no moves {plan.before['shortfall']:,.1f}")
            if (u, f) == (0.1, 0.8) and not integer:
                headline = ours
    print(f"covidanalytics_shortfall {headline:.1f}")


if __name__ == "__main__":
    main()
