"""Who is asking, and may they: session cookies and bearer tokens, roles, CSRF on state-changing requests, and the
organisations each user may see.

Every route declares its roles with ``Depends(require(...))`` (``access.ROUTES`` lists them and the app refuses
to start when the two disagree). A request with a session cookie that changes state (POST, PUT, PATCH, DELETE)
must carry the session's CSRF token, in the ``csrf_token`` form field or the ``X-CSRF-Token`` header; a request
with a bearer token is exempt, since a browser never sends one by itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mutual.app import Mutual
from mutual.control.models import User
from mutual.web import accounts
from mutual.web.accounts import AuthFailure, Principal, Role, principal_of
from mutual.web.deps import WebState, web_state
from mutual.web.errors import ApiError
from mutual.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionClaims,
    check_csrf,
    csrf_for_session,
    new_session,
    read_session,
    sign_session,
)

__all__ = ["Principal", "Role", "RoleGate", "csrf_token", "require", "visible_orgs"]

RECHECK_SECONDS = 60.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _session_user(state: WebState, claims: SessionClaims) -> User:
    user = accounts.user_by_id(state.mutual.sessions, claims.user_id)
    if user is None or user.disabled or user.session_epoch != claims.epoch:
        raise AuthFailure("your session has ended: sign in again")
    return user


def _identify(state: WebState, authorization: str | None, cookie: str | None) -> tuple[Principal, SessionClaims | None]:
    """The principal behind a request's credentials (a bearer token wins over a cookie); ApiError 401 otherwise.
    Answers are cached until the control plane changes, for at most ``RECHECK_SECONDS`` (so a token's last use
    is still recorded). Blocking (control-plane reads): run it off the event loop."""
    if authorization is None and cookie is None:
        raise ApiError(401, "unauthenticated", "sign in, or send an API token as Authorization: Bearer <token>")
    credential = f"token:{authorization}" if authorization is not None else f"cookie:{cookie}"
    key = hashlib.sha256(credential.encode()).hexdigest()  # the cache keeps no credential itself
    now = time.time()
    version = state.credentials.version()
    known: tuple[Principal, SessionClaims | None] | None = state.credentials.get(key, version, now)
    if known is not None:
        return known
    until = now + RECHECK_SECONDS
    try:
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthFailure("use Authorization: Bearer <token>")
            user, expires, agreement = accounts.token_user(state.mutual.sessions, token.strip())
            if expires is not None:
                until = min(until, expires.replace(tzinfo=UTC).timestamp())
            found: tuple[Principal, SessionClaims | None] = (principal_of(user, "token", agreement), None)
        else:
            max_age = state.settings.session_hours * 3600
            claims = read_session(state.secret, cookie or "", now, max_age)
            if claims is None:
                raise AuthFailure("your session has ended: sign in again")
            until = min(until, claims.issued + max_age)
            found = (principal_of(_session_user(state, claims), "session"), claims)
    except AuthFailure as exc:
        raise ApiError(401, "unauthenticated", str(exc)) from None
    state.credentials.put(key, found, version, until)
    return found


async def _csrf_token_sent(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent


class RoleGate:
    """The dependency ``require`` returns; ``roles`` are the roles it lets through (``access`` reads them)."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    def __repr__(self) -> str:
        return f"require({', '.join(sorted(r.value for r in self.roles))})"

    async def __call__(self, request: Request) -> Principal:
        state = web_state(request)
        principal, claims = await run_in_threadpool(_identify, state, request.headers.get("authorization"),
                                                    request.cookies.get(SESSION_COOKIE))
        request.state.principal = principal
        if claims is not None:
            request.state.session = claims
            request.state.csrf_token = csrf_for_session(state.secret, claims.sid)
        if principal.role not in self.roles:
            raise ApiError(403, "forbidden", f"a {principal.role.value.replace('_', ' ')} may not do this "
                                             f"(allowed: {', '.join(sorted(r.value for r in self.roles))})")
        if (claims is not None and request.method not in SAFE_METHODS
                and not check_csrf(state.secret, claims.sid, await _csrf_token_sent(request))):
            raise ApiError(403, "csrf_failed", "the form's CSRF token is missing or wrong: reload the page and "
                                                   f"try again (send it as {CSRF_FIELD} or X-CSRF-Token)")
        return principal


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency letting through signed-in users of ``roles`` (any staff role when none are given: a partner
    is let through only where named): 401 without valid credentials, 403 for another role or a missing CSRF
    token."""
    return RoleGate(frozenset(roles) or accounts.STAFF)


def csrf_token(request: Request) -> str | None:
    """The CSRF token the request's session must send back with its forms (None without a session)."""
    token: str | None = getattr(request.state, "csrf_token", None)
    return token


def visible_orgs(principal: Principal, mutual: Mutual) -> set[str] | None:
    """Organisations ``principal`` may see; None means every one (national analysts, planners, admins)."""
    if principal.role not in (Role.REGIONAL_ANALYST, Role.TRUST_SUBMITTER):
        return None
    return accounts.orgs_in_scope(principal, mutual.orgs())


# -- session cookies ---------------------------------------------------------------------------------------------


def secure_cookies(request: Request) -> bool:
    setting = web_state(request).settings.secure_cookies
    return setting if setting is not None else request.url.scheme == "https"


def start_session(request: Request, response: Response, user: User) -> None:
    state = web_state(request)
    claims = new_session(user.id, user.session_epoch, time.time())
    response.set_cookie(SESSION_COOKIE, sign_session(state.secret, claims),
                        max_age=int(state.settings.session_hours * 3600), path="/", httponly=True, samesite="lax",
                        secure=secure_cookies(request))


def end_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request))
