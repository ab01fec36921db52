"""One shape for every error: a JSON envelope on the API, a FHIR OperationOutcome under /fhir, an HTML page for
browsers. Covers Mutual's own errors, FastAPI's validation errors, Starlette's 404/405/413 and anything unhandled
(a 500 that names a reference to the logged traceback, never the traceback itself)."""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutual.web.templating import render

log = logging.getLogger("mutual.web")

API_PREFIX = "/api/"
FHIR_PREFIX = "/fhir"

CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 410: "gone", 413: "too_large",
         415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests", 500: "internal_error",
         503: "unavailable"}
# FHIR R4 IssueType for each status (http://hl7.org/fhir/valueset-issue-type.html).
FHIR_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
              406: "not-supported", 409: "conflict", 410: "deleted", 413: "too-costly", 415: "not-supported",
              422: "invalid", 429: "throttled", 500: "exception", 503: "transient"}


class ApiError(Exception):
    """An error to answer with: HTTP ``status``, a stable machine ``code``, a ``message`` for people."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def is_fhir_path(path: str) -> bool:
    return path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")


def wants_html(request: Request) -> bool:
    """A browser page: outside the API and FHIR, unless the client asked for JSON and not HTML."""
    if is_api_path(request.url.path) or is_fhir_path(request.url.path):
        return False
    accept = request.headers.get("accept", "")
    return not ("application/json" in accept and "text/html" not in accept)


def envelope(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "details": jsonable_encoder(details)}}


def operation_outcome(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "fatal" if status >= 500 else "error",
                             "code": FHIR_ISSUE.get(status, "processing"),
                             "details": {"text": code}, "diagnostics": message}
    if isinstance(details, list):
        issue["expression"] = [".".join(str(p) for p in d["loc"]) for d in details
                               if isinstance(d, dict) and "loc" in d] or None
        if issue["expression"] is None:
            del issue["expression"]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def error_response(request: Request, status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The error in the form the caller reads: envelope, OperationOutcome or HTML page."""
    path = request.url.path
    if is_fhir_path(path):
        return JSONResponse(operation_outcome(status, code, message, details), status_code=status, headers=headers,
                            media_type="application/fhir+json")
    if not wants_html(request):
        return JSONResponse(envelope(status, code, message, details), status_code=status, headers=headers)
    if status == 401 and request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", ""):
        return login_redirect(request)
    return render(request, "error.html", {"status": status, "code": code, "message": message, "details": details},
                  status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, without echoing the input back (it may be a password or a whole upload)."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()]


def _validation_message(details: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(d['loc']) or 'request'}: {d['msg']}" for d in details[:5]]
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return "the request is not valid: " + "; ".join(parts) + more


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": 'Bearer realm="mutual"'} if exc.status == 401 else None
    return error_response(request, exc.status, exc.code, exc.message, exc.details, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404 and exc.detail in (None, "Not Found"):
        message = f"nothing at {request.url.path}"
    elif status == 405 and exc.detail in (None, "Method Not Allowed"):
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        message = f"{request.method} is not allowed on {request.url.path}" + (f" (use {allowed})" if allowed else "")
    elif status == 413 and exc.detail in (None, "Content Too Large", "Request Entity Too Large"):
        message = "the request body is too large"
    else:
        message = str(exc.detail)
    return error_response(request, status, CODES.get(status, f"http_{status}"), message, None,
                          dict(exc.headers) if exc.headers else None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    return error_response(request, 422, CODES[422], _validation_message(details), details)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


class UnhandledErrorMiddleware:
    """Anything a handler did not expect becomes a 500 in the caller's error shape, with a reference that finds
    the traceback in the log; the traceback itself never leaves the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            reference = secrets.token_hex(4)
            log.exception("unhandled error %s on %s %s", reference, scope.get("method"), scope.get("path"))
            if started:
                raise
            request = Request(scope)
            response = error_response(request, 500, CODES[500],
                                      f"internal error (reference {reference}); it has been logged")
            await response(scope, receive, send)
