"""Data-sharing agreements as data, their onboarding checklist, and the one table of who may move them where.

    draft ──submit──► submitted ──approve──► approved ──activate──► active ──expire──► expired
      ▲                  │                                       │   ▲
      └─────return───────┘                              suspend  ▼   │ reinstate
                                                              suspended
    active or suspended ──terminate──► terminated
    expired or terminated ──confirm_deletion──► deletion_confirmed

A data-sharing lead drafts and submits; an information-governance officer approves, returns, activates,
suspends, reinstates, terminates and confirms deletion; expiry is the system's, on the agreement's end date.
Whoever drafted an agreement can never approve it. An agreement becomes (or comes back) active only while every
onboarding item it needs is on record and within its review date, and only between its start and end dates.
Pure rules: whatever records an agreement applies them, each step with its audit event (``audit.append``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mutual.governance.ledger import Terms


class AgreementError(ValueError):
    pass


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    TERMINATED = "terminated"
    DELETION_CONFIRMED = "deletion_confirmed"


class Role(StrEnum):
    LEAD = "data_sharing_lead"
    IG = "ig_officer"
    SYSTEM = "system"


S = Status
# (status, action) -> (new status, roles that may take it, a reason is required)
TRANSITIONS: dict[tuple[Status, str], tuple[Status, frozenset[Role], bool]] = {
    (S.DRAFT, "submit"): (S.SUBMITTED, frozenset({Role.LEAD}), False),
    (S.SUBMITTED, "return"): (S.DRAFT, frozenset({Role.IG}), True),
    (S.SUBMITTED, "approve"): (S.APPROVED, frozenset({Role.IG}), False),
    (S.APPROVED, "activate"): (S.ACTIVE, frozenset({Role.IG}), False),
    (S.ACTIVE, "suspend"): (S.SUSPENDED, frozenset({Role.IG}), True),
    (S.SUSPENDED, "reinstate"): (S.ACTIVE, frozenset({Role.IG}), False),
    (S.ACTIVE, "expire"): (S.EXPIRED, frozenset({Role.SYSTEM}), False),
    (S.ACTIVE, "terminate"): (S.TERMINATED, frozenset({Role.IG}), True),
    (S.SUSPENDED, "terminate"): (S.TERMINATED, frozenset({Role.IG}), True),
    (S.EXPIRED, "confirm_deletion"): (S.DELETION_CONFIRMED, frozenset({Role.IG}), False),
    (S.TERMINATED, "confirm_deletion"): (S.DELETION_CONFIRMED, frozenset({Role.IG}), False),
}
ACTIONS = tuple(sorted({a for _, a in TRANSITIONS}))
FINAL = frozenset({S.DELETION_CONFIRMED})
SHARING = frozenset({S.ACTIVE})  # the only status in which the policy gate releases anything


class Granularity(StrEnum):
    AGGREGATE = "aggregate"
    PSEUDONYMISED = "pseudonymised_record"


# What each dataset holds; an agreement names fields from these only.
DATASETS: dict[str, tuple[str, ...]] = {
    "capacity": ("org", "metric", "dims", "period", "value"),
    "apc_episodes": ("episode_id", "nhs_number", "date_of_birth", "sex", "postcode", "trust", "admission_date",
                     "discharge_date", "primary_diagnosis", "critical_care_days", "ventilated"),
}
RECORD_LEVEL = frozenset({"apc_episodes"})

CHECKLIST = {
    "dpia": "Data protection impact assessment",
    "dspt": "Data Security and Protection Toolkit: standards met",
    "dtac": "Digital technology assessment criteria (DTAC)",
    "medical_device": "Medical device marking (UKCA or CE, with its class)",
    "clinical_safety": "Clinical safety case (DCB0129 by the manufacturer, DCB0160 by the deploying trust)",
    "outcome_plan": "Outcome measurement plan",
}


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, description="Catalogue code or rate the outcome is measured on")
    baseline: float
    target: float
    better: Literal["lower", "higher"]


class Agreement(BaseModel):
    """One data-sharing agreement, as the YAML file that drafts it says."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    partner: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    purpose: str = Field(min_length=20, description="In plain language: what the data will be used for")
    purpose_category: Literal["service_planning", "service_evaluation", "research", "product_development",
                              "public_reporting"]
    legal_basis_art6: Literal["6(1)(a) consent", "6(1)(c) legal obligation", "6(1)(e) public task",
                              "6(1)(f) legitimate interests"]
    legal_basis_art9: Literal["9(2)(a) explicit consent", "9(2)(h) health and social care",
                              "9(2)(i) public health", "9(2)(j) research"] | None = None
    confidentiality_basis: Literal["anonymised", "consent", "section 251 support", "legal requirement"]
    datasets: list[str] = Field(min_length=1)
    fields: dict[str, list[str]] = Field(description="Per dataset, the fields released")
    granularity: Granularity
    orgs: list[str] = Field(min_length=1, description="Organisations whose data is covered (ODS codes)")
    data_from: date
    data_to: date
    start: date
    end: date
    retention_days: int = Field(ge=0, le=3650, description="Days after the end by which the partner deletes it")
    medical_device: bool = False
    supports_care: bool = False
    digital_product: bool = True
    outcomes: list[Outcome] = Field(default_factory=list)
    commercial: Terms | None = Field(None, description="Gain- and risk-share terms, when the partner is paid")

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        for name in self.datasets:
            if name not in DATASETS:
                raise ValueError(f"dataset {name!r} is unknown; choose from {', '.join(DATASETS)}")
        for name, wanted in self.fields.items():
            if name not in self.datasets:
                raise ValueError(f"fields are given for {name!r}, which is not among the datasets")
            unknown = [f for f in wanted if f not in DATASETS[name]]
            if unknown:
                raise ValueError(f"{name} has no field {', '.join(unknown)}; it has {', '.join(DATASETS[name])}")
        if self.data_to < self.data_from or self.end < self.start:
            raise ValueError("a date range ends before it starts")
        record_level = any(d in RECORD_LEVEL for d in self.datasets)
        if record_level and self.granularity != Granularity.PSEUDONYMISED:
            raise ValueError("record-level datasets are shared pseudonymised, never as they are stored")
        if self.granularity == Granularity.PSEUDONYMISED:
            if self.legal_basis_art9 is None:
                raise ValueError("record-level health data needs an Article 9 condition (legal_basis_art9)")
            if self.confidentiality_basis == "anonymised":
                raise ValueError("pseudonymised records are not anonymous: give the common-law confidentiality "
                                 "basis (consent, section 251 support or a legal requirement)")
        return self

    @property
    def deletion_due(self) -> date:
        """Data on loan: the partner deletes it by this day."""
        return self.end + timedelta(days=self.retention_days)

    def required_checklist(self) -> list[str]:
        need = ["dpia", "dspt", "outcome_plan"]
        if self.digital_product:
            need.append("dtac")
        if self.medical_device:
            need.append("medical_device")
        if self.supports_care or self.medical_device:
            need.append("clinical_safety")
        return need


@dataclass(frozen=True)
class ChecklistItem:
    """Onboarding evidence on record: what it is, where the evidence is, and when it must be reviewed."""

    kind: str
    evidence: str
    recorded: date
    review_by: date


def onboarding_gaps(agreement: Agreement, items: Sequence[ChecklistItem], today: date) -> list[str]:
    """Every required onboarding item missing or past its review date, in words; [] when complete."""
    latest: dict[str, ChecklistItem] = {}
    for item in items:
        if item.kind not in latest or item.recorded >= latest[item.kind].recorded:
            latest[item.kind] = item
    gaps = []
    for kind in agreement.required_checklist():
        found = latest.get(kind)
        if found is None:
            gaps.append(f"{CHECKLIST[kind]}: not on record")
        elif found.review_by < today:
            gaps.append(f"{CHECKLIST[kind]}: review was due on {found.review_by.isoformat()}")
    return gaps


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role


def transition(status: Status, action: str, actor: Actor, agreement: Agreement, *, drafted_by: str,
               items: Sequence[ChecklistItem] = (), today: date, reason: str | None = None) -> Status:
    """The agreement's next status, or ``AgreementError`` saying why not."""
    step = TRANSITIONS.get((status, action))
    if step is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status)
        hint = f"; from {status} it can: {', '.join(allowed)}" if allowed else f"; {status} is final"
        raise AgreementError(f"a {status} agreement cannot {action}{hint}")
    new, roles, needs_reason = step
    if actor.role not in roles:
        raise AgreementError(f"only the {' or '.join(sorted(r.value for r in roles))} role may {action} an "
                             f"agreement ({actor.name} is {actor.role.value})")
    if action == "approve" and actor.name == drafted_by:
        raise AgreementError(f"{actor.name} drafted agreement {agreement.id} and so cannot approve it")
    if needs_reason and not (reason and reason.strip()):
        raise AgreementError(f"say why ({action} needs a reason)")
    if new == S.ACTIVE:
        gaps = onboarding_gaps(agreement, items, today)
        if gaps:
            raise AgreementError(f"agreement {agreement.id} cannot be active: " + "; ".join(gaps))
        if not agreement.start <= today <= agreement.end:
            raise AgreementError(f"agreement {agreement.id} runs from {agreement.start} to {agreement.end}, not "
                                 f"on {today}")
    if action == "expire" and today <= agreement.end:
        raise AgreementError(f"agreement {agreement.id} runs until {agreement.end}")
    return new
