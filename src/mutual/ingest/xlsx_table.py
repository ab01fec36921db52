"""Tabular spreadsheets: a trust's own export as XLSX, one header row and one record per row, read through the
same mapping specs as CSV.

Each sheet is written out as a CSV (values as people see them: 1452, not 1452.0; dates as ISO) and staged by the
CSV reader, so an XLSX and the CSV of the same table give the same cells, rules and messages. Row numbers are the
spreadsheet's own, and every cell is named by its sheet. A line break inside a cell becomes a space: the cell
stays in its row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
from python_calamine import CalamineWorkbook

from mutual.ingest.cells import ReadContext, ReadError, release_staged
from mutual.ingest.csv_stage import MAX_COLUMNS, q, stage_csv
from mutual.ingest.rawfile import RawFile
from mutual.ingest.specs import Spec, SpecError, detect_spec, find_spec, plan_columns

ZIP_MAGIC = b"PK\x03\x04"


def looks_like(head: bytes, filename: str) -> bool:
    return head.startswith(ZIP_MAGIC)


def cell_text(value: object) -> str:
    """A cell as its text: whole numbers without a decimal point, dates in ISO form, line breaks as spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time | timedelta):
        return str(value) if not isinstance(value, date) else value.isoformat()
    return " ".join(str(value).splitlines()) if "\n" in str(value) or "\r" in str(value) else str(value)


def open_workbook(path: Path, filename: str) -> CalamineWorkbook:
    try:
        return CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for every kind of damage
        raise ReadError(f"{filename} is not a readable spreadsheet ({type(exc).__name__}: {exc}); "
                        "save it again as .xlsx or send CSV") from exc


def sheet_rows(book: CalamineWorkbook, name: str, filename: str) -> list[list[object]]:
    try:
        return [list(row) for row in book.get_sheet_by_name(name).to_python(skip_empty_area=False)]
    except Exception as exc:
        raise ReadError(f"{filename}: sheet {name!r} could not be read ({type(exc).__name__}: {exc})") from exc


@dataclass
class SheetTable:
    name: str
    header_row: int  # 1-based spreadsheet row of the header
    header: list[str]
    rows: list[list[str]]


# A header may sit below a title, notes or blank rows; it is looked for in this many rows.
HEADER_SEARCH = 30


def sheets_text(book: CalamineWorkbook, filename: str) -> list[tuple[str, list[list[str]]]]:
    """Every non-empty sheet's cells as text."""
    found = []
    for name in book.sheet_names:
        texts = [[cell_text(v) for v in row] for row in sheet_rows(book, name, filename)]
        if any(c.strip() for row in texts for c in row):
            found.append((name, texts))
    return found


def _fit(row: list[str], width: int) -> list[str]:
    """A row cut or padded to the header's width; a row with values beyond it is kept whole, so the CSV reader
    reports it as malformed instead of dropping those values."""
    if any(c.strip() for c in row[width:]):
        return row
    return row[:width] + [""] * (width - len(row))


def find_table(name: str, texts: list[list[str]], fits: Callable[[list[str]], object]) -> SheetTable | None:
    """The table whose header is the first of the sheet's top rows that ``fits`` accepts (raises SpecError
    otherwise); None when no row fits."""
    for i, row in enumerate(texts[:HEADER_SEARCH]):
        header = list(row)
        while header and not header[-1].strip():
            header.pop()
        if not header or len(header) > MAX_COLUMNS:
            continue
        try:
            fits(header)
        except SpecError:
            continue
        return SheetTable(name, i + 1, header, [_fit(r, len(header)) for r in texts[i + 1:]])
    return None


def _write_csv(table: SheetTable, path: Path) -> RawFile:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(table.header)
        for row in table.rows:
            w.writerow(row if any(c.strip() for c in row) else [])
    lines = 1 + len(table.rows)
    return RawFile(sha256="", size=path.stat().st_size, path=path, newlines=lines, ends_with_newline=True, utf8=True,
                   has_nul=False, bom=None, first_bad_byte=None)


def stage(con: duckdb.DuckDBPyConnection, ctx: ReadContext) -> tuple[Spec, int, list[tuple[str, str]]]:
    """Stage every sheet that the spec describes; returns (spec, records read, file warnings)."""
    book = open_workbook(ctx.raw.path, ctx.filename)
    sheets = sheets_text(book, ctx.filename)
    if not sheets:
        raise ReadError(f"{ctx.filename}: every sheet is empty")
    first_name, first_rows = sheets[0]
    chosen: list[Spec] = []

    def fits_first(header: list[str]) -> None:
        spec = find_spec(ctx.spec_name) if ctx.spec_name else detect_spec(header)
        plan_columns(spec, header, org_given=ctx.org is not None)
        chosen.append(spec)

    first = find_table(first_name, first_rows, fits_first)
    if first is None:
        top = next(row for row in first_rows if any(c.strip() for c in row))
        try:
            fits_first(top)
        except SpecError as exc:
            raise ReadError(f"{ctx.filename}, sheet {first_name!r}, row {first_rows.index(top) + 1}: {exc}") from exc
    assert first is not None
    spec = chosen[-1]
    for name in ("acc_cells", "acc_rates", "acc_malformed"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    warnings: list[tuple[str, str]] = []
    rows_read = 0
    staged_any = False
    for name, rows in sheets:
        sheet = first if name == first_name else find_table(
            name, rows, lambda h: plan_columns(spec, h, org_given=ctx.org is not None))
        if sheet is None:
            warnings.append(("unread_sheet", f"sheet {name!r} was not read: none of its first {HEADER_SEARCH} rows "
                             f"is a header that spec {spec.name} describes; it stays in the archived file"))
            continue
        plan = plan_columns(spec, sheet.header, org_given=ctx.org is not None)
        path = ctx.tmp_dir / f"{ctx.raw.sha256}.{len(warnings)}.{rows_read}.sheet.csv"
        ctx.tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            staged = stage_csv(con, str(path), _write_csv(sheet, path), plan, ctx.org)
        finally:
            path.unlink(missing_ok=True)
        rows_read += staged.rows_read
        offset = sheet.header_row - 1
        fix = f"* REPLACE ({q(sheet.name)} AS sheet, row_num + {offset} AS row_num)"
        for temp, acc in (("cells", "acc_cells"), ("rate_cells", "acc_rates"), ("malformed_lines", "acc_malformed")):
            verb = f"INSERT INTO {acc}" if staged_any else f"CREATE TEMP TABLE {acc} AS"
            con.execute(f"{verb} SELECT {fix} FROM {temp}")
        release_staged(con)
        staged_any = True
        warnings += [("unmapped_column", f"sheet {sheet.name!r}: column {h!r} is not mapped by spec {spec.name}; "
                      "its values were not read (they stay in the archived file)") for h in plan.unmapped]
    for temp, acc in (("cells", "acc_cells"), ("rate_cells", "acc_rates"), ("malformed_lines", "acc_malformed")):
        con.execute(f"ALTER TABLE {acc} RENAME TO {temp}")
    return spec.model_copy(update={"format": "xlsx"}), rows_read, warnings
