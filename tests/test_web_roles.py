"""The role × endpoint matrix: every route of the app, called by nobody and by every role, answers as
``mutual.web.access.ROUTES`` declares (401 without credentials, 403 for a role it does not list, and neither for
one it lists), and that table agrees with the ``require`` each route depends on."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient

from conftest import ORGS_CSV
from mutual.app import Mutual, open_mutual
from mutual.governance.agreements import Agreement
from mutual.governance.records import add_partner, draft
from mutual.web import access, accounts, sessions
from mutual.web.accounts import Role
from mutual.web.app import create_app
from mutual.web.auth import require

# What a caller of each role sees of the data below: everything is R1H's (London), so every scoped role may see it
# and a refusal can only come from the route's roles.
DATA = ("org,metric,date,value\nR1H,ga_beds_occupied,2018-12-03,1452\nR1H,ga_beds_open,2018-12-03,1491\n"
        "R1H,ga_beds_occupied,2018-12-04,1460\nR1H,ga_beds_open,2018-12-04,1491\n")
SCOPE = {Role.REGIONAL_ANALYST: {"region": "Y56"}, Role.TRUST_SUBMITTER: {"org": "R1H"},
         Role.PARTNER: {"org": "uni-leeds"}}
AGREEMENT = {"id": "A1", "partner": "uni-leeds", "title": "Study", "purpose": "A study of winter bed pressure.",
             "purpose_category": "research", "legal_basis_art6": "6(1)(e) public task",
             "confidentiality_basis": "anonymised", "datasets": ["capacity"],
             "fields": {"capacity": ["org", "value"]}, "granularity": "aggregate", "orgs": ["R1H"],
             "data_from": "2018-12-01", "data_to": "2018-12-31", "start": "2026-01-01", "end": "2030-12-31",
             "retention_days": 30}
# Sample values for path parameters, by name; anything else gets "1".
SAMPLES = {"code": "R1H", "org_id": "R1H", "location_id": "R1H"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, Mutual, dict[Role, str]]]:
    """One small workspace for the module: London's trusts, two days of one trust's values, a user and a token of
    every role (reading it is all the matrix does, bar calls refused before they do anything)."""
    tmp = tmp_path_factory.mktemp("roles")
    with open_mutual(tmp / "ws", create=True) as m:
        (tmp / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp / "orgs.csv")
        (tmp / "data.csv").write_text(DATA)
        m.ingest(tmp / "data.csv", org="R1H")
        add_partner(m.sessions, "uni-leeds", "University of Leeds", "university", by="lead")
        draft(m.sessions, Agreement.model_validate(AGREEMENT), by="lead")
        tokens = {}
        for role in Role:
            name = role.value.replace("_", "-")
            accounts.add_user(m.sessions, name, role, password=None, orgs=m.orgs(), **SCOPE.get(role, {}))
            bound = AGREEMENT["id"] if role == Role.PARTNER else None
            tokens[role] = accounts.create_token(m.sessions, name, agreement=bound)[1]
        yield create_app(mutual=m), m, tokens


def url_for(path: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda g: SAMPLES.get(g.group(1), "1"), path)


def required_inputs(dependant: Dependant) -> bool:
    """Whether a call needs anything but credentials: a path parameter, or a required query, header or body."""
    if dependant.path_params or dependant.body_params:
        return True
    fields = [*dependant.query_params, *dependant.header_params, *dependant.cookie_params]
    if any(f.field_info.is_required() for f in fields):  # type: ignore[attr-defined]
        return True
    return any(required_inputs(sub) for sub in dependant.dependencies)


def error_code(r: Any) -> str:
    body = r.json()
    if "resourceType" in body:
        return str(body["issue"][0]["code"])
    return str(body["error"]["code"])


def routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    return list(access.app_routes(app))


def test_the_table_and_the_routes_agree(world: tuple[FastAPI, Mutual, dict[Role, str]]) -> None:
    app, _, _ = world
    assert access.problems(app) == []
    assert {(m, p) for m, p, _ in routes(app)} == set(access.ROUTES)


def test_every_route_answers_every_role_as_the_table_says(world: tuple[FastAPI, Mutual, dict[Role, str]]) -> None:
    app, _, tokens = world
    client = TestClient(app, raise_server_exceptions=False)
    failures = []
    started = time.monotonic()
    for method, path, route in routes(app):
        rule = access.ROUTES[(method, path)]
        url = url_for(path)
        dependant = getattr(route, "dependant", None)
        simple_read = method == "GET" and (dependant is None or not required_inputs(dependant))
        r = client.request(method, url, headers={"accept": "application/json"}, follow_redirects=False)
        if rule is None:  # (a public route may still refuse for its own reasons: /login without its form token)
            if r.status_code == 401 or r.status_code >= 500:
                failures.append(f"{method} {path} (public) without credentials: {r.status_code} {r.text[:150]}")
        elif r.status_code != 401 or error_code(r) not in ("unauthenticated", "login"):
            failures.append(f"{method} {path} without credentials: {r.status_code}, expected 401")
        for role, token in tokens.items():
            r = client.request(method, url, headers={"authorization": f"Bearer {token}", "accept": "application/json"},
                               follow_redirects=False)
            if rule is not None and role not in rule:
                if r.status_code != 403 or error_code(r) != "forbidden":
                    failures.append(f"{method} {path} as {role.value}: {r.status_code}, expected 403")
            elif r.status_code == 401 or (r.status_code == 403 and rule is not None) or r.status_code >= 500:
                failures.append(f"{method} {path} as {role.value}: {r.status_code} {r.text[:200]}")
            elif simple_read and not (200 <= r.status_code < 300 or r.status_code == 303):  # 303: their own start
                failures.append(f"{method} {path} as {role.value}: {r.status_code}, expected 2xx {r.text[:200]}")
    assert not failures, "\n".join(failures)
    assert time.monotonic() - started < 60


def test_sessions_get_the_same_answers_as_tokens(world: tuple[FastAPI, Mutual, dict[Role, str]]) -> None:
    """Every read, as every role signed in through the browser: the role rules do not depend on how one signs in."""
    app, m, _ = world
    state = app.state.web
    failures = []
    for role in Role:
        user = accounts.get_user(m.sessions, role.value.replace("_", "-"))
        cookie = sessions.sign_session(state.secret, sessions.new_session(user.id, user.session_epoch, time.time()))
        client = TestClient(app, cookies={sessions.SESSION_COOKIE: cookie}, raise_server_exceptions=False)
        for method, path, _ in routes(app):
            rule = access.ROUTES[(method, path)]
            if method != "GET" or rule is None:
                continue
            r = client.get(url_for(path), headers={"accept": "application/json"})
            refused = r.status_code in (401, 403)
            if refused != (role not in rule):
                failures.append(f"GET {path} as {role.value} (session): {r.status_code}")
    assert not failures, "\n".join(failures)


def test_a_route_the_table_does_not_know_stops_the_app() -> None:
    extra = APIRouter()

    @extra.get("/api/v1/secret")
    def secret(_: Annotated[Any, Depends(require(Role.ADMIN))]) -> dict[str, str]:
        return {}

    @extra.get("/api/v1/leaky")
    def leaky() -> dict[str, str]:
        return {}

    app2 = FastAPI()
    app2.include_router(extra)
    table = {("GET", "/api/v1/secret"): access.roles(Role.PLANNER), ("GET", "/api/v1/gone"): access.PUBLIC}
    found = access.problems(app2, table)
    assert any("GET /api/v1/secret: the table says {planner} but the route requires {admin}" in p for p in found)
    assert any("GET /api/v1/leaky is not in mutual.web.access.ROUTES" in p for p in found)
    assert any("GET /api/v1/gone is in mutual.web.access.ROUTES but the app has no such route" in p for p in found)
    with pytest.raises(RuntimeError, match="disagree"):
        access.enforce(app2)


def test_gates_of_included_routers_count() -> None:
    """A ``require`` on a router applies to each of its routes, and several requirements must all pass."""
    inner = APIRouter(dependencies=[Depends(require(Role.ADMIN, Role.PLANNER))])

    @inner.get("/x")
    def x(_: Annotated[Any, Depends(require(Role.PLANNER, Role.NATIONAL_ANALYST))]) -> dict[str, str]:
        return {}

    app = FastAPI()
    app.include_router(inner, prefix="/api/v1")
    [route] = [r for _, path, r in access.app_routes(app) if path == "/api/v1/x"]
    assert access.declared_roles(route) == frozenset({Role.PLANNER})
