"""What every API module shares: pagination, organisation scoping, parameter checks, the mapping of Mutual's
errors onto HTTP, and JSON-safe rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

import pyarrow as pa
from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field, PlainSerializer

from mutual.app import Mutual, WorkspaceError
from mutual.catalog import load_catalog
from mutual.web.accounts import STAFF
from mutual.web.auth import Principal, Role, require
from mutual.web.caching import cached_body, conditional, with_etag
from mutual.web.deps import get_mutual, store_lock
from mutual.web.errors import ApiError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next`` is the URL of the following page, or null on the last one."""

    items: list[T]
    page: int = Field(examples=[1])
    page_size: int = Field(examples=[DEFAULT_PAGE_SIZE])
    total: int = Field(description="Items in the whole list, over every page")
    next: str | None = Field(description="URL of the next page", examples=["/api/v1/observations?page=2"])


class ErrorBody(BaseModel):
    status: int = Field(examples=[404])
    code: str = Field(examples=["not_found"], description="Stable, for programs")
    message: str = Field(description="For people: what is wrong and what to do")
    details: Any = None


class ErrorEnvelope(BaseModel):
    """Every error of the API, whatever its status."""

    error: ErrorBody


def error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc("Not signed in: no valid session or bearer token"),
    403: error_doc("Signed in, but this role or these organisations are not allowed"),
    404: error_doc("No such thing (or none the caller may see)"),
    422: error_doc("A parameter or body is not valid, or the input was rejected"),
}


class Paging(BaseModel):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def paging(page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")] = 1,
           page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page")] = DEFAULT_PAGE_SIZE,
           ) -> Paging:
    return Paging(page=page, page_size=page_size)


PagingDep = Annotated[Paging, Depends(paging)]


def next_url(request: Request, p: Paging, total: int) -> str | None:
    if p.offset + p.page_size >= total:
        return None
    url = request.url.include_query_params(page=p.page + 1, page_size=p.page_size)
    return str(url.path) + "?" + url.query


def page_of(request: Request, p: Paging, items: Sequence[T]) -> dict[str, Any]:
    """A page of a list held in memory."""
    return {"items": list(items[p.offset:p.offset + p.page_size]), "page": p.page, "page_size": p.page_size,
            "total": len(items), "next": next_url(request, p, len(items))}


def page_dict(request: Request, p: Paging, items: list[Any], total: int) -> dict[str, Any]:
    """A page already cut by the query, with the whole list's size."""
    return {"items": items, "page": p.page, "page_size": p.page_size, "total": total,
            "next": next_url(request, p, total)}


# -- values as JSON ------------------------------------------------------------------------------------------


def _utc(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")


# Mutual keeps times as naive UTC; on the wire a time says so, as RFC 3339 (OpenAPI's date-time) requires.
Timestamp = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json")]


def clean(value: Any) -> Any:
    """NaN and infinities have no JSON spelling: they are sent as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: clean(v) for k, v in r.items()} for r in table.to_pylist()]


# -- scoping -------------------------------------------------------------------------------------------------


def check_org(org: str | None, scope: set[str] | None) -> None:
    """Refuse to read an organisation's data outside the principal's scope (403, not an empty answer, so a
    mistyped code and a forbidden one are told apart)."""
    if org is not None and scope is not None and org not in scope:
        raise ApiError(403, "forbidden", f"you may not see the data of {org}",
                       {"org": org, "visible": sorted(scope)[:50]})


def in_scope(org: str | None, scope: set[str] | None) -> bool:
    return scope is None or (org is not None and org in scope)


# -- conditional reads ---------------------------------------------------------------------------------------


def scope_key(scope: set[str] | None) -> str:
    return "all" if scope is None else ",".join(sorted(scope))


def cached_json(request: Request, model: type[BaseModel], scope: set[str] | None,
                make: Callable[[], Any]) -> Response:
    """An answer that depends only on the data, the URL and the caller's organisations: an ETag for it, 304 when
    the client holds it, and the body made once per data vintage (``web.caching``). ``make`` gives what
    ``model`` validates, so the body is exactly what the route documents."""
    etag, unchanged = conditional(request, request.url.query, scope_key(scope))
    if unchanged is not None:
        return unchanged
    body = cached_body(request, etag, lambda: model.model_validate(make()).model_dump_json().encode())
    return with_etag(Response(body, media_type="application/json"), etag)


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the client holds this answer for the current data (If-None-Match)"}}


# -- parameters ----------------------------------------------------------------------------------------------


def check_metric(metric: str | None, name: str = "metric") -> None:
    if metric is not None and metric not in load_catalog().codes:
        raise ApiError(422, "invalid_request", f"{name} {metric!r} is not in the catalogue (see /api/v1/catalogue)",
                       {"parameter": name, "value": metric})


def check_known_org(org: str | None, m: Mutual, name: str = "org") -> None:
    if org is not None and org not in {o.code for o in m.orgs()}:
        raise ApiError(404, "not_found", f"organisation {org!r} is not known (see /api/v1/organisations)",
                       {"parameter": name, "value": org})


def check_range(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise ApiError(422, "invalid_request", f"to ({end}) is before from ({start})",
                       {"from": str(start), "to": str(end)})


EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


def check_days(**given: date | datetime | None) -> None:
    """Days and times far outside any data (year 1, year 9999) are mistakes, and arithmetic on them overflows."""
    for name, when in given.items():
        day = when.date() if isinstance(when, datetime) else when
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ApiError(422, "invalid_request", f"{name} {when} is outside {EARLIEST.year}-{LATEST.year}",
                           {"parameter": name, "value": str(when)})


def naive(when: datetime | None) -> datetime | None:
    """The store's clock is naive UTC: an aware time is converted, a naive one taken as UTC."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


# Mutual's messages point at the CLI; over HTTP they point at the API.
CLI_HINTS = {"`mutual submissions`": "/api/v1/submissions", "`mutual orgs list`": "/api/v1/organisations",
             "`mutual catalog`": "/api/v1/catalogue", "`mutual plans`": "/api/v1/plans",
             "`mutual agreements list`": "/api/v1/agreements", "`mutual partners list`": "/api/v1/partners",
             "`mutual partners add`": "POST /api/v1/partners", "(--evidence)": "(evidence)",
             "(--reason)": "(reason)"}


def api_words(message: str) -> str:
    for cli, api in CLI_HINTS.items():
        message = message.replace(cli, api)
    return message


@contextmanager
def domain_errors() -> Iterator[None]:
    """Mutual's own errors as HTTP errors with its words: unknown things are 404, bad requests 422."""
    try:
        yield
    except ApiError:
        raise
    except WorkspaceError as exc:
        raise ApiError(404, "not_found", api_words(str(exc))) from exc
    except ValueError as exc:  # every Mutual input error (spec, forecast, plan input, rule, rollup) is one
        raise ApiError(422, "invalid_request", api_words(str(exc))) from exc


@contextmanager
def workspace(request: Request) -> Iterator[Mutual]:
    """This request's view of the workspace (its own DuckDB connection, see ``web.deps``), with Mutual's errors
    turned into HTTP ones. Reads need nothing more."""
    with domain_errors():
        yield get_mutual(request)


@contextmanager
def writing(request: Request) -> Iterator[None]:
    """Hold while writing the data plane: one writer at a time, and the data's vintage moves on after it."""
    with store_lock(request):
        yield


# -- who may call what (each route's roles; ``web.access.ROUTES`` holds the same table) -----------------------

R = Role
EVERYONE: tuple[Role, ...] = tuple(sorted(STAFF))  # every member of staff; partners are named where let in
ANALYSIS = (R.NATIONAL_ANALYST, R.REGIONAL_ANALYST, R.PLANNER, R.ADMIN)
ANALYSTS = (R.NATIONAL_ANALYST, R.REGIONAL_ANALYST)
NATIONAL = (R.NATIONAL_ANALYST,)
PLANNERS = (R.PLANNER,)
TRUSTS = (R.TRUST_SUBMITTER,)
SUBMITTERS = (R.TRUST_SUBMITTER, R.NATIONAL_ANALYST)

Everyone = Annotated[Principal, Depends(require(*EVERYONE))]
Analysis = Annotated[Principal, Depends(require(*ANALYSIS))]
Analysts = Annotated[Principal, Depends(require(*ANALYSTS))]
NationalAnalyst = Annotated[Principal, Depends(require(*NATIONAL))]
Planner = Annotated[Principal, Depends(require(*PLANNERS))]
TrustSubmitter = Annotated[Principal, Depends(require(*TRUSTS))]
Submitter = Annotated[Principal, Depends(require(*SUBMITTERS))]
