"""Shortage alerts: rules are data checked against the catalogue; rates come from parts; stale, flagged and silent
series are called what they are; alerts open, stay open and close, and the history is the same whatever order
the days are evaluated in; forecasts give a projected crossing day with an 80% interval of days."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import ORGS_CSV, import_real_orgs, shared_data_dir
from engines import engine_env
from mutual.analytics import alerts as al
from mutual.analytics.alerts import Check, Rate, Rule, RuleError, crossings, episodes, evaluate, load_rules
from mutual.app import Mutual, open_mutual
from mutual.cli import app

D0 = date(2021, 1, 1)
RED = Rule(id="ga_red", title="G&A above 95%", group="ga", rate=Rate(numerator="ga_beds_occupied",
           denominator="ga_beds_open"), op=">", threshold=0.95, severity="red")
AMBER = RED.model_copy(update={"id": "ga_amber", "title": "G&A above 92%", "threshold": 0.92, "severity": "amber"})


def send(m: Mutual, tmp: Path, rows: list[tuple[str, str, date, float, str]], received: datetime) -> None:
    """Ingest rows (org, metric, day, value, item) in Mutual's long layout."""
    f = tmp / f"s{received:%Y%m%d%H%M%S}.csv"
    f.write_text("org,metric,date,value,item\n" + "".join(f"{o},{k},{d},{v:g},{i}\n" for o, k, d, v, i in rows))
    result = m.ingest(f, spec="mutual-long", received_at=received)
    assert result.submission.status == "loaded"


def beds(org: str, day: date, occupied: float, open_: float) -> list[tuple[str, str, date, float, str]]:
    return [(org, "ga_beds_occupied", day, occupied, ""), (org, "ga_beds_open", day, open_, "")]


@pytest.fixture
def mutual(home: Path, data_plane: str) -> Iterator[Mutual]:
    """Alerts are specified on every data-plane engine: each workspace here runs on DuckDB and on PostgreSQL."""
    with open_mutual(home, create=True) as m:
        yield m


@pytest.fixture
def ws(small_orgs: Mutual, tmp_path: Path) -> Mutual:
    """Three London trusts; a week of G&A beds: R1H at 96% (crossing 95% on day 3), RAL at 90%, RYJ silent
    after day 0."""
    rows = []
    for i in range(7):
        d = D0 + timedelta(days=i)
        rows += beds("R1H", d, 480 if i >= 3 else 455, 500) + beds("RAL", d, 900, 1000)
    rows += beds("RYJ", D0, 990, 1000)
    send(small_orgs, tmp_path, rows, datetime(2021, 1, 8, 9))
    return small_orgs


# -- rules -------------------------------------------------------------------------------------------------


def test_the_shipped_rules_cover_the_issue() -> None:
    rules = {r.id: r for r in load_rules()}
    ga = sorted(r.threshold for r in rules.values() if r.rate and r.rate.numerator == "ga_beds_occupied")
    assert ga == [0.92, 0.95]
    assert rules["cc_adult_occupancy_high"].threshold == 0.85
    assert rules["ventilators_in_use_high"].rate == Rate(numerator="ventilators_in_use",
                                                         denominator="ventilators_total")
    assert sorted(r.threshold for r in rules.values() if r.metric == "days_of_supply") == [3, 7]
    assert any(r.metric == "staff_absent" and r.baseline for r in rules.values())
    assert all(r.severity in al.SEVERITIES for r in rules.values())


RATE = {"numerator": "ga_beds_occupied", "denominator": "ga_beds_open"}
BAD = [
    ({"metric": "ga_beds_occupied_typo"}, "rule 'bad': metric 'ga_beds_occupied_typo' is not in the catalogue"),
    ({"metric": "days_of_supply", "dims": {"item": ["sand"]}}, "'sand' is not a value of dimension 'item'"),
    ({"metric": "ga_beds_open", "dims": {"item": ["gowns"]}}, "metric 'ga_beds_open' has no dimension 'item'"),
    ({"metric": "ga_beds_open", "rate": RATE}, "give exactly one of `metric` or `rate`"),
    ({"rate": RATE, "baseline": {"days": 28}}, "`baseline` compares one metric"),
    ({"metric": "ga_beds_open", "colour": "blue"}, "rule 'bad': colour: Extra inputs are not permitted"),
    ({"metric": "ga_beds_open", "severity": "purple"}, "rule 'bad': severity: Input should be 'amber' or 'red'"),
    ({"metric": "ga_beds_open", "threshold": float("nan")}, "rule 'bad': threshold"),
    ({"metric": "ga_beds_open", "stale_after_days": 9}, "max_age_days must be at least stale_after_days"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_a_bad_rule_is_named_with_what_is_wrong(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    f = tmp_path / "rules.yaml"
    good = {"id": "ok", "title": "Fine", "metric": "ga_beds_open", "op": ">", "threshold": 1, "severity": "red"}
    bad = {"id": "bad", "title": "Bad", "op": ">", "threshold": 1, "severity": "red", **fields}
    f.write_text(yaml.safe_dump({"version": 1, "rules": [good, bad]}))
    with pytest.raises(RuleError, match=r"rules\.yaml") as err:
        load_rules(f)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unreadable_rule_files_and_duplicate_ids(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("rules: [unclosed")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules(f)
    rule = "  - {id: a, title: A, metric: ga_beds_open, op: '>', threshold: 1, severity: red}\n"
    f.write_text("version: 1\nrules:\n" + rule + rule)
    with pytest.raises(RuleError, match="rule 'a': the id is used twice"):
        load_rules(f)
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


# -- evaluation --------------------------------------------------------------------------------------------


def by_org(checks: list[Check], rule: str) -> dict[str, Check]:
    return {c.org: c for c in checks if c.rule == rule}


def test_occupancy_is_computed_from_the_parts_of_one_day(ws: Mutual, tmp_path: Path) -> None:
    day = D0 + timedelta(days=6)
    # RAL reports open beds for day 6 late: its latest complete day is still day 6 (both parts), while a
    # lone occupied figure for day 7 is not divided by day 6's beds.
    send(ws, tmp_path, [("RAL", "ga_beds_occupied", day + timedelta(days=1), 999, "")], datetime(2021, 1, 9, 9))
    checks = evaluate(ws.store, [RED, AMBER], day + timedelta(days=1))
    red, amber = by_org(checks, "ga_red"), by_org(checks, "ga_amber")
    assert red["R1H"].status == "alert" and red["R1H"].value == pytest.approx(0.96)
    assert red["R1H"].why == "96.0% on 7 Jan: 480 of 500"
    assert red["RAL"].status == "ok" and red["RAL"].value == pytest.approx(0.9) and red["RAL"].period == day
    assert amber["R1H"].status == "alert" and amber["RAL"].status == "ok"


def test_stale_series_lower_quality_and_silent_ones_are_not_reported(ws: Mutual) -> None:
    strict = RED.model_copy(update={"id": "strict", "min_quality": "high"})
    day = D0 + timedelta(days=9)  # three days after the last values
    checks = evaluate(ws.store, [RED, strict], day)
    red = by_org(checks, "ga_red")
    assert red["R1H"].status == "alert" and red["R1H"].quality == "medium" and "3 days old" in red["R1H"].why
    assert by_org(checks, "strict")["R1H"].status == "low_quality"
    # RYJ was at 99% nine days ago: not an alert, and not "fine" either
    assert red["RYJ"].status == "not_reported" and "9 days before" in red["RYJ"].why
    # a series silent for longer than the report window is no longer expected at all
    assert "RYJ" not in by_org(evaluate(ws.store, [RED], D0 + timedelta(days=al.REPORT_WINDOW_DAYS + 1)), "ga_red")
    # nor do regions or the nation get alerts: only trusts and sites
    assert {c.org for c in checks} == {"R1H", "RAL", "RYJ"}


def test_flagged_inputs_lower_quality(small_orgs: Mutual, tmp_path: Path) -> None:
    # open beds that are not the sum of their parts (core + escalation) are accepted and flagged
    rows = [*beds("R1H", D0, 490, 500), ("R1H", "ga_beds_core_open", D0, 400, ""),
            ("R1H", "ga_beds_escalation_open", D0, 20, "")]
    send(small_orgs, tmp_path, rows, datetime(2021, 1, 2, 9))
    flags = small_orgs.store.rows("SELECT flagged FROM observation WHERE metric = 'ga_beds_open'")
    assert flags == [(True,)]
    c = by_org(evaluate(small_orgs.store, [RED], D0), "ga_red")["R1H"]
    assert (c.status, c.quality) == ("alert", "medium") and "flagged" in c.why


@given(age=st.integers(0, 30), stale=st.integers(0, 10), flagged=st.booleans())
def test_quality_falls_one_step_for_staleness_and_one_for_flags(age: int, stale: int, flagged: bool) -> None:
    q = al.quality_of(age, stale, flagged)
    assert al.QUALITIES.index(q) == 2 - (age > stale) - flagged


def test_days_of_supply_alert_per_item_and_staff_absence_against_its_baseline(small_orgs: Mutual,
                                                                               tmp_path: Path) -> None:
    rows = []
    for i in range(29):
        d = D0 + timedelta(days=i)
        absent = 140 if i == 28 else 100 + i % 3  # the usual is 101
        rows += [("R1H", "staff_absent", d, absent, ""), ("RAL", "staff_absent", d, 60, "")]
    last = D0 + timedelta(days=28)
    rows += [("R1H", "days_of_supply", last, 2.5, "gowns"), ("R1H", "days_of_supply", last, 20, "gloves")]
    f = tmp_path / "s.csv"
    f.write_text("org,metric,date,value,item,staff_group,reason\n"
                 + "".join(f"{o},{k},{d},{v:g},{i},{'all' if k == 'staff_absent' else ''},"
                           f"{'all' if k == 'staff_absent' else ''}\n" for o, k, d, v, i in rows))
    small_orgs.ingest(f, spec="mutual-long", received_at=datetime(2021, 2, 1))
    rules = {r.id: r for r in load_rules()}
    checks = evaluate(small_orgs.store, [rules["supply_critical"], rules["staff_absence_surge"]], last)
    supply = {c.dims: c for c in checks if c.rule == "supply_critical"}
    assert supply["item=gowns"].status == "alert" and supply["item=gloves"].status == "ok"
    staff = by_org(checks, "staff_absence_surge")
    assert staff["R1H"].status == "alert" and staff["R1H"].value == pytest.approx(140 / 101)
    assert "usual 101" in staff["R1H"].why and staff["RAL"].status == "ok"


# -- history -----------------------------------------------------------------------------------------------


def table(m: Mutual) -> list[tuple[object, ...]]:
    return m.store.rows("SELECT alert_id, rule, org, since, last_held, status, closed_on, close_reason "
                        "FROM alert ORDER BY 1, 2, 3, 4, 5, 6, 7, 8")


def test_an_alert_opens_stays_open_and_closes_with_its_reason(ws: Mutual, tmp_path: Path) -> None:
    rules = [RED]

    def run(day: int, org: str = "R1H") -> list[al.Alert]:
        return [a for a in al.run_alerts(ws.store, D0 + timedelta(days=day), rules).open if a.org == org]

    assert run(2) == []
    opened = run(3)
    assert [(a.org, a.since) for a in opened] == [("R1H", D0 + timedelta(days=3))]
    later = run(5)
    assert [(a.alert_id, a.since) for a in later] == [(opened[0].alert_id, opened[0].since)]
    send(ws, tmp_path, beds("R1H", D0 + timedelta(days=7), 450, 500), datetime(2021, 1, 9, 9))
    assert run(7) == []
    # RYJ's 99% of day 0 held from the first evaluation, went stale, and closed once too old to count
    (ryj,) = run(7, "RYJ")
    assert (ryj.since, ryj.quality) == (D0 + timedelta(days=2), "medium")
    assert run(8, "RYJ") == []
    alerts = {a.org: a for a in al.episodes(al.stored_checks(ws.store))}
    a = alerts["R1H"]
    assert (a.status, a.closed_on, a.last_held) == ("closed", D0 + timedelta(days=7), D0 + timedelta(days=5))
    assert a.close_reason is not None and a.close_reason.startswith("condition no longer holds: 90.0%")
    assert alerts["RYJ"].close_reason is not None
    assert alerts["RYJ"].close_reason.startswith("not reported: last reported on 01 Jan 2021, 8 days before")
    assert [r[5] for r in table(ws)] == ["closed", "closed"]


def test_evaluating_twice_or_out_of_order_gives_the_same_history(ws: Mutual, home: Path, tmp_path: Path,
                                                                 data_plane: str) -> None:
    days = [D0 + timedelta(days=i) for i in range(8)]
    for d in days:
        al.run_alerts(ws.store, d, [RED, AMBER])
    in_order = table(ws)
    for d in [days[5], days[1], days[5], days[7], days[0]]:
        al.run_alerts(ws.store, d, [RED, AMBER])
    assert table(ws) == in_order
    counts = ws.store.rows("SELECT count(DISTINCT eval_date), count(*) FROM alert_event")
    assert counts == [(8, 8 * 3 * 2)], "one check per day, rule and series"
    with engine_env(data_plane), open_mutual(tmp_path / "other", create=True) as other:
        other.import_orgs(_orgs_file(tmp_path))
        for f in sorted((home / "archive").rglob("*")):
            if f.is_file():
                other.ingest(f, spec="mutual-long", received_at=datetime(2021, 1, 8, 9))
        for d in reversed(days):
            al.run_alerts(other.store, d, [RED, AMBER])
        assert table(other) == in_order


def _orgs_file(tmp: Path) -> Path:
    f = tmp / "orgs2.csv"
    f.write_text(ORGS_CSV)
    return f


STATUSES = st.sampled_from(["alert", "alert", "ok", "not_reported", "low_quality", None])


def checks_from(grid: list[list[str | None]]) -> list[Check]:
    """Checks of two series over consecutive days; None: the series had no check that day."""
    out = []
    for i, day in enumerate(grid):
        for j, status in enumerate(day):
            if status is not None:
                out.append(Check(D0 + timedelta(days=i), "r", f"T{j}", "", status, "red", 1.0, 0.5, None,
                                 "high", f"day {i}", datetime(2021, 1, 1)))
    return out


@settings(max_examples=200, deadline=None)
@given(grid=st.lists(st.lists(STATUSES, min_size=2, max_size=2), min_size=1, max_size=12), seed=st.randoms())
def test_history_depends_only_on_the_set_of_evaluations(grid: list[list[str | None]], seed: object) -> None:
    checks = checks_from(grid)
    shuffled = list(checks)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    alerts = episodes(checks)
    assert alerts == episodes(shuffled)
    evaluated = sorted({c.eval_date for c in checks})
    for org in ("T0", "T1"):
        held = {c.eval_date for c in checks if c.org == org and c.status == "alert"}
        mine = sorted((a for a in alerts if a.org == org), key=lambda a: a.since)
        covered = [d for a in mine for d in evaluated if a.since <= d <= a.last_held]
        assert sorted(covered) == sorted(held), "every day it held is in exactly one alert, and no other day"
        for a in mine:
            assert a.alert_id.endswith(a.since.isoformat())
            if a.closed_on is None:
                assert a.status == "open" and a.last_held == max(held)
            else:
                assert a.closed_on not in held and a.closed_on > a.last_held
                assert not [d for d in evaluated if a.last_held < d < a.closed_on]
        assert sum(a.status == "open" for a in mine) <= 1


def test_only_the_most_severe_alert_of_a_concern_is_shown(ws: Mutual) -> None:
    ev = al.run_alerts(ws.store, D0 + timedelta(days=6), [AMBER, RED])
    assert {a.rule for a in ev.alerts} == {"ga_red", "ga_amber"}
    assert [(a.org, a.rule) for a in ev.open] == [("RYJ", "ga_red"), ("R1H", "ga_red")]  # the furthest past first


def test_pressure_ranks_trusts_by_occupancy_from_parts(ws: Mutual) -> None:
    top = al.pressure(ws.store, D0 + timedelta(days=6), top=5)
    assert [(r["org"], round(r["occupancy"], 3), r["quality"]) for r in top] == [
        ("RYJ", 0.99, "medium"), ("R1H", 0.96, "high"), ("RAL", 0.9, "high")]
    assert [r["org"] for r in al.pressure(ws.store, D0 + timedelta(days=8), top=1)] == ["R1H"]


# -- projected crossings -----------------------------------------------------------------------------------


def forecast_table(org: str, means: list[float], spread: float, made_at: datetime = datetime(2021, 1, 10)) -> pa.Table:
    rows = [{"org": org, "metric": "ga_beds_occupied", "dims": "", "made_at": made_at, "vintage": made_at,
             "period": date(2021, 1, 11) + timedelta(days=h), "horizon": h + 1, "mean": m, "lo80": m - spread,
             "hi80": m + spread, "lo95": m - 2 * spread, "hi95": m + 2 * spread, "model": "test"}
            for h, m in enumerate(means)]
    return pa.Table.from_pylist(rows)


def test_a_rising_forecast_gives_the_day_and_its_interval() -> None:
    t = forecast_table("R1H", [470.0 + 2 * h for h in range(14)], 6.0)  # 95% of 500 beds = 475
    (x,) = crossings(t, {("R1H", ""): 475.0}, ">")
    # mean passes 475 on h=3 (476); hi80 (mean+6) on h=0 (476); lo80 (mean-6) on h=6 (476)
    assert (x.on, x.earliest, x.latest) == (date(2021, 1, 14), date(2021, 1, 11), date(2021, 1, 17))
    assert x.describe() == "forecast to cross on 14 Jan, 80% interval 11 Jan–17 Jan"


def test_only_the_latest_forecast_counts_and_far_bounds_may_not_cross() -> None:
    old = forecast_table("R1H", [500.0] * 14, 1.0, made_at=datetime(2021, 1, 1))
    new = forecast_table("R1H", [470.0 + 0.5 * h for h in range(14)], 4.0)  # mean reaches 476.5 at h=13
    (x,) = crossings(pa.concat_tables([old, new]), {("R1H", ""): 476.0}, ">")
    assert x.on == date(2021, 1, 24) and x.latest is None and x.earliest == date(2021, 1, 16)
    assert "to after 24 Jan" in x.describe()
    assert crossings(new, {("R1H", ""): 600.0}, ">") == []
    assert crossings(new, {("RAL", ""): 1.0}, ">") == [], "no threshold for the series, no crossing"


def test_a_falling_threshold_crosses_from_the_lower_bound() -> None:
    t = forecast_table("R1H", [10.0 - h for h in range(10)], 1.5)  # days of supply running down
    (x,) = crossings(t, {("R1H", ""): 3.0}, "<")
    assert (x.earliest, x.on, x.latest) == (date(2021, 1, 17), date(2021, 1, 19), date(2021, 1, 20))


@given(means=st.lists(st.floats(0, 1000), min_size=1, max_size=14), lo=st.floats(0, 50), hi=st.floats(0, 50),
       limit=st.floats(0, 1000), op=st.sampled_from([">", ">=", "<", "<="]))
def test_the_interval_of_days_contains_the_projected_day(means: list[float], lo: float, hi: float, limit: float,
                                                         op: str) -> None:
    t = forecast_table("R1H", means, 0.0)
    t = t.set_column(t.schema.get_field_index("lo80"), "lo80", pa.array([m - lo for m in means]))
    t = t.set_column(t.schema.get_field_index("hi80"), "hi80", pa.array([m + hi for m in means]))
    found = crossings(t, {("R1H", ""): limit}, op)
    mean_crosses = any(al.OPS[op](m, limit) for m in means)
    assert bool(found) >= mean_crosses
    for x in found:
        assert x.on is None or (x.earliest <= x.on and (x.latest is None or x.on <= x.latest))
        assert x.latest is None or x.earliest <= x.latest


# -- the command -------------------------------------------------------------------------------------------


def test_the_command_lists_records_and_explains(ws: Mutual, home: Path) -> None:
    ws.close()
    runner = CliRunner()
    r = runner.invoke(app, ["alerts", "--home", str(home)])  # the latest day with data: day 6
    assert r.exit_code == 0, r.output
    assert "Alerts open on 07 Jan 2021" in r.output and "R1H" in r.output and "Barts" in r.output
    assert "96.0%" in r.output and "red" in r.output
    assert "RYJ" in r.output
    r = runner.invoke(app, ["alerts", "--home", str(home), "--format", "json"])
    rows = {x["org"]: x for x in json.loads(r.output)}
    assert rows["RYJ"]["why"] == "99.0% on 1 Jan: 990 of 1000 (6 days old)" and rows["RYJ"]["quality"] == "medium"
    r = runner.invoke(app, ["alerts", "--home", str(home), "--date", "2021-01-10"])
    assert "2 series not reported" in r.output and "RYJ" not in r.output
    # evaluated days so far: 7 and 10 Jan; now 3 and 5 Jan, late: the history is rebuilt from all four
    r = runner.invoke(app, ["alerts", "--home", str(home), "--date", "2021-01-03", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [(x["org"], x["since"]) for x in json.loads(r.output)] == [("RYJ", "2021-01-03")]
    r = runner.invoke(app, ["alerts", "--home", str(home), "--date", "2021-01-05", "--format", "json"])
    rows = json.loads(r.output)
    assert [(x["org"], x["rule"], x["since"]) for x in rows] == [("RYJ", "ga_occupancy_critical", "2021-01-03"),
                                                                 ("R1H", "ga_occupancy_critical", "2021-01-05")]
    r = runner.invoke(app, ["alerts", "--home", str(home), "--show", "history", "--format", "json"])
    history = {x["alert_id"]: x for x in json.loads(r.output)}
    assert history["ga_occupancy_high/R1H/2021-01-05"]["status"] == "open"
    assert history["ga_occupancy_high/RYJ/2021-01-03"]["closed_on"] == "2021-01-10"
    r = runner.invoke(app, ["alerts", "--home", str(home), "--show", "checks", "--org", "RYJ", "--date", "2021-01-10",
                               "--format", "json"])
    assert {x["status"] for x in json.loads(r.output)} == {"not_reported"}


@pytest.mark.parametrize(("args", "message"), [
    (["--date", "3 Jan"], "'3 Jan' is not a date"),
    (["--org", "NOPE"], "organisation 'NOPE' is not known"),
    (["--format", "xml"], "use table, csv or json"),
])
def test_bad_input_is_one_clear_line(ws: Mutual, home: Path, args: list[str], message: str) -> None:
    ws.close()
    r = CliRunner().invoke(app, ["alerts", "--home", str(home), *args])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_a_bad_rules_file_and_an_empty_workspace_are_one_line(small_orgs: Mutual, home: Path, tmp_path: Path) -> None:
    small_orgs.close()
    f = tmp_path / "rules.yaml"
    f.write_text("version: 1\nrules:\n  - {id: x, title: X, metric: nope, op: '>', threshold: 1, severity: red}\n")
    r = CliRunner().invoke(app, ["alerts", "--home", str(home), "--rules", str(f)])
    assert r.exit_code == 1 and "rule 'x': metric 'nope' is not in the catalogue" in r.output
    r = CliRunner().invoke(app, ["alerts", "--home", str(home)])
    assert r.exit_code == 1 and "no values of the alert rules' metrics" in r.output


# -- real winters ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def winter(tmp_path_factory: pytest.TempPathFactory, module_data_plane: str) -> Iterator[Mutual]:
    data = shared_data_dir()
    if data is None:
        pytest.skip("the public test files (../shared/data) are not on this machine")
    with engine_env(module_data_plane), open_mutual(tmp_path_factory.mktemp("winter") / "ws", create=True) as m:
        import_real_orgs(m, data)
        m.ingest(data / "nhse-uec-sitrep-series" / "sitrep1819.csv", received_at=datetime(2019, 6, 1))
        yield m


@pytest.mark.slow
def test_real_winter_alerts_agree_with_the_parts(winter: Mutual) -> None:
    day = date(2019, 1, 14)
    ev = al.run_alerts(winter.store, day)
    checks = [c for c in ev.checks if c.rule == "ga_occupancy_critical"]
    assert len(checks) > 100 and all(c.org not in ("ENG", "ENG_T1") for c in checks)
    hot = [c for c in checks if c.status == "alert"]
    assert 10 <= len(hot) < len(checks), "in mid-January many trusts, not all, run above 95%"
    c = hot[0]
    [(occ, open_)] = winter.store.rows(
        "SELECT max(value) FILTER (WHERE metric = 'ga_beds_occupied'), "
        "max(value) FILTER (WHERE metric = 'ga_beds_open') FROM observation "
        "WHERE org = $org AND period = $period AND superseded_at IS NULL",
        {"org": c.org, "period": c.period})
    assert c.value == pytest.approx(occ / open_)
    assert any(a.rule == "ga_occupancy_critical" for a in ev.open)


@pytest.mark.slow
def test_forecast_projects_crossings_for_trusts_not_yet_past_the_threshold(small_orgs: Mutual, tmp_path: Path,
                                                                           home: Path) -> None:
    """Through the real forecaster: a trust climbing 1 bed a day towards 95% gets a projection; one above it,
    already an alert, does not."""
    rows = []
    for i in range(60):
        d = D0 + timedelta(days=i)
        rows += beds("R1H", d, 400 + i + (i % 7 == 5) * 3, 500) + beds("RAL", d, 970 + i % 3, 1000)
    send(small_orgs, tmp_path, rows, datetime(2021, 3, 2, 9))
    small_orgs.close()
    r = CliRunner().invoke(app, ["alerts", "--home", str(home), "--forecast", "--horizon", "14", "--format", "json"])
    assert r.exit_code == 0, r.output
    tables = r.output.split("\n]\n")
    projected = json.loads(tables[1] + "\n]")
    assert {x["org"] for x in projected} == {"R1H"}
    # R1H is at 459 of 500 beds (91.8%) on 1 Mar, one more bed a day: 92% (460) is passed within days
    amber = next(x for x in projected if x["rule"] == "ga_occupancy_high")
    assert amber["projected"] is not None and "2021-03-02" <= amber["projected"] <= "2021-03-08", amber
    assert amber["earliest"] <= amber["projected"] and "80% interval" in amber["why"]
