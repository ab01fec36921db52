"""``mutual audit``: read and verify the hash-chained audit log of governance actions and gate decisions."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from rich.table import Table

from mutual.app import open_mutual
from mutual.cli.main import Home, app, err, friendly, out

audit_app = typer.Typer(help="The audit log: every governance action and data-release decision, hash-chained.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")

HEAD = re.compile(r"(\d+):([0-9a-f]{64})")


@audit_app.command("verify")
@friendly
def audit_verify(head: Annotated[str | None, typer.Option(
        "--head", help="An anchor recorded earlier, SEQ:HASH (as printed here or in a published report): the log "
                       "must still reach it")] = None,
                 home: Home = None) -> None:
    """Check the whole chain; exit 1, naming where, when anything was edited, deleted, inserted or reordered."""
    from mutual.governance.audit import verify

    anchor = None
    if head is not None:
        found = HEAD.fullmatch(head.strip())
        if found is None:
            raise typer.BadParameter("expected SEQ:HASH, e.g. 42:3f9a… (64 hex digits)", param_hint="--head")
        anchor = (int(found.group(1)), found.group(2))
    with open_mutual(home) as m, m.sessions() as s:
        problems, current = verify(s, anchor)
    for problem in problems:
        err.print(f"audit log: {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    if current is None:
        out.print("audit log: empty")
    else:
        out.print(f"audit log: {current[0]} events, chain intact; head {current[0]}:{current[1]}", highlight=False,
                  soft_wrap=True)


@audit_app.command("log")
@friendly
def audit_log(agreement: Annotated[str | None, typer.Option(help="Only this agreement's events")] = None,
              limit: Annotated[int, typer.Option(help="The newest N events", min=1)] = 50,
              home: Home = None) -> None:
    """The newest events: when, who, what, on which object and agreement, with their counts."""
    from mutual.governance.audit import events

    with open_mutual(home) as m, m.sessions() as s:
        found = events(s, agreement=agreement)[-limit:]
    table = Table(title="Audit log", title_justify="left")
    for heading in ("seq", "at (UTC)", "actor", "action", "object", "agreement", "details"):
        table.add_column(heading, no_wrap=heading != "details")
    for e in found:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, f"{e.object_type} {e.object_id}",
                      e.agreement or "", json.dumps(dict(e.details), sort_keys=True))
    out.print(table if found else "No audit events.")
