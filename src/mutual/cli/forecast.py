"""``mutual forecast`` and ``mutual backtest``: forecasts with prediction intervals, and how well they would have
done on a past winter."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mutual.app import open_mutual
from mutual.cli.main import Home, app, friendly, out, parse_when, write_table

FORMATS = {"table", "csv", "json"}


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise typer.BadParameter("use table, csv or json", param_hint="--format")


@app.command()
@friendly
def forecast(metric: Annotated[str, typer.Option(help="A point-in-time metric, e.g. ga_beds_occupied")],
             org: Annotated[list[str], typer.Option(help="Trust, STP, region or ENG (roll-ups forecast the sum of "
                                                         "their trusts); repeat it, or `all` for every trust")],
             horizon: Annotated[int, typer.Option(help="Days ahead, 1-14")] = 7,
             as_of: Annotated[str | None, typer.Option(help="Forecast from what was known at this time")] = None,
             save: Annotated[bool, typer.Option("--save/--no-save", help="Keep it in the forecast table")] = True,
             format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
             home: Home = None) -> None:
    """Forecast a metric 1-14 days ahead with 80% and 95% intervals, from a model pooled across all trusts and
    winters; stored with the data vintage it was made from."""
    from mutual.analytics.forecast import forecast_series, store_forecast

    _check_format(format)
    when = parse_when(as_of, "--as-of")
    with open_mutual(home) as m:
        table = forecast_series(m.store, metric, org, horizon, as_of=when)
        if save:
            store_forecast(m.store, table)
    if format != "table":
        write_table(table, format, None)
        return
    first = table.to_pylist()[0] if table.num_rows else {}
    t = Table("org", "day", "h", "forecast", "80% interval", "95% interval",
              title=f"{metric}, {table.num_rows // max(horizon, 1)} series, data as of {first.get('vintage')}")
    for r in table.to_pylist():
        t.add_row(r["org"], str(r["period"]), str(r["horizon"]), f"{r['mean']:.0f}",
                  f"{r['lo80']:.0f}-{r['hi80']:.0f}", f"{r['lo95']:.0f}-{r['hi95']:.0f}")
    out.print(t)


@app.command()
@friendly
def backtest(metric: Annotated[str, typer.Option(help="A point-in-time metric, e.g. ga_beds_occupied")],
             winter: Annotated[int | None, typer.Option(help="Test winter by its first year (2019 = 2019-20); "
                                                             "default the latest")] = None,
             horizon: Annotated[int, typer.Option(help="Days ahead, 1-14")] = 7,
             origins: Annotated[int | None, typer.Option(help="At most this many origins, evenly spread "
                                                              "(default every day)")] = None,
             first_origin: Annotated[int, typer.Option(help="First origin: this day of the test winter")] = 28,
             refit_every: Annotated[int, typer.Option(help="Refit the model every this many origins")] = 7,
             as_of: Annotated[str | None, typer.Option(help="Use what was known at this time")] = None,
             format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
             home: Home = None) -> None:
    """Rolling-origin backtest on a past winter: MAPE, MASE and interval coverage of the forecast against
    persistence and same-weekday-last-week, trained on the winters before it."""
    import pyarrow as pa

    from mutual.analytics.backtest import SCALE_NOTE, backtest_workspace

    _check_format(format)
    if origins is not None and origins < 1:
        raise typer.BadParameter("at least 1 origin", param_hint="--origins")
    if first_origin < 7 or refit_every < 1:
        raise typer.BadParameter("--first-origin at least 7 and --refit-every at least 1", param_hint="--first-origin")
    with open_mutual(home, read_only=True) as m:
        r = backtest_workspace(m.store, metric, test_winter=winter, as_of=parse_when(as_of, "--as-of"),
                               horizon=horizon, first_origin=first_origin, refit_every=refit_every,
                               max_origins=origins)
    rows = [{"method": name, "mape": round(s.mape, 2), "mase": round(s.mase, 3),
             "coverage80": round(r.coverage["80"], 3) if name == "mutual" else None,
             "coverage95": round(r.coverage["95"], 3) if name == "mutual" else None}
            for name, s in r.scores.items()]
    if format != "table":
        write_table(pa.Table.from_pylist(rows), format, None)
        return
    t = Table("method", "MAPE %", "MASE", "80% coverage", "95% coverage",
              title=f"{metric}, {r.test_start}..{r.test_end}, 1-{r.horizon} days ahead, {r.origins} origins, "
                    f"{r.series} trusts, {r.points} forecasts")
    for row in rows:
        t.add_row(str(row["method"]), f"{row['mape']:.2f}", f"{row['mase']:.3f}",
                  "" if row["coverage80"] is None else f"{row['coverage80']:.1%}",
                  "" if row["coverage95"] is None else f"{row['coverage95']:.1%}")
    out.print(t)
    out.print(f"{SCALE_NOTE}; MASE ratio (forecast / best naive) {r.mase_ratio:.3f}; {r.seconds:.0f} s")
