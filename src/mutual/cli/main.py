"""The app, shared options and error handling, and the workspace, organisation, submission and query commands."""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mutual.app import Mutual, WorkspaceError, open_mutual
from mutual.catalog import load_catalog
from mutual.catalog.orgs import OrgFileError
from mutual.ingest.specs import SpecError, shipped_specs
from mutual.store.base import ObservationQuery
from mutual.store.intake import IngestError

app = typer.Typer(help="Mutual: one trustworthy picture of a health system's capacity.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
orgs_app = typer.Typer(help="Organisations: import and list.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")

out = Console()
err = Console(stderr=True)

Home = Annotated[Path | None, typer.Option("--home", help="Workspace directory (default $MUTUAL_HOME or ~/.mutual).",
                                           show_default=False)]
F = TypeVar("F", bound=Callable[..., Any])
EXPECTED = (WorkspaceError, IngestError, SpecError, OrgFileError, ValueError, OSError, duckdb.Error)


def friendly(fn: F) -> F:
    """Turn any failure into one line on stderr and exit status 1 (2 for a bug); no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.BadParameter):
            raise  # Typer prints a bad option as a usage error (exit 2), naming the option
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(0) from None
        except EXPECTED as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            if os.environ.get("MUTUAL_DEBUG"):
                raise
            err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (set MUTUAL_DEBUG=1 for details)",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def parse_when(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or time like 2019-01-03 or 2019-01-03T09:00",
                                 param_hint=name) from None


def parse_day(text: str | None, name: str) -> date | None:
    when = parse_when(text, name)
    return None if when is None else when.date()


@app.command()
@friendly
def init(home: Home = None) -> None:
    """Create a workspace (control plane, data plane, archive)."""
    with open_mutual(home, create=True) as m:
        out.print(f"workspace ready at {m.workspace.home}")


@orgs_app.command("import")
@friendly
def orgs_import(files: Annotated[list[Path], typer.Argument(help="ODS etr.csv, succ.csv, geocoded list, "
                                                             "trust-STP lookup or Mutual org CSV")],
                home: Home = None) -> None:
    """Import organisations (merged field by field with what the workspace has)."""
    with open_mutual(home, create=True) as m:
        for f in files:
            layout, n = m.import_orgs(f)
            out.print(f"{f.name}: {n} records ({layout})")
        out.print(f"{len(m.orgs())} organisations in the workspace")


@orgs_app.command("list")
@friendly
def orgs_list(kind: Annotated[str | None, typer.Option(help="trust, stp, region, nation, ...")] = None,
              home: Home = None) -> None:
    """List organisations with their place in the hierarchy."""
    with open_mutual(home) as m:
        table = Table("code", "name", "kind", "parent", "region", "closed", "successor")
        for o in m.orgs():
            if kind is None or o.kind == kind:
                table.add_row(o.code, o.name, o.kind, o.parent or "", o.region or "",
                              str(o.close_date or ""), o.successor or "")
        out.print(table)


@app.command()
@friendly
def catalog() -> None:
    """List the metric catalogue and the shipped mapping specs."""
    c = load_catalog()
    table = Table("code", "label", "unit", "kind", "bounds", "dims", title=f"catalogue version {c.version}")
    for metric in c.metrics:
        table.add_row(metric.code, metric.label, metric.unit, metric.kind,
                      f"{metric.bounds[0]:g}-{metric.bounds[1]:g}", ", ".join(metric.dims))
    out.print(table)
    specs = Table("spec", "description", title="shipped mapping specs")
    for spec in shipped_specs():
        specs.add_row(spec.name, " ".join(spec.description.split()))
    out.print(specs)


# Share of an ingest's time each stage takes, for the progress bar.
STAGES = {"archiving": (0.0, 0.1), "reading": (0.1, 0.35), "checking": (0.35, 0.8), "storing": (0.8, 1.0)}


@contextmanager
def ingest_progress(m: Mutual, name: str) -> Iterator[Callable[[str], None]]:
    """A Rich bar for one file: the stage sets the span, DuckDB's own progress on the running query fills it."""
    stage = {"name": "archiving"}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[stage]}"),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(name, total=1.0, stage="archiving")
        done = threading.Event()

        def poll() -> None:
            while not done.wait(0.2):
                lo, hi = STAGES.get(stage["name"], (0.0, 1.0))
                pct = m.store.query_progress()
                bar.update(task, completed=lo + (hi - lo) * max(pct, 0.0) / 100, stage=stage["name"])

        def on_stage(name: str) -> None:
            stage["name"] = name
            bar.update(task, completed=STAGES.get(name, (0.0, 1.0))[0], stage=name)

        poller = threading.Thread(target=poll, daemon=True)
        if bar.live.is_started:
            poller.start()
        try:
            yield on_stage
        finally:
            done.set()
            if poller.is_alive():
                poller.join()


@app.command()
@friendly
def ingest(files: Annotated[list[Path], typer.Argument(help="Files to ingest")],
           spec: Annotated[str | None, typer.Option(help="Spec name or YAML file (default: detect)")] = None,
           org: Annotated[str | None, typer.Option(help="Organisation that sent the file")] = None,
           received_at: Annotated[str | None, typer.Option(help="When the file was received (replays)")] = None,
           submitted_by: Annotated[str, typer.Option(help="Who submitted it")] = "cli",
           home: Home = None) -> None:
    """Archive, check and store files; print each submission's counts."""
    received = parse_when(received_at, "--received-at")
    failed = 0
    with open_mutual(home, create=True) as m:
        for f in files:
            try:
                with ingest_progress(m, f.name) as on_stage:
                    result = m.ingest(f, spec=spec, org=org, received_at=received, submitted_by=submitted_by,
                                      progress=on_stage)
            except IngestError as exc:
                failed += 1
                err.print(f"[red]rejected:[/red] {exc}", highlight=False, soft_wrap=True)
                continue
            s = result.submission
            if result.already:
                out.print(f"{f.name}: already ingested as submission {s.id} on {s.received_at:%Y-%m-%d %H:%M}; "
                          "nothing changed")
            else:
                out.print(f"{f.name}: submission {s.id} ({s.format}): {s.rows_read} rows, {s.values_read} values "
                          f"read, {s.accepted} accepted ({s.stored} new or changed), {s.quarantined} quarantined, "
                          f"{s.warnings} warnings, {s.missing} not reported"
                          + (" \\[resumed]" if result.resumed else ""))
    if failed:
        raise typer.Exit(1)


@app.command()
@friendly
def submissions(org: Annotated[str | None, typer.Option(help="Only this organisation's submissions")] = None,
                home: Home = None) -> None:
    """List submissions with their status and counts."""
    with open_mutual(home) as m:
        table = Table("id", "file", "format", "org", "received", "status", "rows", "accepted", "quarantined",
                      "warnings")
        for s in m.submissions():
            if org is not None and s.source_org != org and org not in m.store.submission_orgs(s.id):
                continue
            table.add_row(str(s.id), s.filename, s.format or "", s.source_org or "",
                          f"{s.received_at:%Y-%m-%d %H:%M}", s.status, str(s.rows_read), str(s.accepted),
                          str(s.quarantined), str(s.warnings))
        out.print(table)


@app.command()
@friendly
def quality(submission: Annotated[int, typer.Argument(help="Submission id")],
            limit: Annotated[int, typer.Option(help="Issues to list (0 for all)")] = 50,
            format: Annotated[str, typer.Option("--format", help="table or csv")] = "table",
            home: Home = None) -> None:
    """The quality report of one submission: counts, issues by rule, and each issue with where it is."""
    with open_mutual(home) as m:
        s = m.submission(submission)
        issues = m.store.issues(submission).to_pyarrow()
        if format == "csv":
            pacsv.write_csv(issues, sys.stdout.buffer)
            return
        out.print(f"[bold]submission {s.id}[/bold]: {s.filename} ({s.format or 'unknown layout'}), "
                  f"received {s.received_at:%Y-%m-%d %H:%M} from {s.source_org or 'the file'} by {s.submitted_by}; "
                  f"status {s.status}")
        if s.error:
            out.print(f"[red]rejected:[/red] {s.error}", highlight=False)
        out.print(f"{s.rows_read} rows read; {s.values_read} values: {s.accepted} accepted, "
                  f"{s.quarantined} quarantined; {s.warnings} warnings; {s.missing} cells not reported")
        summary = Table("severity", "rule", "count", "example", title="issues by rule")
        for r in m.store.issue_summary(submission).to_pyarrow().to_pylist():
            summary.add_row(r["severity"], r["rule"], str(r["n"]), r["example"])
        out.print(summary)
        detail = Table("sheet", "line", "column", "value", "severity", "rule", "status", "what to fix")
        rows = issues.to_pylist()
        for r in rows[: limit or None]:
            detail.add_row(r["sheet"] or "", str(r["row_num"] or ""), r["col"] or "", (r["raw"] or "")[:40],
                           r["severity"], r["rule"], r["status"], r["message"])
        out.print(detail)
        if limit and len(rows) > limit:
            out.print(f"... {len(rows) - limit} more (use --limit 0 or --format csv)")


@app.command()
@friendly
def release(submission: Annotated[int, typer.Argument(help="Submission id")],
            line: Annotated[int, typer.Option(help="Line of the quarantined value")],
            column: Annotated[str | None, typer.Option(help="Column heading (wide layouts)")] = None,
            sheet: Annotated[str | None, typer.Option(help="Sheet (spreadsheets) or resource (FHIR)")] = None,
            home: Home = None) -> None:
    """Accept a quarantined value after all, once someone has confirmed it is right."""
    with open_mutual(home) as m:
        what, value = m.release(submission, line, column, sheet)
        out.print(f"released {what} = {value:g} (line {line} of submission {submission})")


@app.command()
@friendly
def query(metric: Annotated[str, typer.Option(help="Metric code")],
          org: Annotated[str | None, typer.Option(help="Organisation code")] = None,
          from_: Annotated[str | None, typer.Option("--from", help="First date")] = None,
          to: Annotated[str | None, typer.Option(help="Last date")] = None,
          as_of: Annotated[str | None, typer.Option(help="What was known at this time")] = None,
          history: Annotated[bool, typer.Option(help="Include superseded versions")] = False,
          format: Annotated[str, typer.Option("--format", help="csv, json, parquet or fhir")] = "csv",
          out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file")] = None,
          home: Home = None) -> None:
    """Values of one metric, as known now or at --as-of, with lineage (fhir: a Bundle of SANER MeasureReports,
    one per organisation and day)."""
    if format not in {"csv", "json", "parquet", "fhir"}:
        raise typer.BadParameter("use csv, json, parquet or fhir", param_hint="--format")
    if format == "parquet" and out_file is None:
        raise typer.BadParameter("parquet needs --out FILE", param_hint="--format")
    if metric not in load_catalog().codes:
        raise SpecError(f"metric {metric!r} is not in the catalogue (see `mutual catalog`)")
    q = ObservationQuery(metric=metric, org=org, start=parse_day(from_, "--from"), end=parse_day(to, "--to"),
                         as_of=parse_when(as_of, "--as-of"), include_history=history)
    if format == "fhir" and history:
        raise typer.BadParameter("a MeasureReport holds one value per day: leave out --history", param_hint="--format")
    with open_mutual(home) as m:
        expr = m.store.observations(q)
        table = expr.select("org", "metric", "period", "value", "dims", "submission_id", "sheet", "row_num", "col",
                            "flagged", "recorded_at", "superseded_at").to_pyarrow()
        names = {o.code: o.name for o in m.orgs()}
    if format == "fhir":
        from mutual.ingest.fhir import bundle

        doc = bundle(table, measure=FHIR_MEASURE, catalog=load_catalog(), org_names=names)
        text = json.dumps(doc, indent=1) + "\n"
        if out_file:
            out_file.write_text(text)
        else:
            sys.stdout.write(text)
        return
    write_table(table, format, out_file)


# The Measure that MeasureReports written by Mutual report against: each metric's SANER population code.
FHIR_MEASURE = "urn:mutual:Measure/capacity"


def write_table(table: pa.Table, format: str, out_file: Path | None) -> None:
    if format == "parquet":
        assert out_file is not None
        pq.write_table(table, out_file)
    elif format == "json":
        text = json.dumps(table.to_pylist(), default=str, indent=1)
        if out_file:
            out_file.write_text(text + "\n")
        else:
            sys.stdout.write(text + "\n")
    else:
        options = pacsv.WriteOptions(quoting_style="needed")
        if out_file:
            pacsv.write_csv(table, out_file, options)
        else:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, options)
            sys.stdout.write(sink.getvalue().to_pybytes().decode())


@app.command()
@friendly
def demo(home: Home = None,
         seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same system")] = 7,
         data: Annotated[Path | None, typer.Option(help="Folder of public data (default: ../shared/data)")] = None,
         serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the workspace afterwards")] = True,
         host: Annotated[str, typer.Option(help="Address to serve on (127.0.0.1: this machine only)")] = "127.0.0.1",
         port: Annotated[int, typer.Option(help="Port to serve on", min=1, max=65535)] = 8000,
         ) -> None:
    """Build a demo workspace (a synthetic health system's submissions plus one real winter), print a summary,
    then serve it with the demo accounts (``--no-serve``: stop after the summary)."""
    from mutual.demo import run_demo

    built = run_demo(home, seed=seed, data_dir=data, console=out)
    if serve:
        from mutual.cli.web import run_server

        out.print(f"Open http://{host}:{port}/ and sign in with a demo account above.", highlight=False)
        run_server(built, host, port, log_level="warning")
