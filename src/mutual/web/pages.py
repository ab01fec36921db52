"""The platform's own pages: sign-in, sign-out and the health check."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mutual.web import accounts
from mutual.web.accounts import AuthFailure, Principal
from mutual.web.auth import end_session_cookie, require, secure_cookies, start_session
from mutual.web.deps import get_mutual, web_state
from mutual.web.errors import ApiError
from mutual.web.sessions import LOGIN_CSRF_COOKIE, check_login_csrf, new_login_csrf
from mutual.web.templating import render

router = APIRouter(include_in_schema=False)

HOME = "/"
LOGIN_FORM_SECONDS = 2 * 3600
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\\\x00-\x1f\x7f]*")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or ``https://...``)."""
    return target if target and len(target) <= 2000 and _LOCAL_PATH.fullmatch(target) else HOME


def _login_page(request: Request, *, next_path: str, error: str | None = None, username: str = "",
                status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    token = new_login_csrf(web_state(request).secret)
    response = render(request, "login.html", {"login_csrf": token, "next": next_path, "error": error,
                                              "username": username}, status_code=status_code, headers=headers)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_FORM_SECONDS, path="/login", httponly=True,
                        samesite="lax", secure=secure_cookies(request))
    return response


@router.get("/healthz")
def healthz(request: Request) -> dict[str, str | None]:
    """Liveness and readiness: both planes answer. Says which engines hold them, the control plane's migration
    (and the newest this Mutual knows), and the data's vintage (when the newest value was recorded)."""
    from mutual.control import db
    from mutual.web.api.overview import vintage_time

    m = get_mutual(request)
    if not m.store.has_table("observation"):
        raise ApiError(503, "unavailable", "the workspace has no data plane")
    migration = db.current_revision(m.engine)
    if migration != db.HEAD:
        raise ApiError(503, "unavailable", f"the control plane is at migration {migration}, not {db.HEAD}: run "
                                           "`mutual db upgrade`")
    vintage = vintage_time(m.store)
    return {"status": "ok", "control_plane": m.engine.url.get_backend_name(), "migration": migration,
            "migration_head": db.HEAD, "data_engine": m.store.engine,
            "data_vintage": vintage.isoformat(timespec="seconds") + "Z" if vintage else None}


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_path=safe_next(next))


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    state = web_state(request)
    target = safe_next(next)
    if not check_login_csrf(state.secret, request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(request, next_path=target, username=username, status_code=403,
                           error="The sign-in form had expired or was not sent from this site: please try again.")
    if not username.strip() or not password:
        return _login_page(request, next_path=target, username=username, status_code=400,
                           error="Enter your user name and your password.")
    user_key = "user:" + username.strip().lower()
    address_key = "address:" + (request.client.host if request.client else "unknown")
    wait = max(state.user_failures.wait(user_key), state.address_failures.wait(address_key))
    if wait > 0:
        seconds = int(wait) + 1
        return _login_page(request, next_path=target, username=username, status_code=429,
                           headers={"Retry-After": str(seconds)},
                           error=f"Too many failed sign-ins: try again in {seconds} seconds.")
    try:
        user = await run_in_threadpool(accounts.sign_in, state.mutual.sessions, username, password)
    except AuthFailure:
        state.user_failures.failed(user_key)
        state.address_failures.failed(address_key)
        return _login_page(request, next_path=target, username=username, status_code=401,
                           error="Wrong user name or password, or the account is disabled.")
    state.user_failures.reset(user_key)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, user)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", httponly=True, samesite="lax",
                           secure=secure_cookies(request))
    return response


@router.post("/logout")
async def logout(request: Request, principal: Annotated[Principal, Depends(require())]) -> Response:
    """Sign out: every session of this user ends (see ``sessions``). A token client has nothing to end."""
    if principal.via != "session":
        return Response(status_code=204)
    claims = request.state.session
    await run_in_threadpool(accounts.end_sessions, web_state(request).mutual.sessions, claims.user_id)
    response = RedirectResponse("/login", status_code=303)
    end_session_cookie(request, response)
    return response
