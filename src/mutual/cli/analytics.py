"""``mutual rollup`` and ``mutual completeness``: thin wrappers over ``mutual.analytics``."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table

from mutual.analytics.completeness import completeness as completeness_rows
from mutual.analytics.completeness import summary
from mutual.analytics.rollup import Level, Period, RollupQuery, compare_reported, rollup_rate
from mutual.analytics.rollup import rollup as rollup_rows
from mutual.app import open_mutual
from mutual.cli.main import Home, app, friendly, out, parse_when, write_table

FORMATS = ("table", "csv", "json")


def _choice(value: str, allowed: list[str], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} {value!r}: use {', '.join(allowed)}")
    return value


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def _show(table: pa.Table, format: str, out_file: Path | None, title: str) -> None:
    """CSV/JSON as they are; on screen, without the columns that say the same on every row (it is in the title)."""
    if format != "table":
        write_table(table, format, out_file)
        return
    rows = table.to_pylist()
    same = {c for c in ("level", "metric", "rate", "dims", "method") if c in table.column_names
            and len({r[c] for r in rows}) <= 1}
    if "period_end" in table.column_names and all(r["period"] == r["period_end"] for r in rows):
        same.add("period_end")
    cols = [c for c in table.column_names if c not in same]
    rich = Table(*cols, title=title)
    for r in rows:
        rich.add_row(*(_cell(r[c]) for c in cols))
    out.print(rich)


def _when(text: str | None, name: str) -> datetime | None:
    """A bad date is a plain one-line error (typer's BadParameter would pass through ``friendly``)."""
    try:
        return parse_when(text, name)
    except typer.BadParameter as exc:
        raise ValueError(f"{name}: {exc.message}") from None


def _required_day(text: str, name: str) -> date:
    day = _when(text, name)
    if day is None:
        raise ValueError(f"{name} is required")
    return day.date()


@app.command()
@friendly
def rollup(metric: Annotated[str | None, typer.Option(help="Metric code")] = None,
           rate: Annotated[str | None, typer.Option(help="A rate from its rolled-up parts (ga_occupancy, ...)")] = None,
           level: Annotated[str, typer.Option(help="stp, region or nation")] = "region",
           from_: Annotated[str, typer.Option("--from", help="First date")] = "",
           to: Annotated[str, typer.Option(help="Last date")] = "",
           as_of: Annotated[str | None, typer.Option(help="What was known at this time")] = None,
           period: Annotated[str, typer.Option(help="day, week, month or range")] = "day",
           carry: Annotated[int, typer.Option(help="Carry a missing trust's last value up to N days (imputed)")] = 0,
           compare: Annotated[bool, typer.Option(help="Beside the subtotals organisations reported")] = False,
           format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
           out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file")] = None,
           home: Home = None) -> None:
    """Roll a metric (or a rate) up trust -> STP -> region -> nation by its catalogue rule, with coverage."""
    _choice(format, list(FORMATS), "--format")
    lvl = Level(_choice(level, [str(v) for v in Level], "--level"))
    per = Period(_choice(period, [str(v) for v in Period], "--period"))
    if not from_ or not to:
        raise ValueError("give the range with --from DATE --to DATE")
    start, end = _required_day(from_, "--from"), _required_day(to, "--to")
    when = _when(as_of, "--as-of")
    if (metric is None) == (rate is None):
        raise ValueError("give either --metric CODE or --rate NAME")
    with open_mutual(home) as m:
        if rate is not None:
            table = rollup_rate(m.store, rate, lvl, start, end, as_of=when, period=per, carry=carry)
            title = f"{rate} by {lvl}"
        elif compare:
            assert metric is not None
            table = compare_reported(m.store, metric, start, end, as_of=when, carry=carry)
            title = f"{metric}: computed roll-ups against reported subtotals"
        else:
            assert metric is not None
            table = rollup_rows(m.store, RollupQuery(metric, lvl, start, end, when, per, carry))
            title = f"{metric} by {lvl} and {per}"
    _show(table, format, out_file, title)


@app.command()
@friendly
def completeness(date_: Annotated[str, typer.Option("--date", help="Day (or first day with --to)")],
                 to: Annotated[str | None, typer.Option(help="Last day")] = None,
                 metric: Annotated[str | None, typer.Option(help="Metric code")] = None,
                 org: Annotated[str | None, typer.Option(help="Trust code")] = None,
                 deadline: Annotated[str, typer.Option(help="Deadline time of day, HH:MM (UTC)")] = "11:00",
                 days_after: Annotated[int | None, typer.Option(
                     help="Deadline this many days after the day (default: 0 for levels, 1 for flows)")] = None,
                 as_of: Annotated[str | None, typer.Option(help="What was known at this time")] = None,
                 detail: Annotated[bool, typer.Option(help="One row per trust, metric and day")] = False,
                 format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
                 out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file")] = None,
                 home: Home = None) -> None:
    """Expected against received submissions per trust and metric, lateness, missing streaks, quarantined."""
    _choice(format, list(FORMATS), "--format")
    start = _required_day(date_, "--date")
    end = _required_day(to, "--to") if to else start
    try:
        due = time.fromisoformat(deadline)
    except ValueError:
        raise ValueError(f"--deadline {deadline!r} is not a time like 11:00") from None
    with open_mutual(home) as m:
        rows = completeness_rows(m.store, start, end, metric=metric, org=org, deadline=due, days_after=days_after,
                                 as_of=_when(as_of, "--as-of"))
    if detail or org is not None:
        _show(rows, format, out_file, f"completeness {start}" + (f" to {end}" if end != start else ""))
    else:
        _show(summary(rows), format, out_file, f"completeness {start}" + (f" to {end}" if end != start else ""))
