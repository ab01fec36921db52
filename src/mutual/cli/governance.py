"""Data-sharing governance on the command line: ``mutual partners``, ``mutual agreements`` and ``mutual audit``
(the hash-chained log every one of their changes is written to)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mutual.app import open_mutual
from mutual.cli.main import Home, app, err, friendly, out, parse_day

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


partners_app = typer.Typer(help="Partners data is shared with, and their onboarding evidence.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
agreements_app = typer.Typer(help="Data-sharing agreements: draft from YAML, then submit, approve, activate, "
                                  "suspend, reinstate, terminate, expire, confirm deletion.", no_args_is_help=True)
app.add_typer(agreements_app, name="agreements")
By = Annotated[str, typer.Option("--by", help="Who is acting (recorded in the audit log)")]


@partners_app.command("add")
@friendly
def partners_add(code: Annotated[str, typer.Argument(help="Short code, e.g. uni-leeds")],
                 name: Annotated[str, typer.Option(help="The partner's name")],
                 kind: Annotated[str, typer.Option(help="large_technology, sme_startup, university or ahsn_charity")],
                 by: By, company_number: Annotated[str | None, typer.Option(help="Companies House number")] = None,
                 contact: Annotated[str | None, typer.Option(help="Contact's name")] = None,
                 email: Annotated[str | None, typer.Option(help="Contact's email")] = None,
                 home: Home = None) -> None:
    """Register a partner."""
    from mutual.governance.records import add_partner

    with open_mutual(home) as m:
        add_partner(m.sessions, code, name, kind, by=by, company_number=company_number, contact_name=contact,
                    contact_email=email)
    out.print(f"partner {code} added")


@partners_app.command("list")
@friendly
def partners_list(home: Home = None) -> None:
    from mutual.governance.records import partners

    with open_mutual(home) as m:
        found = partners(m.sessions)
    table = Table(title="Partners", title_justify="left")
    for heading in ("code", "name", "kind", "company", "contact"):
        table.add_column(heading)
    for p in found:
        table.add_row(p.code, p.name, p.kind.replace("_", " "), p.company_number or "", p.contact_email or "")
    out.print(table if found else "No partners.")


@partners_app.command("check")
@friendly
def partners_check(item: Annotated[str, typer.Argument(help="dpia, dspt, dtac, medical_device, clinical_safety or "
                                                            "outcome_plan")],
                   partner: Annotated[str, typer.Option(help="Partner code")],
                   evidence: Annotated[str, typer.Option(help="Where the evidence is: a reference or link")],
                   review_by: Annotated[str, typer.Option("--review-by", help="Review due, YYYY-MM-DD")],
                   by: By, agreement: Annotated[str | None, typer.Option(help="Only for this agreement")] = None,
                   home: Home = None) -> None:
    """Record onboarding evidence, with the date it must be reviewed by."""
    from mutual.governance.records import record_item

    due = parse_day(review_by, "--review-by")
    assert due is not None  # the option is required
    with open_mutual(home) as m:
        record_item(m.sessions, partner, item, evidence, due, by=by, agreement=agreement)
    out.print(f"{item} recorded for {partner}")


@agreements_app.command("draft")
@friendly
def agreements_draft(file: Annotated[Path, typer.Argument(help="The agreement as YAML")], by: By,
                     home: Home = None) -> None:
    """Draft an agreement from its YAML file (checked field by field)."""
    from mutual.governance.records import draft, read_agreement

    agreement = read_agreement(file)
    with open_mutual(home) as m:
        draft(m.sessions, agreement, by=by)
    out.print(f"agreement {agreement.id} drafted; deletion due {agreement.deletion_due}")


@agreements_app.command("list")
@friendly
def agreements_list(home: Home = None) -> None:
    from mutual.governance.records import listing

    with open_mutual(home) as m:
        found = listing(m.sessions)
    table = Table(title="Agreements", title_justify="left")
    for heading in ("id", "partner", "status", "drafted by", "updated"):
        table.add_column(heading)
    for a in found:
        table.add_row(a.id, a.partner, a.status, a.drafted_by, f"{a.updated_at:%Y-%m-%d %H:%M}")
    out.print(table if found else "No agreements.")


@agreements_app.command("show")
@friendly
def agreements_show(agreement_id: Annotated[str, typer.Argument(help="Agreement id")], home: Home = None) -> None:
    """An agreement's terms, status and what its onboarding still lacks."""
    from mutual.governance.records import get

    with open_mutual(home) as m:
        view = get(m.sessions, agreement_id)
    a = view.agreement
    out.print(f"{a.id}: {a.title} ({view.record.status}), partner {a.partner}", highlight=False)
    out.print(f"purpose ({a.purpose_category.replace('_', ' ')}): {a.purpose}", highlight=False, soft_wrap=True)
    out.print(f"legal basis: {a.legal_basis_art6}; {a.legal_basis_art9 or 'no special category data'}; "
              f"confidentiality: {a.confidentiality_basis}", highlight=False)
    out.print(f"data: {', '.join(a.datasets)} ({a.granularity.value}) from {a.data_from} to {a.data_to} for "
              f"{len(a.orgs)} organisation(s); runs {a.start} to {a.end}; deletion due {a.deletion_due}",
              highlight=False)
    out.print("onboarding: complete" if not view.gaps else "onboarding lacks: " + "; ".join(view.gaps),
              highlight=False, soft_wrap=True)


@agreements_app.command("settle")
@friendly
def agreements_settle(agreement_id: Annotated[str, typer.Argument(help="Agreement id")],
                      period: Annotated[str, typer.Option(help="The period settled, e.g. 2026-Q1")],
                      measured: Annotated[float, typer.Option(help="The outcome measured over the period")],
                      by: By, correct: Annotated[int | None, typer.Option(help="Correct this ledger entry")] = None,
                      reason: Annotated[str, typer.Option(help="Why it is corrected")] = "",
                      home: Home = None) -> None:
    """Settle a period of a gain/risk-share agreement from its measured outcome (or correct a settlement)."""
    from mutual.governance.records import settle_period

    with open_mutual(home) as m:
        row = settle_period(m.sessions, agreement_id, period, measured, by=by, correct=correct, why=reason)
    out.print(f"ledger entry {row.seq}: £{row.amount:,.2f} ({row.explanation})", highlight=False, soft_wrap=True)


@agreements_app.command("ledger")
@friendly
def agreements_ledger(agreement_id: Annotated[str, typer.Argument(help="Agreement id")], home: Home = None) -> None:
    """An agreement's settlements and corrections, and what is owed in all."""
    from mutual.governance.records import ledger_rows

    with open_mutual(home) as m:
        rows = ledger_rows(m.sessions, agreement_id)
    table = Table(title=f"Ledger of {agreement_id}", title_justify="left")
    for heading in ("entry", "period", "measured", "amount £", "corrects", "why"):
        table.add_column(heading)
    for r in rows:
        table.add_row(str(r.seq), r.period, f"{r.measured:g}", f"{r.amount:,.2f}", str(r.corrects or ""),
                      r.explanation)
    out.print(table if rows else "No ledger entries.")
    out.print(f"balance: £{sum(r.amount for r in rows):,.2f}")


def _step(action: str) -> None:
    @agreements_app.command(action.replace("_", "-"))
    @friendly
    def command(agreement_id: Annotated[str, typer.Argument(help="Agreement id")], by: By,
                role: Annotated[str, typer.Option(help="data_sharing_lead, ig_officer or system")],
                reason: Annotated[str | None, typer.Option(help="Why (suspend, terminate, return)")] = None,
                evidence: Annotated[str | None, typer.Option(help="Deletion evidence (confirm-deletion)")] = None,
                on: Annotated[str | None, typer.Option(help="As of this day, YYYY-MM-DD (default today)")] = None,
                home: Home = None) -> None:
        from mutual.governance.agreements import Actor, Role
        from mutual.governance.records import step

        try:
            actor = Actor(by, Role(role))
        except ValueError:
            raise typer.BadParameter("data_sharing_lead, ig_officer or system", param_hint="--role") from None
        with open_mutual(home) as m:
            rec = step(m.sessions, agreement_id, action, actor, today=parse_day(on, "--on") if on else None,
                       reason=reason, evidence=evidence)
        out.print(f"agreement {agreement_id} is {rec.status}")

    command.__doc__ = f"{action.replace('_', ' ').capitalize()} an agreement (checked against the transition table)."


for _action in ("submit", "return", "approve", "activate", "suspend", "reinstate", "terminate", "expire",
                "confirm_deletion"):
    _step(_action)


optouts_app = typer.Typer(help="The national data opt-out list, removed from every extract.", no_args_is_help=True)
app.add_typer(optouts_app, name="optouts")


@optouts_app.command("import")
@friendly
def optouts_import(file: Annotated[Path, typer.Argument(help="One NHS number per line, or a CSV with nhs_number")],
                   by: By, home: Home = None) -> None:
    """Replace the opt-out list with this file's valid NHS numbers; every invalid line is reported."""
    from mutual.governance.optouts import read_optouts

    found = read_optouts(file)
    for problem in found.problems:
        err.print(problem, highlight=False, soft_wrap=True)
    with open_mutual(home) as m:
        m.replace_optouts(found.numbers, by=by, source=file.name, invalid=len(found.problems))
    out.print(f"{len(found.numbers):,} patients opted out (from {found.lines:,} lines; {len(found.problems)} "
              "invalid, listed above)", highlight=False)


report_app = typer.Typer(help="Public reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("annual")
@friendly
def report_annual(org: Annotated[str, typer.Option(help="A trust or an ICS/STP code")],
                  year: Annotated[int, typer.Option(help="The calendar year")],
                  format: Annotated[str, typer.Option(help="html, csv or pdf")] = "html",
                  out_file: Annotated[Path | None, typer.Option("--out", help="Write here (default: standard "
                                                                             "output; PDF needs --out)")] = None,
                  home: Home = None) -> None:
    """The annual public value report: every agreement covering the organisation, releases and refusals."""
    from mutual.governance.report import annual_report, to_csv, to_pdf

    if format not in ("html", "csv", "pdf"):
        raise typer.BadParameter("html, csv or pdf", param_hint="--format")
    with open_mutual(home) as m:
        report = annual_report(m.sessions, m.orgs(), org, year)
    if format == "pdf":
        if out_file is None:
            raise typer.BadParameter("a PDF needs --out FILE", param_hint="--out")
        out_file.write_bytes(to_pdf(report))
    else:
        if format == "html":
            from mutual.web.templating import templates

            body = templates.env.get_template("report.html").render(r=report, principal=None, request=None)
        else:
            body = to_csv(report)
        if out_file is None:
            sys.stdout.write(body)
        else:
            out_file.write_text(body, encoding="utf-8")
    if out_file is not None:
        out.print(f"report for {report.org_name} {year} written to {out_file}", highlight=False)
