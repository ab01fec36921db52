"""Conditional requests and cheap repeated reads, keyed by the data's vintage.

The vintage names the state of everything a read can show: stored and superseded values, quality issues and their
status, loads, organisations, forecasts, alert evaluations, expected changes, submissions and plans (with their
workflow steps). It is computed at most once a second, and again at once after any data-plane write made under
``deps.store_lock`` or any commit to the control plane. A handler makes its ETag from the vintage and whatever
else shapes its answer (path, query, format, the caller's visible organisations):

    etag, not_modified = conditional(request, "overview", sorted(scope or []))
    if not_modified is not None:
        return not_modified
    body = cached_body(request, etag, lambda: render_overview(...))
    return with_etag(Response(body, media_type="application/json"), etag)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from fastapi import Request
from sqlalchemy import func, select
from starlette.responses import Response

from mutual.app import Mutual
from mutual.control.models import PlanEvent, PlanRecord, Submission
from mutual.web.deps import get_mutual, web_state

VINTAGE_SECONDS = 1.0
CACHE_CONTROL = "private, no-cache"  # may be kept, must be revalidated (cheap: a 304)
CACHED_BODIES = 256

# One pass over the data plane: every table's size and latest change.
_VINTAGE_SQL = """
SELECT (SELECT count(*) || '/' || coalesce(max(recorded_at)::VARCHAR, '') || '/'
               || coalesce(max(superseded_at)::VARCHAR, '') FROM observation),
       (SELECT count(*) || '/' || count(*) FILTER (WHERE status <> 'open') FROM quality_issue),
       (SELECT count(*) || '/' || coalesce(max(loaded_at)::VARCHAR, '') FROM load_log),
       (SELECT count(*) FROM organisation),
       (SELECT count(*) || '/' || coalesce(max(made_at)::VARCHAR, '') FROM forecast),
       (SELECT count(*) || '/' || coalesce(max(evaluated_at)::VARCHAR, '') FROM alert_event),
       (SELECT count(*) FROM alert),
       (SELECT count(*) || '/' || coalesce(max(recorded_at)::VARCHAR, '') FROM expected_change)
"""


def etag_for(*parts: object) -> str:
    """A weak ETag over ``parts`` (their ``repr``s, so pass plain values: strings, numbers, tuples, dates)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x1f")
    return f'W/"{digest.hexdigest()[:32]}"'


def data_vintage(mutual: Mutual) -> str:
    """The vintage of everything in the workspace, as a short opaque string."""
    [row] = mutual.store.rows(_VINTAGE_SQL)  # read to the end: the connection is free after
    with mutual.sessions() as s:
        control = s.execute(select(select(func.max(Submission.id)).scalar_subquery(),
                                   select(func.max(Submission.finished_at)).scalar_subquery(),
                                   select(func.max(PlanRecord.id)).scalar_subquery(),
                                   select(func.max(PlanEvent.id)).scalar_subquery())).one()
    return etag_for(row, tuple(control)).removeprefix('W/"').removesuffix('"')


def current_vintage(request: Request) -> str:
    """``data_vintage``, reused for up to a second unless a data-plane write under ``store_lock`` or any
    control-plane commit (from any process) happened since."""
    state = web_state(request)
    now = time.monotonic()
    generation = (state.write_lock.generation, state.credentials.version())
    with state.cache_lock:
        known = state.vintage
    if known is not None and known[1] == generation and now - known[0] < VINTAGE_SECONDS:
        return known[2]
    value = data_vintage(get_mutual(request))
    with state.cache_lock:
        state.vintage = (now, generation, value)
    return value


def _matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/`` prefixes do not count."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def not_modified(request: Request, etag: str) -> Response | None:
    """A 304 when the client already holds ``etag``; None when it must be sent the body."""
    header = request.headers.get("if-none-match")
    if header is None or request.method not in ("GET", "HEAD") or not _matches(header, etag):
        return None
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})


def conditional(request: Request, *parts: object) -> tuple[str, Response | None]:
    """The ETag of an answer made from the current data and ``parts``, and the 304 to send if the client has it."""
    etag = etag_for(current_vintage(request), request.url.path, *parts)
    return etag, not_modified(request, etag)


def with_etag(response: Response, etag: str) -> Response:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def cached_body(request: Request, etag: str, make: Callable[[], bytes]) -> bytes:
    """The body made for ``etag`` before, else ``make()`` (kept for the most recent ETags: the same ETag is the
    same data, so the same body)."""
    state = web_state(request)
    with state.cache_lock:
        body = state.bodies.get(etag)
        if body is not None:
            state.bodies.move_to_end(etag)
            return body
    body = make()
    with state.cache_lock:
        state.bodies[etag] = body
        while len(state.bodies) > CACHED_BODIES:
            state.bodies.popitem(last=False)
    return body
