"""The process's open workspace, and how requests share it.

Concurrency model. The server holds one ``Mutual`` (one DuckDB database, one control-plane engine) for its
lifetime. A DuckDB connection must not be used by two threads at once, and FastAPI runs a request's dependencies
and its handler on different worker threads, so a connection cannot be per thread: it is **per request**.
``get_mutual(request)`` lends the request a view of the workspace whose ``store`` runs on its own connection to
the same database (``con.cursor()``: same data, own transaction), taken from a pool on first use and given back
when the response has been sent (``LeaseMiddleware``). Everything else (workspace paths, the SQLAlchemy engine
and session factory, which are thread-safe) is shared. So:

- reads need nothing more: DuckDB's MVCC gives each one a consistent snapshot, and they run in parallel;
- anything that writes the data plane (ingest, release, alert/forecast evaluation, plan records) holds
  ``store_lock(request)`` while it writes, so two writers never conflict on the same rows; releasing the lock
  also tells ``caching`` that the data changed (new ETags at once);
- work that outlives its request (an upload processed in the background) takes its own connection with
  ``with background_mutual(request) as m:``; the request's view must not be used after the response;
- nobody calls ``close()`` on a lent view: the pool closes connections, the app's shutdown closes the workspace.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from fastapi import Request
from sqlalchemy import Engine, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutual.app import Mutual
from mutual.web.ratelimit import FailureLimiter
from mutual.web.sessions import load_secret

LEASE_KEY = "mutual_lease"
T = TypeVar("T")
MiB = 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    max_body_bytes: int = 50 * MiB
    secure_cookies: bool | None = None  # None: Secure when the request came over https
    session_hours: float = 12.0
    login_failures_per_minute: int = 5  # per user name; an address may fail four times as often (shared offices)
    idle_connections: int = 8


class WriteLock:
    """A ``threading.Lock`` for data-plane writers whose every release counts as a change of the data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.generation += 1
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class ControlPlaneCache(Generic[T]):
    """Answers read from the control plane, kept until it changes or their own deadline passes. SQLite's
    ``data_version`` moves whenever another connection, in any process, commits to the database, so a user
    disabled or a token revoked by ``mutual users``/``mutual tokens`` counts at once, and checking costs one
    pragma instead of a query per request. A control plane on a server (PostgreSQL) has no such pragma: there
    the version is the ``control_change`` count its triggers keep (migration 0009), one small query."""

    def __init__(self, engine: Engine, max_entries: int = 10_000) -> None:
        sqlite = engine.url.get_backend_name() == "sqlite"
        self._engine = engine
        self._probe = (sqlite3.connect(engine.url.database or "", check_same_thread=False, isolation_level=None)
                       if sqlite else None)
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, float, T]] = {}
        self.max_entries = max_entries

    def version(self) -> int:
        if self._probe is None:
            with self._engine.connect() as con:
                return int(con.execute(text("SELECT n FROM control_change WHERE id = 1")).scalar_one())
        with self._lock:
            row = self._probe.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def get(self, key: str, version: int, now: float) -> T | None:
        found = self._entries.get(key)
        if found is None or found[0] != version or found[1] <= now:
            return None
        return found[2]

    def put(self, key: str, value: T, version: int, until: float) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (version, until, value)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            if self._probe is not None:
                self._probe.close()


class WebState:
    """What the app keeps for the life of the process (``app.state.web``)."""

    def __init__(self, mutual: Mutual, settings: WebSettings, *, owned: bool) -> None:
        self.mutual = mutual
        self.settings = settings
        self.owned = owned
        self.secret = load_secret(mutual.workspace.home)
        self.write_lock = WriteLock()
        self.user_failures = FailureLimiter(settings.login_failures_per_minute)
        self.address_failures = FailureLimiter(settings.login_failures_per_minute * 4)
        self.credentials: ControlPlaneCache[Any] = ControlPlaneCache(mutual.engine)
        # (computed at, (data-plane write generation, control-plane version), value): see caching
        self.vintage: tuple[float, tuple[int, int], str] | None = None
        self.bodies: OrderedDict[str, bytes] = OrderedDict()  # caching.cached_body
        self.cache_lock = threading.Lock()
        self._idle: list[Mutual] = []
        self._lent: set[int] = set()
        self._pool_lock = threading.Lock()
        self._closed = False

    def _view(self) -> Mutual:
        view = copy.copy(self.mutual)
        view.store = self.mutual.store.view()
        return view

    def checkout(self) -> Mutual:
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the web app has shut down")
            view = self._idle.pop() if self._idle else self._view()
            self._lent.add(id(view))
            return view

    def checkin(self, view: Mutual, *, failed: bool = False) -> None:
        """Take a view back: drop any result left unread (DuckDB refuses other work on the connection until then),
        and after a failure end any transaction the failed code left open (the store's own writes roll back by
        themselves; this is for the rest, and costs a statement, so only then)."""
        view.store.settle(failed)
        with self._pool_lock:
            self._lent.discard(id(view))
            if not self._closed and len(self._idle) < self.settings.idle_connections:
                self._idle.append(view)
                return
        view.store.close()

    @contextmanager
    def connection(self) -> Iterator[Mutual]:
        view = self.checkout()
        failed = True
        try:
            yield view
            failed = False
        finally:
            self.checkin(view, failed=failed)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for view in idle:
            view.store.close()
        self.credentials.close()
        if self.owned:
            self.mutual.close()


class _Lease:
    def __init__(self, state: WebState) -> None:
        self.state = state
        self.view: Mutual | None = None
        self.lock = threading.Lock()

    def get(self) -> Mutual:
        with self.lock:
            if self.view is None:
                self.view = self.state.checkout()
            return self.view

    def release(self, failed: bool) -> None:
        with self.lock:
            view, self.view = self.view, None
        if view is not None:
            self.state.checkin(view, failed=failed)


class LeaseMiddleware:
    """Gives back the connection a request borrowed once its response has been sent."""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lease = _Lease(self.state)
        scope.setdefault("state", {})[LEASE_KEY] = lease
        status = 500

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            lease.release(failed=status >= 500)


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def get_mutual(request: Request) -> Mutual:
    """The workspace for this request (see the module docstring: valid until the response is sent)."""
    lease: _Lease | None = request.scope.get("state", {}).get(LEASE_KEY)
    if lease is None:
        raise RuntimeError("get_mutual needs the app from mutual.web.app.create_app (LeaseMiddleware)")
    return lease.get()


def store_lock(request: Request) -> WriteLock:
    """Hold while writing the data plane: ``with store_lock(request): ...``."""
    return web_state(request).write_lock


@contextmanager
def background_mutual(request: Request) -> Iterator[Mutual]:
    """A connection of its own for work that goes on after the response (returned when the block ends)."""
    with web_state(request).connection() as view:
        yield view
