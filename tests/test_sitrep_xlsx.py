"""NHS England's winter sitrep workbook, read through a declarative layout spec.

The real 2018-19 workbook (../shared/data) is read once per module; small workbooks for the awkward cases are
written here with the standard library (an XLSX is a zip of XML parts), since openpyxl is not installed.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from conftest import import_real_orgs, shared_data_dir
from mutual.app import open_mutual
from mutual.catalog import load_catalog
from mutual.catalog.orgs import Org, OrgKind, reference_orgs
from mutual.ingest import rawfile, rules
from mutual.ingest.cells import Read, ReadContext, ReadError, cells_table, stage_read
from mutual.ingest.sitrep_xlsx import (
    LayoutError,
    column_index,
    column_letter,
    header_date,
    load_layout_text,
    looks_like,
    matching_layout,
    read,
    shipped_layouts,
    subtotal_warnings,
    value_text,
)
from mutual.ingest.specs import find_spec
from xlsx_builder import Err, Formula, Serial, xlsx_bytes

WORKBOOK = "nhse-winter-sitrep-2018-19/Winter-data-timeseries-20190307.xlsx"
DAY = "2018-12-03"


# -- building contexts and small workbooks -------------------------------------------------------------------------

def context(path: Path, tmp: Path, spec_name: str | None = None, orgs: tuple[Org, ...] | None = None) -> ReadContext:
    raw = rawfile.archive(path, tmp / "archive")
    return ReadContext(raw=raw, filename=path.name, spec_name=spec_name, org=None, catalog=load_catalog(),
                       orgs=reference_orgs() if orgs is None else orgs, tmp_dir=tmp)


MINI_LAYOUT = """
name: mini-sitrep
subtotals: {ENGLAND: ENG, London: Y56}
sheets:
  - sheet: "G&A beds"
    header: {find: Code, find_column: B}
    labels: {B: Code, C: Name}
    first_column: D
    date_row: -1
    spacer_columns: 1
    block:
      - {heading: Open, metric: ga_beds_open}
      - {heading: Occupied, metric: ga_beds_occupied}
      - {heading: Rate, rate: {numerator: Occupied, denominator: Open}}
    code_column: B
    name_column: C
"""


def mini_rows() -> list[list[object]]:
    """Two day blocks (a date as an Excel serial, then as text) separated by a spacer column, and the awkward
    cells a real sheet has: thousands separators, "-" and "N/A", an error cell, a formula, negative and
    fractional counts, a spacer row, a stray value, a row without an organisation, a footnote."""
    return [
        ["Title:", "Daily G&A"],                                                         # 1 (A1:B1 merged)
        [],                                                                               # 2
        [None, None, None, Serial(43437), None, None, None, "2018-12-04"],                # 3 dates
        [None, "Code", "Name", "Open", "Occupied", "Rate", None, "Open", "Occupied", "Rate"],  # 4 header
        [None, "-", "ENGLAND", 100, 90, 0.9, None, 101, 95, 0.94],                        # 5 subtotal
        [],                                                                               # 6 spacer row
        [None, "R1H", "Barts", 60, 55, 0.92, None, "1,452", "-", Err("#DIV/0!")],          # 7
        [None, "RAL", "Royal Free", 40, Formula("E8-5", 35), 0.875, None, -3, 2.5, None],  # 8
        [None, "RYJ", "Imperial", None, "N/A", None, None, 7, 7, 1],                      # 9
        [None, None, None, 5],                                                            # 10 no organisation
        [None, "R1H", "Barts", None, None, None, "stray"],                                # 11 value in a spacer
        ["1. Figures are provisional"],                                                   # 12 footnote
    ]


@pytest.fixture
def mini(tmp_path: Path) -> tuple[Path, Path]:
    """The small workbook and its layout spec file."""
    book = tmp_path / "mini.xlsx"
    book.write_bytes(xlsx_bytes({"G&A beds": mini_rows()}, merged="A1:B1"))
    layout = tmp_path / "mini-layout.yaml"
    layout.write_text(MINI_LAYOUT)
    return book, layout


def read_mini(tmp_path: Path, rows: list[list[object]], layout: Path, sheet: str = "G&A beds") -> Read:
    book = tmp_path / "case.xlsx"
    book.write_bytes(xlsx_bytes({sheet: rows}))
    return read(context(book, tmp_path / "ctx", str(layout)))


def by_cell(r: Read) -> dict[tuple[int, str], dict[str, object]]:
    return {(c["row_num"], c["col"]): c for c in r.cells.to_pylist()}


# -- the real workbook ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real() -> Iterator[tuple[Path, Read]]:
    data = shared_data_dir()
    if data is None:
        pytest.skip("the public test files (../shared/data) are not on this machine")
    tmp = Path(tempfile.mkdtemp())
    try:
        yield data / WORKBOOK, read(context(data / WORKBOOK, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def values_on(r: Read, org: str, day: str) -> dict[str, str | None]:
    return {c["metric_raw"]: c["raw"] for c in r.cells.to_pylist() if c["org_raw"] == org and c["period_raw"] == day}


@pytest.mark.slow
def test_barts_and_england_on_3_december_2018(real: tuple[Path, Read]) -> None:
    _, r = real
    barts, england = values_on(r, "R1H", DAY), values_on(r, "ENG", DAY)
    ga = ["ga_beds_core_open", "ga_beds_escalation_open", "ga_beds_open", "ga_beds_occupied"]
    assert [barts[m] for m in ga] == ["1458", "33", "1491", "1452"]
    assert [england[m] for m in ga] == ["93702", "2701", "96403", "91533"], "England's own reported values"
    assert barts["ambulance_arrivals"] == "293" and barts["long_stay_patients_14d"] == "367"


@pytest.mark.slow
def test_every_sheet_is_read_with_91_days(real: tuple[Path, Read]) -> None:
    path, r = real
    t = r.cells.to_pydict()
    assert set(t["sheet"]) == set(CalamineWorkbook.from_path(str(path)).sheet_names)
    days = set(t["period_raw"])
    assert len(days) == 91 and min(days) == DAY and max(days) == "2019-03-03"
    assert len(set(t["metric_raw"])) == 20
    assert r.rows_read == 9 * 135, "ENGLAND and 134 trusts on each of the nine sheets"
    assert r.file_issues == [], "the England rows equal the sum of their trusts, and every sheet is described"


@pytest.mark.slow
def test_every_non_empty_cell_is_accounted_for(real: tuple[Path, Read]) -> None:
    """Counted independently: every non-empty cell of every sheet, against value cells, reported rates,
    quarantined cells and cells recognised as labels, headings and footnotes."""
    path, r = real
    wb = CalamineWorkbook.from_path(str(path))
    non_empty = sum(1 for s in wb.sheet_names for row in wb.get_sheet_by_name(s).to_python(skip_empty_area=False)
                    for v in row if v != "")
    values = r.cells.num_rows - r.cells["raw"].null_count
    assert values + r.rates.num_rows + r.malformed.num_rows + r.recognised == non_empty
    assert r.malformed.num_rows == 0


@pytest.mark.slow
def test_lineage_names_sheet_row_and_readable_column(real: tuple[Path, Read]) -> None:
    _, r = real
    t = r.cells.select(["sheet", "row_num", "col"]).to_pylist()
    assert len({(c["sheet"], c["row_num"], c["col"]) for c in t}) == len(t)
    barts = [c for c in r.cells.to_pylist() if c["org_raw"] == "R1H" and c["period_raw"] == DAY
             and c["sheet"] == "G&A beds"]
    assert {(c["row_num"], c["col"]) for c in barts} == {
        (19, "F: 2018-12-03 Core Beds Open"), (19, "G: 2018-12-03 Escalation Beds Open"),
        (19, "H: 2018-12-03 Total Beds Open"), (19, "I: 2018-12-03 Total beds occ'd")}


@pytest.mark.slow
def test_rates_are_carried_with_their_parts_not_stored(real: tuple[Path, Read]) -> None:
    _, r = real
    assert not any("rate" in m for m in r.cells["metric_raw"].to_pylist())
    rate = next(x for x in r.rates.to_pylist() if x["sheet"] == "G&A beds" and x["row_num"] == 19
                and x["col"] == "J: 2018-12-03 Occupancy rate")
    assert (rate["num_raw"], rate["den_raw"]) == ("1452", "1491")
    assert abs(float(rate["raw"]) - 1452 / 1491) < 1e-12


@pytest.mark.slow
def test_the_workbook_and_the_tidy_csv_agree(real: tuple[Path, Read], shared_data: Path) -> None:
    """Every trust and day both sources have, through the shipped CSV spec's column → metric map.

    One difference is allowed, and it is the CSV's: NHSWinterSitreps (which made the tidy CSV) turned a trust's
    0 beds open and 0 occupied into "not reported" (blank) for G&A and adult critical care (children's and
    specialist trusts that have no such beds), while the workbook publishes 0 and 0. The workbook's zeros are
    what NHS England published, so the reader keeps them; the test allows exactly that pattern and no other."""
    _, r = real
    xl = {(c["org_raw"], c["period_raw"], c["metric_raw"]): c["raw"] for c in r.cells.to_pylist()}
    spec = find_spec("nhse-uec-sitrep-series")
    csv_values: dict[tuple[str, str, str], str] = {}
    with (shared_data / "nhse-uec-sitrep-series" / "sitrep1819.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            code = row["Code"].strip()
            org = spec.org.names.get(row["Name"].strip(), code) if code == "-" else code
            for heading, cmap in spec.columns.items():
                csv_values[(org, row["Date"][:10], cmap.metric)] = row[heading]
    shared = set(xl) & set(csv_values)
    assert len(shared) == len(csv_values) == 12 * 12285, "every CSV value has its cell in the workbook"
    partner = {"ga_beds_open": "ga_beds_occupied", "ga_beds_occupied": "ga_beds_open",
               "cc_adult_beds_open": "cc_adult_beds_occupied", "cc_adult_beds_occupied": "cc_adult_beds_open"}
    allowed = 0
    for key in shared:
        a, b = xl[key], csv_values[key]
        if b == "" and key[2] in partner and a == "0" and xl[(key[0], key[1], partner[key[2]])] == "0":
            allowed += 1
            continue
        assert a is not None and float(a) == float(b), f"{key}: workbook {a!r}, CSV {b!r}"
    assert allowed == 472, "the 0/0 pairs the CSV blanked (236 trust-days)"


@pytest.mark.slow
def test_real_workbook_is_recognised_by_its_first_bytes(real: tuple[Path, Read]) -> None:
    path, _ = real
    with path.open("rb") as f:
        assert looks_like(f.read(64 << 10), path.name)
    layout = matching_layout(path)
    assert layout is not None and layout.name == "nhse-winter-2018-19"


@pytest.mark.slow
def test_staged_through_the_shared_rules(real: tuple[Path, Read]) -> None:
    """The Read goes through the same rules as every other format; England's and Barts' values are accepted."""
    _, r = real
    con = duckdb.connect()
    catalog = load_catalog()
    orgs = list(reference_orgs()) + [Org(code=c, name=c, kind=OrgKind.TRUST, region="Y56", parent="Y56")
                                     for c in set(r.cells["org_raw"].to_pylist()) if c != "ENG"]
    rules.reference_tables(con, catalog, orgs, r.spec)
    stage_read(con, r)
    counts = rules.check(con, r.spec, catalog, orgs, date(2019, 3, 8), r.rows_read)
    got = dict(con.execute("SELECT org || ' ' || metric, value FROM accepted WHERE period = DATE '2018-12-03' "
                           "AND org IN ('R1H', 'ENG') AND metric LIKE 'ga_beds%'").fetchall())
    assert got == {"R1H ga_beds_core_open": 1458, "R1H ga_beds_escalation_open": 33, "R1H ga_beds_open": 1491,
                   "R1H ga_beds_occupied": 1452, "ENG ga_beds_core_open": 93702, "ENG ga_beds_escalation_open": 2701,
                   "ENG ga_beds_open": 96403, "ENG ga_beds_occupied": 91533}
    assert counts.values_read == counts.accepted + counts.quarantined
    assert counts.values_read + counts.missing == r.cells.num_rows


@pytest.mark.slow
def test_ingest_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    with open_mutual(tmp_path / "ws", create=True) as m:
        import_real_orgs(m, shared_data)
        result = m.ingest(shared_data / WORKBOOK, received_at=datetime(2019, 3, 8))
        s = result.submission
        assert s.status == "loaded" and s.format == "nhse-winter-2018-19"
        assert s.values_read == s.accepted + s.quarantined
        got = dict(m.store.con.execute(
            "SELECT org || ' ' || metric, value FROM observation WHERE period = DATE '2018-12-03' AND org IN "
            "('R1H', 'ENG') AND metric LIKE 'ga_beds%' AND superseded_at IS NULL").fetchall())
        assert got == {"R1H ga_beds_core_open": 1458, "R1H ga_beds_escalation_open": 33, "R1H ga_beds_open": 1491,
                       "R1H ga_beds_occupied": 1452, "ENG ga_beds_core_open": 93702,
                       "ENG ga_beds_escalation_open": 2701, "ENG ga_beds_open": 96403, "ENG ga_beds_occupied": 91533}


# -- the layout spec against small workbooks -----------------------------------------------------------------------

def test_small_workbook_cells_keep_the_raw_text(mini: tuple[Path, Path], tmp_path: Path) -> None:
    book, layout = mini
    r = read(context(book, tmp_path / "ctx", str(layout)))
    cells = by_cell(r)
    assert cells[(5, "D: 2018-12-03 Open")]["org_raw"] == "ENG", "the ENGLAND row is stored as England's own"
    assert cells[(7, "H: 2018-12-04 Open")]["raw"] == "1,452", "text with a thousands separator goes through"
    assert cells[(7, "I: 2018-12-04 Occupied")]["raw"] == "-", "the spec's missing markers decide, not the reader"
    assert cells[(8, "E: 2018-12-03 Occupied")]["raw"] == "35", "a formula's cached value, written as a whole number"
    assert cells[(8, "H: 2018-12-04 Open")]["raw"] == "-3"
    assert cells[(8, "I: 2018-12-04 Occupied")]["raw"] == "2.5"
    assert cells[(9, "D: 2018-12-03 Open")]["raw"] is None, "an empty cell is a NULL raw"
    assert cells[(9, "E: 2018-12-03 Occupied")]["raw"] == "N/A"
    assert {c["period_raw"] for c in cells.values()} == {"2018-12-03", "2018-12-04"}, "serial and text dates"
    assert r.rows_read == 5


def test_small_workbook_rates_errors_and_leftovers(mini: tuple[Path, Path], tmp_path: Path) -> None:
    book, layout = mini
    r = read(context(book, tmp_path / "ctx", str(layout)))
    rates = {(x["row_num"], x["col"]): (x["raw"], x["num_raw"], x["den_raw"]) for x in r.rates.to_pylist()}
    assert rates[(7, "F: 2018-12-03 Rate")] == ("0.92", "55", "60")
    assert rates[(7, "J: 2018-12-04 Rate")] == ("#DIV/0!", "-", "1,452"), "an error cell stays as its text"
    bad = {(x["row_num"], x["line"]) for x in r.malformed.to_pylist()}
    assert bad == {(10, "'G&A beds'!D10: 5"), (11, "'G&A beds'!G11: stray")}
    # Title (2, merged), dates (2), headings (8), code + name on the five organisation rows (10), footnote.
    assert r.recognised == 2 + 2 + 8 + 10 + 1


def test_small_workbook_every_cell_is_accounted_for(mini: tuple[Path, Path], tmp_path: Path) -> None:
    book, layout = mini
    r = read(context(book, tmp_path / "ctx", str(layout)))
    non_empty = sum(1 for row in mini_rows() for v in row if v is not None)
    values = r.cells.num_rows - r.cells["raw"].null_count
    assert values + r.rates.num_rows + r.malformed.num_rows + r.recognised == non_empty


@pytest.mark.parametrize(("cell", "value", "expected"), [
    ((3, 4), "Occ'd", "'G&A beds'!E4: expected the heading 'Occupied' (column 2 of the 2018-12-03 block), "
                      "found \"Occ'd\""),
    ((2, 3), None, "'G&A beds'!D3: expected the date of a day block"),
    ((2, 3), "3rd Dec", "found '3rd Dec'"),
    ((2, 4), Serial(43437), "'G&A beds'!E3: expected a blank cell inside the 2018-12-03 block (3 columns a day)"),
    ((3, 6), "Open", "'G&A beds'!G4: expected a blank spacer column after the 2018-12-03 block"),
    ((3, 1), "ODS code", "'G&A beds': expected a header row with 'Code' in column B"),
    ((3, 2), "Trust", "'G&A beds'!C4: expected the heading 'Name', found 'Trust'"),
    ((3, 11), "Extra", "'G&A beds'!L3: expected the date of a day block (an Excel date or text such as "
                       "2018-12-03), found '(blank)'"),
    ((3, 15), "Extra", "'G&A beds'!P4: expected the day blocks to end at column L, found 'Extra'"),
])
def test_a_layout_that_does_not_match_is_rejected_naming_the_cell(
        mini: tuple[Path, Path], tmp_path: Path, cell: tuple[int, int], value: object, expected: str) -> None:
    _, layout = mini
    rows = mini_rows()
    r, c = cell
    rows[r] = rows[r] + [None] * (c + 1 - len(rows[r]))
    rows[r][c] = value
    with pytest.raises(ReadError) as err:
        read_mini(tmp_path, rows, layout)
    assert expected in str(err.value)


def test_a_workbook_without_the_layouts_sheets_is_rejected(mini: tuple[Path, Path], tmp_path: Path) -> None:
    _, layout = mini
    with pytest.raises(ReadError, match="no sitrep layout matches the workbook's sheets \\('Beds'\\)"):
        read_mini(tmp_path, mini_rows(), layout, sheet="Beds")
    book = tmp_path / "case.xlsx"
    assert matching_layout(book) is None, "a workbook that is no shipped layout's"


def test_sheets_the_layout_does_not_describe_are_reported(mini: tuple[Path, Path], tmp_path: Path) -> None:
    _, layout = mini
    book = tmp_path / "two.xlsx"
    book.write_bytes(xlsx_bytes({"G&A beds": mini_rows(), "Notes": [["anything"]]}))
    r = read(context(book, tmp_path / "ctx", str(layout)))
    assert [i for i in r.file_issues if i[0] == "unread_sheet"] == [
        ("unread_sheet", "sheet 'Notes' is not described by layout mini-sitrep; its values were not read (they stay "
                         "in the archived file)")]


def test_a_region_row_labelled_only_in_the_region_column_is_that_regions_subtotal(
        mini: tuple[Path, Path], tmp_path: Path) -> None:
    _, layout = mini
    layout.write_text(MINI_LAYOUT.replace("    name_column: C", "    name_column: C\n    region_column: A"))
    rows = mini_rows()
    rows[5] = ["London", None, None, 100, 90, 0.9, None, 101, 95, 0.94]  # the spacer row becomes London's total
    r = read_mini(tmp_path, rows, layout)
    assert by_cell(r)[(6, "D: 2018-12-03 Open")]["org_raw"] == "Y56"
    assert r.rows_read == 6


def test_a_header_row_can_be_given_by_number(mini: tuple[Path, Path], tmp_path: Path) -> None:
    book, layout = mini
    layout.write_text(MINI_LAYOUT.replace("header: {find: Code, find_column: B}", "header: {row: 4}"))
    r = read(context(book, tmp_path / "ctx", str(layout)))
    assert by_cell(r)[(7, "D: 2018-12-03 Open")]["raw"] == "60"
    layout.write_text(MINI_LAYOUT.replace("header: {find: Code, find_column: B}", "header: {row: 5}"))
    with pytest.raises(ReadError, match="'G&A beds'!B5: expected the heading 'Code', found '-'"):
        read(context(book, tmp_path / "ctx2", str(layout)))


def test_a_sheet_claiming_a_huge_extent_is_refused_before_it_is_loaded(mini: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    _, layout = mini
    book = tmp_path / "huge.xlsx"
    data = xlsx_bytes({"G&A beds": mini_rows()})
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                part = part.replace(b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
                                    b"</sheetData>")
            dst.writestr(info.filename, part)
    book.write_bytes(buf.getvalue())
    with pytest.raises(ReadError, match="1048576 rows by 16384 columns is larger than a sitrep sheet can be"):
        read(context(book, tmp_path / "ctx", str(layout)))


def test_a_spec_name_that_is_not_a_layout_is_refused(mini: tuple[Path, Path], tmp_path: Path) -> None:
    book, _ = mini
    with pytest.raises(ReadError, match="'nhse-uec-sitrep-series' is not a sitrep layout"):
        read(context(book, tmp_path / "ctx", "nhse-uec-sitrep-series"))


def test_layout_specs_are_validated() -> None:
    with pytest.raises(LayoutError, match="unknown metric 'ga_beds_free'"):
        load_layout_text(MINI_LAYOUT.replace("metric: ga_beds_open", "metric: ga_beds_free"), "x.yaml")
    with pytest.raises(LayoutError, match="numerator and denominator must be headings"):
        load_layout_text(MINI_LAYOUT.replace("numerator: Occupied", "numerator: Occ"), "x.yaml")
    with pytest.raises(LayoutError, match="not a valid sitrep layout"):
        load_layout_text(MINI_LAYOUT.replace("first_column: D", "first_column: D4"), "x.yaml")
    assert [lay.name for lay in shipped_layouts()] == ["nhse-winter-2018-19"]


# -- subtotals against their trusts --------------------------------------------------------------------------------

def _cells(*rows: tuple[str, str, str | None]) -> pa.Table:
    return cells_table([{"sheet": "G&A beds", "row_num": i + 1, "col": f"c{i}", "org_raw": org,
                         "metric_raw": "ga_beds_open", "period_raw": day, "raw": raw}
                        for i, (org, day, raw) in enumerate(rows)])


ORGS = (*reference_orgs(),
        Org(code="R1H", name="Barts", kind=OrgKind.TRUST, parent="E54000029", region="Y56"),
        Org(code="E54000029", name="East London", kind=OrgKind.STP, parent="Y56"),
        Org(code="RAL", name="Royal Free", kind=OrgKind.TRUST, parent="E54000029"),
        Org(code="RTE", name="Gloucestershire", kind=OrgKind.TRUST, region="Y58"))


def test_subtotals_equal_to_their_trusts_give_no_warning() -> None:
    cells = _cells(("ENG", DAY, "10"), ("Y56", DAY, "7"), ("R1H", DAY, "4"), ("RAL", DAY, "3"), ("RTE", DAY, "3"))
    assert subtotal_warnings(cells, {"ENG", "Y56"}, ORGS) == []


def test_a_subtotal_that_differs_from_its_trusts_is_a_warning() -> None:
    cells = _cells(("ENG", DAY, "96,403"), ("Y56", DAY, "8"), ("R1H", DAY, "4"), ("RAL", DAY, "3"),
                   ("RTE", DAY, "3"), ("ENG", "2018-12-04", "10"), ("R1H", "2018-12-04", "-"),
                   ("RAL", "2018-12-04", "10"))
    assert subtotal_warnings(cells, {"ENG", "Y56"}, ORGS) == [
        ("subtotal_sum", "'G&A beds': ENG's reported ga_beds_open differs from the sum of its trusts on 1 of 2 days "
                         "(largest on 2018-12-03: reported 96,403, trusts sum to 10); the reported values are stored "
                         "as ENG's own"),
        ("subtotal_sum", "'G&A beds': Y56's reported ga_beds_open differs from the sum of its trusts on 1 of 1 days "
                         "(largest on 2018-12-03: reported 8, trusts sum to 7); the reported values are stored as "
                         "Y56's own")]


def test_a_subtotal_with_no_known_trusts_is_not_compared() -> None:
    cells = _cells(("Y59", DAY, "5"), ("R1H", DAY, "4"))
    assert subtotal_warnings(cells, {"Y59"}, ORGS) == []


def test_read_reports_an_england_row_that_is_not_its_trusts_sum(mini: tuple[Path, Path], tmp_path: Path) -> None:
    book, layout = mini
    r = read(context(book, tmp_path / "ctx", str(layout)))
    messages = [m for rule, m in r.file_issues if rule == "subtotal_sum"]
    # 2018-12-03: open 100 = 60 + 40 (+ RYJ blank), occupied 90 = 55 + 35 (+ N/A). 2018-12-04: open 101 against
    # 1,452 - 3 + 7 (Barts' thousands separator counts), occupied 95 against 2.5 + 7 (Barts' "-" is missing).
    assert messages == ["'G&A beds': ENG's reported ga_beds_occupied differs from the sum of its trusts on 1 of 2 "
                        "days (largest on 2018-12-04: reported 95, trusts sum to 9.5); the reported values are "
                        "stored as ENG's own",
                        "'G&A beds': ENG's reported ga_beds_open differs from the sum of its trusts on 1 of 2 days "
                        "(largest on 2018-12-04: reported 101, trusts sum to 1,456); the reported values are stored "
                        "as ENG's own"]


# -- parsing pieces ------------------------------------------------------------------------------------------------

@given(st.integers(min_value=0, max_value=16383))
def test_column_letters_round_trip(i: int) -> None:
    assert column_index(column_letter(i)) == i


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_are_written_as_people_read_them(v: float) -> None:
    text = value_text(v)
    assert text is not None
    if v == v and abs(v) != float("inf"):
        assert float(text) == v
        assert not text.endswith(".0")


@given(st.dates(min_value=date(1900, 3, 1), max_value=date(9999, 12, 31)))
def test_header_dates_as_serials_text_and_dates_agree(d: date) -> None:
    serial = (d - date(1899, 12, 30)).days
    formats = ["%Y-%m-%d", "%d/%m/%Y"]
    assert header_date(float(serial), formats) == header_date(d.isoformat(), formats) == header_date(d, formats) == d
    assert header_date(d.strftime("%d/%m/%Y"), formats) == d


@given(st.one_of(st.text(max_size=20), st.floats(), st.integers(), st.booleans(), st.none()))
def test_a_header_date_is_a_date_or_none(v: object) -> None:
    assert header_date(v, ["%Y-%m-%d"]) is None or isinstance(header_date(v, ["%Y-%m-%d"]), date)


# -- hostile input -------------------------------------------------------------------------------------------------

def test_looks_like_is_cheap_and_conservative(mini: tuple[Path, Path]) -> None:
    book, _ = mini
    assert not looks_like(b"Code,Name\nR1H,Barts\n", "x.csv")
    assert not looks_like(book.read_bytes()[:65536], book.name), "a zip, but not a shipped layout's sheets"
    assert not looks_like(b"PK\x03\x04" + bytes(range(256)), "x.xlsx")


@pytest.mark.parametrize("damage", ["truncated", "random after PK", "empty", "not a zip", "zip without workbook"])
def test_corrupt_files_are_a_read_error(mini: tuple[Path, Path], tmp_path: Path, damage: str) -> None:
    book, layout = mini
    good = book.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "hi")
    content = {"truncated": good[: len(good) // 2], "random after PK": b"PK\x03\x04" + bytes(range(256)) * 8,
               "empty": b"", "not a zip": b"Code,Name\n", "zip without workbook": buf.getvalue()}[damage]
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(content)
    assert matching_layout(bad) is None
    with pytest.raises(ReadError, match=r"^bad\.xlsx: "):
        read(context(bad, tmp_path / "ctx", str(layout)))


REAL_BYTES = (shared_data_dir() / WORKBOOK).read_bytes() if shared_data_dir() else b""


@pytest.mark.slow
@pytest.mark.skipif(not REAL_BYTES, reason="the public test files (../shared/data) are not on this machine")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=max(len(REAL_BYTES) - 1, 0)),
                          st.integers(min_value=0, max_value=255)), min_size=1, max_size=8),
       st.one_of(st.none(), st.integers(min_value=0, max_value=max(len(REAL_BYTES), 0))))
def test_damaged_real_workbook_raises_only_read_error(edits: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(REAL_BYTES)
    for at, byte in edits:
        data[at] = byte
    if cut is not None:
        del data[cut:]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "damaged.xlsx"
        f.write_bytes(bytes(data))
        matching_layout(f)
        try:
            r = read(context(f, Path(d)))
        except ReadError as exc:
            assert str(exc)
            return
        counts = Counter(r.cells["sheet"].to_pylist())
        assert sum(counts.values()) == r.cells.num_rows
