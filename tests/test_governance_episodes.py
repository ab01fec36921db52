"""Synthetic episodes made from reported occupancy: on every reported day, the patients in a bed at a trust are
exactly the beds it reported occupied; COVID-19 admissions follow the reported share; every NHS number is
valid; the same seed gives the same episodes."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from mutual.governance import episodes, nhs_number

START = date(2020, 9, 1)


def series(values: list[int]) -> dict[date, float]:
    return {START + timedelta(days=i): float(v) for i, v in enumerate(values)}


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["R1H", "RAL", "RYJ"]), st.lists(st.integers(0, 60), min_size=1, max_size=30),
                       min_size=1), st.integers(0, 1000))
def test_every_days_census_is_the_reported_occupancy(occupancy: dict[str, list[int]], seed: int) -> None:
    occupied = {t: series(v) for t, v in occupancy.items()}
    table = episodes.from_occupancy(occupied, seed=seed)
    for trust, days in occupied.items():
        for day, beds in days.items():
            assert episodes.census(table, trust, day) == beds, (trust, day)
    assert pc.all(pc.less(table["admission_date"], table["discharge_date"])).as_py() in (True, None)
    assert pc.all(pc.less_equal(table["critical_care_days"],
                                pc.days_between(table["admission_date"], table["discharge_date"]))).as_py() in (
        True, None)


def test_covid_admissions_follow_the_reported_share_and_numbers_are_valid() -> None:
    occupied = {"R1H": series([400] * 60), "RAL": series([300] * 60)}
    covid = {"R1H": series([100] * 60), "RAL": series([0] * 60)}
    table = episodes.from_occupancy(occupied, covid=covid, seed=5)
    by_trust = {t: table.filter(pc.equal(table["trust"], t)) for t in occupied}
    share = pc.mean(pc.equal(by_trust["R1H"]["primary_diagnosis"], "U07.1")).as_py()
    assert 0.2 < share < 0.3
    assert pc.sum(pc.equal(by_trust["RAL"]["primary_diagnosis"], "U07.1")).as_py() == 0
    assert all(nhs_number.is_valid(str(n)) for n in table.column("nhs_number").to_pylist()[:2000])
    assert episodes.from_occupancy(occupied, covid=covid, seed=5).equals(table)
