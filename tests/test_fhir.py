"""FHIR R4 MeasureReports (HL7 SANER): read single reports, Bundles and NDJSON into cells the shared rules check;
write stored values back out as MeasureReports; read -> store -> write -> read keeps every value."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutual.app import Mutual, open_mutual
from mutual.catalog import load_catalog
from mutual.catalog.orgs import merge_orgs, read_fhir_orgs, reference_orgs
from mutual.ingest import fhir, rules
from mutual.ingest.cells import Read, ReadContext, ReadError, stage_read
from mutual.ingest.rawfile import archive
from mutual.store.base import ObservationQuery

CATALOG = load_catalog()
US = "http://hl7.org/fhir/us/saner/CodeSystem/PopulationSystem"
UV = "http://hl7.org/fhir/uv/saner/CodeSystem/PopulationSystem"
ROLE = "http://terminology.hl7.org/CodeSystem/measure-population"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NJ_LOCATION = {"resourceType": "Location", "id": "states-NJ",
               "identifier": [{"system": "https://www.census.gov/geographies", "value": "34"}],
               "position": {"longitude": -74.6728, "latitude": 40.1907}}
ORGS = tuple(merge_orgs(reference_orgs(), read_fhir_orgs(json.dumps(NJ_LOCATION))))


def pop(code: str, count: Any = None, system: str = UV, role: str = "measure-population") -> dict[str, Any]:
    p: dict[str, Any] = {"code": {"coding": [{"system": system, "code": code}, {"system": ROLE, "code": role}]}}
    if count is not None:
        p["count"] = count
    return p


def report(*groups: list[dict[str, Any]], rid: str | None = "r1", start: str = "2020-04-04",
           end: str | None = None, subject: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MeasureReport", "status": "complete", "type": "summary",
        "measure": "http://hl7.org/fhir/uv/saner/Measure/Example",
        "subject": subject if subject is not None else {"reference": "Location/states-NJ"},
        "period": {"start": start, "end": end or start},
        "group": [{"population": g} for g in groups], **extra}
    if rid is not None:
        res["id"] = rid
    return res


def read_file(path: Path, tmp_path: Path, org: str | None = None) -> Read:
    raw = archive(path, tmp_path / "archive")
    return fhir.read(ReadContext(raw=raw, filename=path.name, spec_name=None, org=org, catalog=CATALOG, orgs=ORGS,
                                 tmp_dir=tmp_path))


def read_json(doc: object, tmp_path: Path, name: str = "report.json", org: str | None = None) -> Read:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return read_file(path, tmp_path, org)


def checked(read: Read) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Run the shared quality rules on a Read: (accepted (org, metric, dims, period, value), issues)."""
    con = duckdb.connect()
    rules.reference_tables(con, CATALOG, list(ORGS), read.spec)
    stage_read(con, read)
    rules.check(con, read.spec, CATALOG, list(ORGS), date(2030, 1, 1), read.rows_read)
    accepted = con.execute("SELECT org, metric, dims, period::VARCHAR, value FROM accepted ORDER BY ALL").fetchall()
    issues = con.execute("SELECT sheet, row_num, col, raw, rule, message FROM issues ORDER BY ALL").fetchall()
    return accepted, issues


def cells(read: Read) -> list[dict[str, Any]]:
    return read.cells.to_pylist()


def nj_reports(shared_data: Path) -> list[Path]:
    found = sorted((shared_data / "hl7-saner-examples").glob("MeasureReport-ExampleNJ-*.json"))
    assert len(found) == 44
    return found


def with_nj(mutual: Mutual, shared_data: Path) -> Mutual:
    for f in ("Location-states-NJ.json", "Organization-NJ-DPH.json"):
        mutual.import_orgs(shared_data / "hl7-saner-examples" / f)
    return mutual


def current(mutual: Mutual) -> dict[tuple[str, str, str, str], float]:
    t = mutual.store.observations(ObservationQuery()).to_pyarrow()
    return {(r["org"], r["metric"], r["dims"], str(r["period"])): r["value"] for r in t.to_pylist()}


# -- sniffing ------------------------------------------------------------------------------------------------

def test_looks_like_knows_reports_bundles_and_ndjson_by_their_top_level_type() -> None:
    mr = json.dumps(report([pop("numBeds", 5)])).encode()
    assert fhir.looks_like(mr, "x.json")
    assert fhir.looks_like(b"\xef\xbb\xbf  " + mr, "x.json")
    assert fhir.looks_like(json.dumps({"resourceType": "Bundle", "type": "batch",
                                       "entry": [{"resource": report()}]}).encode(), "b.json")
    assert fhir.looks_like(mr + b"\n" + mr + b"\n", "x.ndjson")
    assert fhir.looks_like(mr[:50], "cut-short.json"), "a head cut inside the report still shows its type"
    # a MeasureReport nested inside another resource is not a MeasureReport file
    assert not fhir.looks_like(json.dumps({"resourceType": "Location", "contained": [report()]}).encode(), "l.json")
    assert not fhir.looks_like(json.dumps({"resourceType": "Bundle", "entry": [{"resource": NJ_LOCATION}]}).encode(),
                               "orgs.json")
    assert not fhir.looks_like(b'{"dataValues": []}', "dhis2.json")
    assert not fhir.looks_like(b"date,state\n20200404,NJ\n", "nj.csv")


def test_the_real_reports_look_like_fhir(shared_data: Path) -> None:
    for path in nj_reports(shared_data):
        assert fhir.looks_like(path.read_bytes()[:65536], path.name)


# -- one report ----------------------------------------------------------------------------------------------

def test_a_real_report_gives_one_cell_per_population_with_its_place(shared_data: Path, tmp_path: Path) -> None:
    path = nj_reports(shared_data)[0]
    assert path.name == "MeasureReport-ExampleNJ-20200404-CDCPatientImpactAndHospitalCapacity.json"
    read = read_file(path, tmp_path)
    got = cells(read)
    assert read.rows_read == 1 and read.malformed.num_rows == 0
    assert len(got) == 15, "3 groups holding 5 + 2 + 8 populations"
    first = got[0]
    assert (first["sheet"], first["row_num"], first["col"]) == (
        "ExampleNJ-20200404-CDCPatientImpactAndHospitalCapacity", 1, "group[0].population[0]")
    assert (first["org_raw"], first["org_name"], first["period_raw"]) == ("NJ", "State of New Jersey", "2020-04-04")
    assert (first["metric_raw"], first["raw"]) == ("numTotBeds", "20000")
    occupied = next(c for c in got if c["metric_raw"] == "numBedsOcc")
    assert occupied["raw"] is None, "a population with only a data-absent-reason is missing, not zero"
    accepted, issues = checked(read)
    assert issues == []
    assert ("NJ", "beds_inpatient_open", "", "2020-04-04", 15000.0) in accepted
    assert not any(a[1] == "beds_inpatient_occupied" for a in accepted)
    assert ("NJ", "covid_patients_any_location", "", "2020-04-04", 0.0) in accepted, "a count of 0 is a value"


def test_both_saner_code_systems_map_and_the_role_coding_is_never_the_metric(tmp_path: Path) -> None:
    read = read_json(report([pop("numTotBeds", 10, US, "initial-population"), pop("numBeds", 8, UV)]), tmp_path)
    accepted, issues = checked(read)
    assert issues == []
    assert [(a[1], a[4]) for a in accepted] == [("beds_inpatient_open", 8.0), ("beds_total", 10.0)]
    only_role = {"code": {"coding": [{"system": ROLE, "code": "numerator"}]}, "count": 3}
    _, issues = checked(read_json(report([only_role]), tmp_path))
    assert [i[4] for i in issues] == ["unknown_metric"]


def test_a_code_the_catalogue_lacks_is_an_unknown_metric_and_intermediate_populations_are_skipped(
        tmp_path: Path) -> None:
    read = read_json(report([pop("numStaffOnLeave", 4), pop("allReports", 12), pop("latestReports", 9),
                             pop("triage", 2, "http://example.org/codes")]), tmp_path)
    assert read.recognised == 2, "allReports and latestReports are the FEMA measure's bookkeeping, not metrics"
    _, issues = checked(read)
    assert [(i[2], i[4]) for i in issues] == [("group[0].population[0]", "unknown_metric"),
                                             ("group[0].population[3]", "unknown_metric")]
    assert "numStaffOnLeave" in issues[0][5] and "http://example.org/codes|triage" in issues[1][5]


def test_a_catalogue_code_in_any_system_is_taken_as_is(tmp_path: Path) -> None:
    accepted, issues = checked(read_json(report([pop("GA_BEDS_OPEN", 300, "urn:example:local")]), tmp_path))
    assert issues == [] and accepted == [("NJ", "ga_beds_open", "", "2020-04-04", 300.0)]


def test_a_bad_count_or_date_is_reported_at_its_place_and_the_rest_is_read(tmp_path: Path) -> None:
    read = read_json(report([pop("numBeds", "12a"), pop("numVent", 1.5), pop("numTotBeds", 40)]), tmp_path)
    assert read.malformed.num_rows == 0
    accepted, issues = checked(read)
    assert accepted == [("NJ", "beds_total", "", "2020-04-04", 40.0)]
    assert [(i[2], i[3], i[4]) for i in issues] == [("group[0].population[0]", "12a", "not_a_number"),
                                                   ("group[0].population[1]", "1.5", "not_whole")]
    _, issues = checked(read_json(report([pop("numBeds", 5)], start="2020-13-01"), tmp_path))
    assert [(i[4], "2020-13-01" in i[5]) for i in issues] == [("bad_date", True)]


def test_period_start_gives_the_day_as_written_and_a_later_end_the_last_day(tmp_path: Path) -> None:
    got = cells(read_json(report([pop("numBeds", 5)], start="2020-04-04T23:30:00-04:00",
                                 end="2020-04-04T23:59:59-04:00"), tmp_path))
    assert (got[0]["period_raw"], got[0]["period_end_raw"]) == ("2020-04-04", None)
    got = cells(read_json(report([pop("numC19ConfNewAdm", 5)], start="2020-04-01", end="2020-04-07"), tmp_path))
    assert (got[0]["period_raw"], got[0]["period_end_raw"]) == ("2020-04-01", "2020-04-07")


def test_the_organisation_comes_from_the_subject_then_the_reporter_and_org_overrides(tmp_path: Path) -> None:
    ods = {"identifier": {"system": ODS, "value": "RJ1"}, "reference": "Location/site-9"}
    assert cells(read_json(report([pop("numBeds", 1)], subject=ods), tmp_path))[0]["org_raw"] == "RJ1"
    no_subject = report([pop("numBeds", 1)], subject={}, reporter={"reference": "Organization/NJ-DPH"})
    assert cells(read_json(no_subject, tmp_path))[0]["org_raw"] == "NJ-DPH"
    assert cells(read_json(no_subject, tmp_path, org="RAL"))[0]["org_raw"] == "RAL"
    full_url = report([pop("numBeds", 1)], subject={"reference": "https://x.org/fhir/Location/states-ny/_history/2"})
    assert cells(read_json(full_url, tmp_path))[0]["org_raw"] == "NY"
    contained = report([pop("numBeds", 1)], subject={"reference": "#here"},
                       contained=[{"resourceType": "Location", "id": "here",
                                   "identifier": [{"system": ODS, "value": "R1H"}]}])
    assert cells(read_json(contained, tmp_path))[0]["org_raw"] == "R1H"


def test_a_measure_score_is_a_rate_checked_against_numerator_and_denominator(tmp_path: Path) -> None:
    group = {"population": [pop("totalTestResultsIncrease", 200, role="denominator"),
                            pop("positiveIncrease", 50, role="numerator")], "measureScore": {"value": 0.4}}
    res = report()
    res["group"] = [group]
    read = read_json(res, tmp_path)
    assert read.rates.to_pylist() == [{"sheet": "r1", "row_num": 1, "col": "group[0].measureScore", "raw": "0.4",
                                       "num_raw": "50", "den_raw": "200"}]
    _, issues = checked(read)
    assert [i[4] for i in issues] == ["reported_rate"]


def test_strata_by_catalogue_dimensions_are_values_and_others_are_skipped_with_a_warning(tmp_path: Path) -> None:
    res = report()
    res["group"] = [{"code": {"coding": [{"system": fhir.MUTUAL_METRIC_SYSTEM, "code": "staff_absent"}]},
                     "stratifier": [
                         {"code": [{"text": "staff_group"}, {"text": "reason"}], "stratum": [{
                             "component": [{"code": {"text": "staff_group"}, "value": {"text": "nursing"}},
                                           {"code": {"text": "reason"}, "value": {"text": "covid_sickness"}}],
                             "population": [{"count": 12}]}]},
                         {"code": [{"text": "age"}], "stratum": [{"value": {"text": "0-17"},
                                                                  "population": [{"count": 3}]}]}]}]
    read = read_json(res, tmp_path)
    accepted, issues = checked(read)
    assert accepted == [("NJ", "staff_absent", "reason=covid_sickness;staff_group=nursing", "2020-04-04", 12.0)]
    assert read.recognised == 1 and [r for r, _ in read.file_issues] == ["fhir_stratifier"]
    assert issues == []


# -- files of many ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["collection", "transaction", "batch"])
def test_a_bundle_is_read_entry_by_entry_and_an_invalid_entry_is_malformed_alone(kind: str, tmp_path: Path) -> None:
    good = report([pop("numBeds", 7)], rid="good")
    invalid = report([pop("numBeds", 9)], rid="bad", status=5)
    doc = {"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": "urn:uuid:0d8b3bf6-0b0a-4c5e-9df4-1ec0ae0c3c53", "resource": NJ_LOCATION},
        {"resource": invalid}, {"resource": good}, {"resource": report([pop("numVent", 3)], rid=None)},
        {"resource": {"resourceType": "Patient", "id": "p"}}, {"request": {"method": "DELETE", "url": "x"}}]}
    read = read_json(doc, tmp_path)
    assert read.rows_read == 6 and read.recognised == 1
    bad = read.malformed.to_pylist()
    assert [(b["sheet"], b["row_num"]) for b in bad] == [("bad", 2), ("entry[4]", 5), ("entry[5]", 6)]
    assert bad[0]["problem"].startswith("bad is not a valid FHIR MeasureReport: status: ")
    assert '"status": 5' in bad[0]["line"]
    assert "Patient, not a MeasureReport" in bad[1]["problem"]
    assert [(c["sheet"], c["row_num"], c["raw"]) for c in cells(read)] == [("good", 3, "7"), ("entry[3]", 4, "3")]
    accepted, issues = checked(read)
    assert len(accepted) == 2 and [i[4] for i in issues] == ["malformed_line"] * 3


def test_a_bundle_subject_resolves_through_the_entries_full_urls(tmp_path: Path) -> None:
    url = "urn:uuid:0d8b3bf6-0b0a-4c5e-9df4-1ec0ae0c3c53"
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": url, "resource": {**NJ_LOCATION, "identifier": [{"system": ODS, "value": "RXH"}]}},
        {"resource": report([pop("numBeds", 7)], subject={"reference": url})}]}
    assert cells(read_json(doc, tmp_path))[0]["org_raw"] == "RXH"


def test_ndjson_is_read_line_by_line_with_line_numbers(tmp_path: Path) -> None:
    lines = [json.dumps(report([pop("numBeds", 1)], rid="a")), "", '{"resourceType": "MeasureReport", broken',
             json.dumps(report([pop("numBeds", 2)], rid=None, start="2020-04-05")),
             json.dumps({"resourceType": "Location", "id": "states-NJ"}), "\xff".encode("latin-1").decode("latin-1")]
    path = tmp_path / "export.ndjson"
    path.write_bytes("\n".join(lines[:-1]).encode() + b"\n\xff\xfe\n")
    read = read_file(path, tmp_path)
    assert read.rows_read == 5, "blank lines are not records"
    assert [(c["sheet"], c["row_num"], c["raw"]) for c in cells(read)] == [("a", 1, "1"), ("entry[3]", 4, "2")]
    assert [(m["row_num"], m["problem"].split(" (")[0]) for m in read.malformed.to_pylist()] == [
        (3, "line 3 is not valid JSON"), (6, "line 6 is not UTF-8")]
    assert read.recognised == 1


@pytest.mark.parametrize("depth", [250, 100_000])
def test_a_deeply_nested_ndjson_line_is_malformed_and_the_others_read(depth: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.ndjson"
    path.write_text('{"resourceType": "MeasureReport", "x": ' + "[" * depth + "]" * depth + "}\n"
                    + json.dumps(report([pop("numBeds", 5)], rid="ok")) + "\n")
    read = read_file(path, tmp_path)
    assert [m["row_num"] for m in read.malformed.to_pylist()] == [1]
    assert "nested" in read.malformed.to_pylist()[0]["problem"]
    assert [c["sheet"] for c in cells(read)] == ["ok"]


def test_ndjson_is_recognised_by_content_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(report([pop("numBeds", 1)], rid="a")) + "\n" +
                    json.dumps(report([pop("numBeds", 2)], rid="b")) + "\n")
    assert [c["row_num"] for c in cells(read_file(path, tmp_path))] == [1, 2]


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"resourceType": "MeasureReport", ', "not valid JSON at line 1"),
    (b'{"resourceType": "Patient", "id": "p"}', "resourceType is Patient; expected MeasureReport"),
    (b'[{"resourceType": "MeasureReport"}]', "the JSON is a list"),
    (b'{"resourceType": "MeasureReport", "id": "\xff"}', "not UTF-8"),
    (b'{"resourceType": "Bundle", "entry": {"resource": 1}}', "Bundle.entry is not a list"),
    (b'{"resourceType": "MeasureReport", "x": ' + b"[" * 300 + b"]" * 300 + b"}", "nested more than 200"),
    (b'{"resourceType": "MeasureReport", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
])
def test_a_file_that_cannot_be_read_as_a_whole_is_refused_in_words(content: bytes, expected: str,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ReadError, match=expected):
        read_file(path, tmp_path)


def test_a_single_document_too_big_to_hold_asks_for_ndjson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir, "MAX_DOCUMENT_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(report([pop("numBeds", i) for i in range(100)])))
    with pytest.raises(ReadError, match="send large exports as NDJSON"):
        read_file(path, tmp_path)


def test_an_overlong_ndjson_line_is_malformed_and_the_next_line_still_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir, "MAX_LINE_BYTES", 2000)
    path = tmp_path / "x.ndjson"
    path.write_text(json.dumps(report([pop("numBeds", i) for i in range(100)], rid="long")) + "\n"
                    + json.dumps(report([pop("numBeds", 5)], rid="short")) + "\n")
    read = read_file(path, tmp_path)
    assert [m["row_num"] for m in read.malformed.to_pylist()] == [1]
    assert [(c["sheet"], c["row_num"]) for c in cells(read)] == [("short", 2)]


# -- the real files, end to end ---------------------------------------------------------------------------

def test_all_44_new_jersey_reports_ingest_with_the_published_values(mutual: Mutual, shared_data: Path) -> None:
    with_nj(mutual, shared_data)
    for path in nj_reports(shared_data):
        sub = mutual.ingest(path).submission
        assert sub.status == "loaded" and sub.quarantined == 0, path.name
    values = current(mutual)
    day = "2020-04-04"
    assert {m: values[("NJ", m, "", day)] for m in ("beds_total", "beds_inpatient_open", "icu_beds_open",
                                                     "ventilators_total", "covid_patients_in_hospital")} == {
        "beds_total": 20000, "beds_inpatient_open": 15000, "icu_beds_open": 2500, "ventilators_total": 2250,
        "covid_patients_in_hospital": 4000}
    assert not any(k[1] == "beds_inpatient_occupied" for k in values), "numBedsOcc never has a count"
    assert values[("NJ", "ventilators_in_use", "", "2020-04-06")] == 1576
    assert {k[3] for k in values} == {f"2020-04-{d:02d}" for d in range(4, 26)}
    issues = mutual.store.issue_summary().to_pyarrow().to_pylist()
    assert not [i for i in issues if i["severity"] == "error"]


def test_the_reports_agree_with_the_csv_they_were_made_from(shared_data: Path, tmp_path: Path) -> None:
    with open_mutual(tmp_path / "fhir", create=True) as m:
        with_nj(m, shared_data)
        for path in nj_reports(shared_data):
            m.ingest(path)
        from_fhir = current(m)
    with open_mutual(tmp_path / "csv", create=True) as m:
        with_nj(m, shared_data)
        m.ingest(shared_data / "hl7-saner-examples" / "njSampleData.csv")
        from_csv = current(m)
    shared = from_fhir.keys() & from_csv.keys()
    assert len(shared) >= 200, "both sources carry beds, ventilators, patients and tests for 22 days"
    assert {k[1] for k in shared} >= {"beds_total", "beds_inpatient_open", "ventilators_in_use", "test_results_new"}
    assert {k: from_fhir[k] for k in shared} == {k: from_csv[k] for k in shared}


# -- writing ---------------------------------------------------------------------------------------------------

def observations(rows: list[tuple[str, str, str, str, float]]) -> pa.Table:
    return pa.table({"org": [r[0] for r in rows], "metric": [r[1] for r in rows], "dims": [r[2] for r in rows],
                     "period": [date.fromisoformat(r[3]) for r in rows], "value": [r[4] for r in rows]})


def test_a_written_report_is_valid_fhir_with_saner_uv_codes_and_role_codings() -> None:
    obs = observations([("NJ", "beds_inpatient_open", "", "2020-04-04", 15000),
                        ("NJ", "covid_deaths", "", "2020-04-04", 3), ("RAL", "beds_total", "", "2020-04-04", 9)])
    res = fhir.measure_report(obs, org="NJ", org_name="New Jersey", day=date(2020, 4, 4),
                              measure="http://hl7.org/fhir/uv/saner/Measure/CDC", catalog=CATALOG)
    MeasureReport.model_validate(res)
    codings = [c for g in res["group"] for p in g["population"] for c in p["code"]["coding"]]
    assert {(c["system"], c["code"]) for c in codings if c["system"] == UV} == {(UV, "numBeds"), (UV, "numC19Died")}
    assert sum(c["system"] == ROLE for c in codings) == 2
    assert res["subject"] == {"identifier": {"system": "urn:mutual:org", "value": "NJ"}, "display": "New Jersey"}
    assert res["period"] == {"start": "2020-04-04", "end": "2020-04-04"}


def test_values_without_saner_codes_dimensions_and_fractions_survive_a_round_trip(tmp_path: Path) -> None:
    rows = [("RAL", "ga_beds_open", "", "2020-04-04", 120.0),
            ("RAL", "staff_absent", "reason=covid_sickness;staff_group=nursing", "2020-04-04", 12.0),
            ("RAL", "staff_absent", "reason=all;staff_group=all", "2020-04-04", 30.0),
            ("RAL", "days_of_supply", "item=gowns", "2020-04-04", 3.5),
            ("RAL", "beds_total", "", "2020-04-05", 400.0)]
    doc = fhir.bundle(observations(rows), measure="http://example.org/Measure/m", catalog=CATALOG,
                      bundle_type="transaction")
    Bundle.model_validate(doc)
    read = read_json(doc, tmp_path)
    got = {(c["org_raw"], c["metric_raw"].lower(), c["dims"], c["period_raw"], float(c["raw"])) for c in cells(read)}
    assert got == {(o, m if m not in ("beds_total",) else "numtotbeds", d, p, v) for o, m, d, p, v in rows}


def test_read_store_write_read_gives_the_same_values(mutual: Mutual, shared_data: Path, tmp_path: Path) -> None:
    with_nj(mutual, shared_data)
    for path in nj_reports(shared_data):
        mutual.ingest(path)
    stored = mutual.store.observations(ObservationQuery()).to_pyarrow()
    doc = fhir.bundle(stored, measure="http://hl7.org/fhir/uv/saner/Measure/Mutual", catalog=CATALOG,
                      org_names={"NJ": "New Jersey"})
    out = tmp_path / "written.json"
    out.write_text(json.dumps(doc))
    with open_mutual(tmp_path / "again", create=True) as again:
        with_nj(again, shared_data)
        sub = again.ingest(out).submission
        assert sub.quarantined == 0
        assert current(again) == current(mutual)
    assert len(current(mutual)) == 279, "every population of the 44 reports that carries a count"


# -- properties ------------------------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=20)
FIELDS = ["resourceType", "status", "type", "measure", "subject", "period", "group", "id", "reporter", "extra"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=JSON)
def test_arbitrary_json_is_read_or_refused_never_crashes(doc: object, tmp_path: Path) -> None:
    for wrapped in (doc, {"resourceType": "MeasureReport", "group": doc},
                    {"resourceType": "Bundle", "entry": [{"resource": doc}]}):
        with contextlib.suppress(ReadError):
            read_json(wrapped, tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=st.lists(st.integers(0, 10**6) | st.none(), min_size=1, max_size=6),
       damage=st.lists(st.tuples(st.sampled_from([*FIELDS, "count", "code"]), st.integers(0, 5), JSON), max_size=3),
       as_ndjson=st.booleans())
def test_damage_never_loses_a_valid_population_value(counts: list[int | None], damage: list[tuple[str, int, Any]],
                                                     as_ndjson: bool, tmp_path: Path) -> None:
    """Whatever is broken in a report, each untouched population count is either read as a cell at its place or
    kept, with the whole report's text, in a malformed row."""
    codes = [m.saner[0] for m in CATALOG.metrics if m.saner]
    res = report([pop(codes[j], c) for j, c in enumerate(counts)])
    touched: set[int] = set()
    replaced = {field for field, _, _ in damage}
    for field, j, value in sorted(damage, key=lambda d: d[0] not in ("count", "code")):
        mutated = copy.deepcopy(res)
        if field in ("count", "code"):
            mutated["group"][0]["population"][j % len(counts)][field] = value
            touched.add(j % len(counts))
        else:
            mutated[field] = value
        res = mutated
    name = "r.ndjson" if as_ndjson else "r.json"
    try:
        read = read_json(res, tmp_path, name=name)
    except ReadError:
        assert res["resourceType"] != "MeasureReport", "only a file that is no MeasureReport is refused whole"
        return
    if replaced & {"resourceType", "group"}:
        return  # no longer a MeasureReport, or its populations replaced: nothing valid left to keep
    by_col = {c["col"]: c["raw"] for c in cells(read)}
    kept = "\n".join(m["line"] for m in read.malformed.to_pylist())
    for j, count in enumerate(counts):
        if count is None or j in touched:
            continue
        col = f"group[0].population[{j}]"
        assert by_col.get(col) == str(count) or f'"count": {count}' in kept, (col, by_col, kept[:200])


def test_every_population_code_in_the_real_reports_is_a_catalogue_metric_or_a_known_non_metric(
        shared_data: Path) -> None:
    codes = set()
    for path in nj_reports(shared_data):
        for group in json.loads(path.read_text())["group"]:
            for p in group["population"]:
                codes |= {c["code"] for c in p["code"]["coding"] if c["system"] in CATALOG.saner_systems}
    unmapped = {c for c in codes if CATALOG.by_saner(c) is None}
    assert unmapped == {"allReports", "latestReports"}
    assert {c.lower() for c in unmapped} == fhir.NON_METRIC_POPULATIONS
    assert len(codes) == 24
