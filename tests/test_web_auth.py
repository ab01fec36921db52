"""Sign-in, sessions, CSRF, API tokens and scope: who the web believes, and when it stops believing them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Form
from fastapi.testclient import TestClient
from sqlalchemy import update

from conftest import ORGS_CSV
from mutual.app import Mutual, open_mutual
from mutual.control.models import ApiToken
from mutual.web import access, accounts, sessions
from mutual.web.accounts import STAFF, AccountError, AuthFailure, Principal, Role
from mutual.web.app import create_app
from mutual.web.auth import require, visible_orgs
from mutual.web.deps import WebSettings
from mutual.web.pages import safe_next
from mutual.web.ratelimit import FailureLimiter

# the specification runs with the control plane on each engine (tests/engines.py)
pytestmark = pytest.mark.usefixtures("control_plane")

PASSWORD = "correct horse battery staple"

# Two more organisations outside London, so that scope has something to leave out.
MORE_ORGS = """code,name,kind,parent,lat,lon
E54000040,Somerset,stp,Y58,,
RBA,Taunton and Somerset NHS Foundation Trust,trust,E54000040,51.01,-3.12
"""

probe = APIRouter()


@probe.get("/api/test/probe")
def probe_read(principal: Annotated[Principal, Depends(require())]) -> dict[str, str]:
    return {"user": principal.username, "via": principal.via}


@probe.get("/test/page")
def probe_page(principal: Annotated[Principal, Depends(require())]) -> dict[str, str]:
    return {"user": principal.username}


@probe.post("/api/test/admin")
def probe_admin(principal: Annotated[Principal, Depends(require(Role.ADMIN))]) -> dict[str, str]:
    return {"user": principal.username}


@probe.post("/api/test/form")
def probe_form(principal: Annotated[Principal, Depends(require())], note: Annotated[str, Form()] = "",
               ) -> dict[str, str]:
    return {"user": principal.username, "note": note}


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Mutual]:
    with open_mutual(tmp_path / "ws", create=True) as m:
        orgs = tmp_path / "orgs.csv"
        orgs.write_text(ORGS_CSV + MORE_ORGS.split("\n", 1)[1])
        m.import_orgs(orgs)
        yield m


def make_app(m: Mutual, **settings: object) -> FastAPI:
    app = create_app(mutual=m, settings=WebSettings(**settings))  # type: ignore[arg-type]
    app.include_router(probe)
    return app


@pytest.fixture
def app(ws: Mutual) -> FastAPI:
    return make_app(ws)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def login_token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    token = login_token(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token, **extra},
                       follow_redirects=False)


def session_for(app: FastAPI, username: str) -> tuple[str, str]:
    """A signed session cookie and its CSRF token, as a sign-in would make them (without argon2's cost)."""
    state = app.state.web
    user = accounts.get_user(state.mutual.sessions, username)
    claims = sessions.new_session(user.id, user.session_epoch, time.time())
    return sessions.sign_session(state.secret, claims), sessions.csrf_for_session(state.secret, claims.sid)


# -- passwords -------------------------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    hashed = accounts.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert accounts.verify_password(hashed, PASSWORD)
    assert not accounts.verify_password(hashed, PASSWORD + "!")
    assert not accounts.verify_password(None, PASSWORD)
    assert not accounts.verify_password("not a hash", PASSWORD)
    with pytest.raises(AccountError, match="at least 12"):
        accounts.hash_password("short")


def test_users_are_stored_with_a_hash_never_the_password(ws: Mutual) -> None:
    user = accounts.add_user(ws.sessions, "Alice", "national analyst", password=PASSWORD)
    assert user.username == "alice" and user.role == "national_analyst" and user.created_at is not None
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_user(ws.sessions, "alice", Role.ADMIN, password=None)
    with pytest.raises(AccountError, match="unknown role"):
        accounts.add_user(ws.sessions, "bob", "superuser", password=None)
    with pytest.raises(AccountError, match="not a valid user name"):
        accounts.add_user(ws.sessions, "bob smith", Role.ADMIN, password=None)


# -- scope -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "region", "org", "message"), [
    (Role.REGIONAL_ANALYST, None, None, "needs --region"),
    (Role.REGIONAL_ANALYST, "E54000029", None, "not a region"),
    (Role.REGIONAL_ANALYST, "Y56", "R1H", "not --org"),
    (Role.TRUST_SUBMITTER, None, None, "needs --org"),
    (Role.TRUST_SUBMITTER, None, "E54000029", "is a stp, not a trust"),
    (Role.TRUST_SUBMITTER, None, "ZZZ", "no organisation ZZZ"),
    (Role.NATIONAL_ANALYST, "Y56", None, "sees everything"),
    (Role.PLANNER, None, "R1H", "sees everything"),
])
def test_scope_is_checked_against_the_workspace(ws: Mutual, role: Role, region: str | None, org: str | None,
                                                message: str) -> None:
    with pytest.raises(AccountError, match=message):
        accounts.check_scope(role, region, org, ws.orgs())


def test_each_role_sees_its_organisations(ws: Mutual) -> None:
    def sees(role: Role, region: str | None = None, org: str | None = None) -> set[str] | None:
        return visible_orgs(Principal("u", role, region, org, "token"), ws)

    london = sees(Role.REGIONAL_ANALYST, region="Y56")
    assert london is not None and {"Y56", "E54000029", "E54000027", "R1H", "RAL", "RYJ"} <= london
    assert not london & {"RBA", "E54000040", "Y58", "ENG"}
    assert sees(Role.REGIONAL_ANALYST, region="Y58") == {"Y58", "E54000040", "RBA"}
    assert sees(Role.TRUST_SUBMITTER, org="R1H") == {"R1H"}
    for role in (Role.NATIONAL_ANALYST, Role.PLANNER, Role.ADMIN):
        assert sees(role) is None


# -- sign-in and sessions ----------------------------------------------------------------------------------------


def test_signing_in_sets_a_signed_httponly_lax_session_cookie(ws: Mutual, client: TestClient) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=PASSWORD)
    r = sign_in(client, "alice", next="/test/page")
    assert r.status_code == 303 and r.headers["location"] == "/test/page"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mutual_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags and "secure" not in flags
    assert client.get("/api/test/probe").json() == {"user": "alice", "via": "session"}
    assert accounts.get_user(ws.sessions, "alice").last_login_at is not None


def test_the_session_cookie_is_secure_over_https_or_when_told(ws: Mutual) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=PASSWORD)
    r = sign_in(TestClient(make_app(ws), base_url="https://testserver"), "alice")
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mutual_session="))
    assert "secure" in cookie.lower()
    # behind a TLS proxy the flag marks them Secure though the request came over http
    r = TestClient(make_app(ws, secure_cookies=True)).get("/login")
    assert "secure" in r.headers["set-cookie"].lower()


def test_a_wrong_password_an_unknown_user_and_a_disabled_user_are_all_refused_alike(ws: Mutual,
                                                                                  client: TestClient) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=PASSWORD)
    accounts.add_user(ws.sessions, "dora", Role.NATIONAL_ANALYST, password=PASSWORD)
    accounts.set_disabled(ws.sessions, "dora", True)
    for username, password in (("alice", "wrong password!!"), ("nobody", PASSWORD), ("dora", PASSWORD)):
        r = sign_in(client, username, password)
        assert r.status_code == 401, username
        assert "Wrong user name or password, or the account is disabled" in r.text
        assert "mutual_session" not in r.headers.get("set-cookie", "")
    assert client.get("/api/test/probe").status_code == 401


def test_the_login_form_needs_its_own_csrf_token(ws: Mutual, client: TestClient) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=PASSWORD)
    client.get("/login")
    r = client.post("/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "mutual_session" not in r.headers.get("set-cookie", "")
    forged = sessions.new_login_csrf(b"x" * 32)  # signed with another secret
    client.cookies.set("mutual_login_csrf", forged, path="/login")
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": forged},
                    follow_redirects=False)
    assert r.status_code == 403


def test_failed_sign_ins_are_rate_limited(ws: Mutual) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=PASSWORD)
    client = TestClient(make_app(ws, login_failures_per_minute=2))
    assert [sign_in(client, "alice", "wrong password!!").status_code for _ in range(2)] == [401, 401]
    r = sign_in(client, "alice")  # the right password, but too soon
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "Too many failed sign-ins" in r.text


def test_the_failure_limiter_forgets_after_its_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(2, 60, clock=lambda: now[0])
    limiter.failed("k")
    assert limiter.wait("k") == 0
    now[0] = 10
    limiter.failed("k")
    assert limiter.wait("k") == pytest.approx(50)
    now[0] = 61
    assert limiter.wait("k") == 0
    limiter.failed("k")
    limiter.reset("k")
    assert limiter.wait("k") == 0


def test_after_sign_in_only_local_paths_are_followed() -> None:
    assert safe_next("/api/v1/alerts?x=1") == "/api/v1/alerts?x=1"
    for hostile in ("//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "", None,
                    "/a\nb"):
        assert safe_next(hostile) == "/"


def test_signing_out_ends_the_session(ws: Mutual, app: FastAPI, client: TestClient) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=PASSWORD)
    sign_in(client, "alice")
    cookie = client.cookies.get("mutual_session")
    assert cookie and client.get("/api/test/probe").status_code == 200
    claims = sessions.read_session(app.state.web.secret, cookie, time.time(), 3600)
    assert claims is not None
    token = sessions.csrf_for_session(app.state.web.secret, claims.sid)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/api/test/probe").status_code == 401
    replay = TestClient(app, cookies={"mutual_session": cookie})  # the old cookie, kept by an attacker
    r = replay.get("/api/test/probe")
    assert r.status_code == 401 and "session has ended" in r.json()["error"]["message"]


def test_a_forged_expired_or_disabled_session_is_refused(ws: Mutual, app: FastAPI) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=None)
    cookie, _ = session_for(app, "alice")
    assert TestClient(app, cookies={"mutual_session": cookie}).get("/api/test/probe").status_code == 200
    payload, mac = cookie.split(".")
    tampered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    assert TestClient(app, cookies={"mutual_session": tampered}).get("/api/test/probe").status_code == 401
    secret = app.state.web.secret
    old = sessions.sign_session(secret, sessions.SessionClaims(1, 0, "sid", int(time.time()) - 13 * 3600))
    assert TestClient(app, cookies={"mutual_session": old}).get("/api/test/probe").status_code == 401
    accounts.set_disabled(ws.sessions, "alice", True)
    assert TestClient(app, cookies={"mutual_session": cookie}).get("/api/test/probe").status_code == 401


def test_unauthenticated_browsers_are_sent_to_sign_in_and_machines_get_401(client: TestClient) -> None:
    r = client.get("/test/page?x=1", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/test/page%3Fx%3D1"
    r = client.get("/test/page", headers={"accept": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = client.get("/api/test/probe", headers={"accept": "text/html"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("Bearer")


# -- CSRF --------------------------------------------------------------------------------------------------------


def allowed_role(rule: access.Access) -> Role:
    return Role.ADMIN if rule is None or Role.ADMIN in rule else sorted(rule)[0]


def test_every_state_changing_route_refuses_a_session_without_its_csrf_token(ws: Mutual) -> None:
    """Walks every POST/PUT/PATCH/DELETE route of the app (the platform's, the API's, FHIR's) with a session."""
    app = create_app(mutual=ws)
    for role in STAFF:  # a partner's system has tokens only: no session to ride
        accounts.add_user(ws.sessions, role.value.replace("_", "-"), role, password=None,
                          region="Y56" if role == Role.REGIONAL_ANALYST else None,
                          org="R1H" if role == Role.TRUST_SUBMITTER else None, orgs=ws.orgs())
    checked = []
    for method, path, _ in access.app_routes(app):
        rule = access.ROUTES[(method, path)]
        if method == "GET" or rule is None:
            continue  # reads change nothing; public routes have no session to ride (/login has its own token)
        url = re.sub(r"\{[^}]+\}", "1", path)
        cookie, token = session_for(app, allowed_role(rule).value.replace("_", "-"))
        client = TestClient(app, cookies={"mutual_session": cookie}, raise_server_exceptions=False)
        for sent in ({}, {"csrf_token": "wrong"}):
            r = client.request(method, url, data=sent)
            assert r.status_code == 403 and "csrf" in r.text.lower(), (method, path, r.status_code, r.text[:200])
        r = client.request(method, url, data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code not in (401, 403), (method, path, r.status_code, r.text[:300])
        r = client.request(method, url, headers={"x-csrf-token": token}, follow_redirects=False)
        assert r.status_code not in (401, 403) or path == "/logout", (method, path, r.status_code)
        checked.append((method, path))
    assert ("POST", "/logout") in checked


def test_csrf_is_checked_on_forms_and_json_and_not_for_bearer_tokens(ws: Mutual, app: FastAPI) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=None)
    cookie, token = session_for(app, "alice")
    browser = TestClient(app, cookies={"mutual_session": cookie})
    assert browser.post("/api/test/form", data={"note": "hi"}).status_code == 403
    assert browser.post("/api/test/form", data={"note": "hi", "csrf_token": token}).json()["note"] == "hi"
    assert browser.post("/api/test/form", files={"upload": ("a.csv", b"x")},
                        data={"note": "multi", "csrf_token": token}).json()["note"] == "multi"
    assert browser.post("/api/test/form", json={}, headers={"x-csrf-token": token}).status_code == 200
    _, secret = accounts.create_token(ws.sessions, "alice")
    system = TestClient(app, headers={"authorization": f"Bearer {secret}"})
    assert system.post("/api/test/form", data={"note": "no token needed"}).status_code == 200


def test_a_role_outside_the_routes_roles_is_forbidden_before_csrf_is_looked_at(ws: Mutual, app: FastAPI) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=None)
    cookie, token = session_for(app, "alice")
    r = TestClient(app, cookies={"mutual_session": cookie}).post("/api/test/admin", data={"csrf_token": token})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert "national analyst may not" in r.json()["error"]["message"]


# -- API tokens --------------------------------------------------------------------------------------------------


def test_bearer_tokens_valid_revoked_expired_wrong_and_disabled(ws: Mutual, app: FastAPI) -> None:
    accounts.add_user(ws.sessions, "feed", Role.TRUST_SUBMITTER, password=None, org="R1H", orgs=ws.orgs())
    info, secret = accounts.create_token(ws.sessions, "feed", name="sitrep feed", expires_days=30)
    assert secret.startswith("mutual_") and info.expires_at is not None

    def call(token: str, scheme: str = "Bearer") -> tuple[int, str]:
        r = TestClient(app, headers={"authorization": f"{scheme} {token}"}).get("/api/test/probe")
        return r.status_code, r.json().get("error", {}).get("message", "") if r.status_code != 200 else r.json()["via"]

    assert call(secret) == (200, "token")
    with ws.sessions() as s:
        stored = s.get(ApiToken, info.id)
        assert stored is not None and stored.token_hash == accounts.token_hash(secret) and secret not in (
            stored.token_hash, stored.prefix)
        assert stored.last_used_at is not None
    assert call(secret + "x") == (401, "unknown API token")
    assert call("not-ours") == (401, "the bearer token is not a Mutual API token")
    assert call(secret, "Basic")[0] == 401
    with ws.sessions() as s, s.begin():
        s.execute(update(ApiToken).where(ApiToken.id == info.id)
                  .values(expires_at=accounts.utcnow() - timedelta(minutes=1)))
    status, message = call(secret)
    assert status == 401 and "expired" in message
    _, second = accounts.create_token(ws.sessions, "feed")
    assert call(second)[0] == 200
    revoked = accounts.revoke_token(ws.sessions, accounts.list_tokens(ws.sessions, "feed")[-1].id)
    assert revoked.state(accounts.utcnow()) == "revoked"
    status, message = call(second)
    assert status == 401 and "revoked" in message
    _, third = accounts.create_token(ws.sessions, "feed")
    accounts.set_disabled(ws.sessions, "feed", True)
    status, message = call(third)
    assert status == 401 and "disabled" in message


def test_credentials_are_looked_up_once_until_the_control_plane_changes(ws: Mutual, app: FastAPI,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    accounts.add_user(ws.sessions, "feed", Role.NATIONAL_ANALYST, password=None)
    info, secret = accounts.create_token(ws.sessions, "feed")
    lookups = []
    real = accounts.token_user

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        lookups.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(accounts, "token_user", counting)
    client = TestClient(app, headers={"authorization": f"Bearer {secret}"})
    assert [client.get("/api/test/probe").status_code for _ in range(5)] == [200] * 5
    assert len(lookups) == 2  # the first lookup records the token's use, a change that the second one sees
    with accounts.control_plane(ws.workspace.home) as other:  # as `mutual tokens revoke` would, from elsewhere
        accounts.revoke_token(other, info.id)
    assert client.get("/api/test/probe").status_code == 401 and len(lookups) == 3


def test_token_lookup_says_why_it_fails() -> None:
    with pytest.raises(AuthFailure, match="not a Mutual API token"):
        accounts.token_user(None, "x" * 300)  # type: ignore[arg-type]


def test_the_signing_secret_is_kept_in_the_workspace_readable_by_its_owner_only(app: FastAPI, ws: Mutual) -> None:
    path = ws.workspace.home / sessions.SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert sessions.load_secret(ws.workspace.home) == app.state.web.secret
