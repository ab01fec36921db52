"""The organisation, data-quality, submission, alert and plan pages, used as a browser uses them: signed in with a
session cookie, forms carrying the session's CSRF token, on a small workspace of three London trusts."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import ORGS_CSV
from mutual.analytics import alerts as al
from mutual.analytics.forecast import FORECAST_SCHEMA, MODEL_NAME, store_forecast
from mutual.app import Mutual, open_mutual
from mutual.planning.records import get_plan, save_plan
from mutual.planning.runner import make_plan
from mutual.web import accounts, sessions
from mutual.web.app import create_app

D0 = date(2021, 1, 1)
DAYS = 14
LAST = D0 + timedelta(days=DAYS - 1)
RECEIVED = datetime(2021, 1, 15, 9)
# (name, role, region, org)
USERS = [("nat", "national_analyst", None, None), ("reg", "regional_analyst", "Y56", None),
         ("trust", "trust_submitter", None, "R1H"), ("ral", "trust_submitter", None, "RAL"),
         ("plan", "planner", None, None)]
FORECAST = [(1, 482.0, 470.0, 494.0, 463.0, 501.0), (2, 484.0, 466.0, 502.0, 455.0, 513.0)]


def values_csv() -> str:
    """Two weeks of three trusts: R1H's G&A occupancy crosses 95 % a week in, RAL holds 2 days of gloves, and RYJ
    sends nothing on the last day."""
    lines = ["org,metric,date,value,item,staff_group,reason"]
    for i in range(DAYS):
        day = D0 + timedelta(days=i)
        for org, occupied, opened, stock in (("R1H", 480 if i >= 7 else 455, 500, 5000), ("RAL", 900, 1000, 200),
                                             ("RYJ", 700 + i, 1000, 6000)):
            if org == "RYJ" and day == LAST:
                continue
            lines += [f"{org},ga_beds_occupied,{day},{occupied},,,", f"{org},ga_beds_open,{day},{opened},,,",
                      f"{org},staff_absent,{day},{50 + i},,all,all", f"{org},staff_absent,{day},{20 + i},,nursing,all",
                      f"{org},supply_stock,{day},{stock},gloves,,", f"{org},supply_usage,{day},100,gloves,,",
                      f"{org},days_of_supply,{day},{stock / 100:g},gloves,,"]
    return "\n".join(lines) + "\n"


def forecast_rows() -> pa.Table:
    """A stored forecast of R1H's occupied beds, two days ahead (made by hand: the page only reads it)."""
    made = datetime(2021, 1, 15, 10)
    return pa.Table.from_pylist([
        {"org": "R1H", "metric": "ga_beds_occupied", "dims": "", "made_at": made, "vintage": RECEIVED,
         "period": LAST + timedelta(days=h), "horizon": h, "mean": mean, "lo80": lo80, "hi80": hi80, "lo95": lo95,
         "hi95": hi95, "model": MODEL_NAME} for h, mean, lo80, hi80, lo95, hi95 in FORECAST], schema=FORECAST_SCHEMA)


def build(m: Mutual, tmp: Path) -> int:
    """Organisations, the values, a forecast, the last two days' alerts, a user per role; returns a proposed
    supplies plan's id."""
    (tmp / "orgs.csv").write_text(ORGS_CSV)
    m.import_orgs(tmp / "orgs.csv")
    (tmp / "values.csv").write_text(values_csv())
    assert m.ingest(tmp / "values.csv", spec="mutual-long", received_at=RECEIVED).submission.status == "loaded"
    store_forecast(m.store, forecast_rows())
    for i in range(DAYS - 2, DAYS):
        al.run_alerts(m.store, D0 + timedelta(days=i))
    for name, role, region, org in USERS:
        accounts.add_user(m.sessions, name, role, password=None, region=region, org=org, orgs=m.orgs())
    return save_plan(m.sessions, make_plan(m.store, "supplies", horizon=7, k=2), created_by="plan")


@dataclass
class Site:
    app: FastAPI
    mutual: Mutual
    plan_id: int

    def browser(self, who: str) -> Browser:
        """A signed-in browser of ``who``, as a sign-in would leave it (without argon2's cost)."""
        state = self.app.state.web
        user = accounts.get_user(self.mutual.sessions, who)
        claims = sessions.new_session(user.id, user.session_epoch, time.time())
        client = TestClient(self.app, cookies={sessions.SESSION_COOKIE: sessions.sign_session(state.secret, claims)},
                            headers={"accept": "text/html"}, raise_server_exceptions=False)
        return Browser(client, sessions.csrf_for_session(state.secret, claims.sid))


@dataclass
class Browser:
    client: TestClient
    csrf: str

    def get(self, url: str) -> Any:
        return self.client.get(url, follow_redirects=False)

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any) -> Any:
        return self.client.post(url, data={**({"csrf_token": self.csrf} if csrf else {}), **(data or {})},
                                follow_redirects=False, **kw)


def open_site(tmp: Path) -> Iterator[Site]:
    with open_mutual(tmp / "ws", create=True) as m:
        plan_id = build(m, tmp)
        app = create_app(mutual=m)
        with TestClient(app):
            yield Site(app, m, plan_id)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One workspace for the tests that only read."""
    yield from open_site(tmp_path_factory.mktemp("pages"))


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Site]:
    """A workspace of its own, for tests that change what others read."""
    yield from open_site(tmp_path)


def element(html: str, element_id: str) -> str:
    """The element with ``id``, up to its own closing tag."""
    found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert found, f"no element #{element_id}"
    tag, depth = found.group(1), 1
    for t in re.finditer(rf"<(/?){tag}\b[^>]*>", html[found.end():]):
        depth += -1 if t.group(1) else 1
        if depth == 0:
            return html[found.start():found.end() + t.end()]
    raise AssertionError(f"#{element_id} is not closed")


def table_rows(html: str, element_id: str) -> list[list[str]]:
    """The text of each body row's cells of table ``id``."""
    body = element(html, element_id).split("<tbody", 1)[1]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def no_inline_code(html: str) -> None:
    """The content security policy allows no inline script or style: data blocks only."""
    assert " style=" not in html
    for attrs in re.findall(r"<script([^>]*)>", html):
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs


# -- organisations --------------------------------------------------------------------------------------------


def test_a_trust_page_shows_its_values_and_its_forecast_with_intervals(site: Site) -> None:
    page = site.browser("nat").get("/orgs/R1H")
    assert page.status_code == 200, page.text
    html = page.text
    no_inline_code(html)
    assert "Barts Health NHS Trust" in element(html, "org-name")
    assert 'id="as-of"' in html and "15 January 2021, 09:00" in html
    rows = table_rows(html, "metric-ga_beds_occupied")
    assert rows[0][0] == "2021-01-01", "the window starts 28 days back; rows are the days with values"
    reported = {r[0]: r[1] for r in rows if r[1] != "–"}
    assert reported["2021-01-07"] == "455" and reported["2021-01-14"] == "480"
    forecast = [r for r in rows if r[2] != "–"]
    assert [r[0] for r in forecast] == ["2021-01-15", "2021-01-16"]
    assert forecast[0][2:] == ["482", "470", "494", "463", "501"]
    assert 'id="metric-ga_beds_occupied-spec"' in html, "the chart's Vega-Lite spec travels as a data block"
    capacity = table_rows(html, "capacity-ga")
    assert capacity[-1] == ["2021-01-14", "500", "480", "96.0%"]
    assert ["gloves", "50.0", "exact", "2021-01-14"] in table_rows(html, "supplies")
    assert ["nursing", "all", "33", "2021-01-14"] in table_rows(html, "staff")


def test_a_tables_csv_download_carries_the_same_rows(site: Site) -> None:
    got = site.browser("nat").get("/orgs/R1H?format=csv&table=ga_beds_occupied&to=2021-01-14&days=7")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="R1H-ga_beds_occupied.csv"' in got.headers["content-disposition"]
    records = list(csv.reader(io.StringIO(got.text)))
    assert records[0] == ["Day", "Reported", "Forecast", "80% interval from", "80% interval to",
                          "95% interval from", "95% interval to"]
    assert records[1] == ["2021-01-08", "480.0", "", "", "", "", ""]
    assert records[-1] == ["2021-01-16", "", "484.0", "466.0", "502.0", "455.0", "513.0"]
    assert len(records) == 1 + 7 + 2
    missing = site.browser("nat").get("/orgs/R1H?format=csv&table=nothing")
    assert missing.status_code == 404 and "capacity-ga" in missing.text


def test_a_region_page_rolls_its_trusts_up_and_says_how_many_reported(site: Site) -> None:
    html = site.browser("reg").get("/orgs/Y56").text
    rows = {r[0]: r for r in table_rows(html, "metric-ga_beds_occupied")}
    assert rows["2021-01-13"][1:4] == [f"{480 + 900 + 712:,}", "3", "3"]
    assert rows["2021-01-14"][1:4] == [f"{480 + 900:,}", "2", "3"], "RYJ did not report: missing, not zero"
    assert table_rows(html, "capacity-ga")[-1] == ["2021-01-14", "1,500", "1,380", "92.0%", "2"]
    assert "East London" in element(html, "org-children")


def test_each_user_sees_only_the_organisations_of_their_scope(site: Site) -> None:
    trust = site.browser("trust")
    listed = [r[0] for r in table_rows(trust.get("/orgs").text, "org-list")]
    assert listed == ["R1H"]
    assert trust.get("/orgs/RAL").status_code == 403
    assert trust.get("/orgs/Y56").status_code == 403
    assert "You cannot do this" in trust.get("/orgs/Y56").text
    regional = [r[0] for r in table_rows(site.browser("reg").get("/orgs?kind=trust").text, "org-list")]
    assert regional == ["R1H", "RYJ", "RAL"], "by name"
    assert [r[0] for r in table_rows(site.browser("nat").get("/orgs?q=royal").text, "org-list")] == ["RAL"]
    assert site.browser("nat").get("/orgs/NOPE").status_code == 404


def test_a_signed_out_browser_is_sent_to_sign_in(site: Site) -> None:
    client = TestClient(site.app, headers={"accept": "text/html"})
    for path in ("/orgs/R1H", "/quality", "/submissions", "/alerts", "/plans"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}", path


# -- data quality ---------------------------------------------------------------------------------------------


def test_the_quality_grid_marks_missing_reports(site: Site) -> None:
    html = site.browser("nat").get("/quality").text
    no_inline_code(html)
    grid = element(html, "completeness-grid")
    rows = {r[0]: r[1:] for r in table_rows(html, "completeness-grid")}
    assert set(rows) == {"Barts Health NHS Trust", "Royal Free London NHS Foundation Trust",
                         "Imperial College Healthcare NHS Trust"}
    assert rows["Imperial College Healthcare NHS Trust"][-1] == "missing"
    assert rows["Barts Health NHS Trust"][-1] == "late 22h", "received 9:00 on the 15th, due 11:00 on the 14th"
    assert grid.count('class="mutual-cell--missing"') == 1
    got = site.browser("nat").get("/quality?format=csv&table=grid")
    records = list(csv.DictReader(io.StringIO(got.text)))
    (ryj,) = [r for r in records if r["Trust"] == "RYJ" and r["Day"] == "2021-01-14"]
    assert ryj["Status"] == "missing" and ryj["Received"] == "0"


def test_a_trust_sees_only_its_own_row_of_the_grid(site: Site) -> None:
    rows = table_rows(site.browser("trust").get("/quality").text, "completeness-grid")
    assert [r[0] for r in rows] == ["Barts Health NHS Trust"]


def bad_values(day: str = "2021-01-15") -> bytes:
    return (f"org,metric,date,value\nR1H,ga_beds_occupied,{day},4x0\nR1H,ga_beds_open,{day},500\n"
            f"R1H,ga_beds_open,{day}x,500\n").encode()


def test_quarantined_values_are_listed_and_released_by_an_analyst(fresh: Site) -> None:
    trust, reg = fresh.browser("trust"), fresh.browser("reg")
    over = b"org,metric,date,value\nR1H,ga_beds_occupied,2021-01-15,650\nR1H,ga_beds_open,2021-01-15,500\n"
    sent = trust.post("/submissions", files={"file": ("over.csv", over, "text/csv")}, data={"spec": "mutual-long"})
    assert sent.status_code == 303
    (held,) = table_rows(reg.get("/quality").text, "quarantined")
    assert "line 2, field value" in held[0] and held[2] == "650" and "open" in held[3]
    assert "Release" in held[4] and "Send correction" not in held[4], "an analyst releases; trusts correct"
    (own,) = table_rows(trust.get("/quality").text, "quarantined")
    assert "Release" not in own[4] and "Send correction" in own[4]
    sid = int(sent.headers["location"].rsplit("/", 1)[1])
    refused = trust.post("/quality/release", {"submission_id": sid, "line": 2, "column": "value"})
    assert refused.status_code == 403
    done = reg.post("/quality/release", {"submission_id": sid, "line": 2, "column": "value"})
    assert done.status_code == 303 and done.headers["location"].startswith("/quality?done=released")
    assert "No values are held." in reg.get("/quality").text
    values = fresh.mutual.store.con.execute(
        "SELECT value, flagged FROM observation WHERE org = 'R1H' AND metric = 'ga_beds_occupied' "
        "AND period = DATE '2021-01-15' AND superseded_at IS NULL").fetchall()
    assert values == [(650.0, True)]
    again = reg.post("/quality/release", {"submission_id": sid, "line": 2, "column": "value"})
    assert again.status_code == 404, "nothing open is left there"


def test_a_trust_corrects_a_quarantined_value_through_a_new_submission(fresh: Site) -> None:
    trust = fresh.browser("trust")
    sent = trust.post("/submissions", files={"file": ("bad.csv", bad_values(), "text/csv")},
                      data={"spec": "mutual-long"})
    sid = int(sent.headers["location"].rsplit("/", 1)[1])
    held = table_rows(trust.get("/quality").text, "quarantined")
    number = next(r for r in held if "4x0" in r[2])
    assert "Send correction" in number[4] and "Release" not in number[4]
    empty = trust.post("/quality/correct", {"submission_id": sid, "line": 2, "column": "value", "value": " "})
    assert empty.status_code == 422 and "Enter the corrected value" in empty.text
    fixed = trust.post("/quality/correct", {"submission_id": sid, "line": 2, "column": "value", "value": "470"})
    assert fixed.status_code == 303
    report = trust.get(fixed.headers["location"]).text
    assert "No issues" in report and "correction-" in report
    statuses = fresh.mutual.store.con.execute(
        "SELECT status FROM quality_issue WHERE submission_id = ? AND row_num = 2", [sid]).fetchall()
    assert statuses == [("corrected",)]
    unreadable = next(r for r in table_rows(trust.get("/quality").text, "quarantined") if "2021-01-15x" in r[3])
    assert "Send a corrected file" in unreadable[4], "a value whose day cannot be read cannot be corrected here"


# -- submissions ----------------------------------------------------------------------------------------------


def test_uploading_a_broken_csv_shows_its_quality_report_naming_line_and_field(fresh: Site) -> None:
    trust = fresh.browser("trust")
    form = trust.get("/submissions").text
    assert 'id="upload-form"' in form and 'enctype="multipart/form-data"' in form
    sent = trust.post("/submissions", files={"file": ("broken.csv", bad_values(), "text/csv")},
                      data={"spec": "mutual-long"})
    assert sent.status_code == 303 and re.fullmatch(r"/submissions/\d+", sent.headers["location"])
    page = trust.get(sent.headers["location"])
    assert page.status_code == 200
    no_inline_code(page.text)
    report = table_rows(page.text, "quality-report")
    by_line = {r[1]: r for r in report}
    assert by_line["2"][2] == "value" and by_line["2"][7] == "4x0" and "not a number" in by_line["2"][10]
    assert by_line["4"][0] == "–" and "2021-01-15x" in by_line["4"][10]
    summary = element(page.text, "submission-summary")
    assert "loaded" in summary and "R1H" in summary
    csv_report = list(csv.DictReader(io.StringIO(trust.get(sent.headers["location"] + "?format=csv").text)))
    assert {(r["Line"], r["Field"], r["Value sent"]) for r in csv_report} >= {("2", "value", "4x0")}


def test_a_file_rejected_as_a_whole_has_a_page_saying_why(fresh: Site) -> None:
    trust = fresh.browser("trust")
    sent = trust.post("/submissions", files={"file": ("noise.csv", b"\x00\x01 not a table", "text/csv")})
    assert sent.status_code == 303
    html = trust.get(sent.headers["location"]).text
    assert "The file was rejected" in element(html, "rejected")
    missing = trust.post("/submissions", files={"file": ("", b"", "text/csv")})
    assert missing.status_code == 422 and "Choose a file" in missing.text
    theirs = trust.post("/submissions", files={"file": ("x.csv", bad_values(), "text/csv")}, data={"org": "RAL"})
    assert theirs.status_code == 403 and "you submit for R1H" in element(theirs.text, "error-summary")


def test_a_trust_submitter_sees_only_its_own_submissions(fresh: Site) -> None:
    ral, trust = fresh.browser("ral"), fresh.browser("trust")
    theirs = ral.post("/submissions", files={"file": ("ral.csv", b"org,metric,date,value\nRAL,ga_beds_open,"
                                                              b"2021-01-15,1000\n", "text/csv")})
    mine = trust.post("/submissions", files={"file": ("r1h.csv", bad_values(), "text/csv")})
    theirs_id, mine_id = (int(r.headers["location"].rsplit("/", 1)[1]) for r in (theirs, mine))
    listed = table_rows(trust.get("/submissions").text, "submission-history")
    assert [r[0] for r in listed] == [str(mine_id)] and listed[0][3] == "R1H"
    assert trust.get(f"/submissions/{theirs_id}").status_code == 404
    assert trust.get(f"/submissions/{mine_id}").status_code == 200
    everyone = [int(r[0]) for r in table_rows(fresh.browser("nat").get("/submissions").text, "submission-history")]
    assert everyone == [mine_id, theirs_id, 1], "newest first"
    only_ral = table_rows(fresh.browser("nat").get("/submissions?org=RAL").text, "submission-history")
    assert [r[0] for r in only_ral] == [str(theirs_id)]
    assert 'id="upload-form"' not in fresh.browser("reg").get("/submissions").text


# -- alerts ---------------------------------------------------------------------------------------------------


def test_open_alerts_show_severity_trust_metric_and_reason(site: Site) -> None:
    html = site.browser("nat").get("/alerts").text
    no_inline_code(html)
    rows = table_rows(html, "alerts")
    assert {(r[0], r[1].split(" (")[-1].rstrip(")")) for r in rows} == {("red", "R1H"), ("red", "RAL")}
    gloves = next(r for r in rows if "RAL" in r[1])
    assert gloves[2] == "Less than 3 days of supply (item=gloves)" and gloves[3] == "2 on 14 Jan: 2 days"
    occupancy = next(r for r in rows if "R1H" in r[1])
    assert occupancy[3] == "96.0% on 14 Jan: 480 of 500" and occupancy[4] == "2021-01-13"
    assert table_rows(html, "alert-counts") == [["G&amp;A bed occupancy above 95%", "1", "0"],
                                                ["Less than 3 days of supply", "1", "0"]]
    assert [r[1] for r in table_rows(site.browser("trust").get("/alerts").text, "alerts")] == [
        "Barts Health NHS Trust (R1H)"]
    got = list(csv.DictReader(io.StringIO(site.browser("nat").get("/alerts?format=csv").text)))
    assert {r["Trust"] for r in got} == {"R1H", "RAL"}
    assert site.browser("nat").get("/alerts?date=2021-01-07").text.count("No open alerts.") == 1


# -- plans ----------------------------------------------------------------------------------------------------


def plan_status(site: Site) -> str:
    return get_plan(site.mutual.sessions, site.plan_id).record.status


def test_a_plan_page_shows_moves_map_totals_and_history(site: Site) -> None:
    html = site.browser("plan").get(f"/plans/{site.plan_id}").text
    no_inline_code(html)
    moves = table_rows(html, "plan-moves")
    assert moves and all((r[1], r[3], r[5]) == ("gloves", "RYJ", "RAL") for r in moves), \
        "gloves go from the trust with plenty to the one about to run out"
    assert 'id="plan-moves-spec"' in html, "the map's spec"
    assert table_rows(html, "plan-totals")
    assert "propose" in element(html, "plan-events")
    for button in ("Approve", "Reject", "Cancel plan"):
        assert f">{button}</button>" in element(html, "plan-actions")
    assert "plan-actions" not in site.browser("nat").get(f"/plans/{site.plan_id}").text
    listed = table_rows(site.browser("plan").get("/plans").text, "plan-list")
    assert listed[0][:3] == [f"Plan {site.plan_id}", "supplies", "proposed"]
    got = list(csv.DictReader(io.StringIO(site.browser("plan").get(f"/plans/{site.plan_id}?format=csv").text)))
    assert len(got) == len(moves) and got[0]["To"] == "RAL"


def test_a_planner_approves_a_plan_from_its_page(fresh: Site) -> None:
    planner = fresh.browser("plan")
    done = planner.post(f"/plans/{fresh.plan_id}/approve")
    assert done.status_code == 303 and done.headers["location"] == f"/plans/{fresh.plan_id}?done=approve"
    assert plan_status(fresh) == "approved"
    html = planner.get(done.headers["location"]).text
    assert "approved" in element(html, "plan-status") and 'id="done"' in html
    assert ">Dispatch</button>" in element(html, "plan-actions")
    refused = planner.post(f"/plans/{fresh.plan_id}/dispatch")
    assert refused.status_code == 409 and "not yet accepted" in element(refused.text, "error-summary")


def test_a_trust_submitter_may_not_approve(fresh: Site) -> None:
    refused = fresh.browser("trust").post(f"/plans/{fresh.plan_id}/approve")
    assert refused.status_code == 403
    assert "You cannot do this" in refused.text and "trust submitter may not do this" in refused.text
    assert plan_status(fresh) == "proposed"


def test_rejecting_without_a_reason_shows_the_error_on_the_page(fresh: Site) -> None:
    planner = fresh.browser("plan")
    page = planner.post(f"/plans/{fresh.plan_id}/reject", {"reason": "  "})
    assert page.status_code == 409
    assert "say why the plan is rejected" in element(page.text, "error-summary")
    assert 'id="reason-reject-error"' in page.text and "Traceback" not in page.text
    assert plan_status(fresh) == "proposed"
    assert planner.post(f"/plans/{fresh.plan_id}/reject", {"reason": "stock arrived"}).status_code == 303
    assert plan_status(fresh) == "rejected"
    assert planner.post(f"/plans/{fresh.plan_id}/fly").status_code == 422


def test_trusts_answer_for_their_own_moves(fresh: Site) -> None:
    ral = fresh.browser("ral")
    form = element(ral.get(f"/plans/{fresh.plan_id}").text, "plan-answer")
    assert ">Accept</button>" in form and ">Decline</button>" in form
    declined = ral.post(f"/plans/{fresh.plan_id}/moves/decline")
    assert declined.status_code == 409 and "say why the move is declined" in declined.text
    assert ral.post(f"/plans/{fresh.plan_id}/moves/accept").status_code == 303
    view = get_plan(fresh.mutual.sessions, fresh.plan_id)
    assert all(mv.dst_answer == "accepted" for mv in view.moves if mv.dst == "RAL")
    assert fresh.browser("plan").post(f"/plans/{fresh.plan_id}/moves/accept").status_code == 403


def test_a_form_sent_without_its_csrf_token_is_refused(fresh: Site) -> None:
    planner, trust, nat = fresh.browser("plan"), fresh.browser("trust"), fresh.browser("nat")
    for browser, url, data in ((planner, f"/plans/{fresh.plan_id}/approve", {}),
                               (trust, f"/plans/{fresh.plan_id}/moves/accept", {}),
                               (nat, "/quality/release", {"submission_id": 1, "line": 2}),
                               (trust, "/quality/correct", {"submission_id": 1, "line": 2, "value": "1"})):
        r = browser.post(url, data, csrf=False)
        assert r.status_code == 403 and "CSRF" in r.text, url
    r = trust.post("/submissions", csrf=False, files={"file": ("x.csv", bad_values(), "text/csv")})
    assert r.status_code == 403 and "CSRF" in r.text
    assert plan_status(fresh) == "proposed"
    assert [s.id for s in fresh.mutual.submissions()] == [1]
