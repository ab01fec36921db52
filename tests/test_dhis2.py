"""DHIS2 data value sets, JSON and CSV: read into cells, mapped by UID, checked by the shared rules."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ORGS_CSV
from mutual.app import Mutual, open_mutual
from mutual.catalog import load_catalog
from mutual.catalog.orgs import Org, OrgKind, reference_orgs
from mutual.ingest import dhis2
from mutual.ingest.cells import Read, ReadContext, ReadError, stage_read
from mutual.ingest.rawfile import archive
from mutual.ingest.rules import check, reference_tables
from mutual.ingest.specs import SpecError
from mutual.store.base import ObservationQuery

# UIDs of the shipped demo mapping (src/mutual/ingest/dhis2_maps/demo.yaml)
OCCUPIED, OPEN, STAFF, STOCK = "eT4aNg0pZq5", "dS3zMf9oYp4", "lA1hUn7wGx2", "mB2iVo8xHy3"
BARTS, ROYAL_FREE, IMPERIAL = "oD4kXq0zJa5", "pE5lYr1aKb6", "qF6mZs2bLc7"
NURSES_COVID, MEDICS_COVID, GOWNS = "uJ0qDw6fPg1", "wL2sFy8hRi3", "zO5vIb1kUl6"
DEFAULT = "HllvX50cXC0"
UNKNOWN_DE, UNKNOWN_OU, UNKNOWN_COC = "Zz9Yy8Xx7Ww", "Qq1Ww2Ee3Rr", "Kk4Jj5Hh6Gg"

TRUSTS = tuple(Org(code=c, name=c, kind=OrgKind.TRUST, parent="Y56") for c in ("R1H", "RAL", "RYJ"))
ORGS = (*reference_orgs(), *TRUSTS)
CSV_ORDER = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo", "value",
             "storedBy", "lastUpdated", "comment", "followup", "deleted")


def dv(de: str, pe: str | None, ou: str | None, value: Any, coc: str = DEFAULT, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"dataElement": de, "categoryOptionCombo": coc, "value": value, "storedBy": "admin",
                         "created": "2020-04-06T09:12:00.000", "lastUpdated": "2020-04-06T09:12:00.000",
                         "followup": False, **extra}
    if pe is not None:
        d["period"] = pe
    if ou is not None:
        d["orgUnit"] = ou
    return d


# A realistic set: three trusts, daily, weekly, monthly and quarterly periods, combos, a comment with a comma and
# a line break, a deleted value, a value given as a JSON number, text in a number field, and unknown UIDs.
VALUES = [
    dv(OCCUPIED, "20200404", BARTS, "812"),
    dv(OPEN, "20200404", BARTS, "900", comment="incl. 12 escalation beds, ward 7\nreopened"),
    dv(OCCUPIED, "20200404", ROYAL_FREE, 455),
    dv(OCCUPIED, "20200405", IMPERIAL, "610"),
    dv(OCCUPIED, "20200405", BARTS, "790", deleted=True),
    dv(STAFF, "2020W14", BARTS, "41", coc=NURSES_COVID),
    dv(STAFF, "2020W14", BARTS, "9", coc=MEDICS_COVID),
    dv(STOCK, "202004", ROYAL_FREE, "15000", coc=GOWNS),
    dv(STOCK, "2020Q2", IMPERIAL, "48000", coc=GOWNS),
    dv(UNKNOWN_DE, "20200404", BARTS, "3"),
    dv(OCCUPIED, "20200404", UNKNOWN_OU, "120"),
    dv(STAFF, "2020W14", ROYAL_FREE, "7", coc=UNKNOWN_COC),
    dv(OCCUPIED, "2020W54", IMPERIAL, "600"),
    dv(OCCUPIED, "20200406", IMPERIAL, "true"),
]


def as_json(values: list[dict[str, Any]], **top: Any) -> str:
    return json.dumps({"dataSet": "pBOMPrpg1QX", "completeDate": "2020-04-06", **top, "dataValues": values},
                      indent=1)


def as_csv(values: list[dict[str, Any]], header: bool = True, columns: tuple[str, ...] = CSV_ORDER) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow([c.lower() for c in columns])

    def text(v: Any) -> str:
        return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    for d in values:
        w.writerow([text(d.get(c)) for c in columns])
    return out.getvalue()


def context(tmp_path: Path, name: str, content: str | bytes, spec_name: str | None = None,
            org: str | None = None) -> ReadContext:
    src = tmp_path / name
    src.write_bytes(content.encode() if isinstance(content, str) else content)
    raw = archive(src, tmp_path / "archive")
    return ReadContext(raw=raw, filename=name, spec_name=spec_name, org=org, catalog=load_catalog(), orgs=ORGS,
                       tmp_dir=tmp_path / "tmp")


def read_text(tmp_path: Path, name: str, content: str | bytes, **kw: Any) -> Read:
    return dhis2.read(context(tmp_path, name, content, **kw))


def rules(read: Read) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Run the shared rules over a Read: (accepted observations, deletions, issues)."""
    con = duckdb.connect()
    catalog = load_catalog()
    reference_tables(con, catalog, list(ORGS), read.spec)
    stage_read(con, read)
    check(con, read.spec, catalog, list(ORGS), date(2020, 7, 1), read.rows_read)
    accepted = con.execute("SELECT org, metric, dims, period, period_end, value FROM accepted ORDER BY ALL").fetchall()
    deletions = con.execute("SELECT org, metric, dims, period FROM deletions ORDER BY ALL").fetchall()
    issues = con.execute("SELECT row_num, rule, severity, message FROM issues ORDER BY row_num, rule").fetchall()
    return accepted, deletions, issues


def cells(read: Read) -> list[dict[str, Any]]:
    return read.cells.to_pylist()


# -- periods --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("period", "first", "last"), [
    ("20200404", "2020-04-04", "2020-04-04"),
    ("2020W14", "2020-03-30", "2020-04-05"),
    ("2020W1", "2019-12-30", "2020-01-05"),
    ("2020W53", "2020-12-28", "2021-01-03"),
    ("2020BiW1", "2019-12-30", "2020-01-12"),
    ("202004", "2020-04-01", "2020-04-30"),
    ("202002", "2020-02-01", "2020-02-29"),
    ("202003B", "2020-05-01", "2020-06-30"),
    ("2020Q2", "2020-04-01", "2020-06-30"),
    ("2020Q4", "2020-10-01", "2020-12-31"),
    ("2020S2", "2020-07-01", "2020-12-31"),
    ("2020AprilS2", "2020-10-01", "2021-03-31"),
    ("2020", "2020-01-01", "2020-12-31"),
    ("2020April", "2020-04-01", "2021-03-31"),
    ("2020Oct", "2020-10-01", "2021-09-30"),
])
def test_dhis2_periods_become_their_first_and_last_day(period: str, first: str, last: str) -> None:
    assert dhis2.parse_period(period) == (date.fromisoformat(first), date.fromisoformat(last))


@pytest.mark.parametrize("period", ["202013", "20200431", "2021W53", "2020W0", "2020Q5", "2020BiW0", "202007B",
                                   "2020-04-04x", "April 2020", "", "0000", "2020w14"])
def test_what_is_not_a_dhis2_period_is_not_read_as_one(period: str) -> None:
    assert dhis2.parse_period(period) is None


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)))
def test_every_day_lies_in_its_own_day_week_month_quarter_and_year(d: date) -> None:
    iso = d.isocalendar()
    for period in (d.strftime("%Y%m%d"), f"{iso.year}W{iso.week}", d.strftime("%Y%m"),
                   f"{d.year}Q{(d.month - 1) // 3 + 1}", str(d.year)):
        span = dhis2.parse_period(period)
        assert span is not None and span[0] <= d <= span[1], period


# -- the mapping file -----------------------------------------------------------------------------------------

def test_the_shipped_demo_mapping_is_the_default_and_is_valid() -> None:
    m = dhis2.find_map(None)
    assert m.name == "demo" and m.data_elements[OCCUPIED] == "ga_beds_occupied"
    assert m.org_units[BARTS] == "R1H"
    assert m.category_option_combos[NURSES_COVID] == {"staff_group": "nursing", "reason": "covid_sickness"}


@pytest.mark.parametrize(("yaml_text", "names"), [
    ("name: x\ndata_elements: {abcdefghijk: no_such_metric}\n", ["data_elements.abcdefghijk", "no_such_metric"]),
    ("name: x\ncategory_option_combos: {abcdefghijk: {colour: red}}\n",
     ["category_option_combos.abcdefghijk", "'colour' is not a dimension"]),
    ("name: x\ncategory_option_combos: {abcdefghijk: {item: apples}}\n",
     ["category_option_combos.abcdefghijk.item", "'apples' is not a item"]),
    ("name: x\norg_unit: {abcdefghijk: R1H}\n", ["org_unit", "Extra inputs"]),
    ("name: x\norg_units: [R1H]\n", ["org_units"]),
    ("data_elements: {}\n", ["name", "Field required"]),
    ("name: [unclosed\n", ["not valid YAML"]),
    ("- just a list\n", ["expected a DHIS2 mapping"]),
    ("name: x\norg_units: {abcdefghijk: R1H, ABCDEFGHIJK: RAL}\n", ["differ only in case"]),
])
def test_a_bad_mapping_file_is_refused_naming_the_file_and_the_key(tmp_path: Path, yaml_text: str,
                                                                  names: list[str]) -> None:
    f = tmp_path / "my-map.yaml"
    f.write_text(yaml_text)
    with pytest.raises(SpecError) as err:
        dhis2.find_map(str(f))
    assert str(f) in str(err.value)
    for name in names:
        assert name in str(err.value)


def test_a_mapping_is_chosen_by_path_and_an_unknown_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(f"name: mine\ndata_elements: {{{UNKNOWN_DE}: covid_admissions}}\norg_units: {{{UNKNOWN_OU}: RAL}}\n")
    read = read_text(tmp_path, "set.json", as_json([dv(UNKNOWN_DE, "20200404", UNKNOWN_OU, "5")]), spec_name=str(f))
    assert read.spec.name == "dhis2-mine"
    accepted, _, issues = rules(read)
    assert accepted == [("RAL", "covid_admissions", "", date(2020, 4, 4), date(2020, 4, 4), 5.0)] and not issues
    with pytest.raises(SpecError, match="shipped mappings: demo"):
        read_text(tmp_path, "set2.json", as_json([]), spec_name="no-such-map")


# -- reading --------------------------------------------------------------------------------------------------

def test_json_values_become_cells_with_their_lineage_periods_and_dimensions(tmp_path: Path) -> None:
    read = read_text(tmp_path, "set.json", as_json(VALUES))
    assert read.rows_read == len(VALUES) and read.malformed.num_rows == 0
    got = cells(read)
    assert [c["row_num"] for c in got] == list(range(1, len(VALUES) + 1))
    assert {c["sheet"] for c in got} == {"dataValues"} and {c["col"] for c in got} == {"value"}
    first, weekly, monthly = got[0], got[5], got[7]
    assert (first["org_raw"], first["metric_raw"], first["period_raw"], first["period_end_raw"], first["raw"],
            first["dims"], first["deleted"]) == (BARTS, OCCUPIED, "2020-04-04", None, "812", "", False)
    assert (weekly["period_raw"], weekly["period_end_raw"]) == ("2020-03-30", "2020-04-05")
    assert weekly["dims"] == "reason=covid_sickness;staff_group=nursing"
    assert (monthly["period_raw"], monthly["period_end_raw"], monthly["dims"]) == ("2020-04-01", "2020-04-30",
                                                                                 "item=gowns")
    assert got[2]["raw"] == "455"  # a JSON number, as written
    assert got[4]["deleted"] is True
    assert got[12]["period_raw"] == "2020W54"  # not a period: left for the rules to report


def test_a_json_number_keeps_its_exact_text(tmp_path: Path) -> None:
    one = '{"dataElement": "%s", "period": "20200404", "orgUnit": "%s", "value": ' % (OCCUPIED, BARTS)  # noqa: UP031
    text = '{"dataValues": [' + one + "812.50}, " + one + "1e3}]}"
    assert [c["raw"] for c in cells(read_text(tmp_path, "n.json", text))] == ["812.50", "1e3"]


def test_top_level_period_org_unit_and_attribute_combo_are_defaults(tmp_path: Path) -> None:
    values = [dv(OCCUPIED, None, None, "800"), dv(OCCUPIED, "20200405", None, "810"),
              dv(OCCUPIED, None, ROYAL_FREE, "400")]
    read = read_text(tmp_path, "d.json", as_json(values, period="20200404", orgUnit=BARTS,
                                                 attributeOptionCombo=DEFAULT))
    got = [(c["org_raw"], c["period_raw"]) for c in cells(read)]
    assert got == [(BARTS, "2020-04-04"), (BARTS, "2020-04-05"), (ROYAL_FREE, "2020-04-04")]


def test_json_and_csv_with_and_without_header_give_identical_observations(tmp_path: Path) -> None:
    """The acceptance criterion: the same data in either form is the same data."""
    forms = {
        "set.json": as_json(VALUES),
        "set.csv": as_csv(VALUES),
        "noheader.csv": as_csv(VALUES, header=False),
        "reordered.csv": as_csv(VALUES, columns=tuple(reversed(CSV_ORDER))),
    }
    results = {name: rules(read_text(tmp_path, name, text)) for name, text in forms.items()}
    accepted, deletions, issues = results["set.json"]
    assert ("R1H", "ga_beds_occupied", "", date(2020, 4, 4), date(2020, 4, 4), 812.0) in accepted
    assert ("R1H", "staff_absent", "reason=covid_sickness;staff_group=nursing", date(2020, 3, 30),
            date(2020, 4, 5), 41.0) in accepted
    assert ("RYJ", "supply_stock", "item=gowns", date(2020, 4, 1), date(2020, 6, 30), 48000.0) in accepted
    assert deletions == [("R1H", "ga_beds_occupied", "", date(2020, 4, 5))]
    assert len(accepted) == 8
    for name, (acc, dele, iss) in results.items():
        assert acc == accepted, name
        assert dele == deletions, name
        assert [(rule, msg) for _, rule, _, msg in iss] == [(rule, msg) for _, rule, _, msg in issues], name


def test_unknown_uids_are_quarantined_with_a_message_naming_them_and_the_mapping(tmp_path: Path) -> None:
    _, _, issues = rules(read_text(tmp_path, "set.json", as_json(VALUES)))
    by_row = {row: (rule, msg) for row, rule, _, msg in issues}
    assert by_row[10][0] == "unknown_metric" and UNKNOWN_DE in by_row[10][1] and "mapping demo" in by_row[10][1]
    assert by_row[11][0] == "unknown_org" and UNKNOWN_OU in by_row[11][1] and "mapping demo" in by_row[11][1]
    assert by_row[12][0] == "bad_dimension" and UNKNOWN_COC in by_row[12][1] and "mapping demo" in by_row[12][1]
    assert by_row[13][0] == "bad_date" and "2020W54" in by_row[13][1]
    assert by_row[14][0] == "not_a_number" and "true" in by_row[14][1]
    assert {sev for _, _, sev, _ in issues} == {"error"}


def test_a_data_element_given_by_catalogue_code_or_dhis2_name_is_matched(tmp_path: Path) -> None:
    values = [dv("ga_beds_occupied", "20200404", BARTS, "800"), dv("G&A beds open", "20200404", BARTS, "900"),
              dv("R1H", "20200404", "R1H", "1")]
    accepted, _, issues = rules(read_text(tmp_path, "names.json", as_json(values)))
    assert [(a[0], a[1]) for a in accepted] == [("R1H", "ga_beds_occupied"), ("R1H", "ga_beds_open")]
    assert [(r, rule) for r, rule, _, _ in issues] == [(3, "unknown_metric")]


def test_combo_dimensions_that_the_metric_does_not_have_are_rejected(tmp_path: Path) -> None:
    _, _, issues = rules(read_text(tmp_path, "d.json", as_json([dv(OCCUPIED, "20200404", BARTS, "800", GOWNS)])))
    assert [(rule, msg) for _, rule, _, msg in issues] == [
        ("bad_dimension", "ga_beds_occupied has no dimension 'item' for ga_beds_occupied")]


def test_csv_line_numbers_count_the_header_and_a_multiline_comment(tmp_path: Path) -> None:
    read = read_text(tmp_path, "set.csv", as_csv(VALUES[:4]))
    assert [c["row_num"] for c in cells(read)] == [2, 3, 5, 6]  # the comment on line 3 runs onto line 4
    assert read.rows_read == 4 and read.cells.column("sheet").null_count == 4


def test_csv_headers_are_matched_without_case_and_unknown_columns_are_reported(tmp_path: Path) -> None:
    text = (f"DataElement,Period,OrgUnit,CategoryOptionCombo,Value,Source\n"
            f"{OCCUPIED},20200404,{BARTS},{DEFAULT},812,ward return\n")
    read = read_text(tmp_path, "h.csv", text)
    assert [(c["metric_raw"], c["raw"]) for c in cells(read)] == [(OCCUPIED, "812")]
    assert read.file_issues == [("unmapped_column", "column 'Source' is not a DHIS2 data value column; its values "
                                 "were not read")]


def test_a_csv_header_without_the_required_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="missing period, orgunit"):
        read_text(tmp_path, "h.csv", f"dataelement,value\n{OCCUPIED},3\n")


def test_damaged_csv_lines_are_kept_whole_and_the_rest_is_read(tmp_path: Path) -> None:
    good = f"{OCCUPIED},20200404,{BARTS},{DEFAULT},{DEFAULT},812,admin,,,false\n"
    text = (good + f'{OPEN},20200404,{BARTS},{DEFAULT},{DEFAULT},900,admin,,"unclosed comment,false\n'
            + f"{OCCUPIED},20200405\n" + f"{OCCUPIED},20200406,{BARTS},{DEFAULT},{DEFAULT},1,a,b,c,d,maybe\n"
            + "\n" + good.replace("812", "813").replace("0404", "0407"))
    read = read_text(tmp_path, "bad.csv", text)
    assert [(c["row_num"], c["raw"]) for c in cells(read)] == [(1, "812"), (6, "813")]
    bad = read.malformed.to_pylist()
    assert [(b["row_num"], b["line"]) for b in bad] == [(2, text.split("\n")[1]), (3, f"{OCCUPIED},20200405"),
                                                        (4, text.split("\n")[3])]
    assert "quoted field" in bad[0]["problem"] and bad[1]["problem"] == "expected 6 to 11 fields, found 2"
    assert "deleted" in bad[2]["problem"]
    assert read.rows_read == 5


def test_an_overlong_csv_line_is_malformed_and_the_next_line_is_read(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dhis2, "MAX_LINE", 200)
    good = f"{OCCUPIED},20200404,{BARTS},{DEFAULT},{DEFAULT},812\n"
    read = read_text(tmp_path, "long.csv", f"{OCCUPIED},20200403,{BARTS},,,1,admin,,{'x' * 500}\n" + good)
    assert [(c["row_num"], c["raw"]) for c in cells(read)] == [(2, "812")]
    bad = read.malformed.to_pylist()
    assert [(b["row_num"], len(b["line"]), b["problem"]) for b in bad] == [
        (1, 200, "the line is longer than 200 characters")]


def test_a_repeated_csv_column_is_reported_and_the_first_is_read(tmp_path: Path) -> None:
    read = read_text(tmp_path, "rep.csv", f"dataelement,period,orgunit,value,Value\n{OCCUPIED},20200404,{BARTS},1,2\n")
    assert [c["raw"] for c in cells(read)] == ["1"]
    assert read.file_issues == [("unmapped_column", "column 'Value' repeats an earlier column; only the first was "
                                 "read")]


def test_a_csv_that_is_not_dhis2_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="line 1: expected a DHIS2 header row"):
        read_text(tmp_path, "other.csv", "org,metric,date,value,a,b\nR1H,ga_beds_open,2020-04-04,3,,\n")


def test_a_file_in_utf16_is_read(tmp_path: Path) -> None:
    read = read_text(tmp_path, "u16.csv", as_csv(VALUES[:1]).encode("utf-16"))
    assert [c["raw"] for c in cells(read)] == ["812"]
    read = read_text(tmp_path, "u16.json", as_json(VALUES[:1]).encode("utf-16"))
    assert [c["raw"] for c in cells(read)] == ["812"]


def test_a_missing_org_unit_falls_back_to_the_callers_org(tmp_path: Path) -> None:
    read = read_text(tmp_path, "o.json", as_json([dv(OCCUPIED, "20200404", None, "800")]), org="RAL")
    assert cells(read)[0]["org_raw"] == "RAL"


# -- hostile JSON ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "match"), [
    ('{"dataValues": [', "not valid JSON at line 1"),
    ("[1, 2]", "found a JSON list"),
    ('{"dataValue": []}', "without a dataValues list"),
    ('{"dataValues": {"a": 1}}', "without a dataValues list"),
    ('{"period": ["2020"], "dataValues": []}', "top-level period"),
    ('{"dataValues": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested too deeply"),
])
def test_json_that_is_no_data_value_set_is_refused(tmp_path: Path, content: str, match: str) -> None:
    with pytest.raises(ReadError, match=match):
        read_text(tmp_path, "x.json", content)


def test_json_over_the_size_limit_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dhis2, "MAX_JSON_BYTES", 100)
    with pytest.raises(ReadError, match="over the 0 MiB limit for JSON; export the data value set as CSV"):
        read_text(tmp_path, "big.json", as_json(VALUES))


def test_json_values_of_the_wrong_type_are_malformed_and_the_rest_is_read(tmp_path: Path) -> None:
    values: list[Any] = [dv(OCCUPIED, "20200404", BARTS, "812"), "not an object", dv(OCCUPIED, "20200405", BARTS,
                         {"nested": 1}), dv(OCCUPIED, "20200406", BARTS, "1", deleted="perhaps"),
                         dv(OCCUPIED, "20200407", BARTS, None), dv(OCCUPIED, "20200408", BARTS, False)]
    read = read_text(tmp_path, "t.json", as_json(values))
    assert [(c["row_num"], c["raw"]) for c in cells(read)] == [(1, "812"), (5, None), (6, "false")]
    bad = read.malformed.to_pylist()
    assert [b["row_num"] for b in bad] == [2, 3, 4]
    assert bad[0]["line"] == '"not an object"' and '"nested": 1' in bad[1]["line"]
    assert "deleted" in bad[2]["problem"]


def test_lone_surrogates_in_json_strings_are_replaced_not_fatal(tmp_path: Path) -> None:
    text = '{"dataValues": [{"dataElement": "%s", "value": "1\\ud800"}, ["\\udfff", 2.50]]}' % OCCUPIED  # noqa: UP031
    read = read_text(tmp_path, "s.json", text)
    assert [c["raw"] for c in cells(read)] == ["1\ufffd"]
    assert read.malformed.column("line").to_pylist() == ['["\ufffd", 2.50]']


# -- sniffing -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("head", "expected"), [
    (as_json(VALUES[:2]), True),
    ('\ufeff  {"dataValues": []}', True),
    ('{"resourceType": "Bundle", "entry": [{"dataValues": []}]}', False),
    ('{"a": "\\"dataValues\\": ", "b": 1}', False),
    ('{"dataSet": "x", "period": "202004", "dataValues": [{"dataElement": "', True),  # cut off mid-file
    (as_csv(VALUES[:2]), True),
    ("DataElement;Period\n", False),
    (as_csv(VALUES[:2], header=False), True),
    ("org,metric,date,value\nR1H,ga_beds_open,2020-04-04,3\n", False),
    ("dataelement,period,orgunit,value\n", True),
    ("", False),
])
def test_looks_like_recognises_dhis2_json_and_csv(head: str, expected: bool) -> None:
    assert dhis2.looks_like(head.encode(), "whatever") is expected


# -- properties -----------------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(st.characters(exclude_categories=[]), max_size=12),
                    st.sampled_from([OCCUPIED, BARTS, "20200404", "2020W14", "202004", DEFAULT, GOWNS, "12"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=5), inner,
                                                                            max_size=3)), max_leaves=6)
entries = st.one_of(
    st.fixed_dictionaries({}, optional={k: json_values for k in (*CSV_ORDER, "created")}),
    json_values)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(entries, max_size=8), st.dictionaries(st.sampled_from(["period", "orgUnit",
                                                                         "attributeOptionCombo", "dataSet"]),
                                                        json_values, max_size=3))
def test_any_data_value_set_is_read_or_refused_and_every_value_is_accounted_for(
        tmp_path_factory: pytest.TempPathFactory, values: list[Any], top: dict[str, Any]) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    try:
        read = read_text(tmp, "p.json", json.dumps({**top, "dataValues": values}))
    except ReadError:
        return
    rows = sorted([*read.cells.column("row_num").to_pylist(), *read.malformed.column("row_num").to_pylist()])
    assert rows == list(range(1, len(values) + 1)) and read.rows_read == len(values)
    rules(read)  # the shared rules take whatever the reader produced


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([*',"\n\r;x1 é\x00', OCCUPIED, BARTS, "20200404", DEFAULT]), max_size=80)
       .map("".join), st.booleans())
def test_any_csv_after_a_dhis2_header_is_read_and_every_record_accounted_for(
        tmp_path_factory: pytest.TempPathFactory, body: str, header: bool) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    text = (as_csv([], header=True) if header else "") + body
    try:
        read = read_text(tmp, "p.csv", text.encode("utf-8", errors="surrogatepass"))
    except ReadError:
        return
    lines = read.cells.column("row_num").to_pylist() + read.malformed.column("row_num").to_pylist()
    assert len(lines) == len(set(lines)) == read.rows_read
    rules(read)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_read_error(tmp_path_factory: pytest.TempPathFactory,
                                                            data: bytes) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    for name, content in (("b.json", b'{"dataValues": [' + data), ("b.csv", as_csv(VALUES[:1]).encode() + data)):
        try:
            read = read_text(tmp, name, content)
        except ReadError:
            continue
        assert read.cells.num_rows + read.malformed.num_rows >= 0
    assert dhis2.looks_like(data, "b") in (True, False)


# -- end to end, through the workspace -------------------------------------------------------------------------

def observed(m: Mutual, as_of: datetime | None = None) -> list[tuple[Any, ...]]:
    rows = m.store.observations(ObservationQuery(as_of=as_of)).to_pyarrow().to_pylist()
    return sorted((r["org"], r["metric"], r["dims"], r["period"], r["period_end"], r["value"]) for r in rows)


def test_json_and_csv_ingested_into_workspaces_store_the_same_observations(tmp_path: Path) -> None:
    stored = []
    for name, text in (("set.json", as_json(VALUES)), ("set.csv", as_csv(VALUES))):
        f = tmp_path / name
        f.write_text(text)
        with open_mutual(tmp_path / f"ws-{name}", create=True) as m:
            m.import_orgs(_orgs_csv(tmp_path))
            sub = m.ingest(f, received_at=datetime(2020, 4, 7, 9)).submission
            assert sub.format == "dhis2-demo" and sub.rows_read == len(VALUES)
            assert (sub.accepted, sub.quarantined) == (9, 5)  # 8 values + 1 withdrawal; 5 errors
            stored.append(observed(m))
    assert stored[0] == stored[1] and len(stored[0]) == 8


def test_a_deleted_value_supersedes_the_one_in_force_and_as_of_still_sees_it(tmp_path: Path) -> None:
    first, second = tmp_path / "day1.json", tmp_path / "day2.csv"
    first.write_text(as_json([dv(OCCUPIED, "20200404", BARTS, "812"), dv(OCCUPIED, "20200404", ROYAL_FREE, "455")]))
    second.write_text(as_csv([dv(OCCUPIED, "20200404", BARTS, "812", deleted=True)]))
    with open_mutual(tmp_path / "ws", create=True) as m:
        m.import_orgs(_orgs_csv(tmp_path))
        m.ingest(first, received_at=datetime(2020, 4, 5, 9))
        m.ingest(second, received_at=datetime(2020, 4, 6, 9))
        barts = ("R1H", "ga_beds_occupied", "", date(2020, 4, 4), date(2020, 4, 4), 812.0)
        royal_free = ("RAL", "ga_beds_occupied", "", date(2020, 4, 4), date(2020, 4, 4), 455.0)
        assert observed(m) == [royal_free]
        assert observed(m, as_of=datetime(2020, 4, 5, 12)) == [barts, royal_free]


def _orgs_csv(tmp_path: Path) -> Path:
    f = tmp_path / "orgs.csv"
    f.write_text(ORGS_CSV)
    return f
