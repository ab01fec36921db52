"""Who may call what: every route of the app (method, path template) and the roles it lets through.

This table is the declared truth, and the code must agree with it: ``create_app`` compares it with the
``require(...)`` each route actually depends on and refuses to start when a route is missing here, a row names
no route, or the roles differ. ``tests/test_web_roles.py`` then calls every route as every role (and as nobody)
and checks the answers. To add a route: declare ``Depends(require(...))`` on it and add its row below.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import Mount

from mutual.web.accounts import STAFF, Role
from mutual.web.auth import RoleGate

Access = frozenset[Role] | None

PUBLIC: Access = None  # no sign-in needed
SIGNED_IN: frozenset[Role] = STAFF  # any signed-in member of staff: require() with no roles


def roles(*allowed: Role) -> frozenset[Role]:
    return frozenset(allowed)


# data-sharing governance: who reads its records, and the data-sharing leads who draft agreements
GOVERNANCE_READERS = roles(Role.IG_OFFICER, Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST, Role.ADMIN)
LEADS = roles(Role.NATIONAL_ANALYST, Role.ADMIN)


ROUTES: dict[tuple[str, str], Access] = {
    # -- the platform (mutual.web.pages) --
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/reports/{org}/{year}"): PUBLIC,  # the annual public value report
    ("GET", "/register"): PUBLIC,  # the public access register
    # -- dashboard: overview and map (mutual.web.dashboard.overview, .map) --
    ("GET", "/"): SIGNED_IN,  # trust submitters are sent on to their submissions
    ("GET", "/map"): roles(Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST, Role.PLANNER, Role.ADMIN),
    # -- dashboard: organisation, data-quality, submission, alert and plan pages (mutual.web.dashboard.*) --
    ("GET", "/orgs"): SIGNED_IN,
    ("GET", "/orgs/{code}"): SIGNED_IN,
    ("GET", "/submissions"): SIGNED_IN,
    ("POST", "/submissions"): roles(Role.TRUST_SUBMITTER, Role.NATIONAL_ANALYST),
    ("GET", "/submissions/{submission_id}"): SIGNED_IN,
    ("GET", "/quality"): SIGNED_IN,
    ("POST", "/quality/release"): roles(Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST),
    ("POST", "/quality/correct"): roles(Role.TRUST_SUBMITTER, Role.NATIONAL_ANALYST),
    ("GET", "/alerts"): SIGNED_IN,
    ("GET", "/plans"): SIGNED_IN,
    ("GET", "/plans/{plan_id}"): SIGNED_IN,
    ("POST", "/plans/{plan_id}/moves/{action}"): roles(Role.TRUST_SUBMITTER),
    ("POST", "/plans/{plan_id}/{action}"): roles(Role.PLANNER),
    # -- data-sharing governance pages (mutual.web.dashboard.governance) --
    ("GET", "/governance/partners"): GOVERNANCE_READERS,
    ("GET", "/governance/agreements"): GOVERNANCE_READERS,
    ("GET", "/governance/agreements/{agreement_id}"): GOVERNANCE_READERS,
    ("POST", "/governance/agreements/{agreement_id}/{action}"): roles(Role.NATIONAL_ANALYST, Role.ADMIN,
                                                                     Role.IG_OFFICER),
    ("GET", "/governance/audit"): roles(Role.IG_OFFICER, Role.ADMIN),
    # -- REST API (mutual.web.api, /api/v1) --
    ("GET", "/api/v1/overview"): roles(Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST, Role.PLANNER, Role.ADMIN),
    ("GET", "/api/v1/observations"): SIGNED_IN,
    ("GET", "/api/v1/rollups"): roles(Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST, Role.PLANNER, Role.ADMIN),
    ("GET", "/api/v1/completeness"): SIGNED_IN,
    ("GET", "/api/v1/forecasts"): SIGNED_IN,
    ("POST", "/api/v1/forecasts"): roles(Role.NATIONAL_ANALYST, Role.REGIONAL_ANALYST),
    ("GET", "/api/v1/alerts"): SIGNED_IN,
    ("POST", "/api/v1/alerts/evaluate"): roles(Role.NATIONAL_ANALYST),
    ("GET", "/api/v1/organisations"): SIGNED_IN,
    ("GET", "/api/v1/organisations/{code}"): SIGNED_IN,
    ("GET", "/api/v1/catalogue"): SIGNED_IN,
    ("GET", "/api/v1/plans"): SIGNED_IN,
    ("GET", "/api/v1/plans/{plan_id}"): SIGNED_IN,
    ("POST", "/api/v1/plans"): roles(Role.PLANNER),
    ("POST", "/api/v1/plans/{plan_id}/moves/{action}"): roles(Role.TRUST_SUBMITTER),
    ("POST", "/api/v1/plans/{plan_id}/{action}"): roles(Role.PLANNER),
    ("GET", "/api/v1/submissions"): SIGNED_IN,
    ("GET", "/api/v1/submissions/{submission_id}"): SIGNED_IN,
    ("GET", "/api/v1/submissions/{submission_id}/quality"): SIGNED_IN,
    ("POST", "/api/v1/submissions"): roles(Role.TRUST_SUBMITTER, Role.NATIONAL_ANALYST),
    ("GET", "/api/v1/partner/capacity"): roles(Role.PARTNER),
    ("GET", "/api/v1/partner/episodes"): roles(Role.PARTNER),
    ("GET", "/api/v1/partners"): GOVERNANCE_READERS,
    ("POST", "/api/v1/partners"): LEADS,
    ("POST", "/api/v1/partners/{code}/onboarding"): roles(Role.IG_OFFICER),
    ("GET", "/api/v1/agreements"): GOVERNANCE_READERS,
    ("GET", "/api/v1/agreements/{agreement_id}"): GOVERNANCE_READERS,
    ("POST", "/api/v1/agreements"): LEADS,
    ("POST", "/api/v1/agreements/{agreement_id}/{action}"): roles(Role.NATIONAL_ANALYST, Role.ADMIN,
                                                                  Role.IG_OFFICER),
    ("GET", "/api/v1/audit"): roles(Role.IG_OFFICER, Role.ADMIN),
    # -- FHIR (mutual.web.fhir_api, /fhir) --
    ("GET", "/fhir/metadata"): PUBLIC,
    ("GET", "/fhir/MeasureReport"): SIGNED_IN,
    ("GET", "/fhir/MeasureReport/{report_id}"): SIGNED_IN,
    ("POST", "/fhir/MeasureReport"): roles(Role.TRUST_SUBMITTER, Role.NATIONAL_ANALYST),
    ("POST", "/fhir"): roles(Role.TRUST_SUBMITTER, Role.NATIONAL_ANALYST),
    ("GET", "/fhir/Organization"): SIGNED_IN,
    ("GET", "/fhir/Organization/{org_id}"): SIGNED_IN,
    ("GET", "/fhir/Location"): SIGNED_IN,
    ("GET", "/fhir/Location/{location_id}"): SIGNED_IN,
}

IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})  # HEAD answers as GET does; OPTIONS is not served


def _gates(dependant: Dependant) -> Iterator[RoleGate]:
    if isinstance(dependant.call, RoleGate):
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _gates(sub)


def declared_roles(route: RouteContext) -> Access:
    """The roles a route lets through by its ``require`` dependencies (all of them must pass, including those
    of the routers it is included through); None when it has none."""
    dependant = getattr(route, "dependant", None)
    gates = list(_gates(dependant)) if isinstance(dependant, Dependant) else []
    if not gates:
        return PUBLIC
    allowed: frozenset[Role] = frozenset(Role)
    for gate in gates:
        allowed = allowed & gate.roles
    return allowed


def app_routes(app: FastAPI) -> Iterator[tuple[str, str, RouteContext]]:
    """(method, path template, route) of every HTTP route, through included routers; mounted apps (static
    assets) are not routes here."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount) or route.path is None:
            continue
        for method in sorted(route.methods or ()):
            if method not in IGNORED_METHODS:
                yield method, route.path, route


def _describe(access: Access) -> str:
    return "public" if access is None else "{" + ", ".join(sorted(r.value for r in access)) + "}"


def problems(app: FastAPI, table: dict[tuple[str, str], Access] | None = None) -> list[str]:
    """Every disagreement between the table and the app's routes."""
    table = ROUTES if table is None else table
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    for method, path, route in app_routes(app):
        seen.add((method, path))
        if (method, path) not in table:
            found.append(f"{method} {path} is not in mutual.web.access.ROUTES (it requires "
                         f"{_describe(declared_roles(route))})")
        elif table[(method, path)] != declared_roles(route):
            found.append(f"{method} {path}: the table says {_describe(table[(method, path)])} but the route requires "
                         f"{_describe(declared_roles(route))}")
    found += [f"{method} {path} is in mutual.web.access.ROUTES but the app has no such route"
              for method, path in sorted(set(table) - seen)]
    return found


def enforce(app: FastAPI) -> None:
    found = problems(app)
    if found:
        raise RuntimeError("route access table and routes disagree:\n  " + "\n  ".join(found))
