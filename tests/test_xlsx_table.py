"""A trust's own export as XLSX is read through the same mapping specs as CSV, with sheet and row lineage."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from mutual.app import Mutual
from mutual.ingest.xlsx_table import cell_text
from mutual.store.base import ObservationQuery
from mutual.store.intake import IngestError
from xlsx_builder import Serial, xlsx_bytes

T0 = datetime(2020, 12, 10, 9, 0)


def workbook(tmp_path: Path, sheets: dict[str, list[list[object]]], name: str = "export.xlsx") -> Path:
    f = tmp_path / name
    f.write_bytes(xlsx_bytes(sheets))
    return f


def stored(m: Mutual, metric: str) -> list[tuple[str, date, float, str | None, int, str]]:
    rows = m.store.observations(ObservationQuery(metric=metric)).to_pyarrow().to_pylist()
    return [(r["org"], r["period"], r["value"], r["sheet"], r["row_num"], r["col"]) for r in rows]


def test_cells_read_as_people_see_them() -> None:
    assert [cell_text(v) for v in (1452.0, 12.5, None, True, datetime(2020, 12, 1), "a\nb")] == [
        "1452", "12.5", "", "TRUE", "2020-12-01", "a b"]


def test_an_xlsx_table_is_stored_with_its_sheet_and_spreadsheet_row(small_orgs: Mutual, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Daily capacity return"],  # a title above the header: the header is the first non-empty row
        ["org", "metric", "date", "value"],
        ["R1H", "ga_beds_open", "2020-12-01", 1491],
        ["R1H", "ga_beds_occupied", Serial(44166), 1452.0],  # 44166 is 2020-12-01 as an Excel date
        [],
        ["RAL", "ga_beds_open", "2020-12-01", "1,002"],
        ["RAL", "ga_beds_occupied", "2020-12-01", "12%"],
    ]
    s = small_orgs.ingest(workbook(tmp_path, {"Daily": rows}), received_at=T0).submission
    assert (s.format, s.status, s.rows_read, s.accepted, s.quarantined) == ("mutual-long", "loaded", 4, 3, 1)
    assert stored(small_orgs, "ga_beds_occupied") == [("R1H", date(2020, 12, 1), 1452.0, "Daily", 4, "value")]
    issue = small_orgs.store.issues(s.id).to_pyarrow().to_pylist()
    assert [(i["sheet"], i["row_num"], i["rule"]) for i in issue] == [("Daily", 7, "not_a_number")]
    assert "percentage" in str(issue[0]["message"])


def test_the_header_may_sit_below_blank_rows_and_row_numbers_stay_the_spreadsheets(small_orgs: Mutual,
                                                                                     tmp_path: Path) -> None:
    rows: list[list[object]] = [[], [], ["org", "metric", "date", "value"], ["R1H", "ga_beds_open", "2020-12-01", 7]]
    small_orgs.ingest(workbook(tmp_path, {"S": rows}), received_at=T0)
    assert stored(small_orgs, "ga_beds_open") == [("R1H", date(2020, 12, 1), 7.0, "S", 4, "value")]


def test_every_sheet_with_the_same_layout_is_read_and_others_are_reported(small_orgs: Mutual,
                                                                          tmp_path: Path) -> None:
    head: list[object] = ["org", "metric", "date", "value"]
    book = {"Mon": [head, ["R1H", "ga_beds_open", "2020-12-01", 10]],
            "Tue": [head, ["R1H", "ga_beds_open", "2020-12-02", 11]],
            "Notes": [["Figures are provisional"]]}
    s = small_orgs.ingest(workbook(tmp_path, book), received_at=T0).submission
    assert [(r[3], r[4], r[2]) for r in stored(small_orgs, "ga_beds_open")] == [("Mon", 2, 10.0), ("Tue", 2, 11.0)]
    warnings = small_orgs.store.issues(s.id).to_pyarrow().to_pylist()
    assert [w["rule"] for w in warnings] == ["unread_sheet"] and "'Notes'" in str(warnings[0]["message"])


def test_a_row_with_values_beyond_the_header_is_quarantined_whole(small_orgs: Mutual, tmp_path: Path) -> None:
    rows: list[list[object]] = [["org", "metric", "date", "value"],
                                ["R1H", "ga_beds_open", "2020-12-01", 10, "stray"],
                                ["R1H", "ga_beds_open", "2020-12-02", 11]]
    s = small_orgs.ingest(workbook(tmp_path, {"S": rows}), received_at=T0).submission
    assert (s.accepted, s.quarantined) == (1, 1)
    (issue,) = small_orgs.store.issues(s.id).to_pyarrow().to_pylist()
    assert (issue["sheet"], issue["row_num"], issue["rule"]) == ("S", 2, "malformed_line")
    assert "stray" in str(issue["raw"])


def test_a_workbook_whose_header_no_spec_knows_is_rejected_naming_the_sheet(small_orgs: Mutual,
                                                                           tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"sheet 'S', row 2: no shipped spec recognises"):
        small_orgs.ingest(workbook(tmp_path, {"S": [[], ["when", "what"], ["x", "y"]]}))


def test_a_corrupt_workbook_is_rejected_and_kept(small_orgs: Mutual, tmp_path: Path) -> None:
    f = tmp_path / "broken.xlsx"
    f.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    with pytest.raises(IngestError, match="not a readable spreadsheet"):
        small_orgs.ingest(f)
    (sub,) = small_orgs.submissions()
    assert sub.status == "rejected" and (small_orgs.workspace.archive_dir / sub.sha256[:2] / sub.sha256).exists()
