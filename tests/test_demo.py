"""`mutual demo`: the synthetic system is plausible, its files match their specs, broken files are caught,
the same seed gives the same files and counts, and the demo never clobbers a folder it did not make."""

from __future__ import annotations

import csv
import io
import re
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import mutual.demo as demo
from mutual.app import WorkspaceError, open_mutual
from mutual.catalog import load_catalog
from mutual.catalog.orgs import Org
from mutual.cli import app
from mutual.demo import EXPORT, LAYOUTS, LONG, Trust, build_demo, find_data_dir, prepare_home, simulate
from mutual.ingest.specs import find_spec, plan_columns
from mutual.planning.records import get_plan
from mutual.web import accounts

SEED = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server stopped: {server.stdout.read().decode() if server.stdout else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def fake_trusts() -> list[Trust]:
    """Trusts of every size, region and layout, each with one defect, without the public files."""
    trusts = []
    sizes = [(250, 8), (700, 20), (1400, 60), (2000, 110), (480, 0), (900, 30), (1100, 45)]
    regions = sorted(demo.REGION_WAVES)
    for i, defect in enumerate(demo.DEFECTS):
        ga, cc = sizes[i]
        trusts.append(Trust(code=f"RZ{i}", name=f"Test trust {i}", region=regions[i], stp="E54000001",
                            layout=demo.DEFECTS[defect][0], ga_beds=ga, cc_beds=max(6, cc), headcount=ga * 11,
                            waves=demo.REGION_WAVES[regions[i]], covid_factor=0.5 + 0.18 * i,
                            wave_shift=i - 3.0, stock_days=45.0 if defect == "hours" else 18.0 + 3 * i,
                            review_every=(1, 3, 7)[i % 3] if defect != "hours" else 1,
                            shortfall="gowns" if i == 2 else None, defect=defect))
    return trusts


def test_simulation_stays_within_the_catalogue_and_is_consistent() -> None:
    catalog = load_catalog()
    for trust in fake_trusts():
        days = simulate(trust, SEED)
        assert len(days) == demo.DAYS
        for d, v in enumerate(days):
            for key, value in v.items():
                metric, dims = demo.split_key(key)
                m = catalog.get(metric)
                assert m.bounds[0] <= value <= m.bounds[1], (trust.code, d, key, value)
                assert not m.integer or value == round(value), (key, value)
                for dim, val in dims.items():
                    assert dim in m.dims and val in catalog.dimensions[dim], key
            assert v["ga_beds_core_open"] + v["ga_beds_escalation_open"] == v["ga_beds_open"]
            assert v["ga_beds_occupied"] <= v["ga_beds_open"]
            assert 0.84 <= v["ga_beds_occupied"] / v["ga_beds_open"] <= 0.99
            assert v["covid_patients_in_hospital"] <= v["ga_beds_occupied"]
            assert v["cc_adult_beds_occupied"] <= v["cc_adult_beds_open"] <= v["ventilators_total"]
            assert v["covid_patients_ventilated"] <= v["ventilators_in_use"] <= v["ventilators_total"]
            staff = [v[demo._key("staff_absent", staff_group=g, reason=r)]
                     for g in demo.STAFF_GROUPS for r in demo.REASONS]
            assert sum(staff) == v[demo._key("staff_absent", staff_group="all", reason="all")]
            if trust.defect == "hours":  # every value in hours must be beyond the bound of 365 days
                assert all(v[demo._key("days_of_supply", item=i)] * 24 > 366 for i in demo.ITEMS)
        covid = [v["covid_patients_in_hospital"] for v in days]
        assert max(covid) > 5 * max(1, covid[0]), "a COVID-19 wave"


def test_waves_peak_where_the_region_says() -> None:
    north, london = (next(t for t in fake_trusts() if t.region == r) for r in ("Y62", "Y56"))
    covid = {t.region: [v["covid_patients_in_hospital"] for v in simulate(t, SEED)] for t in (north, london)}
    peak = {region: series.index(max(series)) for region, series in covid.items()}
    assert peak["Y62"] < 90 < peak["Y56"]


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    trust = fake_trusts()[0]
    assert simulate(trust, SEED) == simulate(trust, SEED)
    assert simulate(trust, SEED) != simulate(trust, SEED + 1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_matches_its_spec(layout: str) -> None:
    trust = next(t for t in fake_trusts() if t.layout == layout)
    rows = [(demo.START, simulate(trust, SEED)[0])]
    grid = demo._grid(trust, rows)
    plan = plan_columns(find_spec(layout), grid[0], org_given=layout == EXPORT)
    assert plan.unmapped == []
    if layout == LONG:
        assert len(grid) - 1 == len(demo.series_keys())
    else:
        mapped = {(v.metric, v.dims) for v in plan.values}
        wanted = {(demo.split_key(k)[0], demo.encode_dims(demo.split_key(k)[1])) for k in demo.series_keys()}
        assert wanted <= mapped
        if layout == EXPORT:
            assert ("staff_shortage", "staff_group=nursing;when=now") in mapped


def test_files_are_deterministic_and_broken_as_described() -> None:
    trusts = fake_trusts()
    series = {t.code: simulate(t, SEED) for t in trusts}
    known = {t.code for t in trusts} | {"RZJ", "RZK"}
    files = demo.make_files(trusts, series, SEED, known)
    again = demo.make_files(trusts, {t.code: simulate(t, SEED) for t in trusts}, SEED, known)
    assert [(f.name, f.received_at, f.data) for f in files] == [(f.name, f.received_at, f.data) for f in again]
    other = demo.make_files(trusts, {t.code: simulate(t, SEED + 1) for t in trusts}, SEED + 1, known)
    assert [f.data for f in files] != [f.data for f in other]

    assert [f.received_at for f in files] == sorted(f.received_at for f in files)
    for f in files:
        assert f.received_at.date() > f.last, "received after the last day it reports"
    defects = {f.defect for f in files}
    assert set(demo.DEFECTS) | {"correction", ""} == defects
    by = {f.defect: f for f in files if f.defect in demo.DEFECTS}
    assert b"%" in by["percent"].data
    assert b"\xff" in by["corrupt"].data and not by["corrupt"].data.endswith(b"\n")
    assert by["unreadable"].data.startswith(b"PK\x03\x04")
    typo_rows = [r for r in csv.reader(io.StringIO(by["typo"].data.decode())) if r[0] != by["typo"].trust.code]
    assert len(typo_rows) == 1 + len(demo.series_keys())  # the header and one day's rows
    assert typo_rows[1][0] not in known


def test_data_folder_errors_say_where_to_look(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WorkspaceError, match="--data"):
        find_data_dir(tmp_path)
    monkeypatch.setenv(demo.ENV_DATA, str(tmp_path / "nowhere"))
    with pytest.raises(WorkspaceError, match=demo.ENV_DATA):
        find_data_dir(None)
    monkeypatch.delenv(demo.ENV_DATA)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "__file__", str(tmp_path / "pkg" / "mutual" / "demo.py"))
    with pytest.raises(WorkspaceError, match=r"pass --data DIR") as err:
        find_data_dir(None)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_the_demo_never_clobbers_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    with pytest.raises(WorkspaceError, match="not empty and is not a Mutual workspace"):
        prepare_home(mine, SEED)
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]

    used = tmp_path / "used"
    with open_mutual(used, create=True) as m:
        f = tmp_path / "one.csv"
        f.write_text("org,metric,date,value\nENG,ga_beds_open,2020-01-01,90000\n")
        m.ingest(f, received_at=datetime(2020, 1, 2))
    with pytest.raises(WorkspaceError, match="1 submissions that the demo did not make"):
        prepare_home(used, SEED)
    assert (used / "data.duckdb").exists() and (used / "archive").is_dir()

    fresh = tmp_path / "fresh"
    with open_mutual(fresh, create=True):
        pass
    assert prepare_home(fresh, SEED).home == fresh.resolve()  # a workspace with no submissions is fine

    old = tmp_path / "old-demo"
    prepare_home(old, SEED)
    with open_mutual(old, create=True):
        pass
    (old / "submissions").mkdir()
    (old / "submissions" / "x.csv").write_text("x")
    (old / "keep.txt").write_text("not the demo's")
    prepare_home(old, SEED)
    assert sorted(p.name for p in old.iterdir()) == [demo.MARKER, "keep.txt"]


def open_orgs(home: Path) -> list[Org]:
    with open_mutual(home) as m:
        return m.orgs()


def snapshot(home: Path) -> dict[str, Any]:
    """Everything a run leaves that should not depend on when or where it ran."""
    files = {p.name: p.read_bytes() for p in sorted((home / "submissions").iterdir())}
    with open_mutual(home) as m:
        subs = [(s.id, s.filename, s.format, s.source_org, s.received_at, s.status, s.rows_read, s.values_read,
                 s.accepted, s.stored, s.quarantined, s.warnings, s.missing, s.error) for s in m.submissions()]
        issues = sorted((r["severity"], r["rule"], r["n"])
                        for r in m.store.issue_summary().to_pyarrow().to_pylist())
        statuses = sorted(m.store.con.execute(
            "SELECT rule, status, count(*) FROM quality_issue GROUP BY ALL").fetchall())
        stats = m.store.stats()
    return {"files": files, "submissions": subs, "issues": issues, "statuses": statuses, "stats": stats}


@pytest.mark.slow
def test_demo_end_to_end_and_the_same_seed_gives_the_same_result(shared_data: Path, tmp_path: Path) -> None:
    home = tmp_path / "demo"
    s = build_demo(home, seed=SEED, data_dir=shared_data)

    assert s.trusts == demo.N_TRUSTS and s.days == demo.DAYS and s.regions >= 5
    assert (s.first_day, s.last_day) == (date(2020, 9, 1), date(2020, 12, 29))
    assert s.rejected == 1 and s.loaded == len(s.files) - 1
    synthetic = [f for f in s.files if f.source != "real winter"]
    assert len(synthetic) >= 2 * demo.N_TRUSTS
    per_day = len(demo.series_keys())
    assert s.total("accepted") - s.total("accepted", "real winter") > 0.97 * demo.N_TRUSTS * demo.DAYS * per_day
    assert s.store["orgs"] >= demo.N_TRUSTS and s.store["days"] >= demo.DAYS + 90
    assert s.store["last"] == date(2020, 12, 29)

    errors = {r.rule: r.n for r in s.rules if r.severity == "error"}
    warnings = {r.rule: r.n for r in s.rules if r.severity == "warning"}
    assert {"unknown_org", "not_a_number", "out_of_bounds", "conflict", "malformed_line"} <= set(errors)
    assert {"duplicate", "encoding"} <= set(warnings)
    assert s.total("quarantined") > 0 and s.total("missing") > 0

    by = {f.defect: f for f in s.files if f.defect in demo.DEFECTS}
    assert by["percent"].rules.get("not_a_number") == by["percent"].quarantined == 7
    manifest = {r["file"]: r for r in csv.DictReader((home / "submissions" / "MANIFEST.csv").open())}
    hours = manifest[by["hours"].name]
    hours_days = (date.fromisoformat(hours["last_day"]) - date.fromisoformat(hours["first_day"])).days + 1
    assert by["hours"].rules.get("out_of_bounds") == by["hours"].quarantined == hours_days * len(demo.ITEMS)
    assert by["typo"].rules.get("unknown_org") == by["typo"].quarantined == per_day
    assert by["missing"].missing > 0 and by["missing"].rules.get("not_a_number") == 3
    assert by["duplicates"].rules.get("duplicate") == per_day and by["duplicates"].rules.get("conflict") == 2
    assert by["corrupt"].rules.get("malformed_line", 0) >= 1 and by["corrupt"].rules.get("encoding") == 1
    assert by["unreadable"].status == "rejected" and "not a readable spreadsheet" in by["unreadable"].error
    typo = demo._mistype(by["typo"].name[:3], {o.code for o in open_orgs(home)})
    assert next(r.example for r in s.rules if r.rule == "unknown_org").startswith(f"organisation {typo} is not known")

    # Today's alerts and the worst-pressured trusts: the winter wave pushes trusts past the thresholds.
    assert s.alerts and {a["severity"] for a in s.alerts} == {"red", "amber"}
    assert all(a["since"] <= s.last_day for a in s.alerts)
    assert [a["severity"] for a in s.alerts] == sorted((a["severity"] for a in s.alerts), key=lambda x: x != "red")
    occupancy = [p["occupancy"] for p in s.pressure]
    assert len(occupancy) == demo.TOP_ALERTS and occupancy == sorted(occupancy, reverse=True) and occupancy[0] > 0.92
    with open_mutual(home) as m:
        alerting = {r[0] for r in m.store.con.execute("SELECT org FROM alert WHERE status = 'open'").fetchall()}
        days = m.store.con.execute("SELECT min(eval_date), max(eval_date) FROM alert_event").fetchone()
        top = s.pressure[0]
        occ, beds = m.store.con.execute(
            "SELECT max(value) FILTER (metric = 'ga_beds_occupied'), max(value) FILTER (metric = 'ga_beds_open') "
            "FROM observation WHERE org = ? AND period = ? AND superseded_at IS NULL",
            [top["org"], top["period"]]).fetchone()
    assert {a["org"] for a in s.alerts} <= alerting
    assert days == (s.last_day - timedelta(days=demo.ALERT_DAYS - 1), s.last_day)
    assert top["occupancy"] == pytest.approx(occ / beds), "occupancy from its parts"
    assert any(a["org"] == top["org"] and a["rule"].startswith("ga_occupancy") for a in s.alerts)

    first = snapshot(home)
    # The week of percentages, resent as bed counts, is marked corrected; so is the cell spoilt by bad bytes.
    with open_mutual(home) as m:
        for defect in ("percent", "corrupt"):
            issues = m.store.issues(by[defect].submission_id or 0).to_pyarrow().to_pylist()
            assert {i["status"] for i in issues if i["rule"] == "not_a_number"} == {"corrected"}
    corrections = [f for f in s.files if f.defect == "correction"]
    assert corrections and all(f.status == "loaded" and f.quarantined == 0 for f in corrections)

    # The same seed through the command line, over the previous demo: the same files and the same counts.
    result = CliRunner().invoke(app, ["demo", "--home", str(home), "--data", str(shared_data), "--seed", str(SEED),
                                      "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "Top reasons values were quarantined" in result.output and "40 synthetic" in result.output
    assert "Alerts open on 29 Dec 2020" in result.output and "Trusts under most pressure" in result.output
    assert "Demo accounts" in result.output and demo.DEMO_PASSWORD in result.output
    assert snapshot(home) == first

    # A proposed plan for a planner to approve, with moves for the demo trust account's own trust to answer.
    assert s.plan is not None and s.plan["moves"] > 0
    assert {a["role"] for a in s.accounts} == {r.value for r in accounts.STAFF}, "one account per staff role"
    with open_mutual(home) as m:
        view = get_plan(m.sessions, s.plan["id"])
        assert view.record.status == "proposed"
        trust = next(a["scope"] for a in s.accounts if a["role"] == "trust_submitter")
        assert any(trust in (mv.src, mv.dst) for mv in view.moves)
        user = accounts.sign_in(m.sessions, "trust", demo.DEMO_PASSWORD)
        assert user.org == trust

    # Three partners with agreements in different states; the active one has an outcome and a settlement, and
    # the trust's and the ICS's annual reports list it.
    assert [state for _, _, state in s.partnerships["agreements"]] == ["active", "approved (no DTAC)", "submitted"]
    assert "not proof" in s.partnerships["effect"] and s.partnerships["settled"] != 0
    with open_mutual(home) as m:
        from mutual.governance.audit import verify
        from mutual.governance.report import annual_report

        org, year = s.partnerships["report"].split("/")[2:4]
        trust_report = annual_report(m.sessions, m.orgs(), org, int(year))
        ics_report = annual_report(m.sessions, m.orgs(), s.partnerships["ics_report"].split("/")[2], int(year))
        with m.sessions() as sess:
            assert verify(sess)[0] == []
        # Record-level episodes agree with what the trusts reported: every trust's census, every day.
        mismatched = m.store.con.sql(
            "WITH days AS (SELECT org, period, value FROM observation WHERE metric = 'ga_beds_occupied' "
            "AND dims = '' AND superseded_at IS NULL AND org IN (SELECT DISTINCT trust FROM apc_episode) "
            "AND period BETWEEN DATE '2020-09-01' AND DATE '2020-12-29') "
            "SELECT count(*) FROM days d WHERE d.value <> (SELECT count(*) FROM apc_episode e WHERE e.trust = d.org "
            "AND e.admission_date <= d.period AND e.discharge_date > d.period)").fetchall()[0][0]
        optouts = m.store.con.sql("SELECT count(*) FROM optout").fetchall()[0][0]
    assert mismatched == 0 and s.partnerships["episodes"] > 100_000
    assert optouts == s.partnerships["opted_out"] and 0.04 < optouts / s.partnerships["patients"] < 0.07
    assert "NS-2026-01" in [u.agreement for u in trust_report.uses] and trust_report.releases.shown == 10
    northstar = next(u for u in trust_report.uses if u.agreement == "NS-2026-01")
    assert northstar.outcomes and "not proof" in northstar.outcomes[0] and (northstar.paid or northstar.refunded)
    assert "NS-2026-01" in [u.agreement for u in ics_report.uses]

    # `mutual demo` ends by serving the workspace: the same server as `mutual serve`, signed in with a demo account.
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mutual", "serve", "--home", str(home), "--port", str(port),
                               "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz", server)
        with httpx.Client(base_url=base, follow_redirects=False) as client:
            form = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            signed = client.post("/login", data={"username": "national", "password": demo.DEMO_PASSWORD,
                                                 "csrf_token": token, "next": "/"})
            assert signed.status_code == 303, signed.text
            assert "Alerts" in client.get("/", headers={"accept": "text/html"}).text
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_cli_refuses_a_folder_it_did_not_make(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path), "--data", str(shared_data),
                                      "--no-serve"])
    assert result.exit_code == 1
    assert (tmp_path / "mine.txt").read_text() == "x" and not (tmp_path / "submissions").exists()
