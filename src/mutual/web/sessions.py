"""Signed session cookies and CSRF tokens: HMAC-SHA256 under a secret kept in the workspace.

A session cookie names the user, the user's session epoch, a random session id and when it was issued, signed so
it cannot be forged or altered. Nothing is stored per session: signing out raises the user's epoch, which ends
every session that user holds (on every device), and disabling the user or changing the password does the same.
The CSRF token of a session is derived from its id (synchroniser token without server state); before sign-in the
login form uses a signed double-submit token, so a site cannot sign a victim in to the attacker's account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from mutual.workspace import workspace_secret

SECRET_FILE = "web_secret"
SESSION_COOKIE = "mutual_session"
LOGIN_CSRF_COOKIE = "mutual_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def load_secret(home: Path) -> bytes:
    """The workspace's signing secret, created (mode 0600) on first use; a looser mode is tightened."""
    return workspace_secret(home / SECRET_FILE, "this signs everyone out")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(a: str, b: str) -> bool:
    """Constant-time equality that also takes non-ASCII text (a client can send anything)."""
    return hmac.compare_digest(a.encode(), b.encode())


def _mac(secret: bytes, purpose: str, message: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}|{message}".encode(), hashlib.sha256).digest())


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    epoch: int
    sid: str
    issued: int  # unix seconds


def new_session(user_id: int, epoch: int, now: float) -> SessionClaims:
    return SessionClaims(user_id=user_id, epoch=epoch, sid=secrets.token_urlsafe(16), issued=int(now))


def sign_session(secret: bytes, claims: SessionClaims) -> str:
    payload = _b64(json.dumps([claims.user_id, claims.epoch, claims.sid, claims.issued],
                              separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, 'session', payload)}"


def read_session(secret: bytes, value: str, now: float, max_age_seconds: float) -> SessionClaims | None:
    """The claims of a cookie this workspace signed and that has not expired; None for anything else."""
    if len(value) > 512 or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not _same(mac, _mac(secret, "session", payload)):
        return None
    try:
        user_id, epoch, sid, issued = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    if not (isinstance(user_id, int) and isinstance(epoch, int) and isinstance(sid, str) and isinstance(issued, int)):
        return None
    if not issued - 60 <= now < issued + max_age_seconds:
        return None
    return SessionClaims(user_id=user_id, epoch=epoch, sid=sid, issued=issued)


def csrf_for_session(secret: bytes, sid: str) -> str:
    return _mac(secret, "csrf", sid)


def check_csrf(secret: bytes, sid: str, token: str | None) -> bool:
    return token is not None and _same(token, csrf_for_session(secret, sid))


def new_login_csrf(secret: bytes) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_mac(secret, 'login', nonce)}"


def check_login_csrf(secret: bytes, cookie: str | None, field: str | None) -> bool:
    """The form's token equals the cookie's, and this workspace signed it."""
    if not cookie or not field or not _same(cookie, field) or cookie.count(".") != 1:
        return False
    nonce, mac = cookie.split(".")
    return _same(mac, _mac(secret, "login", nonce))
