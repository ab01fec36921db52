"""The web app: one open workspace for the process, the platform's pages, the REST API and the FHIR endpoint,
behind the security headers, the body size limit and one error shape.

Requests pass, outermost first: security headers, body size limit, unhandled errors (500 in the caller's error
shape), the workspace connection lease (``deps``), then FastAPI's own error handling and the routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mutual import __version__
from mutual.app import Mutual
from mutual.web import access, api, fhir_api, pages
from mutual.web.dashboard import alerts as alerts_page
from mutual.web.dashboard import governance as governance_page
from mutual.web.dashboard import map as map_page
from mutual.web.dashboard import orgs as orgs_page
from mutual.web.dashboard import overview as overview_page
from mutual.web.dashboard import plans as plans_page
from mutual.web.dashboard import quality as quality_page
from mutual.web.dashboard import reports as reports_page
from mutual.web.dashboard import submissions as submissions_page
from mutual.web.deps import LeaseMiddleware, WebSettings, WebState
from mutual.web.errors import UnhandledErrorMiddleware, install_error_handlers
from mutual.web.security_headers import BodyLimitMiddleware, SecurityHeadersMiddleware
from mutual.workspace import Workspace


def create_app(home: Path | None = None, *, mutual: Mutual | None = None,
               settings: WebSettings | None = None) -> FastAPI:
    """The app over ``mutual`` (left open at shutdown: the caller owns it) or over the workspace at ``home``
    (opened now, so a missing or busy workspace fails here, and closed at shutdown)."""
    owned = mutual is None
    opened = mutual if mutual is not None else Mutual(Workspace.at(home))
    try:
        state = WebState(opened, settings or WebSettings(), owned=owned)
    except BaseException:
        if owned:
            opened.close()
        raise

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = FastAPI(title="Mutual", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None, openapi_url="/openapi.json",
                  description="Capacity, quality and mutual-aid data of a health system. Authenticate with "
                              "`Authorization: Bearer <token>` (`mutual tokens create`).")
    app.state.web = state
    install_error_handlers(app)
    app.include_router(pages.router)
    app.include_router(overview_page.router)
    app.include_router(map_page.router)
    app.include_router(orgs_page.router)
    app.include_router(submissions_page.router)
    app.include_router(quality_page.router)
    app.include_router(alerts_page.router)
    app.include_router(plans_page.router)
    app.include_router(reports_page.router)
    app.include_router(governance_page.router)
    app.mount("/static", StaticFiles(packages=[("mutual.web", "static")]), name="static")
    app.include_router(api.router)
    app.include_router(fhir_api.router)
    app.add_middleware(LeaseMiddleware, state=state)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=state.settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    access.enforce(app)
    return app
