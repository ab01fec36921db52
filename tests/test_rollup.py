"""Roll-ups through the hierarchy follow each metric's rule, say who reported, and meet NHS England's own totals."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import import_real_orgs, shared_data_dir
from engines import engine_env
from mutual.analytics.rollup import (
    Level,
    Period,
    RollupQuery,
    compare_reported,
    finish,
    merge,
    rollup,
    rollup_rate,
    to_partials,
)
from mutual.app import Mutual, open_mutual
from mutual.catalog.metrics import Kind

ORGS = """code,name,kind,parent,close_date
S1,North London STP,stp,Y56,
S2,South London STP,stp,Y56,
S3,Devon STP,stp,Y58,
T1,Trust One,trust,S1,
T2,Trust Two,trust,S1,
T3,Trust Three,trust,S2,
T4,Trust Four,trust,S3,
T5,Trust Five (no STP),trust,Y58,
T6,Trust Six (closed),trust,S1,2024-01-01
"""

# 1-4 January 2024 (Monday to Thursday). T2 misses the 2nd and 3rd; T6 closes after the 1st.
OCCUPIED = {"T1": [100, 110, 120, 130], "T2": [50, None, None, 80], "T3": [10, 20, 30, 40], "T4": [5, 5, 5, 5],
            "T5": [7, 7, 7, 7], "T6": [1, None, None, None]}
OPEN = {"T1": [200] * 4, "T2": [100] * 4, "T3": [50] * 4, "T4": [10] * 4, "T5": [10] * 4, "T6": [2, None, None, None]}
DAYS = [date(2024, 1, d) for d in range(1, 5)]


def rows(metric: str, series: dict[str, list[int | None]], item: str = "") -> list[str]:
    return [f"{org},{metric},{day},{v},{item}" for org, vs in series.items() for day, v in zip(DAYS, vs, strict=True)
            if v is not None]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, module_data_plane: str) -> Iterator[Mutual]:
    d = tmp_path_factory.mktemp("rollup")
    with engine_env(module_data_plane), open_mutual(d / "ws", create=True) as m:
        (d / "orgs.csv").write_text(ORGS)
        m.import_orgs(d / "orgs.csv")
        lines = ["org,metric,date,value,item"]
        lines += rows("ga_beds_occupied", OCCUPIED) + rows("ga_beds_open", OPEN)
        lines += rows("ae_closures", {"T1": [1, 1, 1, 1], "T3": [2, 2, 2, 2]})
        lines += rows("tests_positive_total", {"T1": [10, 20, 30, 40]})
        lines += rows("days_of_supply", {"T1": [10] * 4, "T3": [2] * 4}, "gloves")
        lines += rows("supply_usage", {"T1": [100] * 4, "T3": [300] * 4}, "gloves")
        lines += rows("days_of_supply", {"T1": [10] * 4, "T3": [2] * 4}, "gowns")
        lines += rows("supply_usage", {"T1": [100] * 4}, "gowns")
        lines += ["ENG,ga_beds_occupied,2024-01-01,172,", "ENG,ga_beds_occupied,2024-01-02,160,"]
        (d / "day.csv").write_text("\n".join(lines) + "\n")
        m.ingest(d / "day.csv", received_at=datetime(2024, 1, 5, 9))
        (d / "fix.csv").write_text("org,metric,date,value\nT1,ga_beds_occupied,2024-01-01,150\n")
        m.ingest(d / "fix.csv", received_at=datetime(2024, 1, 6, 9))
        yield m


def table(result: pa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(r["org"], r["dims"], r["period"]): r for r in result.to_pylist()}


def run(m: Mutual, metric: str, level: Level, **kw: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    start, end = kw.pop("start", DAYS[0]), kw.pop("end", DAYS[-1])
    return table(rollup(m.store, RollupQuery(metric, level, start, end, **kw)))


def test_point_in_time_sums_the_trusts_that_reported_and_says_how_many(system: Mutual) -> None:
    r = run(system, "ga_beds_occupied", Level.REGION)
    london = r[("Y56", "", DAYS[0])]
    assert (london["value"], london["reported"], london["expected"]) == (150 + 50 + 10 + 1, 4, 4)
    assert london["name"] == "London" and london["method"] == "sum"
    # T2 is missing on the 2nd: not a zero, just not there; T6 is closed and no longer expected
    second = r[("Y56", "", DAYS[1])]
    assert (second["value"], second["reported"], second["imputed"], second["expected"]) == (130, 2, 0, 3)
    assert r[("Y58", "", DAYS[0])]["value"] == 5 + 7, "a trust without an STP rolls straight into its region"


def test_carry_forward_fills_a_missing_trust_up_to_n_days_and_flags_it(system: Mutual) -> None:
    one = run(system, "ga_beds_occupied", Level.REGION, carry=1)
    assert (one[("Y56", "", DAYS[1])]["value"], one[("Y56", "", DAYS[1])]["imputed"]) == (110 + 50 + 20, 1)
    assert (one[("Y56", "", DAYS[2])]["value"], one[("Y56", "", DAYS[2])]["imputed"]) == (120 + 30, 0), \
        "T2's last value is two days old on the 3rd: too old for --carry 1"
    two = run(system, "ga_beds_occupied", Level.REGION, carry=2)
    assert (two[("Y56", "", DAYS[2])]["value"], two[("Y56", "", DAYS[2])]["imputed"]) == (120 + 50 + 30, 1)
    assert two[("Y56", "", DAYS[1])]["reported"] == 2, "an imputed trust is not counted as reporting"


def test_levels_stp_region_and_nation(system: Mutual) -> None:
    stp = run(system, "ga_beds_occupied", Level.STP)
    assert stp[("S1", "", DAYS[0])]["value"] == 150 + 50 + 1
    assert stp[("Y58/no STP", "", DAYS[0])]["value"] == 7, "listed as no STP at STP level"
    nation = run(system, "ga_beds_occupied", Level.NATION)
    assert nation[("ENG", "", DAYS[0])]["value"] == 150 + 50 + 10 + 5 + 7 + 1
    assert nation[("ENG", "", DAYS[0])]["expected"] == 6


def test_periods_take_each_trusts_latest_level_and_sum_flows(system: Mutual) -> None:
    week = run(system, "ga_beds_occupied", Level.STP, period=Period.WEEK)
    s1 = week[("S1", "", DAYS[0])]
    assert (s1["value"], s1["period_end"]) == (130 + 80 + 1, DAYS[-1]), "each trust's latest value in the week"
    flows = run(system, "ae_closures", Level.REGION, period=Period.MONTH)
    assert flows[("Y56", "", DAYS[0])]["value"] == 4 * 1 + 4 * 2
    cumulative = run(system, "tests_positive_total", Level.NATION, period=Period.RANGE)
    assert cumulative[("ENG", "", DAYS[0])]["value"] == 40, "a running total takes its last value"


def test_days_of_supply_are_weighted_by_usage_or_the_minimum_never_a_sum(system: Mutual) -> None:
    r = run(system, "days_of_supply", Level.REGION, start=DAYS[0], end=DAYS[0])
    gloves, gowns = r[("Y56", "item=gloves", DAYS[0])], r[("Y56", "item=gowns", DAYS[0])]
    assert gloves["value"] == pytest.approx((10 * 100 + 2 * 300) / 400) and gloves["method"] == "usage-weighted"
    assert (gowns["value"], gowns["method"]) == (2, "minimum"), "T3 gave no usage of gowns: nothing to weight by"


def test_rates_come_from_rolled_up_parts_of_trusts_that_reported_both(system: Mutual) -> None:
    r = table(rollup_rate(system.store, "ga_occupancy", Level.REGION, DAYS[1], DAYS[1]))
    london = r[("Y56", "", DAYS[1])]
    # T2 reported open beds but not occupied ones on the 2nd: it is left out of both sides
    assert (london["numerator"], london["denominator"], london["trusts"]) == (110 + 20, 200 + 50, 2)
    assert london["value"] == pytest.approx(130 / 250)
    assert london["value"] != pytest.approx((110 / 200 + 20 / 50) / 2), "never the mean of the trusts' rates"


def test_as_of_rolls_up_what_was_known_then(system: Mutual) -> None:
    before = run(system, "ga_beds_occupied", Level.NATION, as_of=datetime(2024, 1, 5, 12))
    now = run(system, "ga_beds_occupied", Level.NATION)
    assert now[("ENG", "", DAYS[0])]["value"] - before[("ENG", "", DAYS[0])]["value"] == 150 - 100


def test_computed_roll_ups_sit_beside_reported_subtotals(system: Mutual) -> None:
    r = table(compare_reported(system.store, "ga_beds_occupied", DAYS[0], DAYS[-1]))
    first = r[("ENG", "", DAYS[0])]
    assert (first["computed"], first["reported"], first["difference"]) == (223, 172, 51)
    assert (first["reported_trusts"], first["expected_trusts"]) == (6, 6)
    assert r[("ENG", "", DAYS[2])]["reported"] is None, "England sent nothing for the 3rd"


@pytest.mark.parametrize(("query", "message"), [
    (RollupQuery("beds_free", Level.REGION, DAYS[0], DAYS[1]), "metric 'beds_free' is not in the catalogue"),
    (RollupQuery("ga_beds_open", Level.REGION, DAYS[1], DAYS[0]), "is before --from"),
    (RollupQuery("ae_closures", Level.REGION, DAYS[0], DAYS[1], carry=2), "flow"),
])
def test_bad_requests_say_what_is_wrong(system: Mutual, query: RollupQuery, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rollup(system.store, query)


def test_the_cli_prints_a_roll_up_and_refuses_bad_input(system: Mutual) -> None:
    from typer.testing import CliRunner

    from mutual.cli import app

    home = str(system.workspace.home)
    runner = CliRunner()
    ok = runner.invoke(app, ["rollup", "--metric", "ga_beds_occupied", "--level", "region", "--from", "2024-01-01",
                             "--to", "2024-01-02", "--format", "csv", "--home", home])
    assert ok.exit_code == 0, ok.output
    assert '"region","Y56","London","ga_beds_occupied","",2024-01-01,2024-01-01,211,4,0,4,"sum"' in ok.stdout
    bad = runner.invoke(app, ["rollup", "--metric", "ga_beds_occupied", "--from", "2024-13-01", "--to",
                              "2024-01-02", "--home", home])
    assert bad.exit_code == 1 and "--from" in bad.output and "Traceback" not in bad.output


# -- two-step roll-ups equal one-step ones, for every rule ----------------------------------------------------------

TRUSTS = st.lists(st.tuples(st.sampled_from(["R1", "R2", "R3"]),  # region
                            st.integers(0, 500),  # value
                            st.one_of(st.none(), st.integers(1, 50)),  # usage (none: not reported)
                            st.booleans()),  # imputed
                  min_size=1, max_size=12)


@settings(max_examples=30, deadline=None)
@given(trusts=TRUSTS, kind=st.sampled_from(list(Kind)))
def test_rolling_up_in_two_steps_equals_one_step(trusts: list[tuple[str, int, int | None, bool]], kind: Kind) -> None:
    day = date(2024, 1, 1)
    base = {"dims": ["item=gloves"] * len(trusts), "period": [day] * len(trusts),
            "period_end": [day] * len(trusts), "org": [f"T{i}" for i in range(len(trusts))],
            "value": [float(t[1]) for t in trusts], "imputed": [t[3] for t in trusts]}
    weights = ibis.memtable(pa.table({"org": base["org"], "period": base["period"], "item": ["gloves"] * len(trusts),
                                      "usage": pa.array([None if t[2] is None else float(t[2]) for t in trusts],
                                                               type=pa.float64())}))
    w = weights if kind == Kind.STOCK_DAYS else None
    by_region = ibis.memtable(pa.table({**base, "parent": [t[0] for t in trusts]}))
    by_nation = ibis.memtable(pa.table({**base, "parent": ["N"] * len(trusts)}))
    regions = ibis.memtable(pa.table({"org": ["R1", "R2", "R3"], "parent": ["N", "N", "N"]}))
    con = ibis.duckdb.connect()
    two = con.to_pyarrow(finish(merge(merge(to_partials(by_region, w)), regions), kind)).to_pylist()
    one = con.to_pyarrow(finish(merge(to_partials(by_nation, w)), kind)).to_pylist()
    assert len(two) == len(one) == 1
    for key in ("value", "reported", "imputed", "method"):
        a, b = two[0][key], one[0][key]
        assert (math.isclose(a, b, rel_tol=1e-12) if isinstance(a, float) else a == b), key


# -- the real four winters against NHS England's England rows -------------------------------------------------------

WINTERS = ["sitrep1718", "sitrep1819", "sitrep1920", "sitrep2021"]


@pytest.fixture(scope="module")
def winters(tmp_path_factory: pytest.TempPathFactory, module_data_plane: str) -> Iterator[Mutual]:
    data = shared_data_dir()
    if data is None:
        pytest.skip("the public test files (../shared/data) are not on this machine")
    with engine_env(module_data_plane), open_mutual(tmp_path_factory.mktemp("winters") / "ws", create=True) as m:
        import_real_orgs(m, data)
        for i, w in enumerate(WINTERS):
            m.ingest(Path(data) / "nhse-uec-sitrep-series" / f"{w}.csv", received_at=datetime(2021 + i, 6, 1))
        yield m


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["ga_beds_open", "ga_beds_occupied", "cc_adult_beds_open",
                                    "cc_adult_beds_occupied", "beds_closed_dv", "long_stay_patients_7d",
                                    "handover_delays_30_60", "ae_closures"])
def test_trusts_rolled_up_to_england_meet_nhs_englands_rows_every_day(winters: Mutual, metric: str) -> None:
    """NHS England's England row is the sum of the trusts that reported that day, so trusts that did not report
    are missing from both sides (coverage shows them) and no allowance is needed for them. The one difference
    allowed is a value Mutual quarantined (occupied above open beds) that NHS England counted: the England row
    exceeds Mutual's sum by exactly the quarantined values of that day, and by nothing else."""
    cmp = compare_reported(winters.store, metric, date(2017, 11, 1), date(2021, 4, 30)).to_pylist()
    england = {r["period"]: r for r in cmp if r["org"] == "ENG"}
    [(reported_days,)] = winters.store.rows(
        "SELECT count(DISTINCT period) FROM observation WHERE org = 'ENG' AND metric = $metric", {"metric": metric})
    assert len(england) == reported_days > 280
    held_back = dict(winters.store.rows("""
        SELECT CAST(period AS DATE), sum(CAST(raw AS DOUBLE PRECISION)) FROM (
            SELECT DISTINCT q.submission_id, q.row_num, q.col, q.period, q.raw FROM quality_issue q
            JOIN organisation o ON o.code = q.org
            WHERE o.kind = 'trust' AND q.severity = 'error' AND q.metric = $metric) AS q GROUP BY 1""",
                                        {"metric": metric}))
    for day, r in england.items():
        assert r["computed"] is not None and r["reported"] is not None, day
        assert r["reported"] - r["computed"] == held_back.get(day, 0), day
        assert 0 < r["reported_trusts"] <= r["expected_trusts"], day
    if metric == "ga_beds_occupied":
        assert sum(held_back.values()) > 0, "the test meets at least one quarantined value"
        christmas = england[date(2017, 12, 24)]
        assert christmas["reported_trusts"] < christmas["expected_trusts"] - 5, "trusts that did not report"
