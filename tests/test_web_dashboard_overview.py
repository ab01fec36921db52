"""The overview and the map, as a browser without JavaScript reads them: every figure is in the HTML, the
tables download as CSV, and the data's as-of time is on the page."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_web_api import Api, open_api

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("dashboard")
    yield from open_api(tmp / "ws", tmp)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_overview_shows_headline_figures_with_their_trend_alerts_and_pressure(api: Api) -> None:
    page = api.get("/", headers=HTML)
    assert page.status_code == 200, page.text
    words = text_of(page.text)
    # R1H 480/500, RAL 900/1000, RYJ 713/1000 on the last day: (480 + 900 + 713) / 2500
    assert "G&amp;A bed occupancy" in page.text and "83.7%" in words
    assert "Data as of 15 January 2021, 09:00" in words
    assert re.search(r"&#8593;|↑", page.text), "a rising figure has its arrow"
    alerts = page.text[page.text.index('id="alerts"'):]
    assert "Barts Health" in alerts.split("</table>")[0], "R1H's occupancy alert is listed"
    pressure = page.text[page.text.index('id="pressure"'):].split("</table>")[0]
    assert text_of(pressure).index("Barts Health") < text_of(pressure).index("Royal Free"), "R1H is fullest (96%)"


def test_the_headline_table_downloads_as_csv(api: Api) -> None:
    got = api.get("/?format=csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    table = {r["Measure"]: r for r in csv.DictReader(io.StringIO(got.text))}
    assert float(table["G&A bed occupancy"]["Latest"]) == pytest.approx(2093 / 2500)
    assert float(table["COVID-19 patients in hospital"]["Latest"]) == 69
    assert table["Ventilators in use"]["Latest"] == "", "a figure nobody reported is blank, not zero"


def test_a_trust_data_team_starts_from_its_submissions_and_a_stranger_must_sign_in(api: Api) -> None:
    assert api.get("/", who="trust", headers=HTML, follow_redirects=False).headers["location"] == "/submissions"
    signed_out = api.get("/map", who=None, headers=HTML, follow_redirects=False)
    assert signed_out.status_code in (302, 303) and signed_out.headers["location"].startswith("/login?next=")


def test_the_map_colours_each_stp_and_lists_its_figures(api: Api) -> None:
    page = api.get("/map?measure=covid_patients_in_hospital", headers=HTML)
    assert page.status_code == 200, page.text
    table = page.text[page.text.index('id="map-stp"'):].split("</table>")[0]
    assert "East London" in table and "46" in text_of(table) and "North West London" in table
    spec = json.loads(re.search(r'<script type="application/json" id="map-stp-spec">(.*?)</script>', page.text,
                                re.S).group(1))  # type: ignore[union-attr]
    stps = {v["code"]: v["value"] for v in spec["layer"][1]["transform"][0]["from"]["data"]["values"]}
    assert stps == {"E54000027": 23.0, "E54000029": 46.0}
    assert {t["code"] for t in spec["layer"][2]["data"]["values"]} == {"R1H", "RAL", "RYJ"}
    rows = list(csv.DictReader(io.StringIO(api.get("/map?measure=covid_patients_in_hospital&format=csv").text)))
    assert [(r["STP"], r["Value"], r["Trusts reporting"]) for r in rows] == [
        ("E54000027", "23.0", "1"), ("E54000029", "46.0", "2")]


def test_a_rate_on_the_map_is_made_from_rolled_up_parts(api: Api) -> None:
    rows = list(csv.DictReader(io.StringIO(api.get("/map?measure=ga_occupancy&format=csv").text)))
    east = next(r for r in rows if r["STP"] == "E54000029")
    assert float(east["Value"]) == pytest.approx((480 + 900) / (500 + 1000)), "not the mean of 96% and 90%"


def test_a_regional_analyst_sees_only_their_own_region_on_the_map(api: Api) -> None:
    rows = list(csv.DictReader(io.StringIO(api.get("/map?format=csv", who="north").text)))
    assert rows == []
    assert "Barts Health" not in api.get("/", who="north", headers=HTML).text.split('id="alerts"')[1]


def test_an_unknown_measure_shows_the_default_map(api: Api) -> None:
    page = api.get("/map?measure=nonsense", headers=HTML)
    assert page.status_code == 200 and 'value="ga_occupancy" selected' in page.text


def test_pages_work_without_data(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mutual.app import open_mutual
    from mutual.web import accounts
    from mutual.web.app import create_app

    with open_mutual(tmp_path / "ws", create=True) as m:
        accounts.add_user(m.sessions, "nat", "national_analyst", password=None, orgs=m.orgs())
        token = accounts.create_token(m.sessions, "nat")[1]
        with TestClient(create_app(mutual=m)) as client:
            for url in ("/", "/map"):
                page = client.get(url, headers={**HTML, "Authorization": f"Bearer {token}"})
                assert page.status_code == 200, page.text
                assert "no data yet" in page.text or "not reported" in page.text or "No trust" in page.text
