"""Time the reusable-equipment model on synthetic health systems of 200 trusts and 6,000 hospitals.

    uv run python benchmarks/planning_scale.py [--sizes 200:10,6000:20] [--days 30] [--seed 7] [--wave-km 45]

Each system is seeded: sites clustered around towns over an England-sized area, ventilator stock per site
(lognormal), a usual demand of 25-60 % of stock, and an epidemic wave on two towns that lifts demand up to 3.2
times its usual level around them (falling off over ``--wave-km``, a Gaussian in distance) for about two weeks,
peaking between days 9 and 15. With the defaults about one site in twenty is short before sharing and one in
ten could use a unit; ``--wave-km 70`` is a region-wide wave (one in ten short, one in four could use a unit).

The model is the one ``mutual plan ventilators`` solves, built on the k nearest neighbours, as an LP
(``integer=False``) so that the time is that of a proven optimum. Prints, per size, the build and solve times
(wall, and the process CPU time of the solve, since this machine may be shared), the solver status, variables
and constraints, and shortfall before and after; the last line is ``planning_<largest>_seconds <s>``, the wall
time of the largest system's LP solve. Targets: under 0.5 s for 200 trusts and under 30 s for 6,000.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

import numpy as np

from mutual.planning.equipment import EquipmentProblem, check_equipment, plan_equipment, solve_equipment_lp
from mutual.planning.graph import great_circle_km, nearest_graph

LAT, LON = (50.6, 54.6), (-3.4, 1.4)  # roughly England south of the Tees


def synthetic_system(n: int, days: int, seed: int, wave_km: float = 45.0) -> tuple[
        list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Codes, latitude, longitude, stock ``[n]`` and demand ``[n, days]`` of a seeded system with a wave."""
    rng = np.random.default_rng(seed)
    towns = max(8, n // 40)
    town_lat = rng.uniform(*LAT, towns)
    town_lon = rng.uniform(*LON, towns)
    home = rng.integers(0, towns, n)
    lat = np.clip(town_lat[home] + rng.normal(0, 0.12, n), *LAT)
    lon = np.clip(town_lon[home] + rng.normal(0, 0.18, n), *LON)
    stock = np.maximum(2, np.round(rng.lognormal(np.log(12 if n > 1000 else 40), 0.6, n)))
    usual = stock * rng.uniform(0.25, 0.6, n)
    centre = rng.choice(towns, 2, replace=False)
    near = np.zeros(n)
    for c in centre:
        km = great_circle_km(lat, lon, town_lat[c], town_lon[c])
        near = np.maximum(near, np.exp(-((km / wave_km) ** 2)))
    day = np.arange(days)
    peak = rng.uniform(0.3, 0.5) * days
    timing = np.exp(-(((day - peak) / (days / 5)) ** 2))
    lift = 1.0 + 2.2 * near[:, None] * timing[None, :]
    demand = np.round(usual[:, None] * lift * rng.normal(1.0, 0.05, (n, days)).clip(0.8, 1.2))
    codes = [f"S{i:05d}" for i in range(n)]
    return codes, lat, lon, stock, demand


def run(n: int, k: int, days: int, seed: int, wave_km: float) -> float:
    codes, lat, lon, stock, demand = synthetic_system(n, days, seed, wave_km)
    started = time.perf_counter()
    graph = nearest_graph(codes, lat, lon, k=k)
    p = EquipmentProblem(graph=graph, start=date(2021, 1, 4), stock=stock, demand=demand, integer=False)
    graph_seconds = time.perf_counter() - started
    cpu = time.process_time()
    solved = solve_equipment_lp(p)
    cpu = time.process_time() - cpu
    plan = plan_equipment(p, solved=solved)
    problems = check_equipment(p, plan)
    status = f"{solved.status}{'' if solved.optimal else ' (NOT optimal)'}"
    print(f"{n:>6} trusts × {days} days, k={k}: {graph.num_arcs:,} arcs; {solved.shipment_columns:,} shipment "
          f"columns of {solved.shipment_columns + solved.left_out:,} possible, {solved.active_trusts:,} trusts "
          f"in the LP, {solved.rounds} solve(s)")
    print(f"        graph {graph_seconds:.2f} s, build {solved.build_seconds:.2f} s, "
          f"solve {solved.solve_seconds:.2f} s (build + solve CPU {cpu:.2f} s), {status}, "
          f"{solved.variables:,} variables, {solved.constraints:,} constraints")
    print(f"        shortfall {plan.before['shortfall']:,.0f} -> {plan.after['shortfall']:,.0f} unit-days, "
          f"trusts short {plan.before['trusts_short']:.0f} -> {plan.after['trusts_short']:.0f}, "
          f"{len(plan.moves):,} moves, {'feasible' if not problems else problems[0]}")
    if not solved.optimal or problems:
        sys.exit(f"error: the {n}-trust plan is not a proven-optimal feasible LP")
    return solved.solve_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200:10,6000:20", help="comma-separated TRUSTS:K (default 200:10,6000:20)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--wave-km", type=float, default=45.0, help="how far the wave reaches (Gaussian, km)")
    args = parser.parse_args()
    try:
        sizes = [(int(a), int(b)) for a, b in (s.split(":") for s in args.sizes.split(","))]
    except ValueError:
        parser.error("--sizes takes TRUSTS:K pairs, e.g. 200:10,6000:20")
    seconds = {n: run(n, k, args.days, args.seed, args.wave_km) for n, k in sizes}
    largest = max(seconds)
    print(f"planning_{largest}_seconds {seconds[largest]:.2f}")


if __name__ == "__main__":
    main()
