"""Completeness and timeliness: who sent what, when, how late, how long it has been missing, what was held back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines import engine_env
from mutual.analytics.completeness import completeness, summary
from mutual.app import Mutual, open_mutual

ORGS = """code,name,kind,parent,close_date
T1,Trust One,trust,Y56,
T2,Trust Two,trust,Y56,
T3,Trust Three,trust,Y56,
T4,Trust Four (closed),trust,Y56,2024-01-01
"""
D = [date(2024, 1, d) for d in range(1, 5)]


def send(m: Mutual, folder: Path, name: str, lines: list[str], received: datetime) -> None:
    (folder / name).write_text("org,metric,date,value\n" + "\n".join(lines) + "\n")
    m.ingest(folder / name, received_at=received)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, module_data_plane: str) -> Iterator[Mutual]:
    d = tmp_path_factory.mktemp("completeness")
    with engine_env(module_data_plane), open_mutual(d / "ws", create=True) as m:
        (d / "orgs.csv").write_text(ORGS)
        m.import_orgs(d / "orgs.csv")
        # day 1, on time: T3's occupied beds exceed its open beds and are quarantined
        send(m, d, "d1.csv", ["T1,ga_beds_occupied,2024-01-01,10", "T1,ga_beds_open,2024-01-01,20",
                              "T2,ga_beds_occupied,2024-01-01,5", "T2,ga_beds_open,2024-01-01,10",
                              "T3,ga_beds_occupied,2024-01-01,30", "T3,ga_beds_open,2024-01-01,20",
                              "T4,ga_beds_occupied,2024-01-01,3", "T4,ga_beds_open,2024-01-01,3",
                              "T1,ae_closures,2024-01-01,1"], datetime(2024, 1, 1, 9))
        # day 2 two and a half hours late, day 3 on time: T1 only
        send(m, d, "d2.csv", ["T1,ga_beds_occupied,2024-01-02,11", "T1,ga_beds_open,2024-01-02,20"],
             datetime(2024, 1, 2, 13, 30))
        send(m, d, "d3.csv", ["T1,ga_beds_occupied,2024-01-03,12", "T1,ga_beds_open,2024-01-03,20"],
             datetime(2024, 1, 3, 10))
        # day 4 the next morning: 21 hours late
        send(m, d, "d4.csv", ["T1,ga_beds_occupied,2024-01-04,13", "T2,ga_beds_occupied,2024-01-04,6"],
             datetime(2024, 1, 5, 8))
        # a correction of day 1 does not make day 1 late
        send(m, d, "fix.csv", ["T1,ga_beds_occupied,2024-01-01,9"], datetime(2024, 1, 6, 9))
        yield m


def grid(m: Mutual, **kw: Any) -> dict[tuple[str, str, date], dict[str, Any]]:
    start, end = kw.pop("start", D[0]), kw.pop("end", D[-1])
    return {(r["org"], r["metric"], r["day"]): r for r in completeness(m.store, start, end, **kw).to_pylist()}


def test_received_late_and_missing_streaks_per_trust_metric_and_day(system: Mutual) -> None:
    g = grid(system, metric="ga_beds_occupied")
    t1 = [g[("T1", "ga_beds_occupied", d)] for d in D]
    assert [r["received"] for r in t1] == [True] * 4
    assert [r["late_hours"] for r in t1] == [0, 2.5, 0, 21]
    assert t1[0]["received_at"] == datetime(2024, 1, 1, 9), "the first arrival counts, not the correction"
    assert t1[0]["deadline"] == datetime(2024, 1, 1, 11)
    t2 = [g[("T2", "ga_beds_occupied", d)] for d in D]
    assert [r["received"] for r in t2] == [True, False, False, True]
    assert [r["missing_streak"] for r in t2] == [0, 1, 2, 0]
    assert t2[1]["late_hours"] is None


def test_quarantined_values_count_as_not_received_and_show_their_share(system: Mutual) -> None:
    g = grid(system)
    occupied, beds = g[("T3", "ga_beds_occupied", D[0])], g[("T3", "ga_beds_open", D[0])]
    assert (occupied["received"], occupied["quarantined"], occupied["quarantined_share"]) == (False, 1, 1.0)
    assert (beds["received"], beds["quarantined"], beds["quarantined_share"]) == (True, 0, 0.0)
    assert g[("T3", "ga_beds_occupied", D[3])]["missing_streak"] == 4


def test_only_open_trusts_that_report_a_metric_are_expected(system: Mutual) -> None:
    g = grid(system)
    assert ("T4", "ga_beds_occupied", D[0]) in g
    assert ("T4", "ga_beds_occupied", D[1]) not in g, "closed after the 1st"
    assert ("T2", "ae_closures", D[0]) not in g, "T2 never reports A&E closures"
    assert ("T1", "ga_beds_open", D[3]) not in g, "nobody sent open beds for the 4th: not a collection day"


def test_flows_are_due_the_next_day_and_the_deadline_is_configurable(system: Mutual) -> None:
    flow = grid(system, metric="ae_closures")[("T1", "ae_closures", D[0])]
    assert (flow["deadline"], flow["late_hours"]) == (datetime(2024, 1, 2, 11), 0)
    strict = grid(system, metric="ae_closures", deadline=time(8), days_after=0)[("T1", "ae_closures", D[0])]
    assert strict["late_hours"] == 1


def test_as_of_sees_only_what_had_arrived(system: Mutual) -> None:
    g = grid(system, metric="ga_beds_occupied", as_of=datetime(2024, 1, 2, 12))
    assert g[("T1", "ga_beds_occupied", D[0])]["received"]
    assert ("T1", "ga_beds_occupied", D[1]) not in g, "nothing had arrived for the 2nd: not yet a collection day"


def test_one_org_is_judged_against_every_trusts_collection_days(system: Mutual) -> None:
    g = grid(system, org="T2", metric="ga_beds_occupied")
    assert sorted(d for (_, _, d) in g) == D and not g[("T2", "ga_beds_occupied", D[1])]["received"]


def test_summary_counts_expected_received_and_on_time(system: Mutual) -> None:
    s = {(r["metric"], r["day"]): r for r in summary(completeness(system.store, D[0], D[-1])).to_pylist()}
    first = s[("ga_beds_occupied", D[0])]
    assert (first["expected"], first["received"], first["on_time"], first["quarantined"]) == (4, 3, 3, 1)
    assert s[("ga_beds_occupied", D[2])]["longest_missing_streak"] == 3


@pytest.mark.parametrize(("kw", "message"), [
    ({"metric": "beds_free"}, "metric 'beds_free' is not in the catalogue"),
    ({"org": "XX9"}, "organisation 'XX9' is unknown"),
    ({"org": "Y56"}, "completeness is per trust"),
    ({"days_after": -1}, "0 or more"),
])
def test_bad_requests_say_what_is_wrong(system: Mutual, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        completeness(system.store, D[0], D[1], **kw)


def test_the_cli_reports_a_day(system: Mutual) -> None:
    from typer.testing import CliRunner

    from mutual.cli import app

    home = str(system.workspace.home)
    runner = CliRunner()
    ok = runner.invoke(app, ["completeness", "--date", "2024-01-02", "--metric", "ga_beds_occupied",
                             "--format", "csv", "--home", home])
    assert ok.exit_code == 0, ok.output
    assert '"ga_beds_occupied",2024-01-02,3,1,0,0,2' in ok.stdout
    bad = runner.invoke(app, ["completeness", "--date", "2024-01-02", "--deadline", "noon", "--home", home])
    assert bad.exit_code == 1 and "--deadline 'noon'" in bad.output


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(st.booleans(), min_size=1, max_size=10))
def test_a_missing_streak_counts_the_collection_days_since_the_last_value(tmp_path: Path, sent: list[bool]) -> None:
    home = tmp_path / f"ws{abs(hash(tuple(sent)))}"
    with engine_env("duckdb"), open_mutual(home, create=True) as m:  # a rule of the analytics: one engine will do
        (tmp_path / "orgs.csv").write_text(ORGS)
        m.import_orgs(tmp_path / "orgs.csv")
        days = [D[0] + timedelta(days=i) for i in range(len(sent))]
        lines = [f"T1,ga_beds_open,{d},20" for d in days]  # T1 makes every day a collection day
        lines += [f"T2,ga_beds_open,{d},10" for d, s in zip(days, sent, strict=True) if s]
        lines += [f"T2,ga_beds_open,{days[0] - timedelta(days=30)},10"]  # T2 is expected throughout
        send(m, tmp_path, "f.csv", lines, datetime(2024, 3, 1))
        g = grid(m, start=days[0], end=days[-1], org="T2")
    streak = 0
    for d, s in zip(days, sent, strict=True):
        streak = 0 if s else streak + 1
        assert g[("T2", "ga_beds_open", d)]["missing_streak"] == streak
