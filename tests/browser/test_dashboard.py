"""What the users of the dashboard do, in a real browser: sign in, read the overview and its alerts, open the map
and a trust, send a broken file and read its report, and decide a plan (or be refused). Every page passes axe's
serious and critical checks and runs without a content-security-policy violation or script error."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from browser.conftest import Server, Watched, check_axe, screenshot

BROKEN = ("org,metric,date,value\n{trust},ga_beds_occupied,2020-12-28,1452\n{trust},ga_beds_open,2020-12-28,lots\n"
          "{trust},ga_beds_occupied,2020-13-40,12\n")


def clean(w: Watched) -> None:
    assert not [p for p in w.problems if "favicon" not in p], f"{w.page.url}: {w.problems}"


def test_an_analyst_signs_in_and_sees_the_overview_with_the_demos_alerts(page_as: Callable[[str], Watched]) -> None:
    w = page_as("national")
    page = w.page
    assert page.url.endswith("/")
    assert page.locator("#headline li").count() == 6
    assert page.locator("#as-of").inner_text().startswith("Data as of")
    alerts = page.locator("#alerts tbody tr")
    assert alerts.count() > 0 and "No open alerts" not in alerts.first.inner_text()
    assert re.search(r"red|amber", alerts.first.inner_text())
    screenshot(page, "overview")
    check_axe(page)
    page.click("text=Sign out")
    page.wait_for_load_state()
    assert "/login" in page.url or page.locator("#sign-in").count() == 1
    clean(w)


def test_the_map_draws_the_stps_and_a_trust_page_its_charts(page_as: Callable[[str], Watched]) -> None:
    w = page_as("national")
    page = w.page
    page.goto("/map")
    page.wait_for_selector(".mutual-chart--drawn svg", timeout=20_000)
    assert page.locator("#map-stp tbody tr").count() >= 5, "one row per STP with trusts in the demo"
    screenshot(page, "map")
    check_axe(page)
    page.select_option("#measure", "covid_patients_in_hospital")
    page.click("#measure-form button")
    page.wait_for_selector(".mutual-chart--drawn svg", timeout=20_000)
    assert "covid_patients_in_hospital" in page.url

    page.goto("/")
    page.locator("#pressure tbody a").first.click()
    page.wait_for_load_state("networkidle")
    assert "/orgs/" in page.url
    page.wait_for_selector(".mutual-chart--drawn svg", timeout=20_000)
    assert page.locator("#org-name").inner_text()
    screenshot(page, "trust")
    check_axe(page)
    clean(w)


def test_a_trust_uploads_a_broken_file_and_reads_its_quality_report(page_as: Callable[[str], Watched],
                                                                     server: Server, tmp_path: Path) -> None:
    w = page_as("trust")
    page = w.page
    assert page.url.endswith("/submissions"), "a trust's data team starts from its submissions"
    check_axe(page)
    broken = tmp_path / "broken-return.csv"
    broken.write_text(BROKEN.format(trust=server.trust))
    page.set_input_files("#file", str(broken))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(re.compile(r"/submissions/\d+$"))
    report = page.locator("#quality-report").inner_text()
    assert "lots is not a number" in report and "value" in report
    assert "2020-13-40" in report, "the unreadable date is named"
    assert re.search(r"\b3\b", report) and re.search(r"\b4\b", report), "the report names the lines"
    screenshot(page, "quality-report")
    check_axe(page)
    clean(w)


def test_a_planner_approves_the_plan_and_a_trust_is_refused(page_as: Callable[[str], Watched],
                                                             server: Server) -> None:
    trust = page_as("trust").page
    trust.goto(f"/plans/{server.plan_id}")
    assert trust.locator("#plan-actions").count() == 0, "no approve button for a trust"
    token = trust.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = trust.request.post(f"/plans/{server.plan_id}/approve", form={"csrf_token": token or ""},
                                 headers={"accept": "text/html"})
    assert refused.status == 403 and "You cannot do this" in refused.text()
    screenshot(trust, "plan-as-trust")

    w = page_as("planner")
    page = w.page
    page.goto(f"/plans/{server.plan_id}")
    page.wait_for_selector(".mutual-chart--drawn svg", timeout=20_000)
    assert "proposed" in page.locator("#plan-status").inner_text()
    check_axe(page)
    page.click("#step-approve button")
    page.wait_for_load_state("networkidle")
    assert "approved" in page.locator("#plan-status").inner_text()
    assert "approve" in page.locator("#plan-events").inner_text()
    screenshot(page, "plan-approved")
    clean(w)


def test_an_ig_officer_is_told_why_an_agreement_cannot_be_active(page_as: Callable[[str], Watched]) -> None:
    w = page_as("ig")
    page = w.page
    page.goto("/governance/agreements")
    page.get_by_role("link", name="BF-2026-01").click()
    page.wait_for_load_state("networkidle")
    assert "approved" in page.locator("#agreement-status").inner_text()
    assert "DTAC" in page.locator("#gaps").inner_text()
    page.locator("#step-activate button").click()
    page.wait_for_load_state("networkidle")
    assert "cannot be active" in page.locator("#error-summary").inner_text()
    check_axe(page)
    screenshot(page, "agreement-refused")
    # the refusal page is answered 409 Conflict, which the browser reports on its console; nothing else may be
    assert [p for p in w.problems if "favicon" not in p] == ["Failed to load resource: the server responded with a "
                                                              "status of 409 (Conflict)"]


def test_every_page_passes_the_accessibility_check(page_as: Callable[[str], Watched], server: Server) -> None:
    w = page_as("national")
    page = w.page
    for path in ("/", "/map", "/orgs", f"/orgs/{server.trust}", "/quality", "/submissions", "/submissions/1",
                 "/alerts", "/plans", f"/plans/{server.plan_id}"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        check_axe(page)
    page.context.clear_cookies()
    w = page_as("ig")
    page = w.page
    for path in ("/governance/partners", "/governance/agreements", "/governance/agreements/NS-2026-01",
                 "/governance/audit"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        check_axe(page)
    page.context.clear_cookies()
    for path in ("/login", "/register"):  # public pages
        page.goto(path)
        check_axe(page)
    clean(w)
