"""The four real winters of NHS England sitreps ingest with every value accounted for."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime

import pytest

from conftest import import_real_orgs, shared_data_dir
from mutual.app import Mutual, open_mutual

pytestmark = pytest.mark.slow
WINTERS = ["sitrep1718", "sitrep1819", "sitrep1920", "sitrep2021"]


@pytest.fixture(scope="module")
def winters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mutual, dict[str, int]]]:
    data = shared_data_dir()
    if data is None:
        pytest.skip("the public test files (../shared/data) are not on this machine")
    with open_mutual(tmp_path_factory.mktemp("winters") / "ws", create=True) as m:
        import_real_orgs(m, data)
        ids = {}
        for i, w in enumerate(WINTERS):
            result = m.ingest(data / "nhse-uec-sitrep-series" / f"{w}.csv", received_at=datetime(2021 + i, 6, 1))
            ids[w] = result.submission.id
        yield m, ids


def value(m: Mutual, org: str, metric: str, day: date) -> float | None:
    row = m.store.con.execute(
        "SELECT value FROM observation WHERE org = ? AND metric = ? AND period = ? AND superseded_at IS NULL",
        [org, metric, day]).fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("winter", WINTERS)
def test_every_row_and_value_is_accounted_for(winters: tuple[Mutual, dict[str, int]], winter: str) -> None:
    m, ids = winters
    s = m.submission(ids[winter])
    data = shared_data_dir()
    assert data is not None
    with (data / "nhse-uec-sitrep-series" / f"{winter}.csv").open() as f:
        assert s.rows_read == sum(1 for _ in csv.reader(f)) - 1
    assert s.status == "loaded"
    assert s.values_read == s.accepted + s.quarantined
    quarantined = m.store.con.execute(
        "SELECT count(DISTINCT (row_num, col)), count(*) FILTER (message IS NULL OR message = '') "
        "FROM quality_issue WHERE submission_id = ? AND severity = 'error'", [s.id]).fetchone()
    assert quarantined == (s.quarantined, 0), "each quarantined value has an explanation"


def test_barts_and_england_on_3_december_2018(winters: tuple[Mutual, dict[str, int]]) -> None:
    m, _ = winters
    day = date(2018, 12, 3)
    assert value(m, "R1H", "ga_beds_occupied", day) == 1452
    assert value(m, "R1H", "ga_beds_open", day) == 1491
    assert value(m, "ENG", "ga_beds_open", day) == 96403, "the nation's own reported value"
    assert value(m, "ENG", "ga_beds_occupied", day) == 91533


def test_the_broken_rate_column_is_reported_not_stored(winters: tuple[Mutual, dict[str, int]]) -> None:
    m, ids = winters
    n = m.store.con.execute("SELECT count(*) FROM quality_issue WHERE submission_id = ? AND rule = 'reported_rate'",
                            [ids["sitrep1819"]]).fetchone()
    assert n is not None and n[0] > 10_000
    assert m.store.con.execute("SELECT count(*) FROM observation WHERE metric LIKE '%rate%'").fetchone() == (0,)


def test_clock_change_stamps_are_read_as_london_dates(winters: tuple[Mutual, dict[str, int]]) -> None:
    m, ids = winters
    # "2021-03-30 23:00:00" is UK midnight of 31 March; the empty "2021-03-31 00:00:00" row is not a zero.
    assert value(m, "R1H", "ga_beds_open", date(2021, 3, 31)) == 1414
    assert value(m, "R1H", "ga_beds_occupied", date(2021, 4, 4)) == 1202
    conflicts = m.store.con.execute(
        "SELECT count(*) FROM quality_issue WHERE submission_id = ? AND rule = 'conflict'",
        [ids["sitrep2021"]]).fetchone()
    assert conflicts == (0,)


def test_the_merged_sussex_trust_keeps_one_series(winters: tuple[Mutual, dict[str, int]]) -> None:
    m, _ = winters
    assert value(m, "RYR", "ga_beds_open", date(2021, 3, 28)) == 800, "Western Sussex before the merger"
    assert value(m, "RYR", "ga_beds_open", date(2021, 3, 29)) == 1590, "University Hospitals Sussex after"


def test_both_national_rows_of_2020_21_are_kept_apart(winters: tuple[Mutual, dict[str, int]]) -> None:
    m, _ = winters
    assert value(m, "ENG", "ga_beds_open", date(2021, 3, 27)) == 90920
    assert value(m, "ENG_T1", "ga_beds_open", date(2021, 3, 27)) == 89595
