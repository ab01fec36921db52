"""SQLAlchemy models of the control plane. Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Submission(Base):
    """One file a trust sent: what it was, who sent it, when, and what became of its values."""

    __tablename__ = "submission"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    filename: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(100))
    source_org: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    submitted_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    catalog_version: Mapped[int | None] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    values_read: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class SubmissionStatus:
    RECEIVED = "received"
    LOADED = "loaded"
    REJECTED = "rejected"


class PlanRecord(Base):
    """A mutual-aid plan as proposed by a planning model, and where it is in its workflow."""

    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    start: Mapped[date] = mapped_column(Date)
    horizon: Mapped[int] = mapped_column(Integer)
    data_as_of: Mapped[datetime | None] = mapped_column(DateTime)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    solve: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)


class PlanMove(Base):
    """One move of a plan, with each end's answer."""

    __tablename__ = "plan_move"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(Integer, ForeignKey("plan.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    resource: Mapped[str] = mapped_column(String(100))
    src: Mapped[str] = mapped_column(String(20))
    dst: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[float] = mapped_column(Float)
    send_day: Mapped[date] = mapped_column(Date)
    arrive_day: Mapped[date] = mapped_column(Date)
    distance_km: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    src_answer: Mapped[str] = mapped_column(String(20), default="pending")
    dst_answer: Mapped[str] = mapped_column(String(20), default="pending")


class PlanEvent(Base):
    """Every step of a plan's workflow: who did what, when, and why."""

    __tablename__ = "plan_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(Integer, ForeignKey("plan.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    org: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    move_seq: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """Someone (or some system) who signs in to the web or calls its API, with their role and its scope."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    region: Mapped[str | None] = mapped_column(String(20))
    org: Mapped[str | None] = mapped_column(String(20))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Part of every session cookie the user holds: raising it (sign-out, new password, disabling) ends them all.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    """A bearer token for a system acting as a user; only its sha256 is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    agreement: Mapped[str | None] = mapped_column(String(64))  # a partner's token: the one agreement it serves


class AuditEvent(Base):
    """One governance action or policy-gate decision, chained to the one before by its hash (``governance.audit``).

    Append-only: the migration adds triggers that refuse UPDATE and DELETE, and ``verify`` finds any change made
    around them."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    agreement: Mapped[str | None] = mapped_column(String(100), index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON of counts and codes, never a row value
    reason: Mapped[str | None] = mapped_column(Text)  # why, in the actor's words (suspending, terminating, …)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class PartnerRecord(Base):
    """An organisation data is shared with: its kind decides nothing by itself, but is published."""

    __tablename__ = "partner"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    company_number: Mapped[str | None] = mapped_column(String(20))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OnboardingRecord(Base):
    """One piece of onboarding evidence for a partner (or one of its agreements), with its review date."""

    __tablename__ = "onboarding_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(64), ForeignKey("partner.code"), index=True)
    agreement: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(30))
    evidence: Mapped[str] = mapped_column(Text)
    recorded: Mapped[date] = mapped_column(Date)
    review_by: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(100))


class AgreementRecord(Base):
    """A data-sharing agreement: its document (``governance.agreements.Agreement`` as JSON) and its status."""

    __tablename__ = "agreement"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64), ForeignKey("partner.code"), index=True)
    document: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(30))
    drafted_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    deletion_evidence: Mapped[str | None] = mapped_column(Text)


class LedgerRecord(Base):
    """One settlement or correction of a gain/risk-share agreement (``governance.ledger``): never changed."""

    __tablename__ = "ledger_entry"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement: Mapped[str] = mapped_column(String(64), ForeignKey("agreement.id"), index=True)
    period: Mapped[str] = mapped_column(String(20))
    measured: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)
    explanation: Mapped[str] = mapped_column(Text)
    corrects: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class OutcomeRecord(Base):
    """One evaluation of an agreement's outcome measure (``governance.outcomes``), as published."""

    __tablename__ = "outcome_result"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement: Mapped[str] = mapped_column(String(64), ForeignKey("agreement.id"), index=True)
    measure: Mapped[str] = mapped_column(String(200))
    go_live: Mapped[date] = mapped_column(Date)
    treated: Mapped[str] = mapped_column(Text)  # JSON list of trust codes
    comparison: Mapped[str] = mapped_column(Text)  # JSON list
    estimate: Mapped[float] = mapped_column(Float)
    lo: Mapped[float] = mapped_column(Float)
    hi: Mapped[float] = mapped_column(Float)
    level: Mapped[float] = mapped_column(Float)
    placebo: Mapped[float] = mapped_column(Float)
    placebo_lo: Mapped[float] = mapped_column(Float)
    placebo_hi: Mapped[float] = mapped_column(Float)
    statement: Mapped[str] = mapped_column(Text)
    made_at: Mapped[datetime] = mapped_column(DateTime)
    made_by: Mapped[str] = mapped_column(String(100))
