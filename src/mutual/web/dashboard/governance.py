"""Data-sharing governance pages: partners and their onboarding evidence, agreements (list, and one agreement with
its terms, onboarding gaps, the steps the caller may take, ledger, outcomes and audited history), and the audit
log with its chain check.

The forms call the API's own handlers (``api.governance.agreement_step``), so a page and a program take the same
steps under the same transition table; a refused step is shown on the agreement's page in the table's words."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from mutual.governance import audit
from mutual.governance.agreements import CHECKLIST, TRANSITIONS, Status
from mutual.governance.agreements import Role as IgRole
from mutual.governance.records import get, listing
from mutual.web.api import governance as api
from mutual.web.api.common import workspace
from mutual.web.auth import Principal
from mutual.web.dashboard.common import Column
from mutual.web.dashboard.tables import Table, pick
from mutual.web.errors import ApiError
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

PARTNER_COLUMNS: list[Column] = [
    ("code", "Partner", "text"), ("name", "Name", "text"), ("kind", "Kind", "text"),
    ("company_number", "Company number", "text"), ("contact_email", "Contact", "text"),
    ("agreements", "Agreements", "text")]
EVIDENCE_COLUMNS: list[Column] = [
    ("partner", "Partner", "text"), ("item", "Item", "text"), ("agreement", "For agreement", "text"),
    ("evidence", "Evidence", "text"), ("recorded", "Recorded", "date"), ("review_by", "Review by", "date"),
    ("state", "State", "text")]
AGREEMENT_COLUMNS: list[Column] = [
    ("id", "Agreement", "text"), ("partner", "Partner", "text"), ("title", "Title", "text"),
    ("status", "Status", "text"), ("purpose_category", "Purpose", "text"), ("granularity", "Granularity", "text"),
    ("start", "From", "date"), ("end", "To", "date")]
LEDGER_COLUMNS: list[Column] = [
    ("seq", "Entry", "text"), ("period", "Period", "text"), ("measured", "Measured", "decimal"),
    ("amount", "Amount (£; negative: refunded)", "decimal"), ("explanation", "How it was worked out", "text"),
    ("corrects", "Corrects entry", "text"), ("created_by", "By", "text")]
OUTCOME_COLUMNS: list[Column] = [
    ("measure", "Measure", "text"), ("go_live", "Go-live", "date"), ("estimate", "Effect", "decimal"),
    ("lo", "Interval from", "decimal"), ("hi", "to", "decimal"), ("statement", "What it shows", "text")]
EVENT_COLUMNS: list[Column] = [
    ("seq", "Event", "text"), ("at", "When (UTC)", "text"), ("actor", "Who", "text"), ("action", "What", "text"),
    ("object", "On", "text"), ("agreement", "Agreement", "text"), ("details", "Counts", "text"),
    ("reason", "Why", "text")]
STEP_LABELS = {"submit": "Submit for approval", "return": "Return to the drafter", "approve": "Approve",
               "activate": "Activate", "suspend": "Suspend", "reinstate": "Reinstate", "terminate": "Terminate",
               "confirm_deletion": "Confirm deletion"}


def _event_row(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "at": e["at"].strftime("%Y-%m-%d %H:%M:%S"), "object": f"{e['object_type']} {e['object_id']}",
            "details": ", ".join(f"{k}: {v}" for k, v in sorted(e["details"].items()))}


def partner_tables(request: Request, today: date) -> list[Table]:
    found = api.partner_rows(request)
    partners = [{**p, "kind": p["kind"].replace("_", " "),
                 "agreements": ", ".join(f"{a} ({s})" for a, s in p["agreements"].items()) or "none"} for p in found]
    evidence = [{"partner": p["code"], "item": CHECKLIST.get(e["kind"], e["kind"]),
                 "agreement": e["agreement"] or "all", "evidence": e["evidence"], "recorded": e["recorded"],
                 "review_by": e["review_by"],
                 "state": "review overdue" if e["review_by"] < today else "in date"}
                for p in found for e in p["onboarding"]]
    return [Table("partners", "Partners data is shared with", PARTNER_COLUMNS, partners),
            Table("onboarding", "Onboarding evidence: DPIA, DSPT, DTAC, device marking, clinical safety, outcome "
                                "plan", EVIDENCE_COLUMNS, evidence)]


@router.get("/governance/partners")
def partners_page(request: Request, principal: api.Reader,
                  format: Annotated[Literal["html", "csv"], Query()] = "html",
                  table: Annotated[Literal["partners", "onboarding"], Query()] = "partners") -> Response:
    tables = partner_tables(request, date.today())
    if format == "csv":
        return pick(tables, table).download("partners")
    return render(request, "governance_partners.html", {"partners": tables[0], "onboarding": tables[1]})


@router.get("/governance/agreements")
def agreements_page(request: Request, principal: api.Reader, status: Annotated[Status | None, Query()] = None,
                    format: Annotated[Literal["html", "csv"], Query()] = "html") -> Response:
    with workspace(request) as m:
        rows = [api.summary(get(m.sessions, r.id)) for r in listing(m.sessions)
                if status is None or r.status == status.value]
    table = Table("agreements", "Data-sharing agreements", AGREEMENT_COLUMNS, rows)
    if format == "csv":
        return table.download("agreements")
    return render(request, "governance_agreements.html", {"agreements": table, "status": status.value if status
                                                          else "", "statuses": [s.value for s in Status]})


def steps_for(principal: Principal, status: str) -> list[tuple[str, str, bool, bool]]:
    """(action, label, needs a reason, needs evidence) for each step the caller's role may take now."""
    role = api.ig_actor(principal).role if principal.role in api.ACTORS else None
    return [(action, STEP_LABELS[action], needs_reason, action == "confirm_deletion")
            for (st, action), (_, roles, needs_reason) in TRANSITIONS.items()
            if st == status and role in roles and role != IgRole.SYSTEM]


def agreement_view(request: Request, principal: Principal, agreement_id: str) -> dict[str, Any]:
    detail = api.agreement_detail(request, agreement_id)
    doc = detail["document"]
    return {"a": detail, "doc": doc, "steps": steps_for(principal, detail["status"]),
            "ledger": Table("ledger", "Settlements and corrections, oldest first (entries are never changed)",
                            LEDGER_COLUMNS, detail["ledger"]),
            "outcomes": Table("outcomes", "Outcome evaluations (difference in differences)", OUTCOME_COLUMNS,
                              detail["outcomes"]),
            "history": Table("history", "Every governance action and policy-gate decision on this agreement",
                             EVENT_COLUMNS, [_event_row(e) for e in detail["history"]])}


def agreement_page(request: Request, principal: Principal, agreement_id: str, *, done: str | None = None,
                   error: str | None = None, error_action: str | None = None, status_code: int = 200) -> Response:
    view = agreement_view(request, principal, agreement_id)
    return render(request, "governance_agreement.html",
                  {**view, "done": done, "error": error, "error_action": error_action}, status_code=status_code)


@router.get("/governance/agreements/{agreement_id}")
def agreement(request: Request, agreement_id: api.AgreementId, principal: api.Reader,
              done: Annotated[str | None, Query(max_length=20)] = None,
              format: Annotated[Literal["html", "csv"], Query()] = "html",
              table: Annotated[Literal["ledger", "outcomes", "history"], Query()] = "history") -> Response:
    if format == "csv":
        chosen: Table = agreement_view(request, principal, agreement_id)[table]
        return chosen.download(f"agreement-{agreement_id}")
    return agreement_page(request, principal, agreement_id, done=done if done in STEP_LABELS else None)


Text = Annotated[str, Form(max_length=2000)]


@router.post("/governance/agreements/{agreement_id}/{action}")
def agreement_step(request: Request, agreement_id: api.AgreementId, action: api.AgreementAction,
                   principal: api.Acting, reason: Text = "", evidence: Text = "") -> Response:
    try:
        api.agreement_step(request, agreement_id, action, principal,
                           api.StepIn(reason=reason.strip() or None, evidence=evidence.strip() or None))
    except ApiError as exc:
        if exc.status != 409:
            raise
        return agreement_page(request, principal, agreement_id, error=exc.message, error_action=action,
                              status_code=409)
    return RedirectResponse(f"/governance/agreements/{agreement_id}?done={action}", status_code=303)


@router.get("/governance/audit")
def audit_page(request: Request, principal: api.Auditor, agreement: Annotated[str | None, Query(max_length=64)] = None,
               format: Annotated[Literal["html", "csv"], Query()] = "html") -> Response:
    with workspace(request) as m, m.sessions() as s:
        problems, head = audit.verify(s)
        events = [_event_row(api.event_out(e)) for e in reversed(audit.events(s, agreement=agreement))]
    table = Table("events", "The audit log, newest first", EVENT_COLUMNS, events)
    if format == "csv":
        return table.download("audit")
    return render(request, "governance_audit.html",
                  {"problems": problems, "head": f"{head[0]}:{head[1]}" if head else None,
                   "events": Table(table.key, table.caption, table.columns, events[:500]), "total": len(events),
                   "agreement": agreement or ""})
