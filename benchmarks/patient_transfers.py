"""Patient transfers on real England capacity (winter 2020-21) and on the demo: overflow bed-days before and after.

    uv run python benchmarks/patient_transfers.py [--from 2020-11-02] [--to 2021-03-28] [--safe 0.92]
        [--los 5] [--max-km 80] [--k N] [--max-out 20] [--relays] [--time-limit S] [--skip-demo]

1. Real: NHS England UEC sitreps 2020-21 (``nhse-uec-sitrep-series/sitrep2021.csv``), G&A beds open and occupied
   per trust per day; capacity = open × ``--safe`` (0.92, the occupancy NHS England calls safe), occupied as
   reported. Stamps are read as UTC instants → London dates (from 28 March 2021 each day is stamped 23:00 the day
   before); empty rows are "not reported". A zero for beds open or occupied is a reporting error (a general acute
   trust is never empty), so it counts as not reported too. Gaps inside a trust's series are filled from its
   nearest reported day (earlier day first); a trust with nothing reported in the window, or without coordinates
   in ``nhs-ods-trusts/nhs-trusts-geocoded.csv``, is listed and left out. The default window ends on 28 March
   2021, before RYR became the merged University Hospitals Sussex.
2. Demo: ``mutual.demo.build_demo`` into a temporary workspace (about 30 s), then G&A beds open and occupied of the
   demo's synthetic trusts over its simulated days, read from the store; coordinates from its organisations.

Prints one row per case and, as its last line, ``transfers_overflow_reduction <1 − after/before, real case>``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from mutual.planning.graph import nearest_graph
from mutual.planning.plan import Plan
from mutual.planning.transfers import TransferProblem, check_transfers, plan_transfers

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MUTUAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
SITREP = Path("nhse-uec-sitrep-series") / "sitrep2021.csv"
COORDS = Path("nhs-ods-trusts") / "nhs-trusts-geocoded.csv"
OPEN, OCCUPIED = "G&A Beds Open", "G&A beds occ'd"


@dataclass(frozen=True)
class Capacity:
    """Beds open and occupied ``[n, D]`` for ``codes`` from ``start``, with what was filled or left out."""

    codes: tuple[str, ...]
    start: date
    open: np.ndarray
    occupied: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    filled: int  # trust-days filled from a nearest reported day
    not_reported: tuple[str, ...]  # trusts with nothing in the window
    no_coordinates: tuple[str, ...]


def _london_day(stamp: str) -> date:
    """A sitrep stamp as a London date: plain dates as they are, ``YYYY-MM-DD 23:00:00`` (UK midnight in UTC
    during summer time) as the next day."""
    day = date.fromisoformat(stamp[:10])
    return day + timedelta(days=1) if stamp[11:13] == "23" else day


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if np.isfinite(value) and value > 0 else None


def _fill(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's gaps (NaN) from its nearest reported day, the earlier one when two are as near."""
    out = a.copy()
    D = a.shape[1]
    filled = 0
    for i in range(a.shape[0]):
        have = np.nonzero(~np.isnan(a[i]))[0]
        missing = np.nonzero(np.isnan(a[i]))[0]
        if have.size == 0 or missing.size == 0:
            continue
        right = np.clip(np.searchsorted(have, missing), 0, have.size - 1)
        left = np.clip(right - 1, 0, have.size - 1)
        nearest = np.where(np.abs(have[left] - missing) <= np.abs(have[right] - missing), have[left], have[right])
        out[i, missing] = a[i, nearest]
        filled += int(missing.size)
    assert out.shape[1] == D
    return out, filled


def load_sitrep(data: Path, start: date, end: date) -> Capacity:
    """G&A beds open and occupied per trust per day from the 2020-21 sitreps, with coordinates."""
    rows: dict[tuple[str, date], tuple[float, float]] = {}
    codes: set[str] = set()
    with (data / SITREP).open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            code = (row.get("Code") or "").strip()
            if not code or code == "-":
                continue
            codes.add(code)
            day = _london_day(row["Date"])
            beds, occ = _number(row.get(OPEN)), _number(row.get(OCCUPIED))
            if start <= day <= end and beds is not None and occ is not None:
                rows[(code, day)] = (beds, occ)
    coords: dict[str, tuple[float, float]] = {}
    with (data / COORDS).open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            lat, lon = _number(row.get("lat")), row.get("long")
            if lat is not None and lon not in (None, "", "NA"):
                coords[row["org_code"].strip()] = (lat, float(str(lon)))
    reported = {code for code, _ in rows}
    no_coords = tuple(sorted(c for c in reported if c not in coords))
    kept = tuple(sorted(c for c in reported if c in coords))
    D = (end - start).days + 1
    beds = np.full((len(kept), D), np.nan)
    occupied = np.full((len(kept), D), np.nan)
    at = {c: i for i, c in enumerate(kept)}
    for (code, day), (b, o) in rows.items():
        if code in at:
            beds[at[code], (day - start).days] = b
            occupied[at[code], (day - start).days] = o
    beds, filled = _fill(beds)
    occupied, _ = _fill(occupied)
    return Capacity(kept, start, beds, occupied, np.array([coords[c][0] for c in kept]),
                    np.array([coords[c][1] for c in kept]), filled, tuple(sorted(codes - reported)), no_coords)


def load_demo(seed: int, data: Path) -> Capacity:
    """Build the demo in a temporary workspace and read its trusts' G&A beds from the store."""
    from mutual.app import open_mutual
    from mutual.demo import DAYS, START, build_demo
    from mutual.store.base import ObservationQuery

    with tempfile.TemporaryDirectory() as tmp:
        summary = build_demo(Path(tmp) / "ws", seed=seed, data_dir=data)
        with open_mutual(summary.home, read_only=True) as m:
            end = START + timedelta(days=DAYS - 1)
            frames = {}
            for metric in ("ga_beds_open", "ga_beds_occupied"):
                t = m.store.observations(ObservationQuery(metric=metric, start=START, end=end))
                frames[metric] = t.filter(t.dims == "").select("org", "period", "value").to_pyarrow().to_pylist()
            orgs = {o.code: o for o in m.orgs()}
    values: dict[str, dict[tuple[str, date], float]] = {
        metric: {(r["org"], r["period"]): float(r["value"]) for r in rows if r["value"] and r["value"] > 0}
        for metric, rows in frames.items()}
    reported = {code for code, _ in values["ga_beds_open"]} & {code for code, _ in values["ga_beds_occupied"]}
    no_coords = tuple(sorted(c for c in reported if c not in orgs or orgs[c].lat is None))
    kept = tuple(sorted(reported - set(no_coords)))
    beds = np.full((len(kept), DAYS), np.nan)
    occupied = np.full((len(kept), DAYS), np.nan)
    for i, code in enumerate(kept):
        for d in range(DAYS):
            day = START + timedelta(days=d)
            beds[i, d] = values["ga_beds_open"].get((code, day), np.nan)
            occupied[i, d] = values["ga_beds_occupied"].get((code, day), np.nan)
    beds, filled = _fill(beds)
    occupied, _ = _fill(occupied)
    return Capacity(kept, START, beds, occupied, np.array([orgs[c].lat for c in kept], dtype=float),
                    np.array([orgs[c].lon for c in kept], dtype=float), filled, (), no_coords)


def problem(c: Capacity, args: argparse.Namespace) -> TransferProblem:
    graph = nearest_graph(c.codes, c.lat, c.lon, k=args.k, max_km=args.max_km)
    return TransferProblem(graph=graph, start=c.start, capacity=c.open * args.safe, occupied=c.occupied,
                           los_days=args.los, max_km=args.max_km, max_out_per_day=args.max_out)


def run(name: str, c: Capacity, args: argparse.Namespace) -> tuple[Plan, list[str], float]:
    p = problem(c, args)
    started = time.perf_counter()
    plan = plan_transfers(p, time_limit=args.time_limit, relays=args.relays)
    seconds = time.perf_counter() - started
    problems = check_transfers(p, plan)
    print(f"{name}: {len(c.codes)} trusts × {p.days} days from {c.start}, {plan.params['arcs']} links "
          f"within {args.max_km:g} km; {c.filled} trust-day(s) filled from the nearest reported day")
    print(f"  {len(c.not_reported)} trust(s) with nothing reported in the window, left out"
          + (f": {', '.join(c.not_reported)}" if c.not_reported else ""))
    print(f"  {len(c.no_coordinates)} trust(s) without coordinates, left out"
          + (f": {', '.join(c.no_coordinates)}" if c.no_coordinates else ""))
    for problem_ in problems[:10]:
        print(f"  INFEASIBLE: {problem_}")
    return plan, problems, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--from", dest="start", type=date.fromisoformat, default=date(2020, 11, 2))
    parser.add_argument("--to", dest="end", type=date.fromisoformat, default=date(2021, 3, 28))
    parser.add_argument("--safe", type=float, default=0.92, help="safe share of open G&A beds")
    parser.add_argument("--los", type=int, default=5, help="days a transferred patient stays")
    parser.add_argument("--max-km", type=float, default=80.0, help="travel limit")
    parser.add_argument("--k", type=int, default=None, help="link each trust to its k nearest only")
    parser.add_argument("--max-out", type=float, default=20.0, help="patients a trust can send per day")
    parser.add_argument("--relays", action="store_true", help="let trusts send patients on to make room for others")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    parser.add_argument("--seed", type=int, default=1, help="demo seed")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    if args.end < args.start:
        parser.error("--to is before --from")
    for f in (SITREP, COORDS):
        if not (args.data / f).is_file():
            sys.exit(f"error: {args.data / f} is not a file")

    results = []
    real = load_sitrep(args.data, args.start, args.end)
    results.append(("England 2020-21", *run("England 2020-21", real, args)))
    if not args.skip_demo:
        results.append(("demo", *run("demo", load_demo(args.seed, args.data), args)))

    print()
    head = (f"{'case':<16}{'trusts':>7}{'days':>6}{'overflow before':>17}{'after':>11}{'reduction':>10}"
            f"{'trusts over':>13}{'peak':>12}{'transfers':>11}{'patient-km':>12}{'seconds':>9}  status, method, gap")
    print(head)
    for name, plan, problems, seconds in results:
        b, a = plan.before, plan.after
        reduction = 1 - a["overflow_bed_days"] / b["overflow_bed_days"] if b["overflow_bed_days"] else 0.0
        s = plan.solve
        print(f"{name:<16}{plan.params['trusts']:>7}{plan.horizon:>6}{b['overflow_bed_days']:>17,.1f}"
              f"{a['overflow_bed_days']:>11,.1f}{reduction:>10.1%}"
              f"{int(b['trusts_overflowing']):>6} → {int(a['trusts_overflowing']):<4}"
              f"{b['peak_overflow']:>5.0f} → {a['peak_overflow']:<4.0f}{a['transfers']:>11,.0f}"
              f"{a['transfer_km']:>12,.0f}{seconds:>9.1f}  {s.status}, {s.method}, gap {s.gap:.2%}"
              f"{'' if not problems else f', {len(problems)} PROBLEMS'}")
    real_plan = results[0][1]
    before = real_plan.before["overflow_bed_days"]
    reduction = 1 - real_plan.after["overflow_bed_days"] / before if before else 0.0
    print(f"transfers_overflow_reduction {reduction:.4f}")


if __name__ == "__main__":
    main()
