"""NHS England's winter sitrep workbooks, read through a declarative layout spec.

NHS England publishes each winter's daily sitreps as one workbook: a sheet per topic, a title block, multi-row
headers with one block of columns per day, a row for England and one per acute trust, spacer rows and footnotes.
The layout changes every winter, so where things are is not code but a *layout spec* (YAML in
``ingest/layouts/``): which sheets, where the header row is, how a day block looks (its date cell and the headings
of its N sub-columns, each mapped to a catalogue metric or a derived rate), where the organisation columns are and
which row labels are subtotals (England, regions). Supporting a new winter means writing a spec; a workbook that
does not match its spec is rejected with the sheet, the cell and the heading expected there.

Like every reader this one judges nothing: it hands every value cell to the shared rules as raw text. Every
non-empty cell of a described sheet ends up as exactly one of: a value cell, a reported rate, a malformed cell
(with its text) or a recognised non-value cell (title block, headings, organisation labels, footnotes).
"""

from __future__ import annotations

import html
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from python_calamine import CalamineWorkbook

from mutual.catalog import Catalog, load_catalog
from mutual.catalog.orgs import Org, OrgKind
from mutual.ingest.cells import CELL_SCHEMA, Read, ReadContext, ReadError, malformed_table, rates_table
from mutual.ingest.specs import LongSpec, OrgSpec, PeriodSpec, Spec, encode_dims, norm

ZIP_MAGIC = b"PK\x03\x04"
EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 once Excel's fictitious 1900-02-29 is allowed for
MAX_SERIAL = 2958465  # 9999-12-31
MAX_XML_BYTES = 512 << 20  # a worksheet part larger than this (uncompressed) is refused, not scanned


class LayoutError(ValueError):
    """A layout spec that is malformed or names metrics the catalogue does not have."""


# -- the layout spec -----------------------------------------------------------------------------------------------

def column_index(letters: str) -> int:
    """``A`` -> 0, ``AA`` -> 26."""
    n = 0
    for ch in letters.strip().upper():
        if not "A" <= ch <= "Z":
            raise ValueError(f"{letters!r} is not a column letter")
        n = n * 26 + ord(ch) - 64
    if n == 0:
        raise ValueError("a column letter is needed")
    return n - 1


def column_letter(index: int) -> str:
    """0 -> ``A``, 26 -> ``AA``."""
    out, n = "", index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_ref(sheet: str, row: int, col: int) -> str:
    """An Excel reference such as ``'G&A beds'!D14`` (row and col 0-based)."""
    return f"'{sheet}'!{column_letter(col)}{row + 1}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateOf(_Strict):
    """A derived rate column: never stored, checked against numerator / denominator (headings in the same block)."""

    numerator: str
    denominator: str


class BlockColumn(_Strict):
    """One sub-column of a day block: its expected heading and what it holds."""

    heading: str | None = None  # None: the block is one column headed by its date alone
    metric: str | None = None
    dims: dict[str, str] = Field(default_factory=dict)
    rate: RateOf | None = None
    label: str | None = None  # for lineage when there is no heading

    @model_validator(mode="after")
    def _one_role(self) -> BlockColumn:
        if (self.metric is None) == (self.rate is None):
            raise ValueError("a block column holds either a `metric` or a `rate`")
        return self

    @property
    def title(self) -> str:
        return self.heading or self.label or self.metric or "rate"


class HeaderRow(_Strict):
    """Where the header row is: a fixed row (1-based, as Excel shows it) or the row whose ``find_column`` holds
    the label ``find``."""

    row: int | None = Field(default=None, ge=1)
    find: str | None = None
    find_column: str = "A"
    search_rows: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _one_way(self) -> HeaderRow:
        if (self.row is None) == (self.find is None):
            raise ValueError("a header is found by `row` or by `find` (a label), not both")
        return self


class SheetLayout(_Strict):
    sheet: str  # a regular expression matched against the whole sheet name (trimmed, case ignored)
    required: bool = True
    header: HeaderRow
    labels: dict[str, str] = Field(default_factory=dict)  # column letter -> heading expected in the header row
    date_row: int = Field(default=0, le=0)  # offset from the header row of the row holding each block's date
    column_date_row: int | None = Field(default=None, le=0)  # a row repeating the date over every sub-column
    first_column: str  # letter of the first day block's first column
    block: list[BlockColumn] = Field(min_length=1)
    spacer_columns: int = Field(default=0, ge=0)  # blank columns between two day blocks
    code_column: str
    name_column: str | None = None
    region_column: str | None = None
    # A row below the header with values but neither a code nor a name: quarantined cell by cell, or (when the
    # layout knows such rows are helpers, e.g. lookup indexes) recognised and not read.
    unlabelled_rows: Literal["malformed", "recognise"] = "malformed"

    @field_validator("first_column", "code_column", "name_column", "region_column")
    @classmethod
    def _letter(cls, v: str | None) -> str | None:
        if v is not None:
            column_index(v)
        return v

    @field_validator("labels")
    @classmethod
    def _label_letters(cls, v: dict[str, str]) -> dict[str, str]:
        for letter in v:
            column_index(letter)
        return v

    @model_validator(mode="after")
    def _check(self) -> SheetLayout:
        re.compile(self.sheet)
        headings = {norm(c.heading) for c in self.block if c.heading}
        for c in self.block:
            if c.rate and not {norm(c.rate.numerator), norm(c.rate.denominator)} <= headings:
                raise ValueError(f"rate {c.title!r}: numerator and denominator must be headings of the same block")
        if len(self.block) > 1 and not all(c.heading for c in self.block):
            raise ValueError("a block of several columns needs a heading for each")
        if self.date_row == 0 and len(self.block) > 1:
            raise ValueError("a block whose date is in the header row has one column")
        return self

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.sheet, name.strip(), re.IGNORECASE) is not None


class LayoutSpec(_Strict):
    name: str
    description: str = ""
    format: Literal["sitrep-xlsx"] = "sitrep-xlsx"
    sheets: list[SheetLayout] = Field(min_length=1)
    subtotals: dict[str, str] = Field(default_factory=dict)  # row label (code or name) -> organisation code
    missing: list[str] = Field(default_factory=lambda: ["", "-", "N/A", "NA", "n/a", "null", "NULL"])
    date_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d", "%d/%m/%Y", "%d-%b-%y", "%d %B %Y"])
    max_cells: int = Field(default=5_000_000, ge=1)  # per sheet: larger is refused as not a sitrep

    def check_against(self, catalog: Catalog) -> None:
        known = set(catalog.codes)
        for s in self.sheets:
            for c in s.block:
                if c.metric is None:
                    continue
                if c.metric not in known:
                    raise LayoutError(f"layout {self.name}: sheet {s.sheet!r} column {c.title!r} maps to unknown "
                                      f"metric {c.metric!r}")
                for dim, value in c.dims.items():
                    if dim not in catalog.get(c.metric).dims or value not in catalog.dimensions.get(dim, []):
                        raise LayoutError(f"layout {self.name}: {c.metric} has no dimension {dim}={value}")

    def spec(self) -> Spec:
        """The mapping spec the shared rules read the cells with: cells carry catalogue codes, ISO dates."""
        return Spec(name=self.name, description=self.description, format="sitrep-xlsx", layout="long",
                    long=LongSpec(metric_column="metric", value_column="value"),
                    period=PeriodSpec(column="period", formats=["%Y-%m-%d"]), org=OrgSpec(), missing=self.missing)

    def sheet_for(self, name: str) -> SheetLayout | None:
        return next((s for s in self.sheets if s.matches(name)), None)

    def fits(self, sheet_names: Sequence[str]) -> bool:
        """Every required sheet of the layout is in the workbook."""
        return all(any(s.matches(n) for n in sheet_names) for s in self.sheets if s.required)


def load_layout_text(text: str, origin: str) -> LayoutSpec:
    try:
        layout = LayoutSpec.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError, re.error) as exc:
        raise LayoutError(f"{origin}: not a valid sitrep layout spec: {exc}") from exc
    layout.check_against(load_catalog())
    return layout


@cache
def shipped_layouts() -> tuple[LayoutSpec, ...]:
    folder = resources.files("mutual.ingest").joinpath("layouts")
    return tuple(load_layout_text(f.read_text("utf-8"), f.name)
                 for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".yaml"))


def find_layout(name_or_path: str) -> LayoutSpec | None:
    """A shipped layout by name, or a layout file by path; None when it is neither (e.g. a CSV spec's name)."""
    for layout in shipped_layouts():
        if layout.name == name_or_path:
            return layout
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text("utf-8")
        if "sheets:" in text:
            return load_layout_text(text, str(path))
    return None


# -- sniffing ------------------------------------------------------------------------------------------------------

def _sheet_names_in_head(head: bytes) -> list[str] | None:
    """The sheet names of ``xl/workbook.xml`` when that part starts within the first bytes of the zip (Excel
    writes it near the front); None when it cannot be seen there."""
    pos = 0
    while pos + 30 <= len(head) and head[pos:pos + 4] == ZIP_MAGIC:
        _, flags, method, _, _, _, csize, _, nlen, xlen = struct.unpack("<HHHHHIIIHH", head[pos + 4:pos + 30])
        name = head[pos + 30:pos + 30 + nlen].decode("utf-8", "replace")
        start = pos + 30 + nlen + xlen
        if name == "xl/workbook.xml":
            data = head[start:start + csize] if csize else head[start:]
            try:
                text = zlib.decompressobj(-15).decompress(data, 1 << 20) if method == 8 else data
            except zlib.error:
                return None
            return [html.unescape(m) for m in re.findall(rb'<sheet\b[^>]*?\bname="([^"]*)"', text)
                    for m in [m.decode("utf-8", "replace")]]
        if flags & 0x08 or not csize:  # sizes in a trailing descriptor: cannot walk further
            return None
        pos = start + csize
    return None


def looks_like(head: bytes, filename: str) -> bool:
    """A zip whose workbook part, visible in the first bytes, lists the sheets of a shipped layout. Cheap and
    conservative: ``matching_layout(path)`` is the definitive test."""
    if not head.startswith(ZIP_MAGIC):
        return False
    names = _sheet_names_in_head(head)
    return names is not None and any(layout.fits(names) for layout in shipped_layouts())


def _workbook_sheet_names(path: Path) -> list[str] | None:
    try:
        with _parser_errors(path.name):
            wb = CalamineWorkbook.from_path(str(path))
            try:
                return list(wb.sheet_names)
            finally:
                wb.close()
    except ReadError:
        return None


def matching_layout(path: Path, layouts: Sequence[LayoutSpec] | None = None) -> LayoutSpec | None:
    """The layout (shipped, unless given) whose required sheets the workbook has; the one describing most sheets
    wins. None for anything else, including a file that is not a readable workbook. Never raises."""
    names = _workbook_sheet_names(path)
    if names is None:
        return None
    fits = [lay for lay in (shipped_layouts() if layouts is None else layouts) if lay.fits(names)]
    return max(fits, key=lambda lay: len(lay.sheets)) if fits else None


# -- cell values ---------------------------------------------------------------------------------------------------

@contextmanager
def _parser_errors(what: str) -> Iterator[None]:
    """Whatever the zip or spreadsheet parser raises (including a Rust panic, which is a BaseException) becomes a
    ReadError naming the part being read."""
    try:
        yield
    except ReadError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        raise ReadError(f"{what}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc


def value_text(v: object) -> str | None:
    """A cell as text, as a person reads it: 1452 not 1452.0, dates in ISO form; None for an empty cell."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e16:  # from 1e16 on, repr has no ".0" either
            return str(int(v))
        return repr(v)
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date | time):
        return v.isoformat()
    if isinstance(v, timedelta):
        return str(v)
    return str(v)


def header_date(v: object, formats: Sequence[str]) -> date | None:
    """A day block's date: an Excel date, a serial number, or text in one of the layout's formats."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        if math.isfinite(v) and 1 <= v <= MAX_SERIAL:
            return EXCEL_EPOCH + timedelta(days=int(v))
        return None
    if isinstance(v, str):
        text = v.strip()
        for fmt in formats:
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    return None


@dataclass
class _SheetScan:
    """What the worksheet XML says before the spreadsheet parser reads it: its extent and its error cells."""

    rows: int = 0
    cols: int = 0
    errors: dict[tuple[int, int], str] = field(default_factory=dict)


CELL_REF = re.compile(rb'<c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"')
ERROR_CELL = re.compile(rb'<c\b([^>/]*?\bt="e"[^>/]*)>(.*?)</c>', re.S)


def _scan_sheets(path: Path, filename: str) -> dict[str, _SheetScan]:
    """Per sheet name: the extent its cells claim (so a hostile sheet is refused before it is loaded into memory)
    and its Excel error cells (``#DIV/0!``, ``#N/A`` ...), which the spreadsheet parser reads as empty although
    they were sent and the rules must report them. Found by scanning each worksheet's XML."""
    found: dict[str, _SheetScan] = {}
    with _parser_errors(filename), zipfile.ZipFile(path) as z:
        try:
            book = z.read("xl/workbook.xml")
            rels = z.read("xl/_rels/workbook.xml.rels")
        except KeyError:
            return found
        targets = {}
        for tag in re.findall(rb"<Relationship\b[^>]*>", rels):
            rid, target = re.search(rb'\bId="([^"]*)"', tag), re.search(rb'\bTarget="([^"]*)"', tag)
            if rid and target:
                t = html.unescape(target.group(1).decode("utf-8", "replace"))
                targets[rid.group(1)] = t.lstrip("/") if t.startswith("/") else "xl/" + t
        for tag in re.findall(rb"<sheet\b[^>]*>", book):
            name, rid = re.search(rb'\bname="([^"]*)"', tag), re.search(rb'\br:id="([^"]*)"', tag)
            if not name or not rid or rid.group(1) not in targets:
                continue
            try:
                info = z.getinfo(targets[rid.group(1)])
            except KeyError:
                continue
            if info.file_size > MAX_XML_BYTES:
                raise ReadError(f"{filename}: worksheet {targets[rid.group(1)]} is too large to read "
                                f"({info.file_size} bytes uncompressed)")
            xml = z.read(info)
            scan = _SheetScan()
            for m in CELL_REF.finditer(xml):
                scan.rows = max(scan.rows, int(m.group(2)))
                scan.cols = max(scan.cols, column_index(m.group(1).decode()) + 1)
            if b't="e"' in xml:
                for m in ERROR_CELL.finditer(xml):
                    ref = re.search(rb'\br="([A-Z]{1,3})([0-9]{1,7})"', m.group(1))
                    val = re.search(rb"<v>([^<]*)</v>", m.group(2))
                    if ref and val:
                        row, col = int(ref.group(2)) - 1, column_index(ref.group(1).decode())
                        scan.errors[(row, col)] = html.unescape(val.group(1).decode("utf-8", "replace"))
            found[html.unescape(name.group(1).decode("utf-8", "replace"))] = scan
    return found


# -- reading -------------------------------------------------------------------------------------------------------

@dataclass
class _Out:
    """What the reader collects, column by column (cheaper than a dict per cell)."""

    cells: dict[str, list[Any]] = field(default_factory=lambda: {n: [] for n in CELL_SCHEMA.names})
    malformed: list[dict[str, object]] = field(default_factory=list)
    rates: list[dict[str, object]] = field(default_factory=list)
    rows_read: int = 0
    recognised: int = 0

    def row(self, sheet: str, row_num: int, org: str | None, name: str | None, row: list[Any],
            plan: _ValuePlan) -> None:
        """One cell per value column of the row (raw NULL where empty), appended column-wise."""
        n, k, c = len(row), len(plan.cols), self.cells
        c["raw"].extend(value_text(row[i]) if i < n else None for i in plan.cols)
        c["period_raw"].extend(plan.days)
        c["col"].extend(plan.titles)
        c["metric_raw"].extend(plan.metrics)
        c["dims"].extend(plan.dims)
        for key, v in (("sheet", sheet), ("row_num", row_num), ("org_raw", org), ("org_name", name),
                       ("period_end_raw", None), ("scale", 1.0), ("map_key", None), ("deleted", False)):
            c[key].extend([v] * k)

    def bad(self, sheet: str, row: int, col: int, text: str, problem: str) -> None:
        self.malformed.append({"sheet": sheet, "row_num": row + 1, "line": f"{cell_ref(sheet, row, col)}: {text}",
                               "problem": problem})


@dataclass
class _ValuePlan:
    """The value columns of a sheet, in order, with what every cell of that column shares."""

    cols: list[int]
    days: list[str]
    titles: list[str]
    metrics: list[str]
    dims: list[str]

    @classmethod
    def of(cls, slots: dict[int, _Slot]) -> _ValuePlan:
        vals = [(c, s) for c, s in sorted(slots.items()) if s.column.metric is not None]
        return cls([c for c, _ in vals], [s.day.isoformat() for _, s in vals], [s.title for _, s in vals],
                   [s.column.metric or "" for _, s in vals], [encode_dims(s.column.dims) for _, s in vals])


@dataclass
class _Slot:
    """A column of the sheet inside a day block."""

    day: date
    column: BlockColumn
    title: str  # lineage, e.g. ``F: 2018-12-03 Core Beds Open``
    num: int | None = None  # for a rate: the columns of its numerator and denominator
    den: int | None = None


def _grid(rows: list[list[Any]], errors: dict[tuple[int, int], str]) -> list[list[Any]]:
    for (r, c), text in errors.items():
        while len(rows) <= r:
            rows.append([])
        row = rows[r]
        if len(row) <= c:
            row.extend([""] * (c + 1 - len(row)))
        if row[c] == "":
            row[c] = text
    return rows


def _at(rows: list[list[Any]], r: int, c: int) -> Any:
    if 0 <= r < len(rows) and 0 <= c < len(rows[r]):
        return rows[r][c]
    return ""


def _find_header(rows: list[list[Any]], sheet: str, lay: SheetLayout) -> int:
    h = lay.header
    if h.row is not None:
        return h.row - 1
    assert h.find is not None
    col = column_index(h.find_column)
    for r in range(min(len(rows), h.search_rows)):
        if norm(value_text(_at(rows, r, col)) or "") == norm(h.find):
            return r
    raise ReadError(f"'{sheet}': expected a header row with {h.find!r} in column {h.find_column} within the first "
                    f"{h.search_rows} rows; not found")


def _plan_blocks(rows: list[list[Any]], sheet: str, lay: SheetLayout, header: int,
                 formats: Sequence[str]) -> tuple[dict[int, _Slot], int]:
    """The day blocks: column -> slot, and the column after the last block. Raises ReadError naming the cell
    whose heading or date is not what the layout says."""
    date_r = header + lay.date_row
    col_date_r = None if lay.column_date_row is None else header + lay.column_date_row
    if date_r < 0 or (col_date_r is not None and col_date_r < 0):
        raise ReadError(f"'{sheet}': the header row {header + 1} leaves no room for the date rows above it")
    width = len(lay.block)
    header_cols = max(len(rows[r]) for r in {header, date_r} if r < len(rows))
    slots: dict[int, _Slot] = {}
    c = column_index(lay.first_column)
    while True:
        first = _at(rows, date_r, c)
        if first == "" and all(_at(rows, r, c + j) == "" for r in {header, date_r} for j in range(width)):
            break
        day = header_date(first, formats)
        if day is None:
            raise ReadError(f"{cell_ref(sheet, date_r, c)}: expected the date of a day block (an Excel date or text "
                            f"such as 2018-12-03), found {value_text(first) or '(blank)'!r}")
        block_cols = {norm(bc.heading): c + j for j, bc in enumerate(lay.block) if bc.heading}
        for j, bc in enumerate(lay.block):
            at = c + j
            if bc.heading is not None:
                found = value_text(_at(rows, header, at)) or ""
                if norm(found) != norm(bc.heading):
                    raise ReadError(f"{cell_ref(sheet, header, at)}: expected the heading {bc.heading!r} "
                                    f"(column {j + 1} of the {day} block), found {found or '(blank)'!r}")
            if j and date_r != header and _at(rows, date_r, at) != "":
                raise ReadError(f"{cell_ref(sheet, date_r, at)}: expected a blank cell inside the {day} block "
                                f"({width} columns a day), found {value_text(_at(rows, date_r, at))!r}")
            if col_date_r is not None:
                cd = _at(rows, col_date_r, at)
                if cd != "" and header_date(cd, formats) != day:
                    raise ReadError(f"{cell_ref(sheet, col_date_r, at)}: expected the date {day} (column {j + 1} "
                                    f"of its block), found {value_text(cd)!r}")
            slot = _Slot(day, bc, f"{column_letter(at)}: {day.isoformat()} {bc.title}")
            if bc.rate:
                slot.num, slot.den = block_cols[norm(bc.rate.numerator)], block_cols[norm(bc.rate.denominator)]
            slots[at] = slot
        c += width
        for _ in range(lay.spacer_columns):
            if any(_at(rows, r, c) != "" for r in {header, date_r}):
                spacer = value_text(_at(rows, header, c)) or value_text(_at(rows, date_r, c))
                raise ReadError(f"{cell_ref(sheet, header, c)}: expected a blank spacer column after the {day} "
                                f"block, found {spacer!r}")
            c += 1
    if not slots:
        raise ReadError(f"{cell_ref(sheet, date_r, column_index(lay.first_column))}: expected the first day block's "
                        "date; the sheet has no day blocks")
    for r in {header, date_r}:
        for cc in range(c, header_cols):
            if _at(rows, r, cc) != "":
                raise ReadError(f"{cell_ref(sheet, r, cc)}: expected the day blocks to end at column "
                                f"{column_letter(c)}, found {value_text(_at(rows, r, cc))!r}")
    return slots, c


def _read_sheet(out: _Out, rows: list[list[Any]], sheet: str, lay: SheetLayout, layout: LayoutSpec) -> None:
    header = _find_header(rows, sheet, lay)
    if header >= len(rows):
        raise ReadError(f"'{sheet}': expected a header row at row {header + 1}; the sheet has {len(rows)} rows")
    for letter, text in lay.labels.items():
        at = column_index(letter)
        found = value_text(_at(rows, header, at)) or ""
        if norm(found) != norm(text):
            raise ReadError(f"{cell_ref(sheet, header, at)}: expected the heading {text!r}, found "
                            f"{found or '(blank)'!r}")
    slots, end = _plan_blocks(rows, sheet, lay, header, layout.date_formats)
    first = column_index(lay.first_column)
    code_c = column_index(lay.code_column)
    name_c = column_index(lay.name_column) if lay.name_column else None
    region_c = column_index(lay.region_column) if lay.region_column else None
    label_cols = {code_c} | {column_index(x) for x in (lay.name_column, lay.region_column) if x}
    subtotals = {norm(k): v for k, v in layout.subtotals.items()}
    plan = _ValuePlan.of(slots)
    rate_slots = [(c, s) for c, s in sorted(slots.items()) if s.column.rate is not None]
    for r in range(header + 1):  # title block and header rows: labels, not values
        out.recognised += sum(1 for v in rows[r] if v != "")
    for r in range(header + 1, len(rows)):
        row = rows[r]
        filled = [c for c, v in enumerate(row) if v != ""]
        if not filled:
            continue
        code = (value_text(_at(rows, r, code_c)) or "").strip()
        name = (value_text(_at(rows, r, name_c)) or "").strip() if name_c is not None else ""
        sub = subtotals.get(norm(code)) or subtotals.get(norm(name))
        if not code and not name and region_c is not None:  # a region's own row, labelled in the region column
            sub = subtotals.get(norm(value_text(_at(rows, r, region_c)) or ""))
        if not code and not name and not sub:
            values = [c for c in filled if c >= first and c not in label_cols]  # left of the blocks: notes
            if not values or lay.unlabelled_rows == "recognise":
                out.recognised += len(filled)  # a footnote, a label, or a helper row the layout names
                continue
            out.recognised += len(filled) - len(values)
            for c in values:
                out.bad(sheet, r, c, value_text(row[c]) or "", "a value in a row with no organisation code or name")
            continue
        out.rows_read += 1
        org = sub or code or None
        for c in filled:
            if c in slots:
                continue
            if c in label_cols:
                out.recognised += 1
            elif first <= c < end:
                out.bad(sheet, r, c, value_text(row[c]) or "", "a value in a spacer column between day blocks")
            else:
                out.bad(sheet, r, c, value_text(row[c]) or "", "a value outside the columns the layout describes")
        out.row(sheet, r + 1, org, name or None, row, plan)
        for c, slot in rate_slots:
            raw = value_text(_at(rows, r, c))
            if raw is not None:
                assert slot.num is not None and slot.den is not None
                out.rates.append({"sheet": sheet, "row_num": r + 1, "col": slot.title, "raw": raw,
                                  "num_raw": value_text(_at(rows, r, slot.num)),
                                  "den_raw": value_text(_at(rows, r, slot.den))})


def _choose_layout(ctx: ReadContext, sheet_names: list[str]) -> LayoutSpec:
    if ctx.spec_name:
        try:
            chosen = find_layout(ctx.spec_name)
        except (LayoutError, OSError, UnicodeDecodeError) as exc:
            raise ReadError(f"layout {ctx.spec_name}: {exc}") from exc
        if chosen is None:
            raise ReadError(f"{ctx.filename}: {ctx.spec_name!r} is not a sitrep layout (shipped layouts: "
                            + ", ".join(lay.name for lay in shipped_layouts()) + ")")
        layouts: Sequence[LayoutSpec] = [chosen]
    else:
        layouts = shipped_layouts()
    for layout in layouts:
        if layout.fits(sheet_names):
            return layout
    wanted = "; ".join(f"layout {lay.name} expects sheets " + ", ".join(repr(s.sheet) for s in lay.sheets
                                                                        if s.required) for lay in layouts)
    raise ReadError(f"{ctx.filename}: no sitrep layout matches the workbook's sheets ("
                    + ", ".join(repr(n) for n in sheet_names) + f"): {wanted}")


def read(ctx: ReadContext) -> Read:
    """Read every described sheet of the workbook into cells. Raises ReadError for a file that is not a
    workbook or whose layout is not the spec's."""
    path, fname = ctx.raw.path, ctx.filename
    with _parser_errors(fname):
        wb = CalamineWorkbook.from_path(str(path))
    try:
        with _parser_errors(fname):
            names = list(wb.sheet_names)
        layout = _choose_layout(ctx, names)
        try:
            layout.check_against(ctx.catalog)
        except LayoutError as exc:
            raise ReadError(str(exc)) from exc
        scans = _scan_sheets(path, fname)
        out = _Out()
        issues: list[tuple[str, str]] = []
        for name in names:
            lay = layout.sheet_for(name)
            if lay is None:
                issues.append(("unread_sheet", f"sheet {name!r} is not described by layout {layout.name}; its "
                               "values were not read (they stay in the archived file)"))
                continue
            scan = scans.get(name, _SheetScan())
            if scan.rows * scan.cols > layout.max_cells:
                raise ReadError(f"'{name}': {scan.rows} rows by {scan.cols} columns is larger than a sitrep sheet "
                                f"can be ({layout.max_cells} cells)")
            with _parser_errors(f"{fname} sheet {name!r}"):
                sh = wb.get_sheet_by_name(name)
                end = sh.end
                if end is not None and (end[0] + 1) * (end[1] + 1) > layout.max_cells:
                    raise ReadError(f"'{name}': {end[0] + 1} rows by {end[1] + 1} columns is larger than a sitrep "
                                    f"sheet can be ({layout.max_cells} cells)")
                rows = sh.to_python(skip_empty_area=False)
            _read_sheet(out, _grid(rows, scan.errors), name, lay, layout)
    finally:
        wb.close()
    cells = pa.table(out.cells, schema=CELL_SCHEMA)
    issues += subtotal_warnings(cells, set(layout.subtotals.values()), ctx.orgs)
    return Read(spec=layout.spec(), cells=cells, rows_read=out.rows_read, malformed=malformed_table(out.malformed),
                rates=rates_table(out.rates), file_issues=issues, recognised=out.recognised)


# -- subtotals against their trusts --------------------------------------------------------------------------------

def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        v = float(raw.strip().replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _ancestors(code: str, by_code: dict[str, Org]) -> set[str]:
    seen: set[str] = set()
    todo = [code]
    while todo:
        org = by_code.get(todo.pop())
        if org is None:
            continue
        for up in (org.parent, org.region):
            if up and up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


def _fmt(v: float) -> str:
    return f"{int(v):,}" if v == int(v) else f"{v:,}"


def subtotal_warnings(cells: pa.Table, subtotals: set[str], orgs: Sequence[Org]) -> list[tuple[str, str]]:
    """Each subtotal row's values (England, a region) against the sum of its trusts' values on the same sheet,
    metric and day: one ``subtotal_sum`` warning per sheet, subtotal and metric that differs on any day.

    A nation's trusts are all the sheet's other rows; a region's are the rows whose organisation has it as an
    ancestor (``Org.parent``/``Org.region``). Missing and unreadable values are left out of the sums (the rules
    report them), so a subtotal covering a trust that did not report differs, as it should."""
    if not subtotals or cells.num_rows == 0:
        return []
    by_code = {o.code: o for o in orgs}
    nations = {o.code for o in orgs if o.kind == OrgKind.NATION}
    cols = cells.select(["sheet", "org_raw", "metric_raw", "dims", "period_raw", "raw"]).to_pydict()
    reported: dict[tuple[str, str, str, str, str], float] = {}
    sums: dict[tuple[str, str, str, str, str], float] = {}
    members: dict[tuple[str, str, str, str, str], int] = {}
    regions = subtotals - nations
    ancestry: dict[str, set[str]] = {}
    for sheet, org, metric, dims, period, raw in zip(cols["sheet"], cols["org_raw"], cols["metric_raw"],
                                                    cols["dims"], cols["period_raw"], cols["raw"], strict=True):
        v = _number(raw)
        if org in subtotals:
            if v is not None:
                reported[(sheet, org, metric, dims, period)] = v
            continue
        if org is None:
            continue
        if org not in ancestry:
            ancestry[org] = _ancestors(org, by_code) & regions
        for sub in (subtotals & nations) | ancestry[org]:
            key = (sheet, sub, metric, dims, period)
            members[key] = members.get(key, 0) + 1
            if v is not None:
                sums[key] = sums.get(key, 0.0) + v
    differ: dict[tuple[str, str, str, str], list[tuple[str, float, float]]] = {}
    for key, v in reported.items():
        if key not in members:
            continue  # no trust of this subtotal is on the sheet (e.g. trusts not imported): nothing to compare
        total = sums.get(key, 0.0)
        if abs(total - v) > 1e-9 * max(1.0, abs(v)):
            differ.setdefault(key[:4], []).append((key[4], v, total))
    warnings = []
    for (sheet, sub, metric, dims), days in sorted(differ.items()):
        n_days = len({k[4] for k in reported if k[:4] == (sheet, sub, metric, dims)})
        day, v, total = max(days, key=lambda d: abs(d[1] - d[2]))
        what = metric + (f" ({dims})" if dims else "")
        warnings.append(("subtotal_sum", f"'{sheet}': {sub}'s reported {what} differs from the sum of its trusts on "
                         f"{len(days)} of {n_days} days (largest on {day}: reported {_fmt(v)}, trusts sum to "
                         f"{_fmt(total)}); the reported values are stored as {sub}'s own"))
    return warnings
