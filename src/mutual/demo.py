"""``mutual demo``: a seeded synthetic health system, its messy submissions, one real winter, and a summary.

What the demo does, in order:

1. Finds the public data folder (``--data``, else ``$MUTUAL_SHARED_DATA``, else a ``shared/data`` folder above
   the current directory or above this package).
2. Prepares the workspace (see *Workspace safety* below).
3. Imports the real organisations: ODS trusts, their coordinates, and the trust -> STP lookup.
4. Picks ``N_TRUSTS`` open acute trusts (with coordinates, an STP, and beds in the real winter sitreps),
   deterministically from the seed, and sizes each from its real G&A and adult critical care beds.
5. Simulates ``DAYS`` days from ``START`` for each: G&A core and escalation beds and occupancy (weekday effect),
   an autumn COVID-19 wave strongest in the North and a winter wave strongest in London and the South East,
   adult critical care, ventilators, staff absence by group and reason, and stock, use and days of supply of
   eight items (with a few supplier shortfalls).
6. Writes each trust's submissions as CSV in ``<home>/submissions/`` in one of three layouts (Mutual's own long
   layout and two trust-specific wide layouts, ``demo-acute-daily`` and ``demo-trust-export``), one file per
   trust per ``PERIOD_DAYS`` days, received the morning after its last day. Some files are broken on purpose:
   wrong units (occupancy as a percentage, days of supply in hours), a mistyped trust code, missing values,
   duplicated and conflicting rows, a truncated file with invalid bytes and a broken quote, and a spreadsheet
   saved as ``.csv`` that cannot be read at all; the trusts resend some of them. ``MANIFEST.csv`` lists every
   file with its layout, days, time of receipt and defect.
7. Ingests one real winter of NHS England sitreps, then every submission in order of receipt.
8. Evaluates the shortage alert rules on each of the last ``ALERT_DAYS`` days, in order, as a daily job would.
9. Proposes a mutual-aid plan (staff loans between nearby trusts) for a planner to approve, and makes one demo
   account per role (``DEMO_PASSWORD``; a local demo only), the trust and regional accounts scoped to a trust
   that has moves in that plan. Sets up three data-sharing partners (a large technology firm, a start-up and a
   university) with agreements in different states; the active one has releases through the policy gate, its
   outcome measured by difference in differences and a quarter settled under its gain/risk-share terms.
10. Prints a summary: trusts, days, submissions loaded and rejected, values accepted, quarantined and flagged,
   the top reasons, what became of each broken file, then the alerts open on the last day and the trusts
   under most pressure (G&A occupancy from its parts), the proposed plan and the accounts. ``mutual demo`` then
   serves the workspace (``--no-serve`` stops after the summary).

The same seed gives byte-identical files and identical counts.

Workspace safety: the demo writes a marker file ``.mutual-demo`` into the workspace it builds. Run again on a
folder with that marker, it deletes only what a workspace holds (``control.sqlite``, ``data.duckdb``,
``archive/``, ``tmp/``, ``submissions/``) and starts afresh. Otherwise it builds only in a folder that is
missing, empty, or a Mutual workspace without submissions; it refuses (``WorkspaceError``) a workspace that has
submissions and any other non-empty folder, and deletes nothing there.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import random
import shutil
import stat
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich import box
from rich.console import Console
from rich.table import Table

from mutual.analytics import alerts as al
from mutual.app import Mutual, WorkspaceError, open_mutual
from mutual.catalog.orgs import Org, OrgKind
from mutual.ingest.specs import Spec, column_maps, encode_dims, find_spec
from mutual.planning.records import save_plan
from mutual.planning.runner import make_plan
from mutual.store.intake import IngestError
from mutual.workspace import Workspace

ENV_DATA = "MUTUAL_SHARED_DATA"
ORG_FILES = ("nhs-ods-trusts/etr.csv", "nhs-ods-trusts/nhs-trusts-geocoded.csv",
             "nhse-winter-sitrep-2018-19/Trust-STP-lookup.csv")
# The last winter before COVID-19: it sizes the synthetic trusts and is ingested as it is. It ends before the
# synthetic period starts, so real and synthetic values never compete for the same trust and day.
REAL_WINTER = "nhse-uec-sitrep-series/sitrep1920.csv"
REQUIRED_FILES = (*ORG_FILES, REAL_WINTER)

START = date(2020, 9, 1)
DAYS = 120
N_TRUSTS = 40
PERIOD_DAYS = 60
ALERT_DAYS = 14  # the demo's alert history: its last two weeks, evaluated day by day
TOP_ALERTS = 10
MIN_GA_BEDS = 200  # smaller trusts in the sitreps are specialist hospitals, not general acute ones

MARKER = ".mutual-demo"
WORKSPACE_FILES = ("control.sqlite", "control.sqlite-journal", "control.sqlite-wal", "control.sqlite-shm",
                   "data.duckdb", "data.duckdb.wal")
WORKSPACE_DIRS = ("archive", "tmp", "submissions")

LONG, ACUTE, EXPORT = "mutual-long", "demo-acute-daily", "demo-trust-export"
LAYOUTS = (LONG, ACUTE, EXPORT)

STAFF_GROUPS = {"nursing": 0.34, "medical": 0.12, "ahp": 0.09, "other": 0.45}
STAFF_COVID_RISK = {"nursing": 1.25, "medical": 0.9, "ahp": 1.0, "other": 0.8}
REASONS = ("covid_sickness", "covid_isolation", "other_sickness")
# Daily use per G&A bed and per COVID-19 inpatient (ventilator consumables follow ventilators in use).
ITEMS = {"n95_masks": (0.6, 8.0), "surgical_masks": (2.4, 5.0), "other_respirators": (0.08, 0.4),
         "eye_protection": (0.6, 3.0), "gowns": (0.8, 5.0), "gloves": (24.0, 30.0),
         "ventilator_supplies": (0.0, 0.0), "oxygen": (3.0, 15.0)}
# Whole boxes, in the layout that counts these items in boxes.
BOXES = {"n95_masks": 20, "surgical_masks": 50, "gloves": 100}
# (autumn wave, winter wave) strength by NHS England region; the autumn wave peaks around day 68 (early
# November), the winter wave around day 112 (late December).
REGION_WAVES = {"Y62": (1.0, 0.45), "Y63": (0.95, 0.4), "Y60": (0.7, 0.55), "Y56": (0.3, 1.0),
                "Y59": (0.25, 0.9), "Y61": (0.3, 0.85), "Y58": (0.2, 0.45)}
WAVES = ((68.0, 15.0), (112.0, 11.0))
# 08:00 occupancy by weekday (Monday first): lowest after the weekend's discharges, highest midweek.
WEEKDAY_OCCUPANCY = (-0.012, 0.0, 0.006, 0.008, 0.006, -0.004, -0.012)


def _key(metric: str, **dims: str) -> str:
    return f"{metric}|{encode_dims(dims)}" if dims else metric


def series_keys() -> list[str]:
    """Every series one trust reports each day, in the order Mutual's long layout lists them."""
    keys = ["ga_beds_core_open", "ga_beds_escalation_open", "ga_beds_open", "ga_beds_occupied",
            "cc_adult_beds_open", "cc_adult_beds_occupied", "ventilators_total", "ventilators_in_use",
            "covid_patients_in_hospital", "covid_patients_ventilated", "covid_admissions"]
    keys += [_key("staff_absent", staff_group=g, reason=r) for g in STAFF_GROUPS for r in REASONS]
    keys.append(_key("staff_absent", staff_group="all", reason="all"))
    keys += [_key("staff_in_post", staff_group=g) for g in STAFF_GROUPS]
    for item in ITEMS:
        keys += [_key(m, item=item) for m in ("supply_stock", "supply_usage", "days_of_supply")]
    return keys


# Reported only in the layout that has a column for them (Mutual's long layout has no `when` column).
SHORTAGE_KEYS = [_key("staff_shortage", staff_group=g, when="now") for g in ("nursing", "medical")]


def split_key(key: str) -> tuple[str, dict[str, str]]:
    metric, _, dims = key.partition("|")
    return metric, dict(kv.split("=", 1) for kv in dims.split(";")) if dims else {}


# -- public data and the workspace ---------------------------------------------------------------------------


def find_data_dir(data_dir: Path | None) -> Path:
    """The folder of public data: ``data_dir``, else ``$MUTUAL_SHARED_DATA``, else the first ``shared/data``
    above the current directory or above this package that holds the files the demo reads."""

    def usable(folder: Path) -> bool:
        return all((folder / f).is_file() for f in REQUIRED_FILES)

    need = ", ".join(REQUIRED_FILES)
    if data_dir is not None:
        if not usable(data_dir):
            raise WorkspaceError(f"--data {data_dir} is not the public data folder (it needs {need})")
        return data_dir.resolve()
    env = os.environ.get(ENV_DATA)
    if env:
        if not usable(Path(env).expanduser()):
            raise WorkspaceError(f"${ENV_DATA}={env} is not the public data folder (it needs {need}); "
                                 "fix it or pass --data DIR")
        return Path(env).expanduser().resolve()
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            if usable(folder / "shared" / "data"):
                return folder / "shared" / "data"
    raise WorkspaceError(f"public data not found: looked for shared/data (with {need}) in every folder above "
                         f"{starts[0]} and above {starts[1]}, and ${ENV_DATA} is not set; pass --data DIR")


def _remove_tree(path: Path) -> None:
    def writable(func: Callable[..., Any], name: str, _exc: Any) -> None:
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        os.chmod(name, stat.S_IRUSR | stat.S_IWUSR)
        func(name)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=writable)
    else:
        shutil.rmtree(path, onerror=writable)


def prepare_home(home: Path | None, seed: int) -> Workspace:
    """A workspace to build the demo in; see *Workspace safety* in the module docstring."""
    ws = Workspace.at(home)
    root = ws.home
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} is a file, not a folder: pass --home with a new or empty folder")
    if (root / MARKER).is_file():
        for name in WORKSPACE_FILES:
            (root / name).unlink(missing_ok=True)
        for name in WORKSPACE_DIRS:
            if (root / name).is_dir() and not (root / name).is_symlink():
                _remove_tree(root / name)
    elif ws.exists:
        with open_mutual(root) as m:
            n = len(m.submissions())
        if n:
            raise WorkspaceError(f"{root} is a Mutual workspace with {n} submissions that the demo did not "
                                 "make; it was left as it is: pass --home with a new or empty folder")
        if (root / "submissions").exists():
            raise WorkspaceError(f"{root}/submissions already exists; the demo writes its files there and will "
                                 "not overwrite yours: pass --home with a new or empty folder")
    elif root.exists() and any(root.iterdir()):
        raise WorkspaceError(f"{root} is not empty and is not a Mutual workspace; the demo will not write into "
                             "it: pass --home with a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(f"Built by `mutual demo --seed {seed}`. Running the demo again here deletes this "
                               "workspace's data and builds it afresh.\n", encoding="utf-8")
    return ws


# -- the trusts ----------------------------------------------------------------------------------------------


def real_capacity(path: Path) -> dict[str, tuple[float, float]]:
    """Median G&A beds open and adult critical care beds open per trust in a real winter's sitreps."""
    ga: dict[str, list[float]] = {}
    cc: dict[str, list[float]] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            code = (row.get("Code") or "").strip()
            if not code or code == "-":
                continue
            for store, column in ((ga, "G&A Beds Open"), (cc, "CC Adult Open")):
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    store.setdefault(code, []).append(float(row[column]))
    return {code: (statistics.median(values), statistics.median(cc.get(code) or [0.0]))
            for code, values in sorted(ga.items())}


@dataclass(frozen=True)
class Trust:
    """One synthetic trust: a real organisation with simulated size, epidemic and habits."""

    code: str
    name: str
    region: str
    stp: str
    layout: str
    ga_beds: int
    cc_beds: int
    headcount: int
    waves: tuple[float, float]
    covid_factor: float
    wave_shift: float
    stock_days: float  # the stock level the trust orders up to, in days of use
    review_every: int  # days between orders
    shortfall: str | None = None  # an item whose deliveries fall short during the autumn wave
    defect: str | None = None


def pick_trusts(orgs: Sequence[Org], capacity: dict[str, tuple[float, float]], seed: int,
                n: int = N_TRUSTS) -> list[Trust]:
    """``n`` open acute trusts with coordinates, an STP and real beds, chosen and described from the seed."""
    kinds = {o.code: o.kind for o in orgs}
    candidates = sorted(o.code for o in orgs
                        if o.kind == OrgKind.TRUST and o.close_date is None and o.lat is not None
                        and o.lon is not None and o.parent is not None and kinds.get(o.parent) == OrgKind.STP
                        and o.region in REGION_WAVES and capacity.get(o.code, (0.0, 0.0))[0] >= MIN_GA_BEDS)
    if len(candidates) < n:
        raise WorkspaceError(f"only {len(candidates)} open acute trusts with coordinates and an STP were found in "
                             f"the organisation files; the demo needs {n}")
    rng = random.Random(f"mutual-demo:{seed}:trusts")
    chosen = sorted(rng.sample(candidates, n))
    layouts = [LAYOUTS[i % len(LAYOUTS)] for i in range(n)]
    rng.shuffle(layouts)
    by_code = {o.code: o for o in orgs}
    trusts = []
    for code, layout in zip(chosen, layouts, strict=True):
        org = by_code[code]
        ga, cc = capacity[code]
        assert org.region is not None and org.parent is not None
        trusts.append(Trust(
            code=code, name=org.name, region=org.region, stp=org.parent, layout=layout, ga_beds=round(ga),
            cc_beds=max(6, round(cc)) if cc > 0 else max(6, round(ga * 0.035)),
            headcount=round(ga * rng.uniform(9.5, 12.5)), waves=REGION_WAVES[org.region],
            covid_factor=min(1.6, max(0.5, rng.lognormvariate(0.0, 0.25))), wave_shift=rng.uniform(-6.0, 6.0),
            stock_days=rng.uniform(18.0, 35.0), review_every=rng.choice((3, 7, 7)),
        ))
    for code in rng.sample(chosen, 3):
        i = chosen.index(code)
        trusts[i] = replace(trusts[i], shortfall=rng.choice(("n95_masks", "gowns", "eye_protection")))
    return assign_defects(trusts, rng)


DEFECTS = {
    # defect: (layout, what is wrong)
    "percent": (ACUTE, "wrong units: G&A beds occupied given as a percentage for a week; resent corrected"),
    "hours": (EXPORT, "wrong units: days of supply given in hours"),
    "typo": (LONG, "mistyped trust code on one day's rows; that day resent"),
    "missing": (ACUTE, "missing values (N/A, -, blanks) and a few 'TBC'"),
    "duplicates": (LONG, "one day's rows repeated, and a conflicting second value for one key"),
    "corrupt": (ACUTE, "truncated mid-line, invalid UTF-8 and an unterminated quote; resent whole"),
    "unreadable": (EXPORT, "a spreadsheet saved with a .csv name; resent as CSV"),
}


def assign_defects(trusts: list[Trust], rng: random.Random) -> list[Trust]:
    used: set[str] = set()
    out = list(trusts)
    for defect, (layout, _) in DEFECTS.items():
        pool = [t.code for t in out if t.layout == layout and t.code not in used and t.shortfall is None]
        code = rng.choice(pool)
        used.add(code)
        i = next(j for j, t in enumerate(out) if t.code == code)
        # The trust whose days of supply arrive in hours keeps deep stocks, so every value in hours is far
        # beyond the catalogue's bound of 365 days.
        extra: dict[str, Any] = {"stock_days": 45.0, "review_every": 1} if defect == "hours" else {}
        out[i] = replace(out[i], defect=defect, **extra)
    return out


# -- the simulation ------------------------------------------------------------------------------------------


def _wave(day: float, peak: float, width: float) -> float:
    return math.exp(-0.5 * ((day - peak) / width) ** 2)


def _poisson_like(rng: random.Random, mean: float) -> int:
    return max(0, round(mean + math.sqrt(max(mean, 0.0)) * rng.gauss(0.0, 1.0)))


def simulate(trust: Trust, seed: int, days: int = DAYS) -> list[dict[str, float]]:
    """One dict of series key -> value per day; all values within the catalogue's bounds and consistent:
    core + escalation = open, occupied <= open, COVID-19 inpatients <= occupied, ventilated <= in use <= held,
    critical care occupied <= open."""
    rng = random.Random(f"mutual-demo:{seed}:simulate:{trust.code}")

    def load(d: float) -> float:
        return 0.015 + sum(a * _wave(d, peak + trust.wave_shift, width)
                           for a, (peak, width) in zip(trust.waves, WAVES, strict=True))

    ga = trust.ga_beds
    core_base = round(ga * 0.97)
    # The ventilator fleet changes now and then: deliveries, loans to and from other trusts, units condemned.
    fleet_base = math.ceil(trust.cc_beds * 1.9) + 6
    vent_total = fleet_base
    covid_noise = occ_noise = 0.0
    stock: dict[str, float] = {}
    recent_use: dict[str, list[float]] = {item: [] for item in ITEMS}
    # Each item has its own stock target and delivery day.
    targets = {item: trust.stock_days * rng.uniform(0.75, 1.3) for item in ITEMS}
    delivery = {item: rng.randrange(trust.review_every) for item in ITEMS}
    out = []
    for d in range(days):
        day = START + timedelta(days=d)
        v: dict[str, float] = {}
        covid_noise = 0.7 * covid_noise + rng.gauss(0.0, 0.04)
        covid_target = load(d) * 0.28 * ga * trust.covid_factor
        pressure = min(1.0, covid_target / (0.3 * ga))
        # Core beds: fewer in a wave (bays closed for infection control), and a few closed on any day.
        closed = max(0, round(rng.gauss(0.004, 0.004) * core_base))
        core = round(core_base * (1 - 0.04 * pressure)) - closed
        escalation = max(0, round(ga * (0.004 + 0.06 * pressure) + rng.gauss(0.0, 1.2)))
        beds = core + escalation
        occ_noise = 0.6 * occ_noise + rng.gauss(0.0, 0.006)
        rate = min(0.98, max(0.85, 0.905 + 0.05 * pressure + WEEKDAY_OCCUPANCY[day.weekday()] + occ_noise))
        occupied = round(beds * rate)
        covid = min(occupied, max(0, round(covid_target * (1 + covid_noise))))
        if rng.random() < 0.15:
            vent_total = min(fleet_base + 12, max(fleet_base - 3, vent_total + rng.choice((-2, -1, 1, 2, 3))))
        cc_open = min(vent_total, max(1, round(trust.cc_beds * (1 + 0.9 * pressure) + rng.gauss(0.0, 0.7))))
        cc_rate = min(1.0, max(0.4, 0.74 + 0.2 * pressure + rng.gauss(0.0, 0.04)))
        cc_occupied = min(cc_open, round(cc_open * cc_rate))
        ventilated = min(cc_occupied, max(0, round(covid * 0.085 * (1 + rng.gauss(0.0, 0.1)))))
        in_use = min(vent_total, ventilated + round((cc_occupied - ventilated) * 0.42))
        admissions = _poisson_like(rng, load(d + 4) * 0.28 * ga * trust.covid_factor / 7.5)
        v.update({"ga_beds_core_open": core, "ga_beds_escalation_open": escalation, "ga_beds_open": beds,
                  "ga_beds_occupied": occupied, "cc_adult_beds_open": cc_open,
                  "cc_adult_beds_occupied": cc_occupied, "ventilators_total": vent_total,
                  "ventilators_in_use": in_use, "covid_patients_in_hospital": covid,
                  "covid_patients_ventilated": ventilated, "covid_admissions": admissions})

        community = load(d + 7)
        total_absent = 0
        absent_share: dict[str, float] = {}
        for group, share in STAFF_GROUPS.items():
            staff = trust.headcount * share
            rates = {"covid_sickness": 0.0015 + 0.016 * community * STAFF_COVID_RISK[group],
                     "covid_isolation": 0.002 + 0.02 * community * STAFF_COVID_RISK[group],
                     "other_sickness": 0.034 + 0.008 * d / days + (0.003 if day.weekday() == 0 else 0.0)}
            group_absent = 0
            for reason in REASONS:
                n = max(0, round(staff * rates[reason] * (1 + rng.gauss(0.0, 0.06))))
                v[_key("staff_absent", staff_group=group, reason=reason)] = n
                group_absent += n
            total_absent += group_absent
            absent_share[group] = group_absent / staff
            v[_key("staff_in_post", staff_group=group)] = round(staff)
        v[_key("staff_absent", staff_group="all", reason="all")] = total_absent
        v[SHORTAGE_KEYS[0]] = 1 if absent_share["nursing"] > 0.075 else 0
        v[SHORTAGE_KEYS[1]] = 1 if absent_share["medical"] > 0.07 else 0

        for item, (per_bed, per_covid) in ITEMS.items():
            mean_use = 2.0 * in_use + 1.0 if item == "ventilator_supplies" else per_bed * ga + per_covid * covid
            use = max(1, round(mean_use * (1 + rng.gauss(0.0, 0.05))))
            history = recent_use[item]
            history.append(use)
            usual = sum(history[-7:]) / len(history[-7:])  # days of supply are counted at the week's usual use
            if item not in stock:
                stock[item] = targets[item] * use * rng.uniform(0.55, 1.0)
            elif d % trust.review_every == delivery[item]:
                order = max(0.0, targets[item] * usual - stock[item])
                if item == trust.shortfall and 55 <= d <= 85:
                    order *= 0.25  # the supplier delivers a quarter of the order
                stock[item] += order
            on_hand = math.floor(stock[item])
            if trust.layout == EXPORT and item in BOXES:
                on_hand -= on_hand % BOXES[item]
            v[_key("supply_stock", item=item)] = on_hand
            v[_key("supply_usage", item=item)] = use
            v[_key("days_of_supply", item=item)] = round(on_hand / usual, 1)
            stock[item] = max(0.0, stock[item] - use)
        out.append(v)
    return out


# -- the files -----------------------------------------------------------------------------------------------


@dataclass
class DemoFile:
    """One file a trust sends, as the demo writes it."""

    name: str
    trust: Trust
    layout: str
    first: date
    last: date
    received_at: datetime
    defect: str = ""
    note: str = ""
    data: bytes = b""

    @property
    def org_option(self) -> str | None:
        """The organisation to name on ingest: only for the layout that has no organisation column."""
        return self.trust.code if self.layout == EXPORT else None


Grid = list[list[str]]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _rows_long(trust: Trust, days: list[tuple[date, dict[str, float]]], org: str | None = None) -> Grid:
    grid = [["org", "metric", "date", "value", "staff_group", "reason", "item"]]
    for day, values in days:
        for key in series_keys():
            metric, dims = split_key(key)
            grid.append([org or trust.code, metric, day.isoformat(), _fmt(values[key]), dims.get("staff_group", ""),
                         dims.get("reason", ""), dims.get("item", "")])
    return grid


def _wide_columns(spec: Spec) -> list[tuple[str, str, float, dict[float, str]]]:
    """(heading, series key, scale, value -> label) for each value column of a wide spec, in spec order."""
    cols = []
    for m in column_maps(spec):
        labels: dict[float, str] = {}
        for label, value in m.cmap.value_map.items():
            if value is not None:
                labels.setdefault(value, label)
        cols.append((m.heading, _key(m.cmap.metric, **m.cmap.dims), m.cmap.scale, labels))
    return cols


def _rows_wide(trust: Trust, layout: str, days: list[tuple[date, dict[str, float]]]) -> Grid:
    spec = find_spec(layout)
    cols = _wide_columns(spec)
    if layout == ACUTE:
        header = ["Trust Code", "Report Date"] + [c[0] for c in cols]
    else:
        header = ["Census Date"] + [c[0] for c in cols] + list(spec.derived)
    grid = [header]
    for day, values in days:
        row = [trust.code, day.strftime("%d/%m/%Y")] if layout == ACUTE else [day.strftime("%d-%b-%Y")]
        for _, key, scale, labels in cols:
            value = values[key]
            row.append(labels[value] if labels else _fmt(value / scale))
        if layout == EXPORT:
            row.append(f"{values['ga_beds_occupied'] / values['ga_beds_open']:.4f}")
        grid.append(row)
    return grid


def _csv_bytes(grid: Grid, *, crlf: bool = False) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if crlf else "\n").writerows(grid)
    return buf.getvalue().encode("utf-8")


def _grid(trust: Trust, days: list[tuple[date, dict[str, float]]]) -> Grid:
    return _rows_long(trust, days) if trust.layout == LONG else _rows_wide(trust, trust.layout, days)


def _render(trust: Trust, grid: Grid) -> bytes:
    # The bed-management export comes from a Windows system: CRLF line ends and a byte-order mark.
    if trust.layout == EXPORT:
        return b"\xef\xbb\xbf" + _csv_bytes(grid, crlf=True)
    return _csv_bytes(grid)


def _mistype(code: str, known: set[str]) -> str:
    """A plausible slip in typing an ODS code (R1H -> R1J) that is not itself a known code."""
    typos = [code[:i] + ch + code[i + 1:] for i in range(len(code) - 1, 0, -1) for ch in "JKGHXQ0O1I"]
    return next(t for t in typos if t != code and t not in known)


def _received(rng: random.Random, last: date, day_offset: int = 1, hour: int = 7) -> datetime:
    return datetime.combine(last + timedelta(days=day_offset), time(hour)) + timedelta(minutes=rng.randrange(150))


def make_files(trusts: list[Trust], series: dict[str, list[dict[str, float]]], seed: int,
               known_codes: set[str]) -> list[DemoFile]:
    """Every file the trusts send, with the broken ones broken, in order of receipt."""
    files: list[DemoFile] = []
    periods = [(START + timedelta(days=i), START + timedelta(days=min(i + PERIOD_DAYS, DAYS) - 1))
               for i in range(0, DAYS, PERIOD_DAYS)]
    for trust in trusts:
        rng = random.Random(f"mutual-demo:{seed}:files:{trust.code}")
        broken_period = rng.randrange(1, len(periods))
        for p, (first, last) in enumerate(periods):
            days = [(first + timedelta(days=i), series[trust.code][(first - START).days + i])
                    for i in range((last - first).days + 1)]
            name = f"{trust.code}_{first:%Y%m%d}-{last:%Y%m%d}.csv"
            f = DemoFile(name=name, trust=trust, layout=trust.layout, first=first, last=last,
                         received_at=_received(rng, last))
            grid = _grid(trust, days)
            f.data = _render(trust, grid)
            if trust.defect and p == broken_period:
                files += _break(f, grid, days, rng, known_codes)
            else:
                files.append(f)
    files.sort(key=lambda f: (f.received_at, f.name))
    return files


def _break(f: DemoFile, grid: Grid, days: list[tuple[date, dict[str, float]]], rng: random.Random,
           known_codes: set[str]) -> list[DemoFile]:
    """The broken version of ``f`` (and any file the trust sends to put it right)."""
    trust, defect = f.trust, f.trust.defect or ""
    f.defect, f.note = defect, DEFECTS[defect][1]
    header = grid[0]
    later = _received(rng, f.last, hour=14)
    stem = f.name.removesuffix(".csv")
    if defect == "percent":
        col = header.index("G&A Beds Occupied")
        start = rng.randrange(1, len(grid) - 7)
        week = list(range(start, start + 7))
        for r in week:
            values = days[r - 1][1]
            grid[r][col] = f"{100 * values['ga_beds_occupied'] / values['ga_beds_open']:.1f}%"
        f.data = _render(trust, grid)
        fix = DemoFile(name=f"{stem}_corrected.csv", trust=trust, layout=f.layout, first=days[week[0] - 1][0],
                       last=days[week[-1] - 1][0], received_at=later, defect="correction",
                       note=f"resends {f.name}'s week of percentages as bed counts")
        fix.data = _render(trust, _grid(trust, [days[r - 1] for r in week]))
        return [f, fix]
    if defect == "hours":
        for c, heading in enumerate(header):
            if heading.endswith("days left"):
                for row in grid[1:]:
                    row[c] = str(round(float(row[c]) * 24))
        f.data = _render(trust, grid)
        return [f]
    if defect == "typo":
        typo = _mistype(trust.code, known_codes)
        i = rng.randrange(len(days))
        for row in grid[1:]:
            if row[2] == days[i][0].isoformat():
                row[0] = typo
        f.data = _render(trust, grid)
        f.note = f"mistyped trust code {typo} for {trust.code} on {days[i][0]:%d %b}'s rows; that day resent"
        fix = DemoFile(name=f"{trust.code}_{days[i][0]:%Y%m%d}_resend.csv", trust=trust, layout=f.layout,
                       first=days[i][0], last=days[i][0], received_at=later, defect="correction",
                       note=f"resends {days[i][0]:%d %b} with the right trust code")
        fix.data = _render(trust, _rows_long(trust, [days[i]]))
        return [f, fix]
    if defect == "missing":
        for r in rng.sample(range(1, len(grid)), 10):
            for c in rng.sample(range(2, len(header)), 6):
                grid[r][c] = rng.choice(("N/A", "-", "", "", " "))
        for r, c in zip(rng.sample(range(1, len(grid)), 3), rng.sample(range(2, len(header)), 3), strict=True):
            grid[r][c] = "TBC"
        f.data = _render(trust, grid)
        return [f]
    if defect == "duplicates":
        day = days[rng.randrange(len(days))][0].isoformat()
        block = [list(row) for row in grid[1:] if row[2] == day]
        conflict = next(list(row) for row in grid[1:] if row[1] == "ga_beds_occupied" and row[2] != day)
        conflict[3] = str(int(conflict[3]) + 12)
        grid.extend(block)
        grid.append(conflict)
        f.data = _render(trust, grid)
        return [f]
    if defect == "corrupt":
        lines = f.data.split(b"\n")
        cut = len(lines) * 2 // 3
        bad = lines[cut - 4].split(b",")
        bad[5] = bad[5][:1] + b"\xff\xfe" + bad[5][1:]  # invalid UTF-8 inside a value
        lines[cut - 4] = b",".join(bad)
        quoted = lines[cut - 2].split(b",")
        quoted[7] = b'"' + quoted[7]  # a quote that is never closed
        lines[cut - 2] = b",".join(quoted)
        tail = lines[cut][: len(lines[cut]) // 2]  # the transfer stopped mid-line ...
        garbage = bytes(b for b in rng.randbytes(48) if b not in b"\r\n")  # ... after some garbage
        f.data = b"\n".join(lines[:cut]) + b"\n" + tail + garbage
        resend = DemoFile(name=f"{stem}_resend.csv", trust=trust, layout=f.layout, first=f.first, last=f.last,
                          received_at=later, defect="correction", note=f"resends {f.name} whole")
        resend.data = _render(trust, _grid(trust, days))
        return [f, resend]
    if defect == "unreadable":
        xlsx = DemoFile(name=f"{stem}.csv", trust=trust, layout=f.layout, first=f.first, last=f.last,
                        received_at=f.received_at, defect=defect, note=DEFECTS[defect][1])
        xlsx.data = b"PK\x03\x04\x14\x00\x06\x00\x08\x00" + rng.randbytes(2048)
        f.name, f.received_at, f.defect = f"{stem}_export.csv", later, "correction"
        f.note = f"resends {xlsx.name} as CSV"
        return [xlsx, f]
    raise AssertionError(defect)


MANIFEST_COLUMNS = ["file", "trust", "trust_name", "layout", "spec", "org_option", "first_day", "last_day",
                    "received_at", "defect", "note"]


def write_files(folder: Path, files: list[DemoFile]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows: Grid = [MANIFEST_COLUMNS]
    for f in files:
        (folder / f.name).write_bytes(f.data)
        rows.append([f.name, f.trust.code, f.trust.name, f.layout, f.layout, f.org_option or "",
                     f.first.isoformat(), f.last.isoformat(), f.received_at.isoformat(sep=" "), f.defect, f.note])
    (folder / "MANIFEST.csv").write_bytes(_csv_bytes(rows))


# -- the run and its summary ---------------------------------------------------------------------------------


@dataclass
class FileOutcome:
    name: str
    source: str  # the layout, or "real winter"
    defect: str
    note: str
    status: str  # loaded, rejected or already
    submission_id: int | None
    accepted: int = 0
    stored: int = 0
    quarantined: int = 0
    warnings: int = 0
    missing: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    error: str = ""


@dataclass
class RuleCount:
    severity: str
    rule: str
    n: int
    example: str
    file: str


@dataclass
class DemoSummary:
    home: Path
    data_dir: Path
    seed: int
    trusts: int
    stps: int
    regions: int
    first_day: date
    last_day: date
    days: int
    files: list[FileOutcome]
    rules: list[RuleCount]
    store: dict[str, Any]
    alerts: list[dict[str, Any]] = field(default_factory=list)  # open on the last day, most severe first
    pressure: list[dict[str, Any]] = field(default_factory=list)  # highest G&A occupancy on the last day
    plan: dict[str, Any] | None = None  # the proposed mutual-aid plan: id, kind, moves, trusts
    accounts: list[dict[str, str]] = field(default_factory=list)  # user, role, scope
    partnerships: dict[str, Any] = field(default_factory=dict)  # agreements, their states, the report's address

    def total(self, attr: str, source: str | None = None) -> int:
        return sum(int(getattr(f, attr)) for f in self.files if source is None or f.source == source)

    @property
    def loaded(self) -> int:
        return sum(f.status == "loaded" for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.status == "rejected" for f in self.files)

    def counts(self) -> dict[str, Any]:
        """The numbers of this run, without where it ran: the same seed gives the same dict."""
        return {"seed": self.seed, "trusts": self.trusts, "days": self.days, "first": self.first_day,
                "last": self.last_day, "loaded": self.loaded, "rejected": self.rejected,
                "files": [(f.name, f.status, f.accepted, f.stored, f.quarantined, f.warnings, f.missing,
                           sorted(f.rules.items())) for f in self.files],
                "rules": [(r.severity, r.rule, r.n, r.example, r.file) for r in self.rules],
                "store": self.store,
                "alerts": [(a["org"], a["rule"], a["since"], a["severity"]) for a in self.alerts],
                "pressure": [(p["org"], p["occupancy"]) for p in self.pressure]}


def _issue_rules(m: Mutual) -> tuple[list[RuleCount], dict[int, dict[str, int]]]:
    """Issue counts by rule with the first example of each (first by submission and line), and by submission."""
    import ibis

    t = m.store.ibis.table("quality_issue")
    summary = m.store.issue_summary().to_pyarrow().to_pylist()
    w = ibis.window(group_by=[t.severity, t.rule], order_by=[t.submission_id, t.row_num, t.col, t.message])
    first = (t.mutate(rank=ibis.row_number().over(w)).filter(lambda x: x.rank == 0)
             .select("severity", "rule", "message", "submission_id").to_pyarrow().to_pylist())
    examples = {(r["severity"], r["rule"]): r for r in first}
    names = {s.id: s.filename for s in m.submissions()}
    rules = [RuleCount(r["severity"], r["rule"], int(r["n"]), examples[(r["severity"], r["rule"])]["message"],
                       names.get(examples[(r["severity"], r["rule"])]["submission_id"], ""))
             for r in summary]
    rules.sort(key=lambda r: (r.severity != "error", -r.n, r.rule))
    per_sub = (t.group_by(["submission_id", "rule"]).aggregate(n=t.count()).to_pyarrow().to_pylist())
    by_sub: dict[int, dict[str, int]] = {}
    for r in per_sub:
        by_sub.setdefault(int(r["submission_id"]), {})[r["rule"]] = int(r["n"])
    return rules, by_sub


def _ingest(m: Mutual, path: Path, *, spec: str, org: str | None, received_at: datetime, source: str,
            defect: str = "", note: str = "") -> FileOutcome:
    try:
        result = m.ingest(path, spec=spec, org=org, received_at=received_at, submitted_by="mutual demo")
    except IngestError as exc:
        rejected = [s for s in m.submissions() if s.filename == path.name and s.status == "rejected"]
        return FileOutcome(path.name, source, defect, note, "rejected", rejected[-1].id if rejected else None,
                           error=str(exc))
    s = result.submission
    return FileOutcome(path.name, source, defect, note, "already" if result.already else "loaded", s.id,
                       accepted=s.accepted, stored=s.stored, quarantined=s.quarantined, warnings=s.warnings,
                       missing=s.missing)


def build_demo(home: Path | None, *, seed: int, data_dir: Path | None,
               progress: Callable[[str], None] = lambda _: None) -> DemoSummary:
    """Build the demo workspace and return its summary (``run_demo`` prints it)."""
    data = find_data_dir(data_dir)
    ws = prepare_home(home, seed)
    with open_mutual(ws.home, create=True) as m:
        progress("importing organisations")
        for name in ORG_FILES:
            m.import_orgs(data / name)
        orgs = m.orgs()
        progress("simulating the trusts")
        trusts = pick_trusts(orgs, real_capacity(data / REAL_WINTER), seed)
        series = {t.code: simulate(t, seed) for t in trusts}
        files = make_files(trusts, series, seed, {o.code for o in orgs})
        folder = ws.home / "submissions"
        write_files(folder, files)

        progress(f"ingesting {REAL_WINTER}")
        real_last = _last_date(data / REAL_WINTER)
        outcomes = [_ingest(m, data / REAL_WINTER, spec="nhse-uec-sitrep-series", org=None,
                            received_at=datetime.combine(real_last + timedelta(days=1), time(9, 30)),
                            source="real winter", note="NHS England UEC sitreps, published after the winter")]
        for i, f in enumerate(files, start=1):
            progress(f"ingesting submission {i} of {len(files)}: {f.name}")
            outcomes.append(_ingest(m, folder / f.name, spec=f.layout, org=f.org_option, received_at=f.received_at,
                                    source=f.layout, defect=f.defect, note=f.note))
        progress("summarising")
        rules, by_sub = _issue_rules(m)
        for o in outcomes:
            if o.submission_id is not None:
                o.rules = by_sub.get(o.submission_id, {})
        stats = m.store.stats()
        progress("evaluating alerts")
        alerts, pressure = _alerts(m)
        progress("proposing a mutual-aid plan")
        plan = _propose_plan(m)
        progress("making the demo accounts")
        accounts = _accounts(m, plan["trust"] if plan else trusts[0].code)
        progress("making record-level episodes from the trusts' occupancy")
        record_level = _episodes(m, [t.code for t in trusts], seed)
        progress("setting up data-sharing partnerships")
        partnerships = {**_partnerships(m, [t.code for t in trusts]), **record_level}
    return DemoSummary(home=ws.home, data_dir=data, seed=seed, trusts=len(trusts),
                       stps=len({t.stp for t in trusts}), regions=len({t.region for t in trusts}),
                       first_day=START, last_day=START + timedelta(days=DAYS - 1), days=DAYS, files=outcomes,
                       rules=rules, store=stats, alerts=alerts, pressure=pressure, plan=plan, accounts=accounts,
                       partnerships=partnerships)


DEMO_PASSWORD = "mutual-demo-password"  # every demo account's: the demo is for one machine, not a service
PLAN_KIND = "staff"


def _propose_plan(m: Mutual) -> dict[str, Any] | None:
    """Staff loans for the fortnight after the last report, saved as proposed (none when nobody is short)."""
    plan = make_plan(m.store, PLAN_KIND, horizon=14)
    if not plan.moves:
        return None
    plan_id = save_plan(m.sessions, plan, created_by="demo")
    receiver = plan.moves[0].dst
    return {"id": plan_id, "kind": plan.kind, "moves": len(plan.moves), "trust": receiver,
            "trusts": len({t for mv in plan.moves for t in (mv.src, mv.dst)})}


PARTNERS = (("northstar-ai", "Northstar AI Ltd", "large_technology", "12345678"),
            ("bedflow", "Bedflow Ltd", "sme_startup", "SC123456"),
            ("uni-leeds", "University of Leeds", "university", None))
TREATED = 5  # the first trusts picked run Northstar's discharge-planning tool for the last four weeks


def _daily(m: Mutual, metric: str, trusts: list[str], first: date, last: date) -> dict[str, dict[date, float]]:
    """Each trust's current values of ``metric`` (no dimensions) by day."""
    from mutual.store.base import ObservationQuery

    found = m.store.observations(ObservationQuery(metric=metric, start=first, end=last))
    series: dict[str, dict[date, float]] = {}
    for r in found.filter(found.dims == "").select("org", "period", "value").to_pyarrow().to_pylist():
        if r["org"] in trusts and r["value"] is not None:
            series.setdefault(r["org"], {})[r["period"]] = r["value"]
    return series


OPT_OUT_RATE = 0.054  # the share of patients in England with a national data opt-out in 2021


def _episodes(m: Mutual, trusts: list[str], seed: int) -> dict[str, int]:
    """Synthetic admitted-patient-care episodes that agree with the trusts' reported G&A occupancy (every day's
    census is the beds they reported occupied; COVID-19 admissions in the share they reported), and a national
    data opt-out list of about one patient in twenty."""
    import numpy as np

    from mutual.governance.episodes import from_occupancy

    first, last = START, START + timedelta(days=DAYS - 1)
    table = from_occupancy(_daily(m, "ga_beds_occupied", trusts, first, last),
                           covid=_daily(m, "covid_patients_in_hospital", trusts, first, last), seed=seed)
    m.replace_episodes(table, by="demo.loader", source="demo-synthetic")
    people = np.unique(table.column("nhs_number").to_numpy())
    chosen = np.random.default_rng(seed).random(len(people)) < OPT_OUT_RATE
    m.replace_optouts(pa.array(people[chosen]), by="demo.ig", source="national-data-opt-out (synthetic)")
    return {"episodes": table.num_rows, "patients": len(people), "opted_out": int(chosen.sum())}


def _partnerships(m: Mutual, trusts: list[str]) -> dict[str, Any]:
    """Three partners: a large technology firm whose discharge-planning tool is live at five trusts (an active,
    aggregate-only agreement with gain/risk-share terms, its outcome measured by difference in differences and
    a quarter settled), a start-up whose agreement waits on its DTAC, and a university whose record-level study
    is submitted for approval. Some of Northstar's requests go through the gate, one is refused."""
    from mutual.governance.agreements import Actor, Agreement
    from mutual.governance.agreements import Role as IgRole
    from mutual.governance.gate import GateDenied, Request, release_capacity
    from mutual.governance.outcomes import did
    from mutual.governance.records import add_partner, draft, record_item, record_outcome, settle_period, step

    today = date.today()
    last = START + timedelta(days=DAYS - 1)
    go_live = last - timedelta(days=27)
    lead, ig = Actor("demo.lead", IgRole.LEAD), Actor("demo.ig", IgRole.IG)
    for code, name, kind, company in PARTNERS:
        add_partner(m.sessions, code, name, kind, by="demo.lead", company_number=company,
                    contact_email=f"data@{code}.example")
        for item in ("dpia", "dspt", "dtac", "outcome_plan"):
            if not (code == "bedflow" and item == "dtac"):
                record_item(m.sessions, code, item, f"evidence/{code}/{item}.pdf", today + timedelta(days=365),
                            by="demo.ig")
    series = _daily(m, "ga_beds_occupied", trusts, go_live - timedelta(days=28), last)
    treated = [t for t in trusts if t in series][:TREATED]
    effect = did(series, treated, go_live, metric_label="G&A beds occupied", tool="Northstar's discharge planner",
                 reps=2000)
    pre = statistics.mean(v for t in treated for d, v in series[t].items() if d < go_live)
    post = statistics.mean(v for t in treated for d, v in series[t].items() if d >= go_live)
    base = {"purpose_category": "service_evaluation", "legal_basis_art6": "6(1)(e) public task",
            "data_from": START, "data_to": last, "start": today - timedelta(days=90),
            "end": today + timedelta(days=275), "retention_days": 90}
    northstar = Agreement.model_validate({
        **base, "id": "NS-2026-01", "partner": "northstar-ai", "title": "Discharge planning at five trusts",
        "purpose": "Measure whether Northstar's discharge-planning tool frees general and acute beds.",
        "confidentiality_basis": "anonymised", "datasets": ["capacity"], "granularity": "aggregate",
        "fields": {"capacity": ["org", "metric", "period", "value"]}, "orgs": trusts,
        "outcomes": [{"name": "G&A beds occupied at the five trusts", "metric": "ga_beds_occupied",
                      "baseline": round(pre, 1), "target": round(pre * 0.97, 1), "better": "lower"}],
        "commercial": {"baseline": round(pre, 1), "target": round(pre * 0.97, 1), "better": "lower",
                       "value_per_unit": 350.0 * 91, "gain_share": 0.2, "cap": 60_000, "risk_share": 0.5,
                       "refund_cap": 20_000}})
    bedflow = Agreement.model_validate({
        **base, "id": "BF-2026-01", "partner": "bedflow", "title": "Bed-state forecasting pilot",
        "purpose": "Test whether a start-up's bed-state forecast beats the trusts' own planning figures.",
        "purpose_category": "product_development", "confidentiality_basis": "anonymised", "datasets": ["capacity"],
        "granularity": "aggregate", "fields": {"capacity": ["org", "period", "value"]}, "orgs": trusts[:10]})
    leeds = Agreement.model_validate({
        **base, "id": "UL-2026-01", "partner": "uni-leeds", "title": "Who needed critical care in the second wave",
        "purpose": "Research into which patients needed critical care during the second wave, and for how long.",
        "purpose_category": "research", "legal_basis_art9": "9(2)(j) research",
        "confidentiality_basis": "section 251 support", "datasets": ["apc_episodes"],
        "granularity": "pseudonymised_record", "orgs": trusts,
        "fields": {"apc_episodes": ["nhs_number", "date_of_birth", "sex", "postcode", "trust", "admission_date",
                                    "primary_diagnosis", "critical_care_days", "ventilated"]}})
    for agreement, steps in ((northstar, ("submit", "approve", "activate")), (bedflow, ("submit", "approve")),
                             (leeds, ("submit",))):
        draft(m.sessions, agreement, by=lead.name)
        for action in steps:
            step(m.sessions, agreement.id, action, lead if action == "submit" else ig, today=today)
    record_outcome(m.sessions, northstar.id, northstar.outcomes[0].name, go_live, effect, by="demo.analyst")
    request = Request(agreement=northstar.id, dataset="capacity", fields=("org", "period", "value"),
                      orgs=tuple(treated), start=go_live - timedelta(days=28), end=last,
                      granularity=northstar.granularity, metrics=("ga_beds_occupied",))
    for _ in range(12):
        release_capacity(m.sessions, m.store, request, actor="partner:northstar-ai", today=today)
    with contextlib.suppress(GateDenied):  # asking for a field it did not agree: refused, and audited
        release_capacity(m.sessions, m.store, replace(request, fields=("org", "dims", "value")),
                         actor="partner:northstar-ai", today=today)
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    settled = settle_period(m.sessions, northstar.id, quarter, round(post, 1), by="demo.finance")
    stp = next((o.parent for o in m.orgs() if o.code == treated[0]), None)
    return {"agreements": [(northstar.id, "northstar-ai", "active"), (bedflow.id, "bedflow", "approved (no DTAC)"),
                           (leeds.id, "uni-leeds", "submitted")],
            "effect": effect.statement, "settled": settled.amount, "quarter": quarter,
            "report": f"/reports/{treated[0]}/{today.year}", "ics_report": f"/reports/{stp}/{today.year}"}


def _accounts(m: Mutual, trust: str) -> list[dict[str, str]]:
    """One account per role; the trust submitter speaks for ``trust``, the regional analyst for its region."""
    from mutual.web.accounts import Role, add_user

    orgs = m.orgs()
    by_code = {o.code: o for o in orgs}
    region = by_code[trust].region or next((by_code[p].region for p in [by_code[trust].parent] if p in by_code),
                                           None)
    wanted = [("national", Role.NATIONAL_ANALYST, None, None), ("regional", Role.REGIONAL_ANALYST, region, None),
              ("trust", Role.TRUST_SUBMITTER, None, trust), ("planner", Role.PLANNER, None, None),
              ("admin", Role.ADMIN, None, None), ("ig", Role.IG_OFFICER, None, None)]
    made = []
    for name, role, reg, org in wanted:
        if role == Role.REGIONAL_ANALYST and reg is None:
            continue
        add_user(m.sessions, name, role, password=DEMO_PASSWORD, region=reg, org=org, orgs=orgs)
        made.append({"user": name, "role": role.value, "scope": reg or org or "all of England"})
    return made


def _alerts(m: Mutual) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Evaluate the alert rules on the last ``ALERT_DAYS`` days in order (each as if run the next morning), and
    rank the trusts by G&A occupancy on the last day."""
    last = START + timedelta(days=DAYS - 1)
    rules = {r.id: r for r in al.shipped_rules()}
    names = {o.code: o.name for o in m.orgs()}
    ev = None
    for back in range(ALERT_DAYS - 1, -1, -1):
        day = last - timedelta(days=back)
        ev = al.run_alerts(m.store, day, evaluated_at=datetime.combine(day + timedelta(days=1), time(9)))
    assert ev is not None
    alerts = [{"org": a.org, "name": names.get(a.org, ""), "rule": a.rule, "what": rules[a.rule].title
               + (f" ({a.dims.replace(';', ', ')})" if a.dims else ""), "since": a.since, "why": a.why,
               "quality": a.quality, "severity": a.severity} for a in ev.open]
    pressure = [{**p, "name": names.get(p["org"], "")} for p in al.pressure(m.store, last, top=TOP_ALERTS)]
    return alerts, pressure


def _last_date(path: Path) -> date:
    last = date.min
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            with contextlib.suppress(ValueError):
                last = max(last, date.fromisoformat((row.get("Date") or "")[:10]))
    return last


def _n(value: int) -> str:
    return f"{value:,}"


def print_summary(s: DemoSummary, console: Console) -> None:
    store = s.store
    head = Table(title=f"Mutual demo (seed {s.seed})", show_header=False, title_justify="left")
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    head.add_row("workspace", str(s.home))
    head.add_row("trusts", f"{s.trusts} synthetic (real acute trusts in {s.stps} STPs and {s.regions} regions)")
    head.add_row("days", f"{s.days} synthetic, {s.first_day:%d %b %Y} to {s.last_day:%d %b %Y}")
    head.add_row("real winter", f"{REAL_WINTER} (in {s.data_dir})")
    head.add_row("submissions", f"{s.loaded} loaded, {s.rejected} rejected; the files are in "
                 f"{s.home / 'submissions'} (see MANIFEST.csv)")
    head.add_row("values", f"{_n(s.total('accepted'))} accepted ({_n(s.total('stored'))} new or changed), "
                 f"{_n(s.total('quarantined'))} quarantined, {_n(s.total('warnings'))} warnings, "
                 f"{_n(s.total('missing'))} not reported")
    head.add_row("in the store", f"{_n(int(store['values']))} current values for {store['orgs']} organisations "
                 f"on {store['days']} days, {store['first']} to {store['last']}")
    console.print(head)

    subs = Table(title="Values by layout", title_justify="left", box=box.SIMPLE_HEAD)
    subs.add_column("layout", no_wrap=True)
    for heading in ("files", "accepted", "quarantined", "warnings", "not reported"):
        subs.add_column(heading, justify="right", no_wrap=True)
    for source in (*LAYOUTS, "real winter", None):
        group = [f for f in s.files if source is None or f.source == source]
        subs.add_row(source or "total", _n(len(group)),
                     *(_n(s.total(a, source)) for a in ("accepted", "quarantined", "warnings", "missing")),
                     end_section=source == "real winter", style="bold" if source is None else None)
    console.print(subs)

    for severity, title in (("error", "Top reasons values were quarantined"),
                            ("warning", "Top warnings (values accepted and flagged)")):
        table = Table(title=title, title_justify="left")
        table.add_column("rule", no_wrap=True)
        table.add_column("issues", justify="right", no_wrap=True)
        table.add_column("first example")
        for r in [r for r in s.rules if r.severity == severity][:6]:
            table.add_row(r.rule, _n(r.n), f"{r.example} [dim]({r.file})[/dim]")
        console.print(table)

    broken = Table(title="The broken files, and the files sent to put them right", title_justify="left")
    broken.add_column("file and what is wrong with it")
    broken.add_column("what Mutual did")
    for f in s.files:
        if not f.defect:
            continue
        if f.status == "rejected":
            did = f"rejected: {f.error[:150]}" + ("..." if len(f.error) > 150 else "")
        else:
            top = ", ".join(f"{rule} {n}" for rule, n in sorted(f.rules.items(), key=lambda x: (-x[1], x[0])))
            did = (f"{_n(f.accepted)} accepted ({_n(f.stored)} new or changed), {_n(f.quarantined)} quarantined, "
                   f"{_n(f.warnings)} warnings, {_n(f.missing)} not reported" + (f" ({top})" if top else ""))
        broken.add_row(f"[bold]{f.name}[/bold]\n{f.note}", did)
    console.print(broken)

    alerts = Table(title=f"Alerts open on {s.last_day:%d %b %Y} (the top {min(TOP_ALERTS, len(s.alerts))} of "
                   f"{len(s.alerts)}; evaluated daily over the last {ALERT_DAYS} days)", title_justify="left")
    for heading in ("trust", "name", "what", "since", "value / why", "quality", "severity"):
        alerts.add_column(heading, no_wrap=heading in ("trust", "since", "quality", "severity"))
    for a in s.alerts[:TOP_ALERTS]:
        style = "bold red" if a["severity"] == "red" else "yellow"
        alerts.add_row(a["org"], a["name"], a["what"], f"{a['since']:%d %b}", a["why"], a["quality"],
                       f"[{style}]{a['severity']}[/]")
    console.print(alerts if s.alerts else f"No alerts open on {s.last_day:%d %b %Y}.")
    worst = Table(title="Trusts under most pressure (G&A occupancy: occupied ÷ open beds)", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for heading in ("trust", "name", "occupancy", "beds", "quality"):
        worst.add_column(heading, justify="right" if heading == "occupancy" else "left", no_wrap=heading != "name")
    for p in s.pressure:
        worst.add_row(p["org"], p["name"], f"{p['occupancy']:.1%}", p["why"].split(": ", 1)[-1], p["quality"])
    console.print(worst)
    if s.plan:
        console.print(f"Mutual-aid plan {s.plan['id']} ({s.plan['kind']}) proposed: {s.plan['moves']} moves between "
                      f"{s.plan['trusts']} trusts, awaiting each trust's answer and a planner's approval "
                      f"(mutual plan show {s.plan['id']} --home {s.home})", highlight=False, soft_wrap=True)
    if s.accounts:
        people = Table(title=f"Demo accounts (password for each: {DEMO_PASSWORD})", title_justify="left",
                       box=box.SIMPLE_HEAD)
        for heading in ("user", "role", "sees"):
            people.add_column(heading, no_wrap=True)
        for a in s.accounts:
            people.add_row(a["user"], a["role"].replace("_", " "), a["scope"])
        console.print(people)
    if s.partnerships:
        p = s.partnerships
        console.print("Data-sharing agreements: " + "; ".join(f"{a} ({partner}): {state}"
                                                              for a, partner, state in p["agreements"]),
                      highlight=False, soft_wrap=True)
        money = (f"Northstar is paid £{p['settled']:,.2f}" if p["settled"] >= 0
                 else f"Northstar refunds £{-p['settled']:,.2f} (target missed)")
        console.print(f"Outcome: {p['effect']} Settled {p['quarter']}: {money}.", highlight=False, soft_wrap=True)
        console.print(f"Annual public reports (no sign-in): {p['report']} and {p['ics_report']}", highlight=False)
        console.print(f"Record-level data: {_n(p['episodes'])} synthetic admitted-patient-care episodes of "
                      f"{_n(p['patients'])} patients, matching the trusts' reported G&A occupancy day by day; "
                      f"{_n(p['opted_out'])} patients have a national data opt-out and leave no extract.",
                      highlight=False, soft_wrap=True)
    console.print(f"Explore: mutual submissions --home {s.home}; mutual quality ID --home {s.home}; "
                  f"mutual query --metric ga_beds_occupied --home {s.home}; mutual alerts --home {s.home}",
                  highlight=False, soft_wrap=True)


def run_demo(home: Path | None, *, seed: int, data_dir: Path | None, console: Console) -> Path:
    """Build the demo workspace (see the module docstring), print its summary; returns the workspace."""
    with console.status("building the demo") as status:
        summary = build_demo(home, seed=seed, data_dir=data_dir,
                             progress=lambda text: status.update(f"demo: {text}"))
    print_summary(summary, console)
    return summary.home


__all__ = ["DemoSummary", "Trust", "build_demo", "find_data_dir", "pick_trusts", "prepare_home", "run_demo",
           "simulate"]

