"""``mutual alerts``: evaluate the shortage alert rules for a day, record it, and list what is open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.table import Table

from mutual.analytics import alerts as al
from mutual.app import open_mutual
from mutual.cli.main import Home, app, friendly, out, parse_day, parse_when, write_table

SEVERITY_STYLE = {"red": "bold red", "amber": "yellow"}


def _forecast_available() -> bool:
    from importlib.util import find_spec

    return find_spec("mutual.analytics.forecast") is not None


def _what(rule: al.Rule, dims: str) -> str:
    return rule.title + (f" ({dims.replace(';', ', ')})" if dims else "")


@app.command()
@friendly
def alerts(date: Annotated[str | None, typer.Option("--date", help="Day to evaluate (default: the latest with "
                                                                   "data)")] = None,
           as_of: Annotated[str | None, typer.Option(help="Judge on what was known at this time")] = None,
           rules: Annotated[Path | None, typer.Option(help="Rules file (default: the shipped alert_rules.yaml)")]
           = None,
           org: Annotated[str | None, typer.Option(help="Only this trust")] = None,
           show: Annotated[str, typer.Option(help="open (alerts open on the day), history (every alert, open "
                                                  "and closed) or checks (every rule and trust evaluated)")]
           = "open",
           forecast: Annotated[bool, typer.Option("--forecast/--no-forecast",
                                                  help="Project when thresholds will be crossed")] = False,
           horizon: Annotated[int, typer.Option(help="Forecast horizon in days")] = 14,
           format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
           home: Home = None) -> None:
    """Evaluate shortage alerts for a day and record them: alerts open, stay open and close, with history."""
    if format not in {"table", "csv", "json"}:
        raise typer.BadParameter("use table, csv or json", param_hint="--format")
    if show not in {"open", "history", "checks"}:
        raise typer.BadParameter("use open, history or checks", param_hint="--show")
    if not 1 <= horizon <= 14:
        raise typer.BadParameter("a horizon of 1 to 14 days (the forecasts' range)", param_hint="--horizon")
    day = parse_day(date, "--date")
    when = parse_when(as_of, "--as-of")
    ruleset = al.load_rules(rules) if rules else list(al.shipped_rules())
    by_id = {r.id: r for r in ruleset}
    with open_mutual(home) as m:
        orgs = {o.code: o for o in m.orgs()}
        if org is not None and org not in orgs:
            raise ValueError(f"organisation {org!r} is not known (see `mutual orgs list`)")
        ev = al.run_alerts(m.store, day, ruleset, as_of=when)
        projected: dict[tuple[str, str, str], al.Crossing] = {}
        note = ""
        if forecast:
            if _forecast_available():
                projected = al.forecast_crossings(m.store, ruleset, ev.day, ev.checks, horizon)
            else:
                note = "forecasts are not available in this installation (mutual.analytics.forecast is missing)"
    name = {code: o.name for code, o in orgs.items()}

    def mine(row_org: str) -> bool:
        return org is None or row_org == org

    rows: list[dict[str, Any]]
    if show == "checks":
        rows = [{"org": c.org, "name": name.get(c.org, ""), "rule": c.rule, "what": _what(by_id[c.rule], c.dims),
                 "status": c.status, "severity": c.severity, "value": c.value, "threshold": c.threshold,
                 "period": c.period, "quality": c.quality, "why": c.why} for c in ev.checks if mine(c.org)]
    else:
        chosen = ev.open if show == "open" else sorted(ev.alerts, key=lambda a: (a.org, a.rule, a.dims, a.since))
        rows = [{"alert_id": a.alert_id, "org": a.org, "name": name.get(a.org, ""), "rule": a.rule,
                 "what": _what(by_id[a.rule], a.dims) if a.rule in by_id else a.rule, "since": a.since,
                 "status": a.status, "closed_on": a.closed_on, "close_reason": a.close_reason, "value": a.value,
                 "why": a.why, "quality": a.quality, "severity": a.severity}
                for a in chosen if mine(a.org)]
        if show == "open":
            for r in rows:
                del r["closed_on"], r["close_reason"]
    if forecast:
        forecast_rows = [{"org": x.org, "name": name.get(x.org, ""), "rule": rid, "what": by_id[rid].title,
                          "projected": x.on, "earliest": x.earliest, "latest": x.latest,
                          "why": x.describe()} for (rid, _o, _d), x in sorted(projected.items()) if mine(x.org)]
    if format != "table":
        table = pa.Table.from_pylist(rows) if rows else pa.table({"org": pa.array([], pa.string())})
        write_table(table, format, None)
        if forecast and forecast_rows:
            write_table(pa.Table.from_pylist(forecast_rows), format, None)
        return

    not_reported = [c for c in ev.checks if c.status == "not_reported" and mine(c.org)]
    low = [c for c in ev.checks if c.status == "low_quality" and mine(c.org)]
    title = {"open": f"Alerts open on {ev.day:%d %b %Y}", "history": "Every alert, open and closed",
             "checks": f"Every check on {ev.day:%d %b %Y}"}[show]
    t = Table(title=title, title_justify="left")
    for col in ("trust", "name", "what", "since" if show != "checks" else "status", "value / why", "quality",
                "severity"):
        t.add_column(col, no_wrap=col in ("trust", "since", "severity", "quality"))
    for r in rows:
        middle = r["since"].isoformat() if show != "checks" else r["status"]
        why = r["why"]
        if show == "history" and r["status"] == "closed":
            middle += f" → {r['closed_on']}"
            why += f"\n[dim]closed: {r['close_reason']}[/dim]"
        t.add_row(str(r["org"]), str(r["name"]), str(r["what"]), middle, str(why), str(r["quality"]),
                  f"[{SEVERITY_STYLE.get(r['severity'], '')}]{r['severity']}[/]")
    out.print(t)
    n_trusts = len({c.org for c in ev.checks if mine(c.org)})
    n_open = sum(mine(a.org) for a in ev.open)
    out.print(f"{n_open} open on {ev.day:%d %b %Y} across {n_trusts} trusts "
              f"evaluated; {len(low)} held back for data quality; {len(not_reported)} series not reported within "
              f"their rule's limit" + (" (see --show checks)" if not_reported and show != "checks" else ""),
              highlight=False, soft_wrap=True)
    if forecast:
        if note:
            out.print(f"[yellow]{note}[/yellow]", highlight=False)
        else:
            ft = Table(title=f"Projected crossings, {horizon} days ahead", title_justify="left")
            for col in ("trust", "name", "what", "projection"):
                ft.add_column(col)
            for fr in forecast_rows:
                ft.add_row(str(fr["org"]), str(fr["name"]), str(fr["what"]), str(fr["why"]))
            out.print(ft)


__all__ = ["alerts"]
