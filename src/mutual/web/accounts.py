"""Users, their roles and scope, passwords and API tokens: the rules, over the control plane.

Kept free of FastAPI so the CLI (``mutual users``, ``mutual tokens``) uses the same rules as the web without
importing the web stack. Passwords are hashed with argon2id; API tokens are 32 random bytes, so one sha256 of the
token is enough at rest (nothing to brute-force), and a lookup by that hash is one index probe per request.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutual.app import WorkspaceError
from mutual.catalog.orgs import Org, OrgKind
from mutual.control import db
from mutual.control.models import AgreementRecord, ApiToken, PartnerRecord, User
from mutual.workspace import Workspace


class Role(StrEnum):
    NATIONAL_ANALYST = "national_analyst"
    REGIONAL_ANALYST = "regional_analyst"
    TRUST_SUBMITTER = "trust_submitter"
    PLANNER = "planner"
    ADMIN = "admin"
    IG_OFFICER = "ig_officer"  # approves data-sharing agreements, records partners' onboarding evidence
    PARTNER = "partner"  # a data-sharing partner's system: API tokens bound to one agreement, nothing else


# Everyone who works in the health system; a partner reaches only the partner API, through the policy gate.
STAFF: frozenset[Role] = frozenset(Role) - {Role.PARTNER}


@dataclass(frozen=True)
class Principal:
    """Who is making a request, as the handlers see it."""

    username: str
    role: Role
    region: str | None
    org: str | None  # a trust submitter's trust; a partner user's partner code
    via: str  # "session" or "token"
    agreement: str | None = None  # the agreement a partner's token is bound to


class AccountError(ValueError):
    """A user or token request that cannot be carried out; the message says what to change."""


class AuthFailure(Exception):
    """Credentials that do not identify an active user; the message is safe to show to the caller."""


MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; this only bounds the work one request can ask for
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,99}")
TOKEN_PREFIX = "mutual_"
# A token's last use is written at most this often, so a busy client does not turn every read into a write.
TOUCH_EVERY = timedelta(minutes=1)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so an unknown name costs the same time as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- passwords ---------------------------------------------------------------------------------------------------


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must be at most {MAX_PASSWORD} characters long")
    if not password.strip():
        raise AccountError("the password cannot be only spaces")


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or unreadable hash never matches (and takes the same time)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- scope -------------------------------------------------------------------------------------------------------


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        raise AccountError(f"unknown role {text!r} (use one of {', '.join(r.value for r in Role)})") from None


def check_scope(role: Role, region: str | None, org: str | None, orgs: Iterable[Org]) -> tuple[str | None, str | None]:
    """The (region, org) a user of ``role`` is limited to, checked against the workspace's organisations:
    a regional analyst needs a region, a trust submitter a trust, and no other role takes either."""
    by_code = {o.code: o for o in orgs}
    region = region.strip().upper() if region else None
    org = org.strip().upper() if org else None
    if role == Role.REGIONAL_ANALYST:
        if org:
            raise AccountError("a regional analyst is scoped by --region, not --org")
        if not region:
            raise AccountError("a regional analyst needs --region CODE (their region)")
        found = by_code.get(region)
        if found is None or found.kind != OrgKind.REGION:
            known = ", ".join(f"{o.code} ({o.name})" for o in by_code.values() if o.kind == OrgKind.REGION)
            raise AccountError(f"{region} is not a region in this workspace (regions: {known or 'none'})")
        return region, None
    if role == Role.TRUST_SUBMITTER:
        if region:
            raise AccountError("a trust submitter is scoped by --org, not --region")
        if not org:
            raise AccountError("a trust submitter needs --org CODE (their trust)")
        found = by_code.get(org)
        if found is None:
            raise AccountError(f"no organisation {org} in this workspace (import it with `mutual orgs import`)")
        if found.kind != OrgKind.TRUST:
            raise AccountError(f"{org} ({found.name}) is a {found.kind}, not a trust")
        return None, org
    if role == Role.PARTNER:
        if region or not org:
            raise AccountError("a partner user needs --org PARTNER_CODE (see `mutual partners list`)")
        return None, org.lower()
    if region or org:
        raise AccountError(f"a {role.value} sees everything: --region and --org are only for regional analysts "
                           "and trust submitters")
    return None, None


def _chain(org: Org, by_code: dict[str, Org]) -> Iterator[str]:
    """``org`` and its ancestors: up the parent chain, then through the ``region`` field."""
    seen: set[str] = set()
    current: Org | None = org
    while current is not None and current.code not in seen:
        seen.add(current.code)
        yield current.code
        nxt = by_code.get(current.parent) if current.parent else None
        if nxt is None and current.region and current.region != current.code:
            nxt = by_code.get(current.region)
        current = nxt


def orgs_in_scope(principal: Principal, orgs: Iterable[Org]) -> set[str] | None:
    """The organisations whose data ``principal`` may see; None means all of them. A regional analyst sees their
    region and everything in it (STPs, trusts, sites); a trust submitter their trust and its sites."""
    if principal.role == Role.REGIONAL_ANALYST:
        anchor = principal.region
    elif principal.role == Role.TRUST_SUBMITTER:
        anchor = principal.org
    else:
        return None
    if anchor is None:
        return set()
    by_code = {o.code: o for o in orgs}
    seen = {o.code for o in by_code.values()
            if anchor in _chain(o, by_code) or (principal.role == Role.REGIONAL_ANALYST and o.region == anchor)}
    return seen | {anchor}


# -- users -------------------------------------------------------------------------------------------------------


def normalise_username(name: str) -> str:
    username = name.strip().lower()
    if not USERNAME.fullmatch(username):
        raise AccountError(f"{name!r} is not a valid user name (letters, digits and . _ @ -, up to 100, "
                           "starting with a letter or digit)")
    return username


def principal_of(user: User, via: str, agreement: str | None = None) -> Principal:
    return Principal(username=user.username, role=Role(user.role), region=user.region, org=user.org, via=via,
                     agreement=agreement)


def _user(s: Session, username: str) -> User:
    user = s.scalars(select(User).where(User.username == normalise_username(username))).one_or_none()
    if user is None:
        raise AccountError(f"no user {username!r} (see `mutual users list`)")
    return user


def add_user(sessions: sessionmaker[Session], username: str, role: Role | str, *, password: str | None,
             region: str | None = None, org: str | None = None, orgs: Iterable[Org] = ()) -> User:
    """A new user; ``password`` None makes an account that signs in only with API tokens (a system)."""
    name = normalise_username(username)
    the_role = role if isinstance(role, Role) else parse_role(role)
    region, org = check_scope(the_role, region, org, orgs)
    if the_role == Role.PARTNER and password is not None:
        raise AccountError("a partner's system signs in with API tokens only: give no password")
    password_hash = hash_password(password) if password is not None else None
    with sessions() as s, s.begin():
        if s.scalars(select(User.id).where(User.username == name)).first() is not None:
            raise AccountError(f"user {name!r} already exists")
        if the_role == Role.PARTNER and s.get(PartnerRecord, org) is None:
            raise AccountError(f"no partner {org} (add it with `mutual partners add`)")
        user = User(username=name, password_hash=password_hash, role=the_role.value, region=region, org=org,
                    disabled=False, created_at=utcnow(), session_epoch=0)
        s.add(user)
    return user


def list_users(sessions: sessionmaker[Session]) -> list[User]:
    with sessions() as s:
        return list(s.scalars(select(User).order_by(User.username)))


def get_user(sessions: sessionmaker[Session], username: str) -> User:
    with sessions() as s:
        return _user(s, username)


def user_by_id(sessions: sessionmaker[Session], user_id: int) -> User | None:
    with sessions() as s:
        return s.get(User, user_id)


def set_disabled(sessions: sessionmaker[Session], username: str, disabled: bool) -> User:
    """Disable (or enable again) a user; disabling ends their sessions, and their tokens stop working."""
    with sessions() as s, s.begin():
        user = _user(s, username)
        user.disabled = disabled
        user.session_epoch += 1
    return user


def set_password(sessions: sessionmaker[Session], username: str, password: str) -> User:
    """A new password; every session the user had ends."""
    password_hash = hash_password(password)
    with sessions() as s, s.begin():
        user = _user(s, username)
        user.password_hash = password_hash
        user.session_epoch += 1
    return user


def end_sessions(sessions: sessionmaker[Session], user_id: int) -> None:
    """Sign a user out: the session cookies they hold carry the old epoch and are no longer accepted."""
    with sessions() as s, s.begin():
        user = s.get(User, user_id)
        if user is not None:
            user.session_epoch += 1


def sign_in(sessions: sessionmaker[Session], username: str, password: str) -> User:
    """The user these credentials belong to, with their last sign-in recorded (and the hash upgraded when
    argon2's parameters have changed); AuthFailure, with one message for every reason, otherwise."""
    try:
        name = normalise_username(username)
    except AccountError:
        name = None
    with sessions() as s, s.begin():
        user = s.scalars(select(User).where(User.username == name)).one_or_none() if name else None
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled or user.role == Role.PARTNER.value:
            raise AuthFailure("wrong user name or password, or the account is disabled")
        if user.password_hash is not None and _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.last_login_at = utcnow()
    return user


# -- API tokens --------------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _info(token: ApiToken, username: str) -> TokenInfo:
    return TokenInfo(id=token.id, username=username, name=token.name, prefix=token.prefix,
                     created_at=token.created_at, expires_at=token.expires_at, revoked_at=token.revoked_at,
                     last_used_at=token.last_used_at)


def create_token(sessions: sessionmaker[Session], username: str, *, name: str | None = None,
                 expires_days: float | None = None, agreement: str | None = None) -> tuple[TokenInfo, str]:
    """A new token for ``username``: its record and the token itself, which is shown this once and never stored.
    A partner's token is bound to one of its partner's agreements, and reaches only what that agreement covers."""
    if expires_days is not None and not 0 < expires_days <= 3650:
        raise AccountError("--expires must be between 1 and 3650 days")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with sessions() as s, s.begin():
        user = _user(s, username)
        if user.disabled:
            raise AccountError(f"user {user.username!r} is disabled")
        if (user.role == Role.PARTNER.value) != (agreement is not None):
            raise AccountError("a partner's token needs --agreement ID, and only a partner's token takes one")
        if agreement is not None:
            bound = s.get(AgreementRecord, agreement)
            if bound is None or bound.partner != user.org:
                raise AccountError(f"no agreement {agreement} of partner {user.org} (see `mutual agreements list`)")
        token = ApiToken(user_id=user.id, name=(name or "").strip() or f"token for {user.username}",
                         token_hash=token_hash(secret), prefix=secret[: len(TOKEN_PREFIX) + 6], created_at=now,
                         expires_at=now + timedelta(days=expires_days) if expires_days else None,
                         agreement=agreement)
        s.add(token)
        s.flush()
        info = _info(token, user.username)
    return info, secret


def revoke_token(sessions: sessionmaker[Session], token_id: int) -> TokenInfo:
    with sessions() as s, s.begin():
        token = s.get(ApiToken, token_id)
        if token is None:
            raise AccountError(f"no API token {token_id} (see `mutual tokens list`)")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        user = s.get(User, token.user_id)
        return _info(token, user.username if user else "?")


def list_tokens(sessions: sessionmaker[Session], username: str | None = None) -> list[TokenInfo]:
    with sessions() as s:
        q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
        if username is not None:
            q = q.where(User.username == normalise_username(username))
        return [_info(t, u) for t, u in s.execute(q)]


def token_user(sessions: sessionmaker[Session], token: str,
               now: datetime | None = None) -> tuple[User, datetime | None, str | None]:
    """The active user a bearer token belongs to, when the token expires and the agreement it is bound to;
    AuthFailure saying why not otherwise."""
    now = now or utcnow()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthFailure("the bearer token is not a Mutual API token")
    with sessions() as s:
        row = s.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                        .where(ApiToken.token_hash == token_hash(token))).one_or_none()
        if row is None:
            raise AuthFailure("unknown API token")
        found, user = row
        if found.revoked_at is not None:
            raise AuthFailure(f"this API token was revoked on {found.revoked_at:%Y-%m-%d %H:%M} UTC")
        if found.expires_at is not None and found.expires_at <= now:
            raise AuthFailure(f"this API token expired on {found.expires_at:%Y-%m-%d %H:%M} UTC")
        if user.disabled:
            raise AuthFailure(f"user {user.username!r} is disabled")
        if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
            found.last_used_at = now
            s.commit()
        return user, found.expires_at, found.agreement


# -- the control plane alone -------------------------------------------------------------------------------------


@contextmanager
def control_plane(home: Path | None) -> Iterator[sessionmaker[Session]]:
    """The workspace's control plane without its data plane, so users and tokens can be managed while
    ``mutual serve`` holds the data plane open."""
    workspace = Workspace.at(home)
    if not workspace.exists:
        raise WorkspaceError(f"no workspace at {workspace.home}: run `mutual init` (or pass --home DIR)")
    engine = db.connect(workspace.control_url)
    try:
        db.upgrade(engine)
        yield db.session_factory(engine)
    finally:
        engine.dispose()
