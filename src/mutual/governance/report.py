"""The annual public value report of a trust or an ICS (STP): what its data was shared for, with whom, on what
basis, how often it left, and what came back; as HTML (the web serves it without sign-in), CSV and PDF.

Every count in it passes disclosure control (``publish_count``: 1–7 suppressed, the rest
rounded to 5), and every count is reproducible: releases and refusals are the policy gate's audit events of the
year for the agreements covering the organisation, and the report names the audit log's head it was made from
(``mutual audit verify --head`` checks the log still reaches it). Money paid and refunded under gain/risk-share
terms is the sum of the year's ledger entries (money describes no person, so it is shown to the penny).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutual.catalog.orgs import Org
from mutual.control.models import AgreementRecord, AuditEvent, LedgerRecord, OutcomeRecord, PartnerRecord
from mutual.governance.agreements import Agreement, Granularity
from mutual.governance.disclosure import Entry, publish_count

SENSITIVITY = {Granularity.AGGREGATE: "aggregate (no record of any person)",
               Granularity.PSEUDONYMISED: "pseudonymised records (identifiers replaced, opt-outs removed)"}
KIND = {"large_technology": "large technology firm", "sme_startup": "SME or start-up", "university": "university",
        "ahsn_charity": "AHSN or charity"}


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class Use:
    """One agreement, with the fields of the NHS Data Uses Register, and its releases in the year."""

    agreement: str
    recipient: str
    recipient_kind: str
    purpose: str
    purpose_category: str
    legal_basis: str
    datasets: str
    sensitivity: str
    commercial: bool
    optout_applied: bool
    start: date
    end: date
    status: str
    releases: Entry
    refusals: Entry
    paid: float  # gain-share paid to the partner this year, £ (settlements and corrections entered this year)
    refunded: float  # risk-share refunded by the partner this year, £
    outcomes: tuple[str, ...] = ()  # each evaluated outcome measure: target and what the evidence shows


@dataclass(frozen=True)
class AnnualReport:
    org: str
    org_name: str
    year: int
    covered: int  # organisations whose data the report covers (the ICS's trusts)
    uses: list[Use]
    releases: Entry
    refusals: Entry
    head: tuple[int, str] | None
    made_at: datetime
    summary: str


def _below(org: Org, orgs: list[Org]) -> set[str]:
    by_code = {o.code: o for o in orgs}
    found = {org.code}
    for o in orgs:
        chain: Org | None = o
        seen: set[str] = set()
        while chain is not None and chain.code not in seen:
            seen.add(chain.code)
            if chain.code == org.code or chain.region == org.code:
                found.add(o.code)
                break
            chain = by_code.get(chain.parent) if chain.parent else None
    return found


def annual_report(sessions: sessionmaker[Session], orgs: list[Org], org_code: str, year: int) -> AnnualReport:
    org = next((o for o in orgs if o.code == org_code.upper()), None)
    if org is None:
        raise ReportError(f"no organisation {org_code} (see `mutual orgs list`)")
    if not 2000 <= year <= 2100:
        raise ReportError(f"year {year} is not a year this report can cover")
    covered = _below(org, orgs)
    first, last = date(year, 1, 1), date(year, 12, 31)
    with sessions() as s:
        partners = {p.code: p for p in s.scalars(select(PartnerRecord))}
        records = list(s.scalars(select(AgreementRecord).order_by(AgreementRecord.id)))
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.agreement.is_not(None))
                                .order_by(AuditEvent.seq)))
        last_event = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
        money = list(s.scalars(select(LedgerRecord)))
        evaluations = list(s.scalars(select(OutcomeRecord).order_by(OutcomeRecord.id)))
    uses = []
    total_releases = total_refusals = 0
    for rec in records:
        doc = Agreement.model_validate(json.loads(rec.document))
        if not covered & set(doc.orgs) or doc.end < first or doc.start > last:
            continue
        in_year = [e for e in events if e.agreement == rec.id and first <= e.at.date() <= last]
        released = sum(e.action == "gate.release" for e in in_year)
        refused = sum(e.action == "gate.deny" for e in in_year)
        total_releases, total_refusals = total_releases + released, total_refusals + refused
        partner = partners.get(rec.partner)
        amounts = [e.amount for e in money if e.agreement == rec.id and first <= e.created_at.date() <= last]
        targets = {o.name: o for o in doc.outcomes}
        outcomes = tuple(
            f"{o.measure} (baseline {targets[o.measure].baseline:g}, target {targets[o.measure].target:g}): "
            f"{o.statement}" for o in evaluations
            if o.agreement == rec.id and o.measure in targets and first <= o.made_at.date() <= last)
        uses.append(Use(
            agreement=rec.id, recipient=partner.name if partner else rec.partner,
            recipient_kind=KIND.get(partner.kind, partner.kind) if partner else "",
            purpose=doc.purpose, purpose_category=doc.purpose_category.replace("_", " "),
            legal_basis="; ".join(b for b in (doc.legal_basis_art6, doc.legal_basis_art9,
                                              f"confidentiality: {doc.confidentiality_basis}") if b),
            datasets=", ".join(doc.datasets), sensitivity=SENSITIVITY[doc.granularity],
            commercial=doc.commercial is not None, optout_applied=doc.granularity == Granularity.PSEUDONYMISED,
            start=doc.start, end=doc.end, status=rec.status.replace("_", " "),
            releases=publish_count(released), refusals=publish_count(refused),
            paid=round(max(0.0, sum(amounts)), 2), refunded=round(max(0.0, -sum(amounts)), 2), outcomes=outcomes))
    releases, refusals = publish_count(total_releases), publish_count(total_refusals)
    commercial = sum(u.commercial for u in uses)
    paid, refunded = sum(u.paid for u in uses), sum(u.refunded for u in uses)
    summary = (
        f"In {year}, data from {org.name} was covered by {len(uses)} data-sharing agreement(s)"
        + (f", {commercial} of them with payment terms that share gains and risks (partners were paid "
           f"£{paid:,.2f} for outcomes achieved and refunded £{refunded:,.2f} for targets missed)"
           if commercial else "")
        + f". Data left the platform {_words(releases)} time(s) under them and requests outside what was agreed "
          f"were refused {_words(refusals)} time(s). Each agreement below says who received data, what for, on "
          "what legal basis and in what form. Record-level data only ever leaves pseudonymised, with the national "
          "data opt-out applied; figures are rounded to the nearest 5 and small numbers are hidden so that no "
          "person can be picked out.")
    return AnnualReport(org=org.code, org_name=org.name, year=year, covered=len(covered), uses=uses,
                        releases=releases, refusals=refusals,
                        head=(last_event.seq, last_event.hash) if last_event else None,
                        made_at=datetime.now(UTC).replace(tzinfo=None, microsecond=0), summary=summary)


def _words(e: Entry) -> str:
    return "fewer than 8" if e.suppressed else f"about {e.shown:,}" if e.reason.startswith("rounded") else str(e.shown)


CSV_COLUMNS = ("agreement", "recipient", "recipient_kind", "purpose", "purpose_category", "legal_basis",
               "datasets", "sensitivity", "commercial", "optout_applied", "start", "end", "status", "releases",
               "refusals", "paid_gbp", "refunded_gbp", "outcomes")


def to_csv(r: AnnualReport) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for u in r.uses:
        writer.writerow([u.agreement, u.recipient, u.recipient_kind, u.purpose, u.purpose_category, u.legal_basis,
                         u.datasets, u.sensitivity, "yes" if u.commercial else "no",
                         "yes" if u.optout_applied else "no", u.start.isoformat(), u.end.isoformat(), u.status,
                         _cell(u.releases), _cell(u.refusals), f"{u.paid:.2f}", f"{u.refunded:.2f}",
                         " | ".join(u.outcomes)])
    return buf.getvalue()


def _cell(e: Entry) -> str:
    return "<8" if e.suppressed else str(e.shown)


def to_pdf(r: AnnualReport) -> bytes:
    """The report as a PDF (fpdf2's core Helvetica: Latin-1 text, so other characters are replaced)."""
    from fpdf import FPDF

    def text(value: str) -> str:
        return value.replace("–", "-").replace("’", "'").encode("latin-1", "replace").decode("latin-1")

    pdf = FPDF(format="A4")

    def para(height: float, value: str) -> None:
        pdf.multi_cell(0, height, value, new_x="LMARGIN", new_y="NEXT")

    pdf.set_title(text(f"{r.org_name}: data sharing in {r.year}"))
    pdf.set_author("Mutual")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    para(9, text(f"{r.org_name} ({r.org}): what its data was shared for in {r.year}"))
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 11)
    para(6, text(r.summary))
    pdf.ln(2)
    para(6, text(f"Releases: {_cell(r.releases)}; refusals: {_cell(r.refusals)}. Made on {r.made_at:%d %B %Y} "
                  f"from the audit log up to event {r.head[0] if r.head else 0}."))
    for u in r.uses:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 13)
        para(7, text(f"{u.agreement}: {u.recipient} ({u.recipient_kind})"))
        pdf.set_font("Helvetica", "", 10)
        for label, value in (("Purpose", f"{u.purpose} ({u.purpose_category})"), ("Legal basis", u.legal_basis),
                             ("Data", f"{u.datasets}, {u.sensitivity}"),
                             ("Commercial terms", "yes" if u.commercial else "no"),
                             ("National data opt-out applied", "yes" if u.optout_applied else "not needed"),
                             ("Runs", f"{u.start} to {u.end} ({u.status})"),
                             ("Releases / refusals", f"{_cell(u.releases)} / {_cell(u.refusals)}"),
                             ("Paid to the partner / refunded", f"GBP {u.paid:,.2f} / GBP {u.refunded:,.2f}")):
            para(5, text(f"{label}: {value}"))
        for outcome in u.outcomes:
            para(5, text(f"Outcome: {outcome}"))
    if r.head:
        pdf.ln(4)
        pdf.set_font("Helvetica", "", 8)
        para(4, text(f"Audit head {r.head[0]}:{r.head[1]}"))
    return bytes(pdf.output())


@dataclass(frozen=True)
class RegisterRow:
    """One line of the public access register: releases under one agreement, by month."""

    month: str
    agreement: str
    recipient: str
    recipient_kind: str
    purpose_category: str
    dataset: str
    sensitivity: str
    releases: Entry


def access_register(sessions: sessionmaker[Session]) -> list[RegisterRow]:
    """Every release of data to a partner, by month, agreement and dataset, from the gate's audit events: who
    received what, for which purpose; counts through disclosure control."""
    with sessions() as s:
        partners = {p.code: p for p in s.scalars(select(PartnerRecord))}
        records = {r.id: r for r in s.scalars(select(AgreementRecord))}
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "gate.release")
                                .order_by(AuditEvent.seq)))
    counts: dict[tuple[str, str, str], int] = {}
    for e in events:
        if e.agreement in records:
            key = (f"{e.at:%Y-%m}", e.agreement, e.object_id)
            counts[key] = counts.get(key, 0) + 1
    rows = []
    for (month, agreement_id, dataset), n in sorted(counts.items(), reverse=True):
        rec = records[agreement_id]
        doc = Agreement.model_validate(json.loads(rec.document))
        partner = partners.get(rec.partner)
        rows.append(RegisterRow(month, agreement_id, partner.name if partner else rec.partner,
                                KIND.get(partner.kind, partner.kind) if partner else "",
                                doc.purpose_category.replace("_", " "), dataset, SENSITIVITY[doc.granularity],
                                publish_count(n)))
    return rows
