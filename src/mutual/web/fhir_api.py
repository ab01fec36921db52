"""FHIR R4 endpoint under /fhir: SANER MeasureReports (search, read, create), Organization and Location for the
organisations, and the CapabilityStatement. Content type ``application/fhir+json``; errors are OperationOutcomes
(``web.errors``).

- A MeasureReport is one organisation's values on one day, written from the store by ``ingest.fhir`` (the same
  writer as ``mutual query --format fhir``); its id is ``<org>-<day>-capacity``.
- Creating one (``POST /fhir/MeasureReport``, or a Bundle to ``POST /fhir``) goes through the same ingest as an
  uploaded file, and the answer is an OperationOutcome listing every quality issue at its FHIR path. A trust
  submitter posts only for its own trust: a report whose subject names another organisation is refused, and the
  rest are read as the trust's.
- Organization resources carry the hierarchy (``partOf``); Location resources say where an organisation is
  (sites, and every organisation with coordinates), managed by their Organization.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import mutual
from mutual.app import Mutual
from mutual.catalog import load_catalog
from mutual.catalog.orgs import MUTUAL_ORG_SYSTEM, ODS_SYSTEMS, Org, OrgKind, fhir_org_code
from mutual.ingest.fhir import bundle, measure_report
from mutual.store.base import ObservationQuery
from mutual.store.intake import IngestError
from mutual.web.api.common import Everyone, Submitter, check_days, check_org, workspace, writing
from mutual.web.auth import Principal, Role, visible_orgs
from mutual.web.deps import get_mutual
from mutual.web.errors import ApiError

FHIR_JSON = "application/fhir+json"
# The Measure that Mutual's MeasureReports report against (the CLI's ``FHIR_MEASURE``): each metric's SANER code.
MEASURE = "urn:mutual:Measure/capacity"
MEASURE_TAIL = MEASURE.rsplit("/", 1)[-1]
REPORT_ID = re.compile(r"^(?P<org>[A-Za-z0-9.-]+)-(?P<day>\d{4}-\d{2}-\d{2})-" + re.escape(MEASURE_TAIL) + "$")
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
ODS_LIKE = re.compile(r"^[A-Z0-9]{3,5}$")
DEFAULT_COUNT = 50
MAX_COUNT = 500


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


OUTCOME = {"content": {FHIR_JSON: {"schema": {"type": "object", "description": "OperationOutcome"}}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": f"{what}: an OperationOutcome", **OUTCOME}
    for status, what in ((400, "A search parameter or body that cannot be read"), (401, "Not signed in"),
                         (403, "Not allowed for this role or organisation"), (404, "No such resource"),
                         (422, "Not valid, or the submission was rejected as a whole"))}
router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirResponse, responses=ERRORS)

Count = Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT, description="Resources per page")]
Offset = Annotated[int, Query(alias="_offset", ge=0, le=10_000_000, description="Resources to skip")]


# -- helpers -------------------------------------------------------------------------------------------------


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def searchset(request: Request, resources: list[dict[str, Any]], total: int, count: int, offset: int
              ) -> dict[str, Any]:
    """A searchset Bundle of one page, with self and next links."""
    base = base_url(request)
    url = request.url
    links = [{"relation": "self", "url": str(url)}]
    if offset + count < total:
        links.append({"relation": "next", "url": str(url.include_query_params(_offset=offset + count,
                                                                                  _count=count))})
    return {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
            "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in resources]}


def org_of_reference(text: str | None, name: str) -> str | None:
    """``Organization/R1H``, a full URL ending so, ``system|value`` or a bare code -> the organisation code, by
    the rule readers use for a MeasureReport's subject (``catalog.orgs.fhir_org_code``)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if "|" in text:
        system, _, value = text.partition("|")
        code = fhir_org_code(None, [(system or None, value)]) if system else value
        if code is None:
            raise ApiError(400, "bad_request", f"{name}: identifier system {system!r} is not one of "
                                               f"{', '.join((*ODS_SYSTEMS, MUTUAL_ORG_SYSTEM))}", {name: text})
        return code
    parts = [p for p in text.split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if not parts:
        raise ApiError(400, "bad_request", f"{name} {text!r}: use Organization/CODE, system|CODE or CODE", {name: text})
    return fhir_org_code(parts[-1], [])


def period_bounds(values: list[str]) -> tuple[date | None, date | None]:
    """FHIR date search (``ge2020-04-01``, ``le2020-04-07``, ``eq``, ``gt``, ``lt`` or a bare day) as a range."""
    start: date | None = None
    end: date | None = None
    for raw in values:
        prefix, text = (raw[:2], raw[2:]) if raw[:2].isalpha() else ("eq", raw)
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            raise ApiError(400, "bad_request", f"period {raw!r}: use a day such as ge2020-04-01",
                           {"period": raw}) from None
        check_days(period=day)
        lo, hi = {"eq": (day, day), "ge": (day, None), "gt": (day + timedelta(days=1), None),
                  "le": (None, day), "lt": (None, day - timedelta(days=1))}.get(prefix, (None, None))
        if prefix not in ("eq", "ge", "gt", "le", "lt"):
            raise ApiError(400, "bad_request", f"period prefix {prefix!r} is not supported: use eq, ge, gt, le or lt",
                           {"period": raw})
        if lo is not None:
            start = lo if start is None else max(start, lo)
        if hi is not None:
            end = hi if end is None else min(end, hi)
    return start, end


def _code_of_id(resource_id: str, orgs: list[Org]) -> Org:
    for o in orgs:
        if o.code == resource_id or fhir_id(o.code) == resource_id:
            return o
    raise ApiError(404, "not_found", f"no organisation {resource_id!r}", {"id": resource_id})


def fhir_id(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", code).strip("-")[:64] or "org"


def _identifier(o: Org) -> dict[str, str]:
    """Trusts and sites by their ODS code; other organisations (regions, STPs) in Mutual's own system, since an
    ODS identifier marks a provider for readers (``catalog.orgs.fhir_org``)."""
    ods = o.kind in (OrgKind.TRUST, OrgKind.SITE) and ODS_LIKE.match(o.code)
    return {"system": ODS_SYSTEMS[1] if o.kind == OrgKind.SITE else ODS_SYSTEMS[0], "value": o.code} if ods else {
        "system": MUTUAL_ORG_SYSTEM, "value": o.code}


def _active(o: Org, today: date) -> bool:
    return o.close_date is None or o.close_date > today


def organization(o: Org, today: date) -> dict[str, Any]:
    kind = {OrgKind.TRUST: ("prov", "Healthcare Provider"), OrgKind.NATION: ("govt", "Government"),
            OrgKind.REGION: ("govt", "Government"), OrgKind.STP: ("govt", "Government")}.get(o.kind,
                                                                                        ("other", "Other"))
    res: dict[str, Any] = {"resourceType": "Organization", "id": fhir_id(o.code), "identifier": [_identifier(o)],
                           "active": _active(o, today), "name": o.name,
                           "type": [{"coding": [{"system": ORG_TYPE, "code": kind[0], "display": kind[1]}],
                                     "text": str(o.kind)}]}
    if o.parent:
        res["partOf"] = {"reference": f"Organization/{fhir_id(o.parent)}"}
    if o.postcode:
        res["address"] = [{"postalCode": o.postcode}]
    return res


def location(o: Org, today: date) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Location", "id": fhir_id(o.code), "identifier": [_identifier(o)],
                           "status": "active" if _active(o, today) else "inactive", "name": o.name,
                           "mode": "instance",
                           "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": "si", "display": "Site"}]}}
    if o.lat is not None and o.lon is not None:
        res["position"] = {"latitude": o.lat, "longitude": o.lon}
    managing = o.parent if o.kind == OrgKind.SITE else o.code
    if managing:
        res["managingOrganization"] = {"reference": f"Organization/{fhir_id(managing)}"}
    if o.postcode:
        res["address"] = {"postalCode": o.postcode}
    return res


def is_location(o: Org) -> bool:
    return o.kind == OrgKind.SITE or (o.lat is not None and o.lon is not None)


def is_organization(o: Org) -> bool:
    return o.kind != OrgKind.SITE


def capability_statement(base: str) -> dict[str, Any]:
    def param(name: str, kind: str, doc: str) -> dict[str, str]:
        return {"name": name, "type": kind, "documentation": doc}

    paging = [param("_count", "number", f"Resources per page (at most {MAX_COUNT})"),
              param("_offset", "number", "Resources to skip (the next link sets it)")]
    search_read = [{"code": "read"}, {"code": "search-type"}]
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": date.today().isoformat(),
        "kind": "instance", "fhirVersion": "4.0.1", "format": [FHIR_JSON, "json"],
        "publisher": "Mutual", "software": {"name": "Mutual", "version": mutual.__version__},
        "implementation": {"description": "Mutual: health-system capacity (HL7 SANER MeasureReports)", "url": base},
        "rest": [{
            "mode": "server",
            "documentation": "Every interaction but metadata needs Authorization: Bearer <token> (or a session).",
            "security": {"description": "Bearer API tokens; roles decide who may read and who may submit."},
            "resource": [
                {"type": "MeasureReport", "interaction": [*search_read, {"code": "create"}],
                 "searchParam": [param("subject", "reference", "Organization/CODE, an ODS identifier system|CODE "
                                                               "or a bare code"),
                                 param("reporter", "reference", "As subject (reports are their subject's own)"),
                                 param("period", "date", "eq, ge, gt, le, lt with a day; repeat for a range"),
                                 param("measure", "reference", f"{MEASURE} (every report Mutual writes)"),
                                 *paging]},
                {"type": "Organization", "interaction": search_read,
                 "searchParam": [param("_id", "token", "Organisation code"),
                                 param("partof", "reference", "Organization/CODE: its children"),
                                 param("type", "token", "prov, govt or other"), *paging]},
                {"type": "Location", "interaction": search_read,
                 "searchParam": [param("_id", "token", "Organisation code"),
                                 param("organization", "reference", "Organization/CODE managing it"), *paging]},
            ],
            "interaction": [{"code": "transaction", "documentation": "A Bundle of MeasureReports, ingested as one "
                                                                     "submission; answers an OperationOutcome"},
                            {"code": "batch"}],
        }],
    }


# -- metadata ------------------------------------------------------------------------------------------------


@router.get("/metadata", summary="The CapabilityStatement (no sign-in needed)")
def metadata(request: Request) -> Any:
    return capability_statement(base_url(request))


# -- MeasureReport -------------------------------------------------------------------------------------------


def _report_keys(m: Mutual, q: ObservationQuery, scope: set[str] | None, count: int, offset: int
                 ) -> tuple[list[tuple[str, date]], int, Any]:
    """One page of (organisation, day) report keys, their total, and the expression of their values."""
    expr = m.store.observations(q, ordered=False)
    if scope is not None:
        expr = expr.filter(expr.org.isin(sorted(scope)))
    expr = expr.select("org", "metric", "dims", "period", "value")
    keys = expr.select("org", "period").distinct()
    total = int(keys.count().execute())
    page = keys.order_by(["org", "period"]).limit(count, offset=offset).to_pyarrow().to_pylist()
    return [(k["org"], k["period"]) for k in page], total, expr


@router.get("/MeasureReport", summary="Search MeasureReports by subject or reporter, period and measure")
def search_reports(
        request: Request, principal: Everyone,
        subject: Annotated[str | None, Query(description="Organization/CODE, system|CODE or CODE")] = None,
        reporter: Annotated[str | None, Query(description="As subject")] = None,
        period: Annotated[list[str] | None, Query(description="ge2020-04-01, le2020-04-07, ...")] = None,
        measure: Annotated[str | None, Query(description=MEASURE)] = None,
        count: Count = DEFAULT_COUNT, offset: Offset = 0) -> Any:
    orgs = {c for c in (org_of_reference(subject, "subject"), org_of_reference(reporter, "reporter")) if c}
    start, end = period_bounds(period or [])
    empty = len(orgs) > 1 or (measure is not None and measure.rstrip("/").rsplit("/", 1)[-1] != MEASURE_TAIL) or (
        start is not None and end is not None and end < start)
    with workspace(request) as m:
        scope = visible_orgs(principal, m)
        org = next(iter(orgs), None)
        check_org(org, scope)
        if empty:
            return searchset(request, [], 0, count, offset)
        keys, total, expr = _report_keys(m, ObservationQuery(org=org, start=start, end=end), scope, count, offset)
        if keys:
            days = [d for _, d in keys]
            expr = expr.filter(expr.org.isin(sorted({o for o, _ in keys})), expr.period >= min(days),
                               expr.period <= max(days))
            values = expr.to_pyarrow()
        names = {o.code: o.name for o in m.orgs()}
    if not keys:
        return searchset(request, [], total, count, offset)
    wanted = set(keys)
    mask = [(o, d) in wanted for o, d in zip(values.column("org").to_pylist(), values.column("period").to_pylist(),
                                              strict=True)]
    doc = bundle(values.filter(pa.array(mask, pa.bool_())), measure=MEASURE, catalog=load_catalog(),
                 org_names=names, bundle_type="searchset")
    return searchset(request, [e["resource"] for e in doc["entry"]], total, count, offset)


@router.get("/MeasureReport/{report_id}", summary="One MeasureReport: an organisation's values on one day")
def read_report(request: Request, report_id: str, principal: Everyone) -> Any:
    found = REPORT_ID.match(report_id)
    if found is None:
        raise ApiError(404, "not_found", f"no MeasureReport {report_id!r} (ids are <org>-<day>-{MEASURE_TAIL})",
                       {"id": report_id})
    try:
        day = date.fromisoformat(found["day"])
    except ValueError:
        raise ApiError(404, "not_found", f"no MeasureReport {report_id!r}", {"id": report_id}) from None
    with workspace(request) as m:
        org = _code_of_id(found["org"], m.orgs())
        check_org(org.code, visible_orgs(principal, m))
        values = m.store.observations(ObservationQuery(org=org.code, start=day, end=day)).select(
            "org", "metric", "dims", "period", "value").to_pyarrow()
    if values.num_rows == 0:
        raise ApiError(404, "not_found", f"{org.code} has no values on {day}", {"id": report_id})
    return measure_report(values, org=org.code, org_name=org.name, day=day, measure=MEASURE, catalog=load_catalog())


def _reports(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("resourceType") == "MeasureReport":
        return [doc]
    entries = doc.get("entry")
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == "MeasureReport"] if isinstance(entries, list) else []


def _named_orgs(report: dict[str, Any]) -> set[str]:
    """The organisations a report's subject and reporter name by identifier or reference (the ones that can be
    told without resolving contained or bundled resources)."""
    found = set()
    for ref in (report.get("subject"), report.get("reporter")):
        if not isinstance(ref, dict):
            continue
        ident = ref.get("identifier")
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            code = fhir_org_code(None, [(ident.get("system"), ident["value"])])
            if code:
                found.add(code)
        reference = ref.get("reference")
        if isinstance(reference, str) and not reference.startswith(("#", "urn:")) and "/" in reference:
            code = org_of_reference(reference, "subject")
            if code:
                found.add(code)
    return found


def issue_path(kind: str, sheet: str | None, row: int | None, col: str | None) -> str:
    """The FHIR path of an issue's lineage: ``MeasureReport.group[0].population[2]`` in a single report,
    ``Bundle.entry[3].resource.group[0]...`` in a Bundle."""
    if kind == "MeasureReport":
        base = "MeasureReport"
    elif sheet is not None and sheet.startswith("entry["):
        base = f"Bundle.{sheet}.resource"
    else:
        base = f"Bundle.entry[{row - 1}].resource" if row else "Bundle"
    return base + (f".{col}" if col else "")


def outcome(kind: str, submission: Any, issues: list[dict[str, Any]], already: bool) -> dict[str, Any]:
    """Every quality issue of the submission, and one line saying what was stored."""
    summary = (f"submission {submission.id} (/api/v1/submissions/{submission.id}): already received on "
               f"{submission.received_at:%Y-%m-%d %H:%M}; nothing changed" if already else
               f"submission {submission.id} (/api/v1/submissions/{submission.id}): {submission.values_read} values "
               f"read, {submission.accepted} accepted ({submission.stored} new or changed), "
               f"{submission.quarantined} quarantined, {submission.warnings} warnings")
    found: list[dict[str, Any]] = [{"severity": "information", "code": "informational", "diagnostics": summary}]
    for i in issues:
        path = issue_path(kind, i["sheet"], i["row_num"], i["col"])
        found.append({"severity": "error" if i["severity"] == "error" else "warning",
                      "code": "structure" if i["rule"] == "malformed_line" else "business-rule",
                      "details": {"text": i["rule"]}, "diagnostics": i["message"],
                      "location": [path], "expression": [path]})
    return {"resourceType": "OperationOutcome", "issue": found}


def _ingest(request: Request, principal: Principal, path: Path, sha256: str, org: str | None, kind: str
            ) -> tuple[int, dict[str, Any]]:
    with workspace(request) as m:
        try:
            with writing(request):
                result = m.ingest(path, org=org, submitted_by=principal.username)
        except IngestError as exc:
            rejected = next((s for s in m.submissions() if s.sha256 == sha256), None)
            raise ApiError(422, "rejected", str(exc), {"submission": rejected.id if rejected else None}) from None
        s = result.submission
        issues = m.store.issues(s.id).to_pyarrow().to_pylist()
    # nothing stored and something wrong: the content was not created, though the submission is on record
    failed = s.accepted == 0 and any(i["severity"] == "error" for i in issues)
    status = 200 if result.already else 422 if failed else 201
    return status, outcome(kind, s, issues, result.already)


async def _create(request: Request, principal: Principal, kind: str) -> FhirResponse:
    body = await request.body()  # its size is limited before it gets here (``web.deps.WebSettings``)
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_request", f"the body is not JSON: {exc}") from None
    rtype = doc.get("resourceType") if isinstance(doc, dict) else None
    if rtype != kind:
        raise ApiError(400, "bad_request", f"expected a {kind} resource, not {rtype or 'a JSON ' + type(doc).__name__}",
                       {"resourceType": rtype})
    org = None
    if principal.role == Role.TRUST_SUBMITTER:
        org = principal.org
        others = sorted({c for r in _reports(doc) for c in _named_orgs(r)} - {org})
        if others:
            raise ApiError(403, "forbidden", f"you submit for {org}, not {', '.join(others)}",
                           {"yours": org, "named": others})
    tmp_dir = get_mutual(request).workspace.tmp_dir
    tmp_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="fhir-") as folder:
        path = Path(folder) / f"fhir-{kind.lower()}-{stamp}.json"
        path.write_bytes(body)
        status, result = await run_in_threadpool(_ingest, request, principal, path, hashlib.sha256(body).hexdigest(),
                                                 org, kind)
    return FhirResponse(result, status_code=status)


CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Ingested: an OperationOutcome listing every quality issue"},
    200: {"description": "The same content was received before: nothing changed"},
    422: {"description": "Nothing could be stored: an OperationOutcome listing why", **OUTCOME}}


@router.post("/MeasureReport", status_code=201, responses=CREATED,
             summary="Submit a MeasureReport: ingested like a file; answers an OperationOutcome of its issues")
async def create_report(request: Request, principal: Submitter) -> Any:
    return await _create(request, principal, "MeasureReport")


@router.post("", status_code=201, responses=CREATED,
             summary="Submit a Bundle of MeasureReports (transaction or batch) as one submission")
async def create_bundle(request: Request, principal: Submitter) -> Any:
    return await _create(request, principal, "Bundle")


# -- Organization and Location -------------------------------------------------------------------------------


def _page(request: Request, resources: list[dict[str, Any]], count: int, offset: int) -> dict[str, Any]:
    return searchset(request, resources[offset:offset + count], len(resources), count, offset)


@router.get("/Organization", summary="Organisations and their hierarchy (partOf)")
def organizations(
        request: Request, principal: Everyone,
        id_: Annotated[str | None, Query(alias="_id", description="Organisation code")] = None,
        partof: Annotated[str | None, Query(description="Organization/CODE: its children")] = None,
        type_: Annotated[str | None, Query(alias="type", description="prov, govt or other")] = None,
        count: Count = 100, offset: Offset = 0) -> Any:
    parent = org_of_reference(partof, "partof")
    today = date.today()
    with workspace(request) as m:
        orgs = m.orgs()
    found = [organization(o, today) for o in orgs if is_organization(o)
             and (id_ is None or id_ in (o.code, fhir_id(o.code))) and (parent is None or o.parent == parent)]
    if type_ is not None:
        code = type_.rpartition("|")[2]
        found = [r for r in found if r["type"][0]["coding"][0]["code"] == code]
    return _page(request, found, count, offset)


@router.get("/Organization/{org_id}", summary="One organisation")
def read_organization(request: Request, org_id: str, principal: Everyone) -> Any:
    with workspace(request) as m:
        o = _code_of_id(org_id, [o for o in m.orgs() if is_organization(o)])
    return organization(o, date.today())


@router.get("/Location", summary="Where organisations are: sites, and every organisation with coordinates")
def locations(
        request: Request, principal: Everyone,
        id_: Annotated[str | None, Query(alias="_id", description="Organisation code")] = None,
        organization_: Annotated[str | None, Query(alias="organization", description="Organization/CODE")] = None,
        count: Count = 100, offset: Offset = 0) -> Any:
    managing = org_of_reference(organization_, "organization")
    today = date.today()
    with workspace(request) as m:
        orgs = m.orgs()
    found = [location(o, today) for o in orgs if is_location(o) and (id_ is None or id_ in (o.code, fhir_id(o.code)))]
    if managing is not None:
        found = [r for r in found if r.get("managingOrganization", {}).get("reference") ==
                 f"Organization/{fhir_id(managing)}"]
    return _page(request, found, count, offset)


@router.get("/Location/{location_id}", summary="One location")
def read_location(request: Request, location_id: str, principal: Everyone) -> Any:
    with workspace(request) as m:
        o = _code_of_id(location_id, [o for o in m.orgs() if is_location(o)])
    return location(o, date.today())


__all__ = ["router"]
