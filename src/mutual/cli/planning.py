"""``mutual plan …`` and ``mutual plans``: optimised mutual-aid plans, explained, and their approval workflow."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mutual.app import open_mutual
from mutual.cli.main import Home, app, err, friendly, out, parse_day, parse_when

plan_app = typer.Typer(help="Mutual-aid plans: propose (ventilators, supplies, staff, patients), show, approve.",
                       no_args_is_help=True)
app.add_typer(plan_app, name="plan")

Horizon = Annotated[int, typer.Option(help="Days to plan, from the day after the latest report")]
ScenarioOpt = Annotated[Path | None, typer.Option("--scenario", help="What-if YAML: demand_factor, unavailable, "
                                                                      "delay_days, demand (CSV org,date,value)")]
K = Annotated[int, typer.Option("--k", help="Link each trust to its k nearest trusts")]
Demand = Annotated[str, typer.Option("--demand", help="Forecast to plan for: mean, hi80 or hi95 (upper bound)")]
Start = Annotated[str | None, typer.Option(help="First day of the plan (default: the day after the latest report)")]
AsOf = Annotated[str | None, typer.Option(help="Plan from what was known at this time")]
By = Annotated[str, typer.Option("--by", help="Who is doing this (recorded with the step)")]
Format = Annotated[str, typer.Option("--format", help="table or json")]
Save = Annotated[bool, typer.Option("--save/--no-save", help="Record the plan as proposed")]


def _propose(kind: str, home: Path | None, *, horizon: int, scenario: Path | None, k: int, demand: str,
             start: str | None, as_of: str | None, by: str, save: bool, format: str, **extra: Any) -> None:
    from mutual.planning.inputs import Scenario, read_scenario
    from mutual.planning.records import save_plan, sync_expected
    from mutual.planning.runner import make_plan

    if format not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    if not 1 <= horizon <= 120:
        raise typer.BadParameter("1-120 days", param_hint="--horizon")
    if k < 1:
        raise typer.BadParameter("at least 1", param_hint="--k")
    when = parse_when(as_of, "--as-of")
    first = parse_day(start, "--start")
    scen = read_scenario(scenario) if scenario else Scenario()
    with open_mutual(home) as m:
        sync_expected(m.sessions, m.store)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=True) as bar:
            task = bar.add_task(f"{kind} plan")
            plan = make_plan(m.store, kind, horizon=horizon, k=k, start=first, scenario=scen, demand_level=demand,
                             as_of=when, step=lambda text: bar.update(task, description=f"{kind} plan: {text}"),
                             **extra)
        plan_id = save_plan(m.sessions, plan, created_by=by, data_as_of=when) if save else None
        view = _view_of(m, plan_id) if plan_id is not None else None
    if format == "json":
        payload = view if view is not None else _plan_dict(plan)
        sys.stdout.write(json.dumps(payload, default=str, indent=1) + "\n")
        return
    _print_plan(_plan_dict(plan) | ({"id": plan_id, "status": "proposed"} if plan_id else {}))
    if plan_id is not None:
        out.print(f"saved as plan {plan_id} (proposed): `mutual plan show {plan_id}`, "
                  f"`mutual plan approve {plan_id} --by NAME`")


def _plan_dict(plan: Any) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(plan)
    d["moves"] = [dict(m, seq=i) for i, m in enumerate(d["moves"], start=1)]
    return d


def _view_of(m: Any, plan_id: int) -> dict[str, Any]:
    from mutual.planning.records import get_plan

    v = get_plan(m.sessions, plan_id)
    r = v.record
    return {"id": r.id, "kind": r.kind, "status": r.status, "created_at": r.created_at, "created_by": r.created_by,
            "start": r.start, "horizon": r.horizon, "data_as_of": r.data_as_of, "params": r.params,
            "before": r.before, "after": r.after, "solve": r.solve, "notes": r.notes,
            "moves": [{"seq": mv.seq, "resource": mv.resource, "src": mv.src, "dst": mv.dst,
                       "quantity": mv.quantity, "send_day": mv.send_day, "arrive_day": mv.arrive_day,
                       "distance_km": mv.distance_km, "reason": mv.reason, "src_answer": mv.src_answer,
                       "dst_answer": mv.dst_answer} for mv in v.moves],
            "events": [{"at": e.at, "actor": e.actor, "role": e.role, "org": e.org, "action": e.action,
                        "from": e.from_status, "to": e.to_status, "move": e.move_seq, "reason": e.reason}
                       for e in v.events]}


def _num(v: Any) -> str:
    if v is None:
        return "-"
    f = float(v)
    return f"{f:,.0f}" if f.is_integer() or abs(f) >= 100 else f"{f:,.2f}"


def _print_plan(d: dict[str, Any], limit: int = 200) -> None:
    s = d["solve"]
    title = (f"{d['kind']} plan" + (f" {d['id']} ({d['status']})" if d.get("id") else "")
             + f": {d['start']} for {d['horizon']} days, {len(d['moves'])} moves")
    totals = Table("measure", "without moves", "with the plan", title=title)
    for key in d["before"]:
        if ":" not in key:
            totals.add_row(key, _num(d["before"][key]), _num(d["after"].get(key)))
    out.print(totals)
    out.print(f"solver: {s['status']} ({s['method']}), objective {s['objective']:,.2f}, LP bound "
              f"{s['lp_bound']:,.2f}, gap {s['gap']:.2%}, {s['seconds']:.2f} s, {s['variables']:,} variables, "
              f"{s['constraints']:,} constraints", highlight=False)
    for note in d.get("notes") or []:
        out.print(f"note: {note}", highlight=False)
    if not d["moves"]:
        out.print("no moves: nothing to gain from sharing under these settings")
        return
    days = ("first day", "last day") if d["kind"] == "staff" else ("send", "arrive")
    moves = Table("#", "what", "from", "to", "qty", *days, "km", "why", title="moves")
    answered = "src_answer" in d["moves"][0]
    if answered:
        moves.add_column("donor / receiver")
    for mv in d["moves"][:limit]:
        row = [str(mv["seq"]), mv["resource"], mv["src"], mv["dst"], _num(mv["quantity"]), str(mv["send_day"]),
               str(mv["arrive_day"]), f"{mv['distance_km']:.0f}", mv["reason"]]
        if answered:
            row.append(f"{mv['src_answer']} / {mv['dst_answer']}")
        moves.add_row(*row)
    out.print(moves)
    if len(d["moves"]) > limit:
        out.print(f"... and {len(d['moves']) - limit} more moves (--format json lists them all)")


@plan_app.command()
@friendly
def ventilators(horizon: Horizon = 14, scenario: ScenarioOpt = None, k: K = 10, demand: Demand = "mean",
                start: Start = None, as_of: AsOf = None, by: By = "cli", save: Save = True, format: Format = "table",
                home: Home = None) -> None:
    """Move ventilators from trusts with spare to trusts forecast to run short (reusable equipment model)."""
    _propose("ventilators", home, horizon=horizon, scenario=scenario, k=k, demand=demand, start=start, as_of=as_of,
             by=by, save=save, format=format)


@plan_app.command()
@friendly
def supplies(horizon: Horizon = 14, scenario: ScenarioOpt = None, k: K = 10,
             item: Annotated[list[str] | None, typer.Option(help="Supply item (repeat); default every item")] = None,
             start: Start = None, as_of: AsOf = None, by: By = "cli", save: Save = True, format: Format = "table",
             home: Home = None) -> None:
    """Balance days of supply of PPE, oxygen and consumables so no trust falls below its minimum."""
    _propose("supplies", home, horizon=horizon, scenario=scenario, k=k, demand="mean", start=start, as_of=as_of,
             by=by, save=save, format=format, items=item or None)


@plan_app.command()
@friendly
def staff(horizon: Horizon = 14, scenario: ScenarioOpt = None,
          max_km: Annotated[float, typer.Option(help="Loans only between trusts this close")] = 50.0,
          start: Start = None, as_of: AsOf = None, by: By = "cli", save: Save = True, format: Format = "table",
          home: Home = None) -> None:
    """Loan staff by group between nearby trusts to cover absence above what rotas absorb."""
    _propose("staff", home, horizon=horizon, scenario=scenario, k=10, demand="mean", start=start, as_of=as_of,
             by=by, save=save, format=format, max_km=max_km)


@plan_app.command()
@friendly
def patients(horizon: Horizon = 14, scenario: ScenarioOpt = None, k: K = 10, demand: Demand = "mean",
             max_km: Annotated[float, typer.Option(help="Travel limit for a transfer")] = 80.0,
             start: Start = None, as_of: AsOf = None, by: By = "cli", save: Save = True, format: Format = "table",
             home: Home = None) -> None:
    """Transfer patients between nearby trusts so none runs above safe G&A occupancy."""
    _propose("patients", home, horizon=horizon, scenario=scenario, k=k, demand=demand, start=start, as_of=as_of,
             by=by, save=save, format=format, max_km=max_km)


@plan_app.command("show")
@friendly
def show(plan_id: Annotated[int, typer.Argument(help="Plan id (see `mutual plans`)")], format: Format = "table",
         home: Home = None) -> None:
    """A plan: its moves and why, totals before and after, solver figures, and its workflow history."""
    from mutual.planning.records import sync_expected

    if format not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    with open_mutual(home) as m:
        sync_expected(m.sessions, m.store)
        view = _view_of(m, plan_id)
    if format == "json":
        sys.stdout.write(json.dumps(view, default=str, indent=1) + "\n")
        return
    _print_plan(view)
    history = Table("when", "who", "role", "org", "did", "status", "move", "why", title="history")
    for e in view["events"]:
        history.add_row(str(e["at"])[:19], e["actor"], e["role"], e["org"] or "", e["action"],
                        f"{e['from']} -> {e['to']}" if e["from"] != e["to"] else e["to"],
                        "" if e["move"] is None else str(e["move"]), e["reason"] or "")
    out.print(history)


def _step(action: str) -> Any:
    @friendly
    def command(plan_id: Annotated[int, typer.Argument(help="Plan id")], by: By,
                reason: Annotated[str | None, typer.Option(help="Why (required to reject or cancel)")] = None,
                home: Home = None) -> None:
        from mutual.planning.records import act, sync_expected
        from mutual.planning.workflow import REGIONAL_OPS, Actor

        with open_mutual(home) as m:
            sync_expected(m.sessions, m.store)
            rec = act(m.sessions, m.store, plan_id, action, Actor(by, REGIONAL_OPS), reason=reason)
        out.print(f"plan {plan_id} is now {rec.status}")

    command.__doc__ = {
        "approve": "Approve a proposed plan (regional operations); its moves become expected stock changes.",
        "reject": "Reject a proposed plan, with a reason (regional operations).",
        "dispatch": "Mark an approved plan dispatched, once every move is accepted by both trusts.",
        "complete": "Mark a dispatched plan completed.",
        "cancel": "Cancel a plan that is not finished, with a reason; its expected changes are withdrawn.",
    }[action]
    return command


for _action in ("approve", "reject", "dispatch", "complete", "cancel"):
    plan_app.command(_action)(_step(_action))


def _answer(action: str) -> Any:
    @friendly
    def command(plan_id: Annotated[int, typer.Argument(help="Plan id")],
                org: Annotated[str, typer.Option(help="The trust answering (donor or receiver)")], by: By,
                move: Annotated[list[int] | None, typer.Option(help="Move number (repeat); default all of the "
                                                                    "trust's moves")] = None,
                reason: Annotated[str | None, typer.Option(help="Why (required to decline)")] = None,
                home: Home = None) -> None:
        from mutual.planning.records import answer
        from mutual.planning.workflow import TRUST, Actor

        with open_mutual(home) as m:
            done = answer(m.sessions, plan_id, action, Actor(by, TRUST, org.strip().upper()), moves=move or (),
                          reason=reason)
        out.print(f"{org.upper()} {action}ed move(s) {', '.join(map(str, done))} of plan {plan_id}")

    command.__doc__ = ("A donor or receiver trust accepts its moves of a plan." if action == "accept"
                       else "A donor or receiver trust declines its moves of a plan, with a reason.")
    return command


for _action in ("accept", "decline"):
    plan_app.command(_action)(_answer(_action))


@app.command()
@friendly
def plans(status: Annotated[str | None, typer.Option(help="Only plans in this status")] = None,
          home: Home = None) -> None:
    """Every mutual-aid plan with its status and headline figures."""
    from mutual.planning.records import list_plans, move_counts, sync_expected

    with open_mutual(home) as m:
        sync_expected(m.sessions, m.store)
        records = list_plans(m.sessions)
        counts = move_counts(m.sessions)
    t = Table("id", "kind", "status", "start", "days", "moves", "headline (before -> after)", "created",
              "by", title="plans")
    for r in records:
        if status and r.status != status:
            continue
        key = next(iter(r.before), None)
        headline = f"{key} {_num(r.before[key])} -> {_num(r.after.get(key))}" if key else ""
        t.add_row(str(r.id), r.kind, r.status, str(r.start), str(r.horizon), str(counts.get(r.id, 0)), headline,
                  str(r.created_at)[:16], r.created_by)
    out.print(t)
