"""The catalogue is data: every metric the issue names exists, spelled so, with consistent references."""

from __future__ import annotations

import pytest

from mutual.catalog import Kind, load_catalog

REQUIRED = [
    "ga_beds_core_open", "ga_beds_escalation_open", "ga_beds_open", "ga_beds_occupied", "cc_adult_beds_open",
    "cc_adult_beds_occupied", "cc_paed_beds_open", "cc_paed_beds_occupied", "beds_total", "beds_inpatient_open",
    "beds_inpatient_occupied", "icu_beds_open", "icu_beds_occupied", "ventilators_total", "ventilators_in_use",
    "covid_patients_in_hospital", "covid_patients_ventilated", "covid_admissions", "beds_closed_dv",
    "long_stay_patients_7d", "long_stay_patients_21d", "handover_delays_30_60", "handover_delays_over_60",
    "ae_closures", "ae_diverts", "staff_absent",
]


def test_every_required_metric_is_in_the_catalogue() -> None:
    assert set(REQUIRED) <= set(load_catalog().codes)


def test_staff_absence_has_staff_group_and_reason_dimensions() -> None:
    assert load_catalog().get("staff_absent").dims == ["staff_group", "reason"]


def test_days_of_supply_covers_ppe_and_ventilator_consumables() -> None:
    c = load_catalog()
    dos = c.get("days_of_supply")
    assert dos.kind == Kind.STOCK_DAYS and dos.dims == ["item", "bound"]
    assert {"gowns", "gloves", "n95_masks", "ventilator_supplies"} <= set(c.dimensions["item"])


@pytest.mark.parametrize(("saner", "metric"), [
    ("numTotBeds", "beds_total"), ("numbeds", "beds_inpatient_open"), ("numBeds", "beds_inpatient_open"),
    ("numBedsOcc", "beds_inpatient_occupied"), ("numVentUse", "ventilators_in_use"),
    ("numC19HospPats", "covid_patients_in_hospital")])
def test_saner_population_codes_map_to_metrics(saner: str, metric: str) -> None:
    found = load_catalog().by_saner(saner)
    assert found is not None and found.code == metric


def test_both_saner_code_systems_are_accepted() -> None:
    assert set(load_catalog().saner_systems) == {
        "http://hl7.org/fhir/us/saner/CodeSystem/PopulationSystem",
        "http://hl7.org/fhir/uv/saner/CodeSystem/PopulationSystem"}


def test_sitrep_headings_map_to_metrics_ignoring_case_and_spacing() -> None:
    found = load_catalog().by_sitrep("  g&a BEDS  occ'd ")
    assert found is not None and found.code == "ga_beds_occupied"


def test_every_metric_has_a_dhis2_name_and_aggregation_type() -> None:
    for m in load_catalog().metrics:
        assert m.dhis2 is not None and m.dhis2.aggregation_type, m.code


def test_kinds_decide_aggregation() -> None:
    c = load_catalog()
    assert c.get("ga_beds_occupied").kind == Kind.POINT_IN_TIME
    assert c.get("covid_admissions").kind == Kind.FLOW
    assert c.get("tests_positive_total").kind == Kind.CUMULATIVE


def test_open_beds_total_is_core_plus_escalation_and_occupied_is_capped_by_open() -> None:
    c = load_catalog()
    assert c.get("ga_beds_open").parts == ["ga_beds_core_open", "ga_beds_escalation_open"]
    assert c.get("ga_beds_occupied").capacity == "ga_beds_open"
