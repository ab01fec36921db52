"""The web platform: one error shape for every failure, security headers, the body size limit, conditional
requests, the per-request workspace connections, the `mutual users`/`mutual tokens` commands and `mutual serve`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.responses import Response
from typer.testing import CliRunner

import mutual.cli.web  # noqa: F401  (adds serve, users and tokens to the app)
from conftest import ORGS_CSV
from mutual.app import Mutual, WorkspaceError, open_mutual
from mutual.cli.main import app as cli
from mutual.control import db
from mutual.web import accounts
from mutual.web.accounts import Principal, Role
from mutual.web.app import create_app
from mutual.web.auth import require
from mutual.web.caching import cached_body, conditional, current_vintage, etag_for, with_etag
from mutual.web.deps import WebSettings, background_mutual, get_mutual, store_lock
from mutual.web.errors import ApiError

probe = APIRouter()
made: list[str] = []


@probe.get("/api/test/number")
def number(n: int) -> dict[str, int]:
    return {"n": n}


@probe.get("/api/test/fail")
def fail() -> None:
    raise RuntimeError("the database password is hunter2")


@probe.get("/test/fail")
def fail_page() -> None:
    raise RuntimeError("the database password is hunter2")


@probe.get("/api/test/teapot")
def teapot() -> None:
    raise ApiError(409, "already_there", "it is already there", {"id": 3})


@probe.post("/api/test/upload")
async def upload(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}


@probe.get("/api/test/private")
def private(principal: Annotated[Principal, Depends(require())]) -> dict[str, str]:
    return {"user": principal.username}


@probe.get("/api/test/cached")
def cached(request: Request) -> Response:
    etag, not_modified = conditional(request, "cached")
    if not_modified is not None:
        return not_modified

    def make() -> bytes:
        made.append(etag)
        return b'{"ok": true}'

    return with_etag(Response(cached_body(request, etag, make), media_type="application/json"), etag)


@probe.get("/api/test/connection")
def connection(request: Request) -> dict[str, int]:
    m = get_mutual(request)
    assert get_mutual(request) is m  # one connection for the whole request
    time.sleep(0.3)
    return {"con": id(m.store.con)}


@probe.post("/api/test/half-write")
def half_write(request: Request) -> None:
    get_mutual(request).store.con.execute("BEGIN TRANSACTION")
    raise RuntimeError("failed between BEGIN and COMMIT")


@probe.get("/api/test/unread")
def unread(request: Request) -> dict[str, int]:
    row = get_mutual(request).store.con.execute("SELECT * FROM range(100000)").fetchone()
    return {"first": row[0] if row else -1}


@probe.post("/api/test/transaction")
def transaction(request: Request) -> dict[str, bool]:
    con = get_mutual(request).store.con
    con.sql("SELECT 1").fetchall()  # fails if the connection came back with a result left unread
    con.execute("BEGIN TRANSACTION")  # fails if the connection came back with a transaction still open
    con.execute("ROLLBACK")
    return {"ok": True}


@probe.post("/api/test/ingest")
def ingest(request: Request) -> dict[str, str]:
    path = Path(request.query_params["path"])
    with background_mutual(request) as m, store_lock(request):
        m.ingest(path, org="R1H")
    return {"vintage": current_vintage(request)}


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Mutual]:
    with open_mutual(tmp_path / "ws", create=True) as m:
        (tmp_path / "orgs.csv").write_text(ORGS_CSV)
        m.import_orgs(tmp_path / "orgs.csv")
        yield m


def make_app(m: Mutual, **settings: object) -> FastAPI:
    app = create_app(mutual=m, settings=WebSettings(**settings))  # type: ignore[arg-type]
    app.include_router(probe)
    return app


@pytest.fixture
def client(ws: Mutual) -> TestClient:
    return TestClient(make_app(ws), raise_server_exceptions=False)


def envelope(r: httpx.Response) -> dict[str, object]:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == r.status_code
    return dict(body["error"])


# -- the error shape ---------------------------------------------------------------------------------------------


def test_unknown_paths_answer_in_the_callers_shape(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and envelope(r)["code"] == "not_found"
    assert "/api/v1/nothing-here" in str(envelope(r)["message"])
    r = client.get("/nothing-here", headers={"accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "Page not found" in r.text
    r = client.get("/nothing-here", headers={"accept": "application/json"})
    assert r.status_code == 404 and envelope(r)["code"] == "not_found"
    r = client.get("/fhir/Nothing")
    outcome = r.json()
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/fhir+json")
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found"


def test_a_wrong_method_is_405_naming_the_allowed_ones(client: TestClient) -> None:
    r = client.delete("/api/test/number")
    assert r.status_code == 405 and envelope(r)["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"] and "DELETE is not allowed" in str(envelope(r)["message"])


def test_invalid_parameters_are_422_saying_where_without_echoing_the_input(client: TestClient) -> None:
    r = client.get("/api/test/number", params={"n": "hunter2"})
    error = envelope(r)
    assert r.status_code == 422 and error["code"] == "invalid_request"
    assert "query.n" in str(error["message"]) and "hunter2" not in r.text
    assert error["details"] == [{"loc": ["query", "n"], "msg": "Input should be a valid integer, unable to parse "
                                 "string as an integer", "type": "int_parsing"}]
    assert envelope(client.get("/api/test/number"))["code"] == "invalid_request"


def test_api_errors_keep_their_status_code_and_details(client: TestClient) -> None:
    r = client.get("/api/test/teapot")
    assert r.status_code == 409
    assert envelope(r) == {"status": 409, "code": "already_there", "message": "it is already there",
                           "details": {"id": 3}}


def test_denied_requests_get_the_envelope(ws: Mutual, client: TestClient) -> None:
    r = client.get("/api/test/private")
    assert r.status_code == 401 and envelope(r)["code"] == "unauthenticated"
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=None)
    r = client.get("/api/test/private", headers={"authorization": "Bearer mutual_nope"})
    assert r.status_code == 401 and envelope(r)["message"] == "unknown API token"


def test_an_unhandled_error_is_a_500_with_a_reference_and_the_traceback_only_in_the_log(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="mutual.web"):
        r = client.get("/api/test/fail")
    error = envelope(r)
    assert r.status_code == 500 and error["code"] == "internal_error"
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    reference = str(error["message"]).split("reference ")[1].split(")")[0]
    assert any(reference in rec.getMessage() and rec.exc_info for rec in caplog.records)
    r = client.get("/test/fail", headers={"accept": "text/html"})
    assert r.status_code == 500 and "problem with the service" in r.text and "hunter2" not in r.text


def test_bodies_over_the_limit_are_413_declared_or_streamed(ws: Mutual) -> None:
    client = TestClient(make_app(ws, max_body_bytes=1000), raise_server_exceptions=False)
    assert client.post("/api/test/upload", content=b"x" * 1000).json() == {"bytes": 1000}
    r = client.post("/api/test/upload", content=b"x" * 1001)
    assert r.status_code == 413 and envelope(r)["code"] == "too_large" and "1,000 bytes" in r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body arrives
        for _ in range(20):
            yield b"y" * 100

    r = client.post("/api/test/upload", content=chunks())
    assert r.status_code == 413 and envelope(r)["code"] == "too_large"
    r = client.post("/api/test/upload", content=b"x", headers={"content-length": "lots"})
    assert r.status_code == 400


# -- security headers --------------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(ws: Mutual, client: TestClient) -> None:
    accounts.add_user(ws.sessions, "alice", Role.NATIONAL_ANALYST, password=None)
    _, token = accounts.create_token(ws.sessions, "alice")
    signed_in = {"authorization": f"Bearer {token}"}
    responses = {"json": client.get("/healthz"), "html": client.get("/login"), "404": client.get("/nope"),
                 "500": client.get("/api/test/fail"), "422": client.get("/api/test/number"),
                 "413": TestClient(make_app(ws, max_body_bytes=10)).post("/api/test/upload", content=b"x" * 11),
                 "private": client.get("/api/test/private", headers=signed_in),
                 "openapi": client.get("/openapi.json")}
    for name, r in responses.items():
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, name
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, name
        assert r.headers["x-frame-options"] == "DENY", name
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["referrer-policy"] == "same-origin", name
        assert "strict-transport-security" not in r.headers, name
    assert responses["private"].headers["cache-control"] == "no-store"
    assert responses["html"].headers["cache-control"] == "no-store"
    assert "cache-control" not in responses["json"].headers  # anonymous, not HTML: nothing private in it
    assert "strict-transport-security" in TestClient(make_app(ws), base_url="https://testserver").get(
        "/healthz").headers


def test_the_api_is_described_but_no_page_loads_code_from_elsewhere(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "Mutual"
    for path in ("/docs", "/redoc"):  # FastAPI's pages load scripts from a CDN and inline: not served
        assert client.get(path).status_code == 404


# -- conditional requests ----------------------------------------------------------------------------------------


def test_etags_depend_on_every_part() -> None:
    assert etag_for("a", 1) == etag_for("a", 1)
    assert etag_for("a", 1) != etag_for("a", "1") != etag_for(("a", 1))
    assert etag_for().startswith('W/"')


def test_a_client_holding_the_etag_gets_304_until_the_data_changes(ws: Mutual, tmp_path: Path) -> None:
    made.clear()
    client = TestClient(make_app(ws), raise_server_exceptions=False)
    first = client.get("/api/test/cached")
    etag = first.headers["etag"]
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    again = client.get("/api/test/cached", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/api/test/cached", headers={"if-none-match": f'"other", {etag}'}).status_code == 304
    assert client.get("/api/test/cached").status_code == 200 and made == [etag]  # the body was made once
    data = tmp_path / "d.csv"
    data.write_text("org,metric,date,value\nR1H,ga_beds_occupied,2018-12-03,1452\n")
    assert client.post("/api/test/ingest", params={"path": str(data)}).status_code == 200
    changed = client.get("/api/test/cached", headers={"if-none-match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


# -- connections -------------------------------------------------------------------------------------------------


def test_concurrent_requests_each_get_their_own_connection_back_in_the_pool(ws: Mutual) -> None:
    app = make_app(ws)
    client = TestClient(app)
    seen: list[int] = []

    def call() -> None:
        seen.append(client.get("/api/test/connection").json()["con"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 3 and id(ws.store.con) not in seen
    state = app.state.web
    assert len(state._idle) == 3 and not state._lent
    assert client.get("/api/test/connection").json()["con"] in seen  # reused, not opened again


def test_a_connection_goes_back_to_the_pool_clean(ws: Mutual) -> None:
    """Neither an open transaction (a failed request) nor an unread result is handed on to the next request."""
    client = TestClient(make_app(ws), raise_server_exceptions=False)
    assert client.post("/api/test/half-write").status_code == 500
    assert client.post("/api/test/transaction").json() == {"ok": True}  # the same pooled connection, cleaned
    assert client.get("/api/test/unread").json() == {"first": 0}
    assert client.post("/api/test/transaction").json() == {"ok": True}


def test_the_app_opens_and_closes_its_own_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no workspace"):
        create_app(tmp_path / "none")
    with open_mutual(tmp_path / "ws", create=True):
        pass
    app = create_app(tmp_path / "ws")
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok", "control_plane": "sqlite", "migration": db.HEAD,
                                                 "migration_head": db.HEAD, "data_engine": "duckdb",
                                                 "data_vintage": None}
    with open_mutual(tmp_path / "ws"):  # closed at shutdown: the workspace can be opened again
        pass


# -- the command line --------------------------------------------------------------------------------------------

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), input=input, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "orgs.csv").write_text(ORGS_CSV)
    assert run("orgs", "import", str(tmp_path / "orgs.csv"), "--home", str(tmp_path / "ws"))[0] == 0
    return tmp_path / "ws"


def test_users_are_added_listed_disabled_and_enabled(home: Path) -> None:
    h = ("--home", str(home))
    code, out, err = run("users", "add", "alice", "--role", "national_analyst", "--password-stdin", *h,
                         input="correct horse battery staple\n")
    assert code == 0 and "added alice: national_analyst" in out, err
    code, out, _ = run("users", "add", "rita", "--role", "regional-analyst", "--region", "y56", "--no-password", *h)
    assert code == 0 and "rita: regional_analyst for Y56 (API tokens only)" in out
    code, _, err = run("users", "add", "tom", "--role", "trust_submitter", "--org", "R1H", *h,
                       input="a long enough secret\na long enough secret\n")  # prompted twice, not echoed
    assert code == 0, err
    code, _, err = run("users", "add", "bob", "--role", "wizard", "--no-password", *h)
    assert code == 1 and "unknown role 'wizard'" in err
    code, _, err = run("users", "add", "bob", "--role", "trust_submitter", "--no-password", *h)
    assert code == 1 and "needs --org" in err
    code, _, err = run("users", "add", "bob", "--role", "admin", "--password-stdin", *h, input="short\n")
    assert code == 1 and "at least 12 characters" in err
    code, out, _ = run("users", "list", *h)
    assert code == 0 and all(name in out for name in ("alice", "rita", "tom")) and "tokens only" in out
    assert "correct horse" not in out and "argon2" not in out
    assert run("users", "disable", "alice", *h)[1].strip() == "disabled alice"
    assert "disabled" in run("users", "list", *h)[1]
    assert run("users", "enable", "alice", *h)[0] == 0
    code, _, err = run("users", "disable", "nobody", *h)
    assert code == 1 and "no user 'nobody'" in err
    code, out, _ = run("users", "password", "alice", "--password-stdin", *h, input="another long secret\n")
    assert code == 0 and "new password set for alice" in out


def test_tokens_are_printed_once_listed_without_the_secret_and_revoked(home: Path) -> None:
    h = ("--home", str(home))
    assert run("users", "add", "feed", "--role", "trust_submitter", "--org", "R1H", "--no-password", *h)[0] == 0
    code, out, err = run("tokens", "create", "--user", "feed", "--name", "sitrep feed", "--expires", "30", *h)
    secret = out.strip()
    assert code == 0 and secret.startswith("mutual_") and len(out.splitlines()) == 1
    assert "cannot be shown again" in err and "expires" in err
    code, out, _ = run("tokens", "list", *h)
    assert code == 0 and "sitrep feed" in out and "active" in out and secret not in out
    with accounts.control_plane(home) as sessions:
        assert accounts.token_user(sessions, secret)[0].username == "feed"
        token_id = accounts.list_tokens(sessions)[0].id
    code, out, _ = run("tokens", "revoke", str(token_id), *h)
    assert code == 0 and f"revoked token {token_id}" in out
    assert "revoked" in run("tokens", "list", "--user", "feed", *h)[1]
    code, _, err = run("tokens", "create", "--user", "nobody", *h)
    assert code == 1 and "no user 'nobody'" in err
    code, _, err = run("tokens", "revoke", "999", *h)
    assert code == 1 and "no API token 999" in err


def test_user_commands_need_a_workspace(tmp_path: Path) -> None:
    code, _, err = run("users", "list", "--home", str(tmp_path / "none"))
    assert code == 1 and "no workspace" in err


# -- mutual serve ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_on_loopback_and_stops_cleanly(home: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", "import mutual.cli.web; from mutual.cli.main import app; app(prog_name='mutual')",
               "serve", "--port", str(port), "--home", str(home), "--log-level", "warning"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.headers["x-frame-options"] == "DENY" and "server" not in r.headers
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/organisations", timeout=5).status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, err
    assert f"at http://127.0.0.1:{port}/" in err
    with open_mutual(home):  # the server let go of the workspace
        pass
