"""The REST API /api/v1 on a small workspace: pages, formats, scoping per role, the overview's ETag, uploads with
their quality report, plans through their workflow, forecasts and alerts, and one error envelope throughout."""

from __future__ import annotations

import io
from collections.abc import Iterator
from csv import DictReader
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from conftest import ORGS_CSV
from engines import engine_env
from mutual.analytics import alerts as al
from mutual.app import Mutual, open_mutual
from mutual.web import accounts
from mutual.web.app import create_app

D0 = date(2021, 1, 1)
DAYS = 14
RECEIVED = datetime(2021, 1, 15, 9)
# (name, role, region, org): one user of every role, and a regional analyst of another region
USERS = [("nat", "national_analyst", None, None), ("reg", "regional_analyst", "Y56", None),
         ("trust", "trust_submitter", None, "R1H"), ("ral", "trust_submitter", None, "RAL"),
         ("plan", "planner", None, None), ("adm", "admin", None, None),
         ("north", "regional_analyst", "Y63", None)]


def rows_for(day: date, i: int) -> list[str]:
    """Three London trusts: R1H's G&A occupancy crosses 95% a week in, RAL holds 2 days of gloves."""
    out = []
    for org, occupied, stock in (("R1H", 480 if i >= 7 else 455, 5000), ("RAL", 900, 200), ("RYJ", 700 + i, 6000)):
        opened = 500 if org == "R1H" else 1000
        out += [f"{org},ga_beds_occupied,{day},{occupied},,,", f"{org},ga_beds_open,{day},{opened},,,",
                f"{org},covid_patients_in_hospital,{day},{10 + i},,,",
                f"{org},staff_absent,{day},{50 + i},,all,all",
                f"{org},supply_stock,{day},{stock},gloves,,", f"{org},supply_usage,{day},100,gloves,,",
                f"{org},days_of_supply,{day},{stock / 100:g},gloves,,"]
    return out


def build(m: Mutual, tmp: Path, *, alerts: bool = True) -> dict[str, str]:
    """Organisations, two weeks of values, the last two days' alert evaluations, and a token per user."""
    (tmp / "orgs.csv").write_text(ORGS_CSV)
    m.import_orgs(tmp / "orgs.csv")
    lines = ["org,metric,date,value,item,staff_group,reason"]
    for i in range(DAYS):
        lines += rows_for(D0 + timedelta(days=i), i)
    (tmp / "values.csv").write_text("\n".join(lines) + "\n")
    assert m.ingest(tmp / "values.csv", spec="mutual-long", received_at=RECEIVED).submission.status == "loaded"
    for i in range(DAYS - 2, DAYS) if alerts else ():
        al.run_alerts(m.store, D0 + timedelta(days=i))
    tokens = {}
    for name, role, region, org in USERS:
        accounts.add_user(m.sessions, name, role, password=None, region=region, org=org, orgs=m.orgs())
        tokens[name] = accounts.create_token(m.sessions, name)[1]
    return tokens


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]
    mutual: Mutual
    tmp: Path

    def call(self, method: str, url: str, who: str | None = "nat", **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.request(method, url, headers=headers, **kw)

    def get(self, url: str, who: str | None = "nat", **kw: Any) -> Any:
        return self.call("GET", url, who, **kw)

    def post(self, url: str, who: str | None = "nat", **kw: Any) -> Any:
        return self.call("POST", url, who, **kw)


def open_api(home: Path, tmp: Path, *, alerts: bool = True) -> Iterator[Api]:
    with open_mutual(home, create=True) as m:
        tokens = build(m, tmp, alerts=alerts)
        with TestClient(create_app(mutual=m)) as client:
            yield Api(client, tokens, m, tmp)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, module_data_plane: str) -> Iterator[Api]:
    """One workspace for the tests that only read (the API is specified on every data-plane engine)."""
    tmp = tmp_path_factory.mktemp("api")
    with engine_env(module_data_plane):
        yield from open_api(tmp / "ws", tmp)


@pytest.fixture
def fresh(tmp_path: Path, data_plane: str) -> Iterator[Api]:
    """A workspace of its own (no alerts evaluated), for tests that change what the others read."""
    yield from open_api(tmp_path / "ws", tmp_path, alerts=False)


def envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["code"] == code and error["message"]
    return error


# -- observations -----------------------------------------------------------------------------------------------


def test_observations_come_in_pages_with_a_link_to_the_next(api: Api) -> None:
    first = api.get("/api/v1/observations?metric=ga_beds_occupied&page_size=20").json()
    assert first["total"] == 3 * DAYS and first["page"] == 1 and len(first["items"]) == 20
    assert first["items"][0] | {"recorded_at": None} == {
        "org": "R1H", "metric": "ga_beds_occupied", "period": "2021-01-01", "value": 455.0, "dims": "",
        "period_end": "2021-01-01", "submission_id": 1, "sheet": None, "row_num": 2, "col": "value",
        "flagged": False, "recorded_at": None, "superseded_at": None}
    seen = [(r["org"], r["period"]) for r in first["items"]]
    page = first
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [(r["org"], r["period"]) for r in page["items"]]
    assert page["page"] == 3 and len(seen) == len(set(seen)) == 3 * DAYS
    assert api.get("/api/v1/observations?metric=ga_beds_occupied&page=9").json()["items"] == []


def test_observations_filter_by_org_dates_and_as_of(api: Api) -> None:
    got = api.get("/api/v1/observations?metric=ga_beds_occupied&org=R1H&from=2021-01-07&to=2021-01-08").json()
    assert [(r["period"], r["value"]) for r in got["items"]] == [("2021-01-07", 455.0), ("2021-01-08", 480.0)]
    before = api.get("/api/v1/observations?metric=ga_beds_occupied&as_of=2021-01-14T00:00:00").json()
    assert before["total"] == 0, "nothing was known before the file was received"
    assert api.get("/api/v1/observations?metric=ga_beds_occupied&as_of=2021-01-15T09:00:00Z").json()["total"] == 42


def test_observations_as_csv_and_parquet_carry_the_whole_result(api: Api) -> None:
    csv = api.get("/api/v1/observations?metric=ga_beds_occupied&format=csv&page_size=1")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("org,metric,period,value,dims,period_end,submission_id")
    records = list(DictReader(io.StringIO(csv.text)))
    assert len(records) == 3 * DAYS
    assert records[0] | {"recorded_at": ""} == {
        "org": "R1H", "metric": "ga_beds_occupied", "period": "2021-01-01", "value": "455", "dims": "",
        "period_end": "2021-01-01", "submission_id": "1", "sheet": "", "row_num": "2", "col": "value",
        "flagged": "false", "recorded_at": "", "superseded_at": ""}
    parquet = api.get("/api/v1/observations?metric=ga_beds_occupied&org=RAL&format=parquet")
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == DAYS and table.column_names[:4] == ["org", "metric", "period", "value"]
    assert set(table.column("org").to_pylist()) == {"RAL"}
    empty = api.get("/api/v1/observations?metric=ga_beds_occupied&from=2030-01-01&format=csv")
    assert empty.text.splitlines() == [lines[0]]


def test_observations_are_scoped_to_what_the_caller_may_see(api: Api) -> None:
    mine = api.get("/api/v1/observations?metric=ga_beds_occupied", "trust").json()
    assert mine["total"] == DAYS and {r["org"] for r in mine["items"]} == {"R1H"}
    envelope(api.get("/api/v1/observations?org=RAL", "trust"), 403, "forbidden")
    assert api.get("/api/v1/observations?metric=ga_beds_occupied", "reg").json()["total"] == 3 * DAYS
    assert api.get("/api/v1/observations", "north").json()["total"] == 0
    csv = api.get("/api/v1/observations?format=csv", "trust").text.splitlines()[1:]
    assert csv and all(line.startswith('"R1H",') for line in csv)


def test_every_error_is_the_envelope(api: Api) -> None:
    envelope(api.get("/api/v1/observations", None), 401, "unauthenticated")
    envelope(api.get("/api/v1/observations", None, headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")
    envelope(api.get("/api/v1/observations?metric=ga_beds_occupid"), 422, "invalid_request")
    envelope(api.get("/api/v1/observations?from=yesterday"), 422, "invalid_request")
    envelope(api.get("/api/v1/observations?from=2021-01-05&to=2021-01-01"), 422, "invalid_request")
    envelope(api.get("/api/v1/observations?page=0"), 422, "invalid_request")
    envelope(api.get("/api/v1/observations?format=xml"), 422, "invalid_request")
    envelope(api.get("/api/v1/nothing/here"), 404, "not_found")
    envelope(api.get("/api/v1/organisations/NOPE"), 404, "not_found")
    envelope(api.get("/api/v1/submissions/999"), 404, "not_found")
    envelope(api.get("/api/v1/plans/999"), 404, "not_found")
    envelope(api.get("/api/v1/rollups?from=2021-01-01&to=2021-01-02"), 422, "invalid_request")
    envelope(api.get("/api/v1/rollups?from=2021-01-01&to=2021-01-02&rate=nope"), 422, "invalid_request")
    envelope(api.get("/api/v1/rollups?from=2021-01-01&to=2021-01-02&metric=ga_beds_open", "trust"), 403,
             "forbidden")


# -- analytics ----------------------------------------------------------------------------------------------------


def test_rollups_of_a_rate_and_a_metric_with_coverage(api: Api) -> None:
    rate = api.get("/api/v1/rollups?rate=ga_occupancy&level=region&from=2021-01-08&to=2021-01-08").json()
    (row,) = rate["items"]
    assert row["org"] == "Y56" and row["numerator"] == 480 + 900 + 707 and row["denominator"] == 2500
    assert row["value"] == pytest.approx((480 + 900 + 707) / 2500) and row["trusts"] == 3
    stp = api.get("/api/v1/rollups?metric=ga_beds_occupied&level=stp&from=2021-01-08&to=2021-01-09&page_size=1")
    body = stp.json()
    assert body["total"] == 4 and body["next"] and body["items"][0]["org"] == "E54000027"
    assert body["items"][0]["reported"] == 1 and body["items"][0]["expected"] == 1
    assert api.get("/api/v1/rollups?metric=ga_beds_occupied&level=region&from=2021-01-08&to=2021-01-08",
                   "north").json()["total"] == 0


def test_completeness_summary_detail_and_scope(api: Api) -> None:
    summary = api.get("/api/v1/completeness?date=2021-01-14&metric=ga_beds_occupied").json()["items"]
    assert summary == [{**summary[0], "metric": "ga_beds_occupied", "day": "2021-01-14", "expected": 3,
                        "received": 3, "on_time": 0, "quarantined": 0}]
    detail = api.get("/api/v1/completeness?date=2021-01-13&to=2021-01-14&metric=ga_beds_occupied&detail=true",
                     "trust").json()
    assert detail["total"] == 2 and {r["org"] for r in detail["items"]} == {"R1H"}
    assert [r["late_hours"] for r in detail["items"]] == [46.0, 22.0], "received 9:00 on the 15th, due 11:00"
    envelope(api.get("/api/v1/completeness?date=2021-01-14&org=RAL", "trust"), 403, "forbidden")
    envelope(api.get("/api/v1/completeness?date=2021-01-14&deadline=25:00"), 422, "invalid_request")


def test_alerts_open_on_the_latest_evaluated_day_and_their_history(api: Api) -> None:
    body = api.get("/api/v1/alerts").json()
    assert body["day"] == "2021-01-14"
    found = {(a["org"], a["rule"]) for a in body["items"]}
    assert found == {("R1H", "ga_occupancy_critical"), ("RAL", "supply_critical")}
    supply = next(a for a in body["items"] if a["org"] == "RAL")
    assert supply["what"] == "Less than 3 days of supply (item=gloves)" and supply["severity"] == "red"
    mine = api.get("/api/v1/alerts", "trust").json()
    assert [a["org"] for a in mine["items"]] == ["R1H"]
    assert api.get("/api/v1/alerts?date=2021-01-07").json()["items"] == [], "nothing held before it was evaluated"
    history = api.get("/api/v1/alerts?show=history&org=RAL").json()["items"]
    assert history and all(a["org"] == "RAL" for a in history)
    envelope(api.get("/api/v1/alerts?show=everything"), 422, "invalid_request")


def test_the_overview_has_headlines_trends_alerts_and_pressure_and_answers_304(api: Api) -> None:
    first = api.get("/api/v1/overview")
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    body = first.json()
    assert body["day"] == "2021-01-14" and body["as_of"] == "2021-01-15T09:00:00Z", "times are UTC, and say so"
    heads = {h["key"]: h for h in body["headline"]}
    assert list(heads) == ["ga_occupancy", "cc_adult_occupancy", "ventilators_in_use", "covid_patients",
                           "staff_absent", "trusts_low_supply"]
    ga = heads["ga_occupancy"]
    assert ga["value"] == pytest.approx((480 + 900 + 713) / 2500) and ga["previous_day"] == "2021-01-07"
    assert ga["previous"] == pytest.approx((455 + 900 + 706) / 2500) and ga["trend"] == "up"
    assert heads["covid_patients"]["value"] == 3 * 23 and heads["covid_patients"]["previous"] == 3 * 16
    assert heads["staff_absent"]["value"] == 3 * 63
    assert heads["trusts_low_supply"]["value"] == 1 and heads["trusts_low_supply"]["trend"] == "flat"
    assert heads["cc_adult_occupancy"]["value"] is None, "nothing reported is not zero"
    assert body["alerts"] == {"day": "2021-01-14", "open": 2, "by_severity": {"amber": 0, "red": 2}}
    assert [p["org"] for p in body["pressure"]] == ["R1H", "RAL", "RYJ"]

    again = api.get("/api/v1/overview", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    assert api.get("/api/v1/overview").json() == body

    north = api.get("/api/v1/overview", "north")
    assert north.headers["etag"] != etag, "the ETag covers who is asking"
    assert north.json()["headline"] == body["headline"] and north.json()["pressure"] == []
    assert north.json()["alerts"]["open"] == 0
    envelope(api.get("/api/v1/overview", "trust"), 403, "forbidden")


def test_organisations_and_the_catalogue(api: Api) -> None:
    trusts = api.get("/api/v1/organisations?kind=trust", "trust").json()
    assert [o["code"] for o in trusts["items"]] == ["R1H", "RAL", "RYJ"]
    assert api.get("/api/v1/organisations/R1H").json()["parent"] == "E54000029"
    children = api.get("/api/v1/organisations?parent=E54000029").json()["items"]
    assert {o["code"] for o in children} == {"R1H", "RAL"}
    catalogue = api.get("/api/v1/catalogue").json()
    assert "ga_beds_occupied" in {m["code"] for m in catalogue["metrics"]}
    assert catalogue["rates"]["ga_occupancy"] == ["ga_beds_occupied", "ga_beds_open"]
    assert "mutual-long" in {s["name"] for s in catalogue["specs"]}


def test_the_openapi_document_describes_every_api_route(api: Api) -> None:
    doc = api.get("/openapi.json", None).json()
    paths = doc["paths"]
    for path in ("/api/v1/observations", "/api/v1/overview", "/api/v1/plans/{plan_id}/{action}",
                 "/api/v1/submissions/{submission_id}/quality", "/fhir/MeasureReport"):
        assert path in paths, path
    assert "Observation" in doc["components"]["schemas"]


# -- submissions --------------------------------------------------------------------------------------------------


def upload(api: Api, who: str, name: str, content: bytes, **form: str) -> Any:
    return api.post("/api/v1/submissions", who, files={"file": (name, content, "text/csv")}, data=form)


def test_an_upload_is_ingested_and_its_quality_report_read(fresh: Api) -> None:
    url = "/api/v1/observations?metric=ga_beds_open&org=R1H&from=2021-01-14"
    before = fresh.get(url, "trust")
    assert fresh.get(url, "trust", headers={"If-None-Match": before.headers["etag"]}).status_code == 304
    good = b"org,metric,date,value\nR1H,ga_beds_occupied,2021-01-15,4x0\nR1H,ga_beds_open,2021-01-15,500\n"
    sent = upload(fresh, "trust", "../../etc/r1h.csv", good, spec="mutual-long")
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert sent.headers["location"] == f"/api/v1/submissions/{body['id']}"
    assert (body["status"], body["source_org"], body["filename"], body["submitted_by"]) == (
        "loaded", "R1H", "r1h.csv", "trust")
    assert (body["values_read"], body["accepted"], body["quarantined"]) == (2, 1, 1)
    assert body["by_rule"][0]["rule"] == "not_a_number"
    report = fresh.get(body["links"]["quality"], "trust").json()
    assert report["submission"]["id"] == body["id"] and report["total"] == 1
    (issue,) = report["items"]
    assert (issue["row_num"], issue["col"], issue["raw"], issue["severity"]) == (2, "value", "4x0", "error")
    assert "not a number" in issue["message"]

    assert upload(fresh, "trust", "again.csv", good, spec="mutual-long").status_code == 200, "the same bytes"
    envelope(upload(fresh, "trust", "theirs.csv", good, org="RAL"), 403, "forbidden")
    envelope(upload(fresh, "trust", "x.csv", good, spec="/etc/passwd"), 422, "invalid_request")
    envelope(upload(fresh, "reg", "x.csv", good), 403, "forbidden")

    broken = envelope(upload(fresh, "trust", "broken.csv", b"\x00\x01 not a table"), 422, "rejected")
    rejected = fresh.get(f"/api/v1/submissions/{broken['details']['submission']}", "trust").json()
    assert rejected["status"] == "rejected" and rejected["error"]

    mine = fresh.get("/api/v1/submissions", "trust").json()
    assert {s["source_org"] for s in mine["items"]} == {"R1H"} and mine["total"] == 2
    assert fresh.get("/api/v1/submissions", "ral").json()["total"] == 0
    envelope(fresh.get(f"/api/v1/submissions/{body['id']}", "ral"), 404, "not_found")
    everyone = fresh.get("/api/v1/submissions?page_size=1").json()
    assert everyone["total"] == 3 and everyone["items"][0]["id"] == rejected["id"], "newest first"
    assert fresh.get("/api/v1/submissions?status=rejected").json()["total"] == 1

    after = fresh.get(url, "trust", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200, "new data, new ETag"
    assert [(r["period"], r["value"]) for r in after.json()["items"]] == [("2021-01-14", 500.0), ("2021-01-15", 500.0)]


# -- plans --------------------------------------------------------------------------------------------------------


def test_a_plan_is_proposed_approved_and_answered_by_role(fresh: Api) -> None:
    made = fresh.post("/api/v1/plans", "plan", json={"kind": "supplies", "horizon": 7, "k": 2})
    assert made.status_code == 201, made.text
    plan = made.json()
    assert plan["status"] == "proposed" and plan["created_by"] == "plan" and plan["moves"]
    assert {mv["dst"] for mv in plan["moves"]} == {"RAL"}, "gloves go to the trust about to run out"
    url = f"/api/v1/plans/{plan['id']}"
    assert made.headers["location"] == url

    envelope(fresh.post(f"{url}/approve", "trust"), 403, "forbidden")
    envelope(fresh.post(f"{url}/approve", "nat"), 403, "forbidden")
    envelope(fresh.post(f"{url}/reject", "plan", json={}), 409, "conflict")  # a reason is needed
    envelope(fresh.post(f"{url}/fly", "plan"), 422, "invalid_request")
    approved = fresh.post(f"{url}/approve", "plan")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    envelope(fresh.post(f"{url}/dispatch", "plan"), 409, "conflict")  # the trusts have not accepted

    ends = {mv["src"] for mv in plan["moves"]} | {mv["dst"] for mv in plan["moves"]}
    for who, org in (("trust", "R1H"), ("ral", "RAL")):
        answer = fresh.post(f"{url}/moves/accept", who)
        if org in ends:
            assert answer.status_code == 200, answer.text
            assert answer.json()["answered"]
            assert all(org in (mv["src"], mv["dst"]) for mv in answer.json()["plan"]["moves"])
        else:
            envelope(answer, 404, "not_found")  # a plan without the trust's moves is not the trust's to see
    envelope(fresh.post(f"{url}/moves/accept", "plan"), 403, "forbidden")

    seen = fresh.get("/api/v1/plans", "ral").json()
    assert [p["id"] for p in seen["items"]] == [plan["id"]]
    detail = fresh.get(url, "ral").json()
    assert all("RAL" in (mv["src"], mv["dst"]) for mv in detail["moves"])
    events = [e["action"] for e in fresh.get(url).json()["events"]]
    assert events[:2] == ["propose", "approve"] and "accept" in events
    assert fresh.get("/api/v1/plans?status=approved").json()["total"] == 1
    assert fresh.get("/api/v1/plans?status=rejected").json()["total"] == 0
    envelope(fresh.post("/api/v1/plans", "plan", json={"kind": "supplies", "items": ["sand"]}), 422,
             "invalid_request")
    envelope(fresh.post("/api/v1/plans", "plan", json={"kind": "rockets"}), 422, "invalid_request")


# -- forecasts and alert evaluation -------------------------------------------------------------------------------


def test_a_forecast_is_made_kept_and_read_back(api: Api) -> None:
    made = api.post("/api/v1/forecasts", "nat", json={"metric": "ga_beds_occupied", "orgs": ["R1H", "Y56"],
                                                          "horizon": 3})
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["saved"] and len(body["items"]) == 6
    assert {r["org"] for r in body["items"]} == {"R1H", "Y56"}
    first = body["items"][0]
    assert first["lo95"] <= first["lo80"] <= first["mean"] <= first["hi80"] <= first["hi95"]
    stored = api.get("/api/v1/forecasts?metric=ga_beds_occupied&horizon=2").json()
    assert stored["total"] == 4 and {r["horizon"] for r in stored["items"]} == {1, 2}
    assert api.get("/api/v1/forecasts", "trust").json()["total"] == 3, "a trust sees its own forecast"
    envelope(api.post("/api/v1/forecasts", "reg", json={"metric": "ga_beds_occupied", "orgs": ["all"]}), 403,
             "forbidden")
    envelope(api.post("/api/v1/forecasts", "nat", json={"metric": "ga_beds_open_typo", "orgs": ["R1H"]}), 422,
             "invalid_request")
    envelope(api.post("/api/v1/forecasts", "plan", json={"metric": "ga_beds_occupied", "orgs": ["R1H"]}), 403,
             "forbidden")


def test_alerts_are_evaluated_on_request_by_a_national_analyst(api: Api) -> None:
    done = api.post("/api/v1/alerts/evaluate", "nat", json={"date": "2021-01-14"})
    assert done.status_code == 200, done.text
    assert done.json() | {"checks": 0} == {"day": "2021-01-14", "checks": 0, "open": 2,
                                           "by_severity": {"amber": 0, "red": 2}}
    envelope(api.post("/api/v1/alerts/evaluate", "reg", json={}), 403, "forbidden")


def test_the_health_check_names_the_data_engine_in_use(api: Api, module_data_plane: str) -> None:
    health = api.client.get("/healthz").json()
    assert (health["status"], health["data_engine"]) == ("ok", module_data_plane)
    assert health["data_vintage"] is not None
