"""Partners, onboarding evidence and agreements in the control plane: each change is checked by the pure rules
(``agreements``) and written in the same transaction as its audit event, so the log and the state never part."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutual.control.models import AgreementRecord, LedgerRecord, OnboardingRecord, OutcomeRecord, PartnerRecord
from mutual.governance import audit
from mutual.governance.agreements import (
    CHECKLIST,
    Actor,
    Agreement,
    AgreementError,
    ChecklistItem,
    Status,
    onboarding_gaps,
    transition,
)
from mutual.governance.ledger import Entry as LedgerEntry
from mutual.governance.ledger import Ledger, LedgerError
from mutual.governance.outcomes import Effect

PartnerKind = Literal["large_technology", "sme_startup", "university", "ahsn_charity"]
PARTNER_KINDS: tuple[str, ...] = ("large_technology", "sme_startup", "university", "ahsn_charity")
CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
COMPANY_NUMBER = re.compile(r"(?:[0-9]{8}|[A-Z]{2}[0-9]{6})")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def add_partner(sessions: sessionmaker[Session], code: str, name: str, kind: str, *, by: str,
                company_number: str | None = None, contact_name: str | None = None,
                contact_email: str | None = None) -> PartnerRecord:
    if not CODE.fullmatch(code):
        raise AgreementError(f"partner code {code!r}: lower-case letters, digits, '.', '_' or '-'")
    if kind not in PARTNER_KINDS:
        raise AgreementError(f"partner kind {kind!r}: choose {', '.join(PARTNER_KINDS)}")
    if company_number is not None and not COMPANY_NUMBER.fullmatch(company_number.strip().upper()):
        raise AgreementError(f"company number {company_number!r} is not 8 digits or 2 letters and 6 digits")
    if contact_email is not None and "@" not in contact_email:
        raise AgreementError(f"contact email {contact_email!r} has no @")
    with sessions.begin() as s:
        if s.get(PartnerRecord, code) is not None:
            raise AgreementError(f"partner {code} already exists")
        rec = PartnerRecord(code=code, name=name.strip(), kind=kind,
                            company_number=company_number.strip().upper() if company_number else None,
                            contact_name=contact_name, contact_email=contact_email, created_at=_now())
        s.add(rec)
        audit.append(s, actor=by, action="partner.add", object_type="partner", object_id=code,
                     details={"kind": kind})
    return rec


def partners(sessions: sessionmaker[Session]) -> list[PartnerRecord]:
    with sessions() as s:
        return list(s.scalars(select(PartnerRecord).order_by(PartnerRecord.code)))


def record_item(sessions: sessionmaker[Session], partner: str, kind: str, evidence: str, review_by: date, *,
                by: str, agreement: str | None = None, recorded: date | None = None) -> OnboardingRecord:
    """Onboarding evidence (a DPIA, DSPT status, DTAC, device marking, clinical safety case, outcome plan)."""
    if kind not in CHECKLIST:
        raise AgreementError(f"onboarding item {kind!r}: choose {', '.join(CHECKLIST)}")
    if not evidence.strip():
        raise AgreementError("say where the evidence is (a document reference or link)")
    day = recorded or _now().date()
    if review_by <= day:
        raise AgreementError(f"the review date {review_by} must be after the day it is recorded ({day})")
    with sessions.begin() as s:
        if s.get(PartnerRecord, partner) is None:
            raise AgreementError(f"no partner {partner} (see `mutual partners list`)")
        rec = OnboardingRecord(partner=partner, agreement=agreement, kind=kind, evidence=evidence.strip(),
                               recorded=day, review_by=review_by, recorded_by=by)
        s.add(rec)
        audit.append(s, actor=by, action="onboarding.record", object_type="partner", object_id=partner,
                     agreement=agreement, details={"item": kind, "review_by": review_by.isoformat()})
    return rec


def items_for(s: Session, partner: str, agreement: str) -> list[ChecklistItem]:
    rows = s.scalars(select(OnboardingRecord).where(OnboardingRecord.partner == partner))
    return [ChecklistItem(r.kind, r.evidence, r.recorded, r.review_by) for r in rows
            if r.agreement in (None, agreement)]


def read_agreement(path: Path) -> Agreement:
    """An agreement from its YAML file; every problem names the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AgreementError(f"{path}: cannot be read as YAML ({exc})") from None
    if not isinstance(data, dict):
        raise AgreementError(f"{path}: expected a mapping of fields (id, partner, purpose, …)")
    try:
        return Agreement.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'agreement'}: {e['msg']}"
                             for e in exc.errors())
        raise AgreementError(f"{path}: {problems}") from None


def draft(sessions: sessionmaker[Session], agreement: Agreement, *, by: str) -> AgreementRecord:
    with sessions.begin() as s:
        if s.get(PartnerRecord, agreement.partner) is None:
            raise AgreementError(f"agreement {agreement.id}: no partner {agreement.partner} "
                                 "(add it with `mutual partners add`)")
        if s.get(AgreementRecord, agreement.id) is not None:
            raise AgreementError(f"agreement {agreement.id} already exists")
        now = _now()
        rec = AgreementRecord(id=agreement.id, partner=agreement.partner, document=agreement.model_dump_json(),
                              status=Status.DRAFT.value, drafted_by=by, created_at=now, updated_at=now)
        s.add(rec)
        audit.append(s, actor=by, action="agreement.draft", object_type="agreement", object_id=agreement.id,
                     agreement=agreement.id, details={"granularity": agreement.granularity.value,
                                                      "datasets": len(agreement.datasets)})
    return rec


@dataclass(frozen=True)
class AgreementView:
    record: AgreementRecord
    agreement: Agreement
    gaps: list[str]


def get(sessions: sessionmaker[Session], agreement_id: str, today: date | None = None) -> AgreementView:
    with sessions() as s:
        rec = s.get(AgreementRecord, agreement_id)
        if rec is None:
            raise AgreementError(f"no agreement {agreement_id} (see `mutual agreements list`)")
        doc = Agreement.model_validate(json.loads(rec.document))
        gaps = onboarding_gaps(doc, items_for(s, rec.partner, rec.id), today or _now().date())
        return AgreementView(rec, doc, gaps)


def listing(sessions: sessionmaker[Session]) -> list[AgreementRecord]:
    with sessions() as s:
        return list(s.scalars(select(AgreementRecord).order_by(AgreementRecord.id)))


def step(sessions: sessionmaker[Session], agreement_id: str, action: str, actor: Actor, *,
         today: date | None = None, reason: str | None = None, evidence: str | None = None) -> AgreementRecord:
    """Move an agreement by ``action`` as ``actor``: checked by the transition table, audited with it."""
    day = today or _now().date()
    with sessions.begin() as s:
        rec = s.get(AgreementRecord, agreement_id)
        if rec is None:
            raise AgreementError(f"no agreement {agreement_id} (see `mutual agreements list`)")
        doc = Agreement.model_validate(json.loads(rec.document))
        if action == "confirm_deletion" and not (evidence and evidence.strip()):
            raise AgreementError("confirming deletion needs the partner's evidence (--evidence)")
        new = transition(Status(rec.status), action, actor, doc, drafted_by=rec.drafted_by,
                         items=items_for(s, rec.partner, rec.id), today=day, reason=reason)
        details: dict[str, str | int] = {"from": rec.status, "to": new.value}
        rec.status, rec.updated_at = new.value, _now()
        if action == "confirm_deletion":
            rec.deletion_evidence = (evidence or "").strip()
        audit.append(s, actor=actor.name, action=f"agreement.{action}", object_type="agreement",
                     object_id=agreement_id, agreement=agreement_id, details=details,
                     reason=reason.strip() if reason and reason.strip() else None)
    return rec


def active(sessions: sessionmaker[Session]) -> Sequence[AgreementRecord]:
    with sessions() as s:
        return list(s.scalars(select(AgreementRecord).where(AgreementRecord.status == Status.ACTIVE.value)))


def ledger_of(s: Session, agreement_id: str) -> Ledger:
    rows = s.scalars(select(LedgerRecord).where(LedgerRecord.agreement == agreement_id).order_by(LedgerRecord.seq))
    return Ledger([LedgerEntry(r.seq, r.agreement, r.period, r.amount, r.explanation, r.corrects) for r in rows])


def settle_period(sessions: sessionmaker[Session], agreement_id: str, period: str, measured: float, *, by: str,
                  correct: int | None = None, why: str = "") -> LedgerRecord:
    """Settle ``period`` of an agreement's gain/risk share from the measured outcome (or, with ``correct``, add a
    correction of that entry), audited with the amount."""
    with sessions.begin() as s:
        rec = s.get(AgreementRecord, agreement_id)
        if rec is None:
            raise AgreementError(f"no agreement {agreement_id} (see `mutual agreements list`)")
        terms = Agreement.model_validate(json.loads(rec.document)).commercial
        if terms is None:
            raise AgreementError(f"agreement {agreement_id} has no commercial terms to settle")
        ledger = ledger_of(s, agreement_id)
        try:
            entry = (ledger.correct(correct, terms, measured, why) if correct is not None
                     else ledger.settle(agreement_id, period, terms, measured))
        except LedgerError as exc:
            raise AgreementError(str(exc)) from None
        row = LedgerRecord(agreement=agreement_id, period=entry.period, measured=measured, amount=entry.amount,
                           explanation=entry.explanation, corrects=entry.corrects, created_at=_now(), created_by=by)
        s.add(row)
        s.flush()
        audit.append(s, actor=by, action="ledger.correct" if correct is not None else "ledger.settle",
                     object_type="ledger_entry", object_id=str(row.seq), agreement=agreement_id,
                     details={"amount": entry.amount, "period": entry.period.replace(" ", "_")},
                     reason=why.strip() or None)
    return row


def ledger_rows(sessions: sessionmaker[Session], agreement_id: str | None = None) -> list[LedgerRecord]:
    with sessions() as s:
        q = select(LedgerRecord).order_by(LedgerRecord.seq)
        if agreement_id is not None:
            q = q.where(LedgerRecord.agreement == agreement_id)
        return list(s.scalars(q))


def record_outcome(sessions: sessionmaker[Session], agreement_id: str, measure: str, go_live: date, effect: Effect,
                   *, by: str) -> OutcomeRecord:
    """Keep an evaluation of one of an agreement's outcome measures, to publish with its evidence."""
    with sessions.begin() as s:
        rec = s.get(AgreementRecord, agreement_id)
        if rec is None:
            raise AgreementError(f"no agreement {agreement_id} (see `mutual agreements list`)")
        names = [o.name for o in Agreement.model_validate(json.loads(rec.document)).outcomes]
        if measure not in names:
            raise AgreementError(f"agreement {agreement_id} has no outcome measure {measure!r} "
                                 f"(it has: {', '.join(names) or 'none'})")
        row = OutcomeRecord(agreement=agreement_id, measure=measure, go_live=go_live,
                            treated=json.dumps(list(effect.treated)), comparison=json.dumps(list(effect.comparison)),
                            estimate=effect.estimate, lo=effect.lo, hi=effect.hi, level=effect.level,
                            placebo=effect.placebo, placebo_lo=effect.placebo_lo, placebo_hi=effect.placebo_hi,
                            statement=effect.statement, made_at=_now(), made_by=by)
        s.add(row)
        s.flush()
        audit.append(s, actor=by, action="outcome.evaluate", object_type="outcome_result", object_id=str(row.id),
                     agreement=agreement_id, details={"treated": len(effect.treated)})
    return row


def onboarding(sessions: sessionmaker[Session], partner: str | None = None) -> list[OnboardingRecord]:
    """Onboarding evidence on record, a partner's or everyone's, oldest first."""
    with sessions() as s:
        query = select(OnboardingRecord).order_by(OnboardingRecord.partner, OnboardingRecord.id)
        if partner is not None:
            query = query.where(OnboardingRecord.partner == partner)
        return list(s.scalars(query))


def outcomes_of(sessions: sessionmaker[Session], agreement_id: str) -> list[OutcomeRecord]:
    """An agreement's outcome evaluations, oldest first."""
    with sessions() as s:
        return list(s.scalars(select(OutcomeRecord).where(OutcomeRecord.agreement == agreement_id)
                              .order_by(OutcomeRecord.id)))
