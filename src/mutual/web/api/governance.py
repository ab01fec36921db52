"""Data-sharing governance over the API: partners and their onboarding evidence, agreements (read, draft, and each
step of the transition table), an agreement's gain/risk-share ledger and outcome evaluations, and the audit log
with its chain check. A thin shell over ``governance.records`` and ``governance.audit``: the same rules and the
same audit events as ``mutual partners``, ``mutual agreements`` and ``mutual audit``.

Who acts as whom in ``governance.agreements``' transition table: an IG officer is the ``ig_officer`` role (returns,
approves, activates, suspends, reinstates, terminates, confirms deletion); national analysts and administrators
are data-sharing leads (draft, submit). The drafter can never approve, whatever their role."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mutual.governance import audit
from mutual.governance.agreements import Actor, Agreement, AgreementError, Status
from mutual.governance.agreements import Role as IgRole
from mutual.governance.records import (
    AgreementView,
    add_partner,
    draft,
    get,
    ledger_rows,
    listing,
    onboarding,
    outcomes_of,
    partners,
    record_item,
    step,
)
from mutual.web.accounts import Principal, Role
from mutual.web.api.common import Page, PagingDep, Timestamp, api_words, error_doc, page_of, workspace
from mutual.web.auth import require
from mutual.web.errors import ApiError

router = APIRouter(tags=["governance"])

# who reads governance records, who drafts and submits (data-sharing leads), who decides (IG officers)
READERS = (Role.IG_OFFICER, Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST, Role.ADMIN)
LEADS = (Role.NATIONAL_ANALYST, Role.ADMIN)
ACTORS = (*LEADS, Role.IG_OFFICER)
AUDITORS = (Role.IG_OFFICER, Role.ADMIN)
Reader = Annotated[Principal, Depends(require(*READERS))]
Lead = Annotated[Principal, Depends(require(*LEADS))]
Acting = Annotated[Principal, Depends(require(*ACTORS))]
Auditor = Annotated[Principal, Depends(require(*AUDITORS))]
AgreementId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Agreement id")]
AgreementAction = Literal["submit", "return", "approve", "activate", "suspend", "reinstate", "terminate",
                          "confirm_deletion"]
CONFLICT: dict[int | str, dict[str, Any]] = {
    404: error_doc("No such agreement"),
    409: error_doc("The transition table refuses the step (wrong status or role, the drafter approving, a "
                   "reason or onboarding evidence missing)")}


def ig_actor(principal: Principal) -> Actor:
    """The caller in the agreements' transition table."""
    return Actor(principal.username, IgRole.IG if principal.role == Role.IG_OFFICER else IgRole.LEAD)


class ChecklistOut(BaseModel):
    kind: str = Field(examples=["dpia", "dspt", "dtac", "medical_device", "clinical_safety", "outcome_plan"])
    agreement: str | None = Field(description="Only for this agreement (null: all of the partner's)")
    evidence: str
    recorded: date
    review_by: date
    recorded_by: str


class PartnerOut(BaseModel):
    code: str
    name: str
    kind: str = Field(examples=["large_technology", "sme_startup", "university", "ahsn_charity"])
    company_number: str | None
    contact_name: str | None
    contact_email: str | None
    created_at: Timestamp
    onboarding: list[ChecklistOut]
    agreements: dict[str, str] = Field(description="The partner's agreements and their status")


class AgreementSummary(BaseModel):
    id: str
    partner: str
    title: str
    status: str = Field(examples=["active"])
    purpose_category: str
    granularity: str
    start: date
    end: date
    drafted_by: str
    updated_at: Timestamp


class LedgerOut(BaseModel):
    seq: int
    period: str
    measured: float
    amount: float = Field(description="Paid to the partner (positive) or refunded by it (negative), in pounds")
    explanation: str
    corrects: int | None
    created_at: Timestamp
    created_by: str


class OutcomeOut(BaseModel):
    measure: str
    go_live: date
    treated: list[str]
    comparison: list[str]
    estimate: float
    lo: float
    hi: float
    level: float
    placebo: float
    placebo_lo: float
    placebo_hi: float
    statement: str
    made_at: Timestamp
    made_by: str


class EventOut(BaseModel):
    seq: int
    at: Timestamp
    actor: str
    action: str
    object_type: str
    object_id: str
    agreement: str | None
    details: dict[str, Any] = Field(description="Counts and codes, never a value of the data")
    reason: str | None
    hash: str


class AgreementDetail(AgreementSummary):
    document: dict[str, Any] = Field(description="The agreement as drafted (see POST /agreements)")
    deletion_due: date = Field(description="Data on loan: the partner deletes it by this day")
    deletion_evidence: str | None
    onboarding_gaps: list[str] = Field(description="What stops the agreement being active today")
    next_steps: list[str] = Field(description="Steps the transition table allows from this status")
    ledger: list[LedgerOut]
    outcomes: list[OutcomeOut]
    history: list[EventOut]


class StepIn(BaseModel):
    reason: str | None = Field(None, max_length=2000, description="Why (required to return, suspend, terminate)")
    evidence: str | None = Field(None, max_length=2000,
                                 description="The partner's deletion evidence (required to confirm deletion)")


class AuditOut(BaseModel):
    intact: bool
    problems: list[str] = Field(description="Every edit, deletion, insertion or reordering found, and where")
    head: str | None = Field(description="SEQ:HASH of the newest event: publish it to anchor the log")
    events: Page[EventOut]


def event_out(e: audit.Event) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "object_type": e.object_type,
            "object_id": e.object_id, "agreement": e.agreement, "details": dict(e.details), "reason": e.reason,
            "hash": e.hash}


def summary(view: AgreementView) -> dict[str, Any]:
    a, r = view.agreement, view.record
    return {"id": a.id, "partner": a.partner, "title": a.title, "status": r.status,
            "purpose_category": a.purpose_category, "granularity": a.granularity.value, "start": a.start,
            "end": a.end, "drafted_by": r.drafted_by, "updated_at": r.updated_at}


def agreement_detail(request: Request, agreement_id: str) -> dict[str, Any]:
    """Everything on record about one agreement."""
    from mutual.governance.agreements import TRANSITIONS

    with workspace(request) as m:
        try:
            view = get(m.sessions, agreement_id)
        except AgreementError as exc:
            raise ApiError(404, "not_found", api_words(str(exc))) from None
        with m.sessions() as s:
            history = [event_out(e) for e in audit.events(s, agreement=agreement_id)]
        ledger = [{c: getattr(r, c) for c in LedgerOut.model_fields} for r in ledger_rows(m.sessions, agreement_id)]
        outcomes = [{**{c: getattr(o, c) for c in OutcomeOut.model_fields if c not in ("treated", "comparison")},
                     "treated": json.loads(o.treated), "comparison": json.loads(o.comparison)}
                    for o in outcomes_of(m.sessions, agreement_id)]
    status = Status(view.record.status)
    return {**summary(view), "document": view.agreement.model_dump(mode="json"),
            "deletion_due": view.agreement.deletion_due, "deletion_evidence": view.record.deletion_evidence,
            "onboarding_gaps": view.gaps, "next_steps": sorted(a for (s, a) in TRANSITIONS if s == status
                                                                and a != "expire"),
            "ledger": ledger, "outcomes": outcomes, "history": history}


@router.get("/partners", response_model=Page[PartnerOut], summary="Partners, their onboarding evidence and "
                                                                  "agreements")
def list_partners(request: Request, principal: Reader, p: PagingDep) -> Any:
    return page_of(request, p, partner_rows(request))


class PartnerIn(BaseModel):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", examples=["uni-leeds"])
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["large_technology", "sme_startup", "university", "ahsn_charity"]
    company_number: str | None = Field(None, max_length=20, description="Companies House number")
    contact_name: str | None = Field(None, max_length=200)
    contact_email: str | None = Field(None, max_length=200)


class EvidenceIn(BaseModel):
    kind: Literal["dpia", "dspt", "dtac", "medical_device", "clinical_safety", "outcome_plan"]
    evidence: str = Field(min_length=1, max_length=2000, description="Where the evidence is: a reference or link")
    review_by: date = Field(description="When it must be reviewed (after today)")
    agreement: str | None = Field(None, max_length=64, description="Only for this agreement")


def partner_rows(request: Request) -> list[dict[str, Any]]:
    """Every partner with its onboarding evidence and its agreements' status."""
    with workspace(request) as m:
        evidence = onboarding(m.sessions)
        status: dict[str, dict[str, str]] = {}
        for r in listing(m.sessions):
            status.setdefault(r.partner, {})[r.id] = r.status
        return [{"code": r.code, "name": r.name, "kind": r.kind, "company_number": r.company_number,
                 "contact_name": r.contact_name, "contact_email": r.contact_email, "created_at": r.created_at,
                 "onboarding": [{c: getattr(e, c) for c in ChecklistOut.model_fields} for e in evidence
                                if e.partner == r.code],
                 "agreements": status.get(r.code, {})} for r in partners(m.sessions)]


def partner_out(request: Request, code: str) -> dict[str, Any]:
    return next(r for r in partner_rows(request) if r["code"] == code)


@router.post("/partners", response_model=PartnerOut, status_code=201, responses={409: error_doc("It exists")},
             summary="Register a partner (a data-sharing lead)")
def add(request: Request, body: PartnerIn, principal: Lead) -> Any:
    with workspace(request) as m:
        try:
            add_partner(m.sessions, body.code, body.name, body.kind, by=principal.username,
                        company_number=body.company_number, contact_name=body.contact_name,
                        contact_email=body.contact_email)
        except AgreementError as exc:
            raise ApiError(409 if "exists" in str(exc) else 422, "conflict" if "exists" in str(exc)
                           else "invalid_request", api_words(str(exc))) from None
    return partner_out(request, body.code)


@router.post("/partners/{code}/onboarding", response_model=PartnerOut, status_code=201,
             responses={404: error_doc("No such partner")},
             summary="Record onboarding evidence: DPIA, DSPT, DTAC, device marking, clinical safety, outcome plan "
                     "(an IG officer)")
def add_evidence(request: Request, code: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")],
                 body: EvidenceIn, principal: Annotated[Principal, Depends(require(Role.IG_OFFICER))]) -> Any:
    with workspace(request) as m:
        try:
            record_item(m.sessions, code, body.kind, body.evidence, body.review_by, by=principal.username,
                        agreement=body.agreement)
        except AgreementError as exc:
            raise ApiError(404 if "no partner" in str(exc) else 422, "not_found" if "no partner" in str(exc)
                           else "invalid_request", api_words(str(exc))) from None
    return partner_out(request, code)


@router.get("/agreements", response_model=Page[AgreementSummary], summary="Data-sharing agreements")
def list_agreements(request: Request, principal: Reader, p: PagingDep,
                    status: Annotated[Status | None, Query()] = None,
                    partner: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    with workspace(request) as m:
        found = [summary(get(m.sessions, r.id)) for r in listing(m.sessions)
                 if (status is None or r.status == status.value) and (partner is None or r.partner == partner)]
    return page_of(request, p, found)


@router.get("/agreements/{agreement_id}", response_model=AgreementDetail,
            responses={404: error_doc("No such agreement")},
            summary="One agreement: its terms, status, onboarding gaps, ledger, outcomes and audited history")
def read_agreement(request: Request, agreement_id: AgreementId, principal: Reader) -> Any:
    return agreement_detail(request, agreement_id)


@router.post("/agreements", response_model=AgreementDetail, status_code=201,
             responses={409: error_doc("An agreement with this id exists, or its partner is unknown")},
             summary="Draft an agreement (a data-sharing lead); it is then submitted for an IG officer's approval")
def draft_agreement(request: Request, response: Response, body: Agreement, principal: Lead) -> Any:
    with workspace(request) as m:
        try:
            draft(m.sessions, body, by=principal.username)
        except AgreementError as exc:
            raise ApiError(409, "conflict", api_words(str(exc))) from None
    response.headers["Location"] = f"/api/v1/agreements/{body.id}"
    return agreement_detail(request, body.id)


@router.post("/agreements/{agreement_id}/{action}", response_model=AgreementDetail, responses=CONFLICT,
             summary="A step of the transition table: submit (leads); return, approve, activate, suspend, reinstate, "
                     "terminate, confirm_deletion (IG officers)")
def agreement_step(request: Request, agreement_id: AgreementId, action: AgreementAction, principal: Acting,
                   body: StepIn | None = None) -> Any:
    agreement_detail(request, agreement_id)  # 404 first
    with workspace(request) as m:
        try:
            step(m.sessions, agreement_id, action, ig_actor(principal), reason=body.reason if body else None,
                 evidence=body.evidence if body else None)
        except AgreementError as exc:
            raise ApiError(409, "conflict", api_words(str(exc)),
                           {"agreement": agreement_id, "action": action}) from None
    return agreement_detail(request, agreement_id)


@router.get("/audit", response_model=AuditOut, summary="The audit log, newest first, and its chain check")
def audit_log(request: Request, principal: Auditor, p: PagingDep,
              agreement: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    with workspace(request) as m, m.sessions() as s:
        problems, head = audit.verify(s)
        found = [event_out(e) for e in reversed(audit.events(s, agreement=agreement))]
    return {"intact": not problems, "problems": problems, "head": f"{head[0]}:{head[1]}" if head else None,
            "events": page_of(request, p, found)}
