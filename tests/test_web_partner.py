"""The partner API, walked exhaustively: partner × agreement state × agreed dataset × dataset asked for × fields ×
granularity. Only an active agreement's own dataset, fields and granularity come back (aggregates through
disclosure control, records de-identified); everything else is a 403 listing the reasons; every decision is in
the audit log; a partner's token opens nothing else."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from conftest import ORGS_CSV
from mutual.app import Mutual, open_mutual
from mutual.governance import audit, episodes
from mutual.governance.agreements import Actor, Agreement, Status
from mutual.governance.agreements import Role as IgRole
from mutual.governance.records import add_partner, draft, record_item, step
from mutual.web import accounts
from mutual.web.accounts import AccountError, Role
from mutual.web.app import create_app

ON = date(2026, 6, 1)
LEAD, IG, SYSTEM = Actor("lead", IgRole.LEAD), Actor("ig", IgRole.IG), Actor("system", IgRole.SYSTEM)
# the steps that bring a fresh draft to each status (the day of each step)
PATHS: dict[Status, list[tuple[str, date]]] = {
    Status.DRAFT: [],
    Status.SUBMITTED: [("submit", ON)],
    Status.APPROVED: [("submit", ON), ("approve", ON)],
    Status.ACTIVE: [("submit", ON), ("approve", ON), ("activate", ON)],
    Status.SUSPENDED: [("submit", ON), ("approve", ON), ("activate", ON), ("suspend", ON)],
    Status.EXPIRED: [("submit", ON), ("approve", ON), ("activate", ON), ("expire", date(2031, 1, 1))],
    Status.TERMINATED: [("submit", ON), ("approve", ON), ("activate", ON), ("terminate", ON)],
    Status.DELETION_CONFIRMED: [("submit", ON), ("approve", ON), ("activate", ON), ("terminate", ON),
                                ("confirm_deletion", ON)],
}
FIELDS = {"capacity": {"agreed": "org,period,value", "not agreed": "org,metric,value"},
          "apc_episodes": {"agreed": "trust,sex", "not agreed": "trust,postcode"}}
ENDPOINT = {"capacity": "capacity", "apc_episodes": "episodes"}
PARTNERS = {"bigtech": "large_technology", "startup": "sme_startup", "uni": "university"}


def terms(agreement_id: str, partner: str, dataset: str) -> Agreement:
    record_level = dataset == "apc_episodes"
    return Agreement.model_validate({
        "id": agreement_id, "partner": partner, "title": "Winter study",
        "purpose": "A study of how winter pressure moved across London's trusts.", "purpose_category": "research",
        "legal_basis_art6": "6(1)(e) public task",
        "legal_basis_art9": "9(2)(j) research" if record_level else None,
        "confidentiality_basis": "section 251 support" if record_level else "anonymised",
        "datasets": [dataset], "fields": {dataset: ["trust", "sex"] if record_level else ["org", "period", "value"]},
        "granularity": "pseudonymised_record" if record_level else "aggregate", "orgs": ["R1H"],
        "data_from": "2021-01-01", "data_to": "2021-01-31", "start": "2026-01-01", "end": "2030-12-31",
        "retention_days": 30})


@dataclass
class World:
    client: TestClient
    mutual: Mutual
    tokens: dict[tuple[str, Status, str], str]  # (partner, status, dataset) -> token
    staff: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("partner")
    with open_mutual(tmp / "ws", create=True) as m:
        (tmp / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp / "orgs.csv")
        (tmp / "v.csv").write_text("org,metric,date,value\nR1H,ga_beds_occupied,2021-01-05,452\n"
                                   "R1H,covid_admissions,2021-01-05,3\n")
        m.ingest(tmp / "v.csv")
        held = episodes.generate(300, ("R1H", "RAL"), date(2021, 1, 1), 31, seed=4)
        m.replace_episodes(held, by="loader", source="test")
        opted = sorted(set(held.column("nhs_number").to_pylist()))[::7]
        m.replace_optouts(pa.array(opted, pa.int64()), by="ig", source="test")
        tokens = {}
        for partner, kind in PARTNERS.items():
            add_partner(m.sessions, partner, partner.title(), kind, by="lead")
            for item in ("dpia", "dspt", "dtac", "outcome_plan", "clinical_safety"):
                record_item(m.sessions, partner, item, f"{item}.pdf", date(2030, 12, 31), by="ig",
                            recorded=date(2026, 1, 2))
            accounts.add_user(m.sessions, f"{partner}-system", Role.PARTNER, password=None, org=partner)
            for status, dataset in itertools.product(Status, ("capacity", "apc_episodes")):
                agreement_id = f"{partner}-{status.value}-{dataset}"
                draft(m.sessions, terms(agreement_id, partner, dataset), by="lead")
                for action, day in PATHS[status]:
                    actor = SYSTEM if action == "expire" else LEAD if action == "submit" else IG
                    step(m.sessions, agreement_id, action, actor, today=day, reason="r", evidence="certificate")
                tokens[(partner, status, dataset)] = accounts.create_token(m.sessions, f"{partner}-system",
                                                                           agreement=agreement_id)[1]
        accounts.add_user(m.sessions, "analyst", Role.NATIONAL_ANALYST, password=None)
        staff = accounts.create_token(m.sessions, "analyst")[1]
        with TestClient(create_app(mutual=m)) as client:
            yield World(client, m, tokens, staff)


def call(w: World, token: str, dataset: str, fields: str, granularity: str) -> tuple[int, dict[str, Any]]:
    params = {"fields": fields, "orgs": "R1H", "from": "2021-01-01", "to": "2021-01-31"}
    if dataset == "capacity":  # the episodes are record level by definition
        params["granularity"] = granularity
    r = w.client.get(f"/api/v1/partner/{ENDPOINT[dataset]}", params=params,
                     headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json()


def expected_episodes(w: World) -> list[dict[str, Any]]:
    held = w.mutual.store.con.sql("SELECT sex FROM apc_episode WHERE trust = 'R1H' AND nhs_number NOT IN "
                                  "(SELECT nhs_number FROM optout)").fetchall()
    return sorted(({"trust": "R1H", "sex": sex} for (sex,) in held), key=lambda r: r["sex"])


def test_the_whole_matrix_through_the_api(world: World) -> None:
    with world.mutual.sessions() as s:
        before = len([e for e in audit.events(s) if e.action in ("gate.allow", "gate.deny")])
    calls = 0
    for (partner, status, agreed), token in world.tokens.items():
        for asked, granularity in itertools.product(ENDPOINT, ("aggregate", "pseudonymised_record")):
            if asked == "apc_episodes" and granularity == "aggregate":
                continue  # one call per (dataset, granularity) that the API can express
            for fields_kind, fields in FIELDS[asked].items():
                code, body = call(world, token, asked, fields, granularity)
                calls += 1
                allowed = (status == Status.ACTIVE and asked == agreed and fields_kind == "agreed"
                           and (granularity == "aggregate") == (agreed == "capacity"))
                where = (partner, status.value, agreed, asked, fields_kind, granularity)
                if not allowed:
                    assert code == 403, (where, body)
                    assert body["error"]["code"] == "not_agreed" and body["error"]["details"]["reasons"], where
                elif asked == "capacity":
                    assert code == 200, (where, body)
                    assert body["rows"] == [
                        {"org": "R1H", "period": "2021-01-05", "value": None, "disclosure": "suppressed: 1–7"},
                        {"org": "R1H", "period": "2021-01-05", "value": 450, "disclosure": "rounded to 5"}], body
                else:
                    assert code == 200, (where, body)
                    assert body["columns"] == ["trust", "sex"] and body["opted_out"] > 0
                    assert sorted(body["rows"], key=lambda r: r["sex"]) == expected_episodes(world), where
    with world.mutual.sessions() as s:
        decisions = [e for e in audit.events(s) if e.action in ("gate.allow", "gate.deny")]
        assert len(decisions) - before == calls, "every decision, allow or deny, is audited"
        assert audit.verify(s)[0] == []


def test_a_partner_token_opens_nothing_but_the_partner_api(world: World) -> None:
    token = world.tokens[("uni", Status.ACTIVE, "capacity")]
    for url in ("/api/v1/observations", "/api/v1/overview", "/api/v1/submissions", "/fhir/MeasureReport", "/"):
        r = world.client.get(url, headers={"Authorization": f"Bearer {token}", "accept": "application/json"})
        assert r.status_code == 403, (url, r.status_code)
    staff = world.client.get("/api/v1/partner/capacity", params={"fields": "org", "orgs": "R1H", "from": "2021-01-01",
                                                                "to": "2021-01-31"},
                             headers={"Authorization": f"Bearer {world.staff}"})
    assert staff.status_code == 403


def test_tokens_bind_a_partner_to_its_own_agreements_only(world: World, tmp_path: Path) -> None:
    with pytest.raises(AccountError, match="no agreement uni-active-capacity of partner bigtech"):
        accounts.create_token(world.mutual.sessions, "bigtech-system", agreement="uni-active-capacity")
    with pytest.raises(AccountError, match="needs --agreement"):
        accounts.create_token(world.mutual.sessions, "bigtech-system")
    with pytest.raises(AccountError, match="tokens only"):
        accounts.add_user(world.mutual.sessions, "pw-partner", Role.PARTNER, password="a-long-password", org="uni")


def test_a_record_level_extract_comes_as_parquet_with_its_report(world: World) -> None:
    import io

    import pyarrow.parquet as pq

    token = world.tokens[("startup", Status.ACTIVE, "apc_episodes")]
    r = world.client.get("/api/v1/partner/episodes", params={"fields": "trust,sex", "orgs": "R1H",
                                                             "from": "2021-01-01", "to": "2021-01-31",
                                                             "format": "parquet"},
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column_names == ["trust", "sex"] and table.num_rows == len(expected_episodes(world))
    assert int(r.headers["x-mutual-episodes-covered"]) - int(r.headers["x-mutual-opted-out"]) == table.num_rows
