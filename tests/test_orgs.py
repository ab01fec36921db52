"""Organisations: each published layout is read, merged into one hierarchy, with dated successors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from mutual.app import Mutual
from mutual.catalog.orgs import (
    Org,
    OrgFileError,
    OrgKind,
    merge_orgs,
    read_etr,
    read_org_file,
    read_stp_lookup,
    reference_orgs,
)

ETR_ROW = ('"RXH","BRIGHTON AND SUSSEX UNIVERSITY HOSPITALS NHS TRUST","Y59","QNX","ROYAL SUSSEX COUNTY HOSPITAL",'
           '"EASTERN ROAD","","BRIGHTON","","BN2 5BE","20020401","20210331","","","","","","","","","","0","","J",'
           '"","",""\n')


def test_etr_rows_give_code_name_region_postcode_and_dates() -> None:
    (org,) = read_etr(ETR_ROW)
    assert (org.code, org.region, org.postcode) == ("RXH", "Y59", "BN2 5BE")
    assert org.open_date == date(2002, 4, 1) and org.close_date == date(2021, 3, 31)


def test_a_short_etr_row_is_refused_with_its_row_number() -> None:
    with pytest.raises(OrgFileError, match="row 1"):
        read_etr('"RXH","NAME","Y59"\n')


def test_a_trust_keeps_its_stp_as_parent_whatever_the_import_order() -> None:
    stp = read_stp_lookup("NHS England Region,Trust,code,STP,STP_code\nLondon,Barts,R1H,East London,E54000029\n")
    etr = [Org(code="R1H", name="BARTS", kind=OrgKind.TRUST, parent="Y56", region="Y56")]
    for first, second in ((stp, etr), (etr, stp)):
        merged = {o.code: o for o in merge_orgs(merge_orgs(reference_orgs(), first), second)}
        assert merged["R1H"].parent == "E54000029"
        assert merged["E54000029"].parent == "Y56", "an STP takes the region of its trusts"
        assert merged["Y56"].parent == "ENG"


def test_successors_close_the_old_organisation_the_day_before() -> None:
    merged = {o.code: o for o in merge_orgs([], read_etr(ETR_ROW.replace("20210331", "")),
                                            [("RXH", "RYR", date(2021, 4, 1))])}
    assert merged["RXH"].successor == "RYR"
    assert merged["RXH"].close_date == date(2021, 3, 31)


def test_an_unknown_layout_is_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(OrgFileError, match=r"x\.csv: not an organisation file"):
        read_org_file(f)


def test_the_real_files_build_the_hierarchy(real_orgs: Mutual) -> None:
    orgs = {o.code: o for o in real_orgs.orgs()}
    barts = orgs["R1H"]
    assert barts.kind == OrgKind.TRUST and barts.lat is not None and barts.lon is not None
    stp = orgs[barts.parent or ""]
    assert stp.kind == OrgKind.STP and stp.name == "East London"
    assert orgs[stp.parent or ""].name == "London"
    assert orgs["RXH"].successor == "RYR" and orgs["RXH"].close_date == date(2021, 3, 31)
    trusts = [o for o in orgs.values() if o.kind == OrgKind.TRUST]
    assert len(trusts) >= 220
    assert all(o.region for o in trusts if o.code.startswith("R")), "every English trust has a region"


def test_fhir_location_and_organization_resources_become_organisations(shared_data: Path) -> None:
    folder = shared_data / "hl7-saner-examples"
    layout, (state,), _ = read_org_file(folder / "Location-states-NJ.json")
    assert layout == "fhir"
    assert (state.code, state.name, state.kind) == ("NJ", "New Jersey", OrgKind.REGION), \
        "a SANER state Location states-XX is the US state with USPS code XX"
    assert (state.lat, state.lon) == (40.1907, 74.6728), "the position as published (its longitude lacks the minus)"
    _, (dph,), _ = read_org_file(folder / "Organization-NJ-DPH.json")
    assert (dph.code, dph.name, dph.kind) == ("NJ-DPH", "New Jersey Department of Public Health", OrgKind.AGGREGATE)


def test_a_fhir_bundle_of_organisations_prefers_the_ods_code_and_keeps_parents(tmp_path: Path) -> None:
    ods = "https://fhir.nhs.uk/Id/ods-organization-code"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Organization", "id": "x1", "name": "Royal Free",
                      "identifier": [{"system": "urn:other", "value": "zz"}, {"system": ods, "value": "RAL"}],
                      "partOf": {"reference": "Organization/QMJ", "identifier": {"system": ods, "value": "QMJ"}}}},
        {"resource": {"resourceType": "Location", "id": "ward-7", "name": "Ward 7",
                      "position": {"latitude": 51.5, "longitude": -0.16}, "partOf": {"reference": "Location/site"}}},
        {"resource": {"resourceType": "MeasureReport", "id": "ignored"}}]}
    f = tmp_path / "orgs.json"
    f.write_text(json.dumps(bundle))
    _, orgs, _ = read_org_file(f)
    assert [(o.code, o.kind, o.parent) for o in orgs] == [("RAL", OrgKind.TRUST, "QMJ"),
                                                         ("ward-7", OrgKind.SITE, "site")]
    assert (orgs[1].lat, orgs[1].lon) == (51.5, -0.16)


@pytest.mark.parametrize(("content", "expected"), [
    ('{"resourceType": "Location", ', "not valid JSON"),
    ('{"resourceType": "Patient", "id": "p"}', "no FHIR Location or Organization"),
    ('{"resourceType": "Location", "id": "l", "position": {"latitude": "north"}}', r"Location: .*position"),
])
def test_a_fhir_file_that_holds_no_readable_organisation_is_refused(content: str, expected: str,
                                                                    tmp_path: Path) -> None:
    f = tmp_path / "orgs.json"
    f.write_text(content)
    with pytest.raises(OrgFileError, match=expected):
        read_org_file(f)
