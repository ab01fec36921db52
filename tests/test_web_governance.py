"""Data-sharing governance on the web: a data-sharing lead registers a partner and drafts an agreement, an IG
officer records onboarding evidence and approves and activates it, the pages show the terms, gaps, steps allowed
to the caller and the audited history, and the transition table refuses what it must (the drafter approving,
activating with evidence missing, suspending without a reason), in its own words, on the page and in the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import ORGS_CSV
from engines import drop_append_only
from mutual.app import Mutual, open_mutual
from mutual.governance import audit
from mutual.web import accounts
from mutual.web.accounts import Role
from mutual.web.app import create_app

# the specification runs with the control plane on each engine (tests/engines.py)
pytestmark = pytest.mark.usefixtures("control_plane")

AGREEMENT = {"id": "UL-1", "partner": "uni-leeds", "title": "Winter study",
             "purpose": "A study of how winter pressure moved across London's trusts.",
             "purpose_category": "research", "legal_basis_art6": "6(1)(e) public task",
             "confidentiality_basis": "anonymised", "datasets": ["capacity"],
             "fields": {"capacity": ["org", "period", "value"]}, "granularity": "aggregate", "orgs": ["R1H"],
             "data_from": "2021-01-01", "data_to": "2021-01-31",
             "start": (date.today() - timedelta(days=1)).isoformat(),
             "end": (date.today() + timedelta(days=365)).isoformat(), "retention_days": 30}


@dataclass
class World:
    client: TestClient
    mutual: Mutual
    tokens: dict[str, str]

    def call(self, who: str, method: str, url: str, **kwargs: object) -> tuple[int, dict[str, object]]:
        r = self.client.request(method, url, headers={"Authorization": f"Bearer {self.tokens[who]}",
                                                      "accept": "application/json"}, **kwargs)  # type: ignore[arg-type]
        return r.status_code, r.json()

    def page(self, who: str, url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", "accept": "text/html"}
        r = (self.client.post(url, data=data or {}, headers=headers, follow_redirects=False) if data is not None
             else self.client.get(url, headers=headers))
        return r.status_code, r.text


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("governance")
    with open_mutual(tmp / "ws", create=True) as m:
        (tmp / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp / "orgs.csv")
        tokens = {}
        for name, role in (("lead", Role.NATIONAL_ANALYST), ("ig", Role.IG_OFFICER), ("ig2", Role.IG_OFFICER),
                           ("planner", Role.PLANNER)):
            accounts.add_user(m.sessions, name, role, password=None)
            tokens[name] = accounts.create_token(m.sessions, name)[1]
        with TestClient(create_app(mutual=m)) as client:
            yield World(client, m, tokens)


def test_an_agreement_from_draft_to_active_through_the_api(world: World) -> None:
    code, partner = world.call("lead", "POST", "/api/v1/partners",
                               json={"code": "uni-leeds", "name": "University of Leeds", "kind": "university"})
    assert code == 201 and partner["agreements"] == {}
    code, body = world.call("lead", "POST", "/api/v1/agreements", json=AGREEMENT)
    assert code == 201 and body["status"] == "draft" and body["next_steps"] == ["submit"]
    assert world.call("lead", "POST", "/api/v1/agreements", json=AGREEMENT)[0] == 409, "the id is taken"
    assert world.call("ig", "POST", "/api/v1/agreements/UL-1/submit")[0] == 409, "an IG officer does not submit"
    assert world.call("lead", "POST", "/api/v1/agreements/UL-1/submit")[1]["status"] == "submitted"
    code, body = world.call("lead", "POST", "/api/v1/agreements/UL-1/approve")
    assert code == 409 and "ig_officer" in body["error"]["message"]
    assert world.call("ig", "POST", "/api/v1/agreements/UL-1/approve")[1]["status"] == "approved"
    code, body = world.call("ig", "POST", "/api/v1/agreements/UL-1/activate")
    assert code == 409 and "cannot be active" in body["error"]["message"]
    assert "Data protection impact assessment: not on record" in body["error"]["message"]
    review = (date.today() + timedelta(days=200)).isoformat()
    for item in ("dpia", "dspt", "dtac", "outcome_plan"):
        code, partner = world.call("ig", "POST", "/api/v1/partners/uni-leeds/onboarding",
                                   json={"kind": item, "evidence": f"docs/{item}.pdf", "review_by": review})
        assert code == 201, partner
    assert world.call("lead", "POST", "/api/v1/partners/uni-leeds/onboarding",
                      json={"kind": "dpia", "evidence": "x", "review_by": review})[0] == 403
    code, body = world.call("ig", "POST", "/api/v1/agreements/UL-1/activate")
    assert code == 200 and body["status"] == "active" and body["onboarding_gaps"] == []
    assert [e["action"] for e in body["history"]] == ["agreement.draft", "agreement.submit", "agreement.approve",
                                                      "agreement.activate"]
    code, body = world.call("ig", "POST", "/api/v1/agreements/UL-1/suspend", json={})
    assert code == 409 and "needs a reason" in body["error"]["message"]
    assert world.call("ig", "POST", "/api/v1/agreements/NOPE/suspend")[0] == 404
    code, log = world.call("ig", "GET", "/api/v1/audit")
    assert log["intact"] and log["events"]["total"] == 9 and log["head"].startswith("9:")
    assert log["events"]["items"][0]["action"] == "agreement.activate", "newest first"
    assert world.call("lead", "GET", "/api/v1/audit")[0] == 403, "the audit log is for IG officers and admins"
    assert world.call("planner", "GET", "/api/v1/agreements")[0] == 403
    listed = world.call("lead", "GET", "/api/v1/agreements", params={"status": "active"})[1]
    assert [a["id"] for a in listed["items"]] == ["UL-1"]


def test_the_pages_offer_each_role_its_own_steps_and_show_refusals(world: World) -> None:
    world.call("lead", "POST", "/api/v1/partners", json={"code": "uni-leeds", "name": "Leeds", "kind": "university"})
    world.call("ig", "POST", "/api/v1/agreements", json=AGREEMENT)  # an IG officer cannot draft
    world.call("lead", "POST", "/api/v1/agreements", json=AGREEMENT)
    code, html = world.page("lead", "/governance/agreements/UL-1")
    assert code == 200 and 'id="step-submit"' in html and 'id="step-approve"' not in html
    assert "Cannot be active yet" in html and "Data protection impact assessment: not on record" in html
    code, _ = world.page("lead", "/governance/agreements/UL-1/submit", data={})
    assert code == 303
    code, html = world.page("ig", "/governance/agreements/UL-1")
    assert 'id="step-approve"' in html and 'id="step-return"' in html and 'id="step-submit"' not in html
    code, html = world.page("ig", "/governance/agreements/UL-1/return", data={"reason": ""})
    assert code == 409 and 'id="error-summary"' in html and "say why" in html
    assert world.page("ig", "/governance/agreements/UL-1/return", data={"reason": "Fields too broad"})[0] == 303
    code, html = world.page("ig", "/governance/agreements/UL-1?done=return")
    assert 'id="done"' in html and "Fields too broad" in html and "draft" in html
    code, html = world.page("ig", "/governance/agreements")
    assert code == 200 and 'href="/governance/agreements/UL-1"' in html
    code, csv = world.page("ig", "/governance/agreements?format=csv")
    assert csv.splitlines()[0].startswith("Agreement,Partner,Title,Status") and "UL-1" in csv
    code, html = world.page("ig", "/governance/partners")
    assert code == 200 and "uni-leeds" in html
    code, html = world.page("ig", "/governance/audit")
    assert code == 200 and "The whole chain is intact" in html and "agreement.return" in html


def test_the_audit_page_says_where_the_chain_is_broken(world: World) -> None:
    world.call("lead", "POST", "/api/v1/partners", json={"code": "uni-leeds", "name": "Leeds", "kind": "university"})
    world.call("lead", "POST", "/api/v1/agreements", json=AGREEMENT)
    drop_append_only(world.mutual.engine, "audit_event", "update")
    with world.mutual.engine.begin() as con:
        con.exec_driver_sql("UPDATE audit_event SET actor = 'someone-else' WHERE seq = 1")
    code, html = world.page("ig", "/governance/audit")
    assert code == 200 and "The chain is broken" in html and "event 1" in html
    with world.mutual.sessions() as s:
        assert audit.verify(s)[0]
