"""The FHIR R4 endpoint /fhir: CapabilityStatement, MeasureReport search, read and create (through the same ingest as
files, answered by an OperationOutcome of every quality issue), Organization and Location; every resource valid
for the R4B models, every error an OperationOutcome."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization

from test_web_api import DAYS, Api, open_api

FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("fhir")
    yield from open_api(tmp / "ws", tmp, alerts=False)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Api]:
    yield from open_api(tmp_path / "ws", tmp_path, alerts=False)


def fhir(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    return body


def outcome(response: Any, status: int) -> list[dict[str, Any]]:
    body = fhir(response, status)
    OperationOutcome.model_validate(body)
    issues: list[dict[str, Any]] = body["issue"]
    return issues


def post(api: Api, url: str, doc: dict[str, Any], who: str = "trust") -> Any:
    return api.post(url, who, content=json.dumps(doc), headers={"Content-Type": FHIR_JSON})


def values(report: dict[str, Any]) -> dict[str, int]:
    return {g["code"]["coding"][0]["code"]: g["population"][0]["count"] for g in report["group"]
            if "population" in g}


def test_the_capability_statement_is_public_and_valid(api: Api) -> None:
    body = fhir(api.get("/fhir/metadata", None))
    CapabilityStatement.model_validate(body)
    (rest,) = body["rest"]
    types = {r["type"]: r for r in rest["resource"]}
    assert set(types) == {"MeasureReport", "Organization", "Location"}
    assert {"read", "search-type", "create"} == {i["code"] for i in types["MeasureReport"]["interaction"]}
    assert {"subject", "reporter", "period", "measure"} <= {p["name"] for p in types["MeasureReport"]["searchParam"]}


def test_search_by_subject_and_period_pages_through_a_searchset(api: Api) -> None:
    body = fhir(api.get("/fhir/MeasureReport?subject=Organization/R1H&period=ge2021-01-10&period=le2021-01-12"
                        "&_count=2"))
    Bundle.model_validate(body)
    assert body["type"] == "searchset" and body["total"] == 3 and len(body["entry"]) == 2
    ids = [e["resource"]["id"] for e in body["entry"]]
    assert ids == ["R1H-2021-01-10-capacity", "R1H-2021-01-11-capacity"]
    assert body["entry"][0]["fullUrl"].endswith("/fhir/MeasureReport/R1H-2021-01-10-capacity")
    following = next(link["url"] for link in body["link"] if link["relation"] == "next")
    rest = fhir(api.get(following))
    assert [e["resource"]["id"] for e in rest["entry"]] == ["R1H-2021-01-12-capacity"]
    assert not any(link["relation"] == "next" for link in rest["link"])
    report = body["entry"][0]["resource"]
    MeasureReport.model_validate(report)
    assert 480 in values(report).values(), "R1H's G&A beds occupied that day"
    assert report["subject"]["identifier"]["value"] == "R1H" and report["period"]["start"] == "2021-01-10"


def test_search_by_reporter_identifier_measure_and_scope(api: Api) -> None:
    ods = "https://fhir.nhs.uk/Id/ods-organization-code|RAL"
    assert fhir(api.get(f"/fhir/MeasureReport?reporter={ods}&period=2021-01-05"))["total"] == 1
    assert fhir(api.get("/fhir/MeasureReport?period=ge2021-01-14"))["total"] == 3
    assert fhir(api.get("/fhir/MeasureReport?measure=urn:mutual:Measure/capacity&period=ge2021-01-14"))["total"] == 3
    assert fhir(api.get("/fhir/MeasureReport?measure=http://hl7.org/fhir/uv/saner/Measure/Other"))["total"] == 0
    assert fhir(api.get("/fhir/MeasureReport", "trust"))["total"] == DAYS, "a trust sees its own reports"
    assert outcome(api.get("/fhir/MeasureReport?subject=RAL", "trust"), 403)[0]["code"] == "forbidden"
    issues = outcome(api.get("/fhir/MeasureReport?period=ap2021-01-01"), 400)
    assert "not supported" in issues[0]["diagnostics"]
    assert outcome(api.get("/fhir/MeasureReport?period=soon"), 400)[0]["code"] == "invalid"
    assert outcome(api.get("/fhir/MeasureReport?_count=0"), 422)[0]["code"] == "invalid"
    assert outcome(api.get("/fhir/MeasureReport", None), 401)[0]["code"] == "login"


def test_a_report_is_read_by_its_id(api: Api) -> None:
    report = fhir(api.get("/fhir/MeasureReport/RAL-2021-01-03-capacity"))
    MeasureReport.model_validate(report)
    assert report["id"] == "RAL-2021-01-03-capacity" and report["subject"]["display"].startswith("Royal Free")
    codes = {g["code"]["coding"][0]["code"] for g in report["group"]}
    assert len(codes) == 7, "one group per metric the trust reported that day"
    assert outcome(api.get("/fhir/MeasureReport/RAL-2020-01-03-capacity"), 404)[0]["code"] == "not-found"
    assert outcome(api.get("/fhir/MeasureReport/whatever"), 404)[0]["code"] == "not-found"
    assert outcome(api.get("/fhir/MeasureReport/RAL-2021-01-03-capacity", "trust"), 403)[0]["code"] == "forbidden"


def test_a_report_posted_is_stored_and_read_back(fresh: Api) -> None:
    report = fhir(fresh.get("/fhir/MeasureReport/R1H-2021-01-14-capacity", "trust"))
    sent = copy.deepcopy(report)
    sent["id"] = "from-the-trust"
    sent["period"] = {"start": "2021-01-15", "end": "2021-01-15"}
    for g in sent["group"]:
        for p in g.get("population", []):
            p["count"] += 1
    issues = outcome(post(fresh, "/fhir/MeasureReport", sent), 201)
    assert issues[0]["severity"] == "information" and "accepted" in issues[0]["diagnostics"]
    back = fhir(fresh.get("/fhir/MeasureReport/R1H-2021-01-15-capacity", "trust"))
    assert values(back) == {k: v + 1 for k, v in values(report).items()}
    again = outcome(post(fresh, "/fhir/MeasureReport", sent), 200)
    assert "nothing changed" in again[0]["diagnostics"]
    submission = fresh.get("/api/v1/submissions?page_size=1", "trust").json()["items"][0]
    assert (submission["source_org"], submission["submitted_by"], submission["format"]) == (
        "R1H", "trust", "fhir-measurereport")


def test_a_bad_report_gets_an_operation_outcome_of_every_issue(fresh: Api) -> None:
    report = fhir(fresh.get("/fhir/MeasureReport/R1H-2021-01-14-capacity", "trust"))
    report["period"] = {"start": "2021-01-16", "end": "2021-01-16"}
    report["group"][0]["population"][0]["count"] = -5
    issues = outcome(post(fresh, "/fhir/MeasureReport", report), 201)
    errors = [i for i in issues if i["severity"] == "error"]
    assert len(errors) == 1
    assert errors[0]["expression"] == ["MeasureReport.group[0].population[0]"] == errors[0]["location"]
    assert errors[0]["details"]["text"] == "out_of_bounds" and "-5" in errors[0]["diagnostics"]

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**report, "id": "ok", "period": {"start": "2021-01-17", "end": "2021-01-17"}},
         "request": {"method": "POST", "url": "MeasureReport"}},
        {"resource": {"resourceType": "Patient", "id": "p"}, "request": {"method": "POST", "url": "Patient"}}]}
    issues = outcome(post(fresh, "/fhir", bundle, "nat"), 201)
    paths = {i["expression"][0] for i in issues if i["severity"] != "information"}
    assert paths == {"Bundle.entry[0].resource.group[0].population[0]", "Bundle.entry[1].resource"}

    assert "expected a MeasureReport" in outcome(post(fresh, "/fhir/MeasureReport", bundle), 400)[0]["diagnostics"]
    assert outcome(fresh.post("/fhir", "trust", content=b"{not json", headers={"Content-Type": FHIR_JSON}),
                   400)[0]["code"] == "invalid"
    rejected = outcome(post(fresh, "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": "none"}), 422)
    assert "neither a FHIR MeasureReport" in rejected[0]["diagnostics"]


def test_a_trust_posts_only_for_itself(fresh: Api) -> None:
    theirs = fhir(fresh.get("/fhir/MeasureReport/RAL-2021-01-14-capacity"))
    theirs["period"] = {"start": "2021-01-15", "end": "2021-01-15"}
    issues = outcome(post(fresh, "/fhir/MeasureReport", theirs, "trust"), 403)
    assert "not RAL" in issues[0]["diagnostics"]
    assert outcome(post(fresh, "/fhir/MeasureReport", theirs, "reg"), 403)[0]["code"] == "forbidden"
    assert outcome(post(fresh, "/fhir/MeasureReport", theirs, "ral"), 201)[0]["severity"] == "information"


def test_organizations_and_locations(api: Api) -> None:
    orgs = fhir(api.get("/fhir/Organization?_count=100", "trust"))
    Bundle.model_validate(orgs)
    by_id = {e["resource"]["id"]: e["resource"] for e in orgs["entry"]}
    assert orgs["total"] == len(by_id) and {"ENG", "Y56", "E54000029", "R1H"} <= set(by_id)
    for resource in by_id.values():
        Organization.model_validate(resource)
    assert by_id["R1H"]["partOf"] == {"reference": "Organization/E54000029"}
    assert by_id["R1H"]["type"][0]["coding"][0]["code"] == "prov"
    assert by_id["R1H"]["identifier"] == [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "R1H"}]
    assert by_id["Y56"]["identifier"][0]["system"] == "urn:mutual:org", "a region is not a provider"
    children = fhir(api.get("/fhir/Organization?partof=Organization/E54000029"))
    assert {e["resource"]["id"] for e in children["entry"]} == {"R1H", "RAL"}
    assert fhir(api.get("/fhir/Organization?type=prov"))["total"] == 3
    Organization.model_validate(fhir(api.get("/fhir/Organization/Y56")))
    assert outcome(api.get("/fhir/Organization/NOPE"), 404)[0]["code"] == "not-found"

    places = fhir(api.get("/fhir/Location?_count=2"))
    Bundle.model_validate(places)
    assert places["total"] == 3 and len(places["entry"]) == 2
    barts = fhir(api.get("/fhir/Location/R1H"))
    Location.model_validate(barts)
    assert barts["position"] == {"latitude": 51.517, "longitude": -0.056}
    assert barts["managingOrganization"] == {"reference": "Organization/R1H"}
    managed = fhir(api.get("/fhir/Location?organization=Organization/RYJ"))
    assert [e["resource"]["id"] for e in managed["entry"]] == ["RYJ"]
    assert outcome(api.get("/fhir/Location/Y56"), 404)[0]["code"] == "not-found"
