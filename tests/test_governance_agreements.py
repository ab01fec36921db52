"""Agreements: one transition table walked exhaustively (every status × action × role), the drafter never
approves, nothing becomes active with onboarding missing or expired, and bad agreements are refused by name."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from pydantic import ValidationError

from mutual.governance.agreements import (
    ACTIONS,
    TRANSITIONS,
    Actor,
    Agreement,
    AgreementError,
    ChecklistItem,
    Role,
    Status,
    onboarding_gaps,
    transition,
)

# the specification runs with the control plane on each engine (tests/engines.py)
pytestmark = pytest.mark.usefixtures("control_plane")

TODAY = date(2026, 6, 1)
BASE = dict(id="A-2026-01", partner="uni-leeds", title="Winter pressure study",
            purpose="Study how bed occupancy and staff absence moved together in winter 2020-21.",
            purpose_category="research", legal_basis_art6="6(1)(e) public task",
            confidentiality_basis="anonymised", datasets=["capacity"],
            fields={"capacity": ["org", "metric", "period", "value"]}, granularity="aggregate", orgs=["R1H"],
            data_from=date(2020, 9, 1), data_to=date(2021, 3, 31), start=date(2026, 1, 1), end=date(2026, 12, 31),
            retention_days=90)


def agreement(**changes: object) -> Agreement:
    return Agreement.model_validate({**BASE, **changes})


def complete(a: Agreement, review_by: date = date(2027, 1, 1)) -> list[ChecklistItem]:
    return [ChecklistItem(k, f"evidence/{k}.pdf", date(2025, 12, 1), review_by) for k in a.required_checklist()]


def test_the_whole_table_every_status_action_and_role() -> None:
    a = agreement()
    items = complete(a)
    for status, action, role in itertools.product(Status, ACTIONS, Role):
        actor = Actor("ig.two", role)
        today = date(2027, 2, 1) if action == "expire" else TODAY
        step = TRANSITIONS.get((status, action))
        if step is None or role not in step[1]:
            with pytest.raises(AgreementError):
                transition(status, action, actor, a, drafted_by="lead.one", items=items, today=today, reason="r")
        else:
            assert transition(status, action, actor, a, drafted_by="lead.one", items=items, today=today,
                              reason="r") == step[0]


def test_the_drafter_cannot_approve_even_as_an_ig_officer() -> None:
    a = agreement()
    with pytest.raises(AgreementError, match="drafted agreement A-2026-01 and so cannot approve it"):
        transition(Status.SUBMITTED, "approve", Actor("lead.one", Role.IG), a, drafted_by="lead.one", today=TODAY)


def test_nothing_becomes_active_with_onboarding_missing_or_past_review() -> None:
    a = agreement(medical_device=True)
    assert "medical_device" in a.required_checklist() and "clinical_safety" in a.required_checklist()
    items = [i for i in complete(a) if i.kind != "dpia"]
    with pytest.raises(AgreementError, match="Data protection impact assessment: not on record"):
        transition(Status.APPROVED, "activate", Actor("ig.two", Role.IG), a, drafted_by="x", items=items,
                   today=TODAY)
    stale = complete(a, review_by=date(2026, 5, 1))
    assert onboarding_gaps(a, stale, TODAY)[0].endswith("review was due on 2026-05-01")
    with pytest.raises(AgreementError, match="cannot be active"):
        transition(Status.SUSPENDED, "reinstate", Actor("ig.two", Role.IG), a, drafted_by="x", items=stale,
                   today=TODAY)
    with pytest.raises(AgreementError, match="runs from 2026-01-01"):
        transition(Status.APPROVED, "activate", Actor("ig.two", Role.IG), a, drafted_by="x", items=complete(a),
                   today=date(2025, 12, 31))


def test_suspending_or_terminating_needs_a_reason() -> None:
    with pytest.raises(AgreementError, match="needs a reason"):
        transition(Status.ACTIVE, "suspend", Actor("ig.two", Role.IG), agreement(), drafted_by="x", today=TODAY,
                   reason="  ")


@pytest.mark.parametrize(("changes", "message"), [
    ({"datasets": ["patients"]}, "dataset 'patients' is unknown"),
    ({"fields": {"capacity": ["org", "name"]}}, "capacity has no field name"),
    ({"datasets": ["apc_episodes"], "fields": {"apc_episodes": ["sex"]}}, "shared pseudonymised"),
    ({"datasets": ["apc_episodes"], "fields": {"apc_episodes": ["sex"]}, "granularity": "pseudonymised_record"},
     "needs an Article 9 condition"),
    ({"datasets": ["apc_episodes"], "fields": {"apc_episodes": ["sex"]}, "granularity": "pseudonymised_record",
      "legal_basis_art9": "9(2)(j) research"}, "pseudonymised records are not anonymous"),
    ({"end": date(2025, 1, 1)}, "ends before it starts"),
    ({"purpose": "stuff"}, "at least 20 characters"),
])
def test_an_agreement_that_does_not_hold_together_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        agreement(**changes)


def test_data_on_loan_has_a_deletion_date() -> None:
    assert agreement().deletion_due == date(2027, 3, 31)
