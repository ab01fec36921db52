"""Fuzz harness: mutated copies of the real files Mutual reads, each sent through the public ingest API.

    uv run python benchmarks/fuzz.py --files 10000 [--seed 0] [--jobs 2] [--save DIR] [--case K]

Seeds are the real public files in ../shared/data (cut down so each case is fast) plus small DHIS2 and long-CSV
files made here. Each case picks a seed and stacks one to three mutations (byte flips, truncation, random bytes,
lines duplicated or removed, UTF-16 / latin-1, and format-aware ones: thousands separators, negative and
fractional counts, formulas, dates as Excel serials or text, extra columns and stray quotes in CSV; deep nesting,
huge arrays, wrong types, removed keys and lone surrogates in JSON; corrupt, missing or bomb-sized members, formulas
and merged cells in xlsx), all drawn from ``random.Random(f"{seed}:{case}")``, so ``--case K`` replays case K.

A *crash* is any exception from ``Mutual.ingest`` other than ``IngestError`` (a clean whole-file rejection), or a
loaded submission whose counts break ``values_read == accepted + quarantined``. Every process reuses one
workspace. Last line: ``fuzz_crashes <count> of <N>``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import multiprocessing
import random
import re
import statistics
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECEIVED = datetime(2030, 1, 1, 9)
ORGS_CSV = """code,name,kind,parent,lat,lon
R1H,Barts Health NHS Trust,trust,Y56,51.517,-0.056
RAL,Royal Free London NHS Foundation Trust,trust,Y56,51.553,-0.165
RYJ,Imperial College Healthcare NHS Trust,trust,Y56,51.517,-0.174
"""


@dataclass(frozen=True)
class Seed:
    """One starting file: the name it is sent under, which format-aware mutators fit it, and its --org."""

    name: str
    kind: str  # csv | json | xlsx
    data: bytes
    org: str | None = None
    group: str = ""  # the source line it came from: each group is drawn equally often, whatever its file count


# -- seeds ---------------------------------------------------------------------------------------------------------

def _head_lines(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    return b"".join(data.splitlines(keepends=True)[:lines])


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip member with a fixed timestamp, so a rewritten workbook is the same bytes every run."""
    info = zipfile.ZipInfo(name, date_time=(2019, 3, 7, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _cut_xlsx(data: bytes, rows: int | None) -> bytes:
    """The workbook with each sheet cut to its first ``rows`` rows, so one case reads in milliseconds."""
    if rows is None:
        return data
    row = re.compile(rb'<row r="(\d+)"[^>]*?(?:/>|>.*?</row>)', re.S)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                body = row.sub(lambda m: m.group(0) if int(m.group(1)) <= rows else b"", body)
            zout.writestr(_entry(info.filename), body)
    return out.getvalue()


# Real files Mutual reads: (glob under the shared data folder, mutator kind, --org, lines or rows kept).
# Adding a seed format is one line here.
SOURCES: list[tuple[str, str, str | None, int | None]] = [
    ("nhse-uec-sitrep-series/sitrep*.csv", "csv", None, 200),
    ("hl7-saner-examples/njSampleData.csv", "csv", None, 200),
    ("hl7-saner-examples/covid19-test-csv-import.csv", "csv", None, 200),
    ("hl7-saner-examples/facility-import-*.csv", "csv", "R1H", 200),
    ("hl7-saner-examples/MeasureReport-*.json", "json", None, None),
    ("nhse-winter-sitrep-2018-19/Winter-data-timeseries-*.xlsx", "xlsx", None, 40),
]


def _dhis2_values() -> list[dict[str, Any]]:
    """A small dataValueSet in the demo DHIS2 map's UIDs (beds for two trusts over a week, one bad UID)."""
    values: list[dict[str, Any]] = []
    for day in range(1, 8):
        for org, base in (("oD4kXq0zJa5", 1400), ("pE5lYr1aKb6", 800)):
            values.append({"dataElement": "dS3zMf9oYp4", "period": f"202004{day:02d}", "orgUnit": org,
                           "categoryOptionCombo": "HllvX50cXC0", "attributeOptionCombo": "HllvX50cXC0",
                           "value": str(base + day), "storedBy": "fuzz", "lastUpdated": "2020-04-08T10:00:00.000",
                           "comment": "", "followup": False})
            values.append({"dataElement": "eT4aNg0pZq5", "period": f"202004{day:02d}", "orgUnit": org,
                           "categoryOptionCombo": "HllvX50cXC0", "value": str(base - 40 + day)})
    values.append({"dataElement": "zzzzzzzzzzz", "period": "20200401", "orgUnit": "oD4kXq0zJa5", "value": "5"})
    return values


def _dhis2_json() -> bytes:
    return json.dumps({"dataSet": "pBOMPrpg1QX", "completeDate": "2020-04-08", "dataValues": _dhis2_values()},
                      indent=1).encode()


def _dhis2_csv() -> bytes:
    cols = ["dataelement", "period", "orgunit", "catoptcombo", "attroptcombo", "value", "storedby", "lastupdated",
            "comment", "followup"]
    keys = ["dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo", "value", "storedBy",
            "lastUpdated", "comment", "followup"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for v in _dhis2_values():
        w.writerow([str(v.get(k, "")).lower() if k == "followup" else v.get(k, "") for k in keys])
    return out.getvalue().encode()


def _long_csv() -> bytes:
    lines = ["org,metric,date,value"]
    for day in range(1, 29):
        for org, open_, occ in (("R1H", 1491, 1452), ("RAL", 1002, 950), ("RYJ", 1100, 1040)):
            lines += [f"{org},ga_beds_open,2020-12-{day:02d},{open_}", f"{org},ga_beds_occupied,2020-12-{day:02d},"
                      f"{occ + day % 5}"]
    return ("\n".join(lines) + "\n").encode()


# Seeds made here: (name sent under, mutator kind, --org, maker).
GENERATED: list[tuple[str, str, str | None, Callable[[], bytes]]] = [
    ("dhis2-datavalueset.json", "json", None, _dhis2_json),
    ("dhis2-datavalueset.csv", "csv", None, _dhis2_csv),
    ("mutual-long.csv", "csv", None, _long_csv),
]


def shared_data_dir() -> Path | None:
    for candidate in (ROOT.parent / "shared" / "data",):
        if candidate.is_dir():
            return candidate
    return None


def load_seeds(shared: Path | None) -> list[Seed]:
    seeds = [Seed(name, kind, make(), org, name) for name, kind, org, make in GENERATED]
    if shared is not None:
        for pattern, kind, org, keep in SOURCES:
            for path in sorted(shared.glob(pattern)):
                data = path.read_bytes()
                data = _cut_xlsx(data, keep) if kind == "xlsx" else _head_lines(data, keep)
                seeds.append(Seed(path.name, kind, data, org, pattern))
    return seeds


# -- mutators: (rng, bytes) -> bytes ---------------------------------------------------------------------------------

Mutator = Callable[[random.Random, bytes], bytes]
HOSTILE = [b"\x00", b"\r", b"\n", b'"', b",", b"\xff\xfe", b"\xef\xbb\xbf", b"\xe9", b"\xc3", b"{", b"]", b"<",
           b"\\u0000", b"\xf0\x9f\x92\xa9"]


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = b"".join(rng.choice(HOSTILE) if rng.random() < 0.5 else bytes([rng.randrange(256)])
                    for _ in range(rng.randint(1, 32)))
    return data[:at] + junk + data[at:]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def duplicate_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    for _ in range(rng.randint(1, 5)):
        if lines:
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"".join(lines)


def remove_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    for _ in range(rng.randint(1, 5)):
        if lines:
            del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def line_endings(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    return b"".join(line + rng.choice([b"\n", b"\r\n", b"\r", b"\n\n"]) for line in lines[:-1]) + lines[-1]


def utf16(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", "replace")
    return text.encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]))


def latin1(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("utf-8", "replace")
    chars = list(text)
    for _ in range(rng.randint(1, 10)):
        if chars:
            chars[rng.randrange(len(chars))] = rng.choice("éàü£°±µ")
    return "".join(chars).encode(rng.choice(["latin-1", "cp1252"]), "replace")


def huge_line(rng: random.Random, data: bytes) -> bytes:
    """A line past DuckDB's 1 MiB line limit (or a huge JSON string)."""
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice([b"x", b"9", b'"', b","]) * rng.randint(1 << 20, (1 << 20) + 5000) + data[at:]


def empty(rng: random.Random, data: bytes) -> bytes:
    return rng.choice([b"", b"\xef\xbb\xbf", b"\n", b" ", _lines(data)[0] if data else b"", b"\x00" * 100])


BYTE_MUTATORS: dict[str, Mutator] = {
    "flip_bytes": flip_bytes, "truncate": truncate, "insert_bytes": insert_bytes, "duplicate_lines": duplicate_lines,
    "remove_lines": remove_lines, "line_endings": line_endings, "utf16": utf16, "latin1": latin1,
    "huge_line": huge_line, "empty": empty,
}

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
DATE = re.compile(r"^\d{1,4}[-/]\d{1,2}[-/]\d{1,4}$|^\d{8}$")


def _csv_rows(data: bytes) -> list[list[str]] | None:
    try:
        return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        return None


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _cell_edit(edit: Callable[[random.Random, str], str | None]) -> Mutator:
    """A CSV mutation of some cells of the body (the edit returns None for a cell it does not apply to)."""
    def mutate(rng: random.Random, data: bytes) -> bytes:
        rows = _csv_rows(data)
        if not rows or len(rows) < 2:
            return data
        for _ in range(rng.randint(1, 12)):
            r = rng.randrange(1, len(rows))
            if rows[r]:
                c = rng.randrange(len(rows[r]))
                new = edit(rng, rows[r][c])
                if new is not None:
                    rows[r][c] = new
        return _csv_bytes(rows)
    return mutate


def _thousands(rng: random.Random, cell: str) -> str | None:
    return f"{int(float(cell)) * rng.choice([1, 1000, 1234]):,}" if NUMBER.match(cell) else None


def _negative(rng: random.Random, cell: str) -> str | None:
    return "-" + cell if NUMBER.match(cell) else None


def _fraction(rng: random.Random, cell: str) -> str | None:
    return cell + rng.choice([".5", ".25", ".0", ".9999999"]) if re.match(r"^\d+$", cell) else None


def _odd_value(rng: random.Random, cell: str) -> str | None:
    return rng.choice(["=SUM(A1:A9)", "=1/0", "#DIV/0!", "12%", "1e309", "NaN", "inf", "-0", "0x1F", " 12 ",
                       "n/k", "-", "", "1 234", "١٢٣", "12 beds", "Y", "true", "9" * 40, "'42", "\t7"])


def _date_text(rng: random.Random, cell: str) -> str | None:
    if not DATE.match(cell):
        return None
    return rng.choice(["43435", "43435.5", "3 Dec 2018", "2018/12/03", "03/12/2018", "12/03/2018", "2018-02-30",
                       "1899-12-30", "2099-01-01", "2018-12-03T08:00:00Z", "20181203", "0", ""])


def _stray_quote(rng: random.Random, cell: str) -> str | None:
    return rng.choice(['"' + cell, cell + '"', '"' + cell + '"', cell + "\n" + cell, cell + ',', '""'])


def extra_columns(rng: random.Random, data: bytes) -> bytes:
    rows = _csv_rows(data)
    if not rows:
        return data
    for _ in range(rng.randint(1, 6)):
        r = rows[rng.randrange(len(rows))]
        if rng.random() < 0.5:
            r.append(rng.choice(["extra", "1", "", "=A1"]))
        elif r:
            r.pop()
    if rng.random() < 0.3:
        rows[0] = [rng.choice(["", h.upper(), h + " ", "dup", h]) for h in rows[0]]
    return _csv_bytes(rows)


def shuffle_columns(rng: random.Random, data: bytes) -> bytes:
    rows = _csv_rows(data)
    if not rows:
        return data
    width = max(len(r) for r in rows)
    order = list(range(width))
    rng.shuffle(order)
    return _csv_bytes([[r[i] for i in order if i < len(r)] for r in rows])


CSV_MUTATORS: dict[str, Mutator] = {
    "thousands": _cell_edit(_thousands), "negative": _cell_edit(_negative), "fraction": _cell_edit(_fraction),
    "odd_value": _cell_edit(_odd_value), "date_text": _cell_edit(_date_text),
    "stray_quote": _cell_edit(_stray_quote), "extra_columns": extra_columns, "shuffle_columns": shuffle_columns,
}


def _json_doc(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _json_nodes(doc: Any, limit: int = 5000) -> list[tuple[Any, Any]]:
    """(container, key) pairs of the document's nodes, breadth first."""
    found: list[tuple[Any, Any]] = []
    queue = [doc]
    while queue and len(found) < limit:
        node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for k, v in items:
            found.append((node, k))
            queue.append(v)
    return found


def _json_edit(edit: Callable[[random.Random, Any, Any], None]) -> Mutator:
    def mutate(rng: random.Random, data: bytes) -> bytes:
        doc = _json_doc(data)
        nodes = _json_nodes(doc) if doc is not None else []
        if not nodes:
            return data
        # one repetition per document: a second could land inside the first's shared copies and multiply them
        for _ in range(1 if edit is _huge_array else rng.randint(1, 6)):
            container, key = rng.choice(nodes)
            try:
                edit(rng, container, key)
            except (KeyError, IndexError):
                continue
        return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    return mutate


def _wrong_type(rng: random.Random, container: Any, key: Any) -> None:
    container[key] = rng.choice([None, True, 0, -1, 1.5, 10 ** 400, "", "abc", "2020-13-45", [], {}, [1, 2],
                                 {"value": "x"}, float("nan"), float("inf"), "\ud800"])


def _remove_key(rng: random.Random, container: Any, key: Any) -> None:
    del container[key]


# Repeating an item that already holds a repeated array multiplies sizes: each repetition is capped so a case
# stays a hostile file of tens of megabytes, not one the harness itself cannot hold in memory.
HUGE_ARRAY_BYTES = 16 << 20


def _huge_array(rng: random.Random, container: Any, key: Any) -> None:
    value = container[key]
    item = value[0] if isinstance(value, list) and value else value
    copies = rng.choice([1000, 5000, 20000])
    if len(json.dumps(item)) * copies <= HUGE_ARRAY_BYTES:
        container[key] = [item] * copies


JSON_TEXT_NESTING = [b"[", b'{"a":']


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    """A value replaced by nesting far deeper than any parser's recursion limit (made as text: json.dumps would
    itself overflow)."""
    depth = rng.choice([500, 5000, 100_000])
    opener = rng.choice(JSON_TEXT_NESTING)
    closer = b"]" if opener == b"[" else b"}"
    nested = opener * depth + b"1" + closer * depth
    spots = [m.end() for m in re.finditer(rb'":\s*', data)]
    if not spots:
        return nested
    at = rng.choice(spots)
    end = re.search(rb"[,}\]]", data[at:])
    return data[:at] + nested + (data[at + end.start():] if end else b"")


def lone_surrogate(rng: random.Random, data: bytes) -> bytes:
    spots = [m.start() + 1 for m in re.finditer(rb'"[A-Za-z0-9]', data)]
    if not spots:
        return data
    at = rng.choice(spots)
    return data[:at] + rng.choice([b"\\ud800", b"\\udfff", b"\\u0000", b"\\uffff"]) + data[at:]


JSON_MUTATORS: dict[str, Mutator] = {
    "wrong_type": _json_edit(_wrong_type), "remove_key": _json_edit(_remove_key),
    "huge_array": _json_edit(_huge_array), "deep_nesting": deep_nesting, "lone_surrogate": lone_surrogate,
}


def _zip_members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [(i, z.read(i)) for i in z.infolist()]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
        return None


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in members:
            z.writestr(_entry(name), body)
    return out.getvalue()


def _xlsx_edit(edit: Callable[[random.Random, list[tuple[str, bytes]]], list[tuple[str, bytes]]]) -> Mutator:
    def mutate(rng: random.Random, data: bytes) -> bytes:
        members = _zip_members(data)
        if not members:
            return data
        return _zip_bytes(edit(rng, [(i.filename, body) for i, body in members]))
    return mutate


def _corrupt_member(rng: random.Random, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    i = rng.randrange(len(members))
    name, body = members[i]
    members[i] = (name, rng.choice([flip_bytes, truncate, insert_bytes])(rng, body))
    return members


def _drop_member(rng: random.Random, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    del members[rng.randrange(len(members))]
    return members


def _sheets(members: list[tuple[str, bytes]]) -> list[int]:
    return [i for i, (n, _) in enumerate(members) if n.startswith("xl/worksheets/sheet")]


def _cell_values(rng: random.Random, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Numbers in a sheet become formulas, text, negatives, fractions, Excel serial dates, bad shared strings."""
    sheets = _sheets(members)
    if not sheets:
        return members
    i = rng.choice(sheets)
    name, body = members[i]
    replacements = [
        b"<f>SUM(A1:A3)</f><v>6</v>", b"<v>-12</v>", b"<v>12.5</v>", b"<v>43435</v>", b"<v>1e309</v>",
        b"<v>abc</v>", b"<v></v>", b'<is><t>1,234</t></is>', b"<v>99999999</v>"]

    def swap(m: re.Match[bytes]) -> bytes:
        return rng.choice(replacements) if rng.random() < 0.05 else m.group(0)

    members[i] = (name, re.sub(rb"<v>[^<]*</v>", swap, body))
    return members


def _merged_cells(rng: random.Random, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    sheets = _sheets(members)
    if not sheets:
        return members
    i = rng.choice(sheets)
    name, body = members[i]
    ref = f"A{rng.randint(1, 20)}:{rng.choice('CDHZ')}{rng.randint(20, 40)}".encode()
    merged = b'<mergeCells count="1"><mergeCell ref="' + ref + b'"/></mergeCells>'
    members[i] = (name, re.sub(rb"<mergeCells[^>]*>.*?</mergeCells>", b"", body, flags=re.S).replace(
        b"</sheetData>", b"</sheetData>" + merged, 1))
    return members


def _zip_bomb(rng: random.Random, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A sheet that inflates to tens of megabytes from a few kilobytes."""
    sheets = _sheets(members) or [0]
    i = rng.choice(sheets)
    name, body = members[i]
    pad = b" " * rng.choice([8 << 20, 64 << 20])
    members[i] = (name, body.replace(b"<sheetData>", b"<sheetData>" + pad, 1) if b"<sheetData>" in body else pad)
    return members


XLSX_MUTATORS: dict[str, Mutator] = {
    "corrupt_member": _xlsx_edit(_corrupt_member), "drop_member": _xlsx_edit(_drop_member),
    "cell_values": _xlsx_edit(_cell_values), "merged_cells": _xlsx_edit(_merged_cells),
    "zip_bomb": _xlsx_edit(_zip_bomb),
}

# Format-aware mutators per seed kind; byte-level ones apply to every kind, after the format-aware ones.
AWARE: dict[str, dict[str, Mutator]] = {"csv": CSV_MUTATORS, "json": JSON_MUTATORS, "xlsx": XLSX_MUTATORS}
# Heavy mutations (megabytes) are drawn less often, so a case costs milliseconds on average.
RARE = {"huge_line": 0.02, "zip_bomb": 0.05, "huge_array": 0.2, "empty": 0.3}
EXTENSIONS = [".csv", ".json", ".xlsx", ".txt", ".ndjson", ""]


@dataclass(frozen=True)
class Case:
    number: int
    seed: Seed
    mutators: tuple[str, ...]
    data: bytes
    name: str
    org: str | None


def _pick(rng: random.Random, table: dict[str, Mutator]) -> str:
    while True:
        name = rng.choice(sorted(table))
        if rng.random() < RARE.get(name, 1.0):
            return name


def make_case(seeds: list[Seed], base_seed: int, number: int) -> Case:
    """Case ``number`` of run ``base_seed``: the same every time."""
    rng = random.Random(f"{base_seed}:{number}")
    groups = sorted({s.group for s in seeds})
    group = groups[rng.randrange(len(groups))]
    seed = rng.choice([s for s in seeds if s.group == group])
    data, applied = seed.data, list[str]()
    aware = AWARE.get(seed.kind, {})
    for _ in range(rng.randint(1, 3)):
        table = aware if aware and rng.random() < 0.6 and not applied else BYTE_MUTATORS
        name = _pick(rng, table)
        data = table[name](rng, data)
        applied.append(name)
    filename = seed.name
    if rng.random() < 0.05:
        filename = Path(filename).stem + rng.choice(EXTENSIONS)
        applied.append("rename")
    org = seed.org if rng.random() < 0.9 else rng.choice([None, "R1H", "RAL"])
    return Case(number, seed, tuple(applied), data, f"c{number}-{filename}", org)


# -- running cases ----------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    case: int
    seed_name: str
    kind: str
    mutators: tuple[str, ...]
    status: str  # loaded | rejected | already | crash | invariant
    seconds: float
    spec: str | None = None
    error: str | None = None
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("crash", "invariant")


class Harness:
    """One workspace, reused for every case this process runs."""

    def __init__(self, home: Path, seeds: list[Seed], shared: Path | None) -> None:
        self.home, self.seeds, self.shared = home, seeds, shared
        self.inbox = home / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        from mutual.app import open_mutual

        self._ctx = open_mutual(self.home / "ws", create=True)
        self.m = self._ctx.__enter__()
        if "R1H" not in {o.code for o in self.m.orgs()}:
            orgs = self.inbox / "orgs.csv"
            orgs.write_text(ORGS_CSV)
            self.m.import_orgs(orgs)
            if self.shared is not None and (self.shared / "nhs-ods-trusts" / "etr.csv").is_file():
                self.m.import_orgs(self.shared / "nhs-ods-trusts" / "etr.csv")

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)

    def run(self, base_seed: int, number: int) -> Outcome:
        from mutual.store.intake import IngestError

        case = make_case(self.seeds, base_seed, number)
        path = self.inbox / case.name
        path.write_bytes(case.data)
        stages: dict[str, float] = {}
        since, current = time.perf_counter(), "start"

        def progress(stage: str) -> None:
            nonlocal since, current
            now = time.perf_counter()
            stages[current] = stages.get(current, 0.0) + now - since
            since, current = now, stage

        out = Outcome(number, case.seed.name, case.seed.kind, case.mutators, "loaded", 0.0, stages=stages)
        t0 = time.perf_counter()
        try:
            result = self.m.ingest(path, org=case.org, received_at=RECEIVED, progress=progress)
            s = result.submission
            out.spec = s.format
            if result.already:
                out.status = "already"
            elif s.values_read != s.accepted + s.quarantined or min(
                    s.rows_read, s.values_read, s.accepted, s.quarantined, s.missing) < 0 or s.stored > s.accepted:
                out.status = "invariant"
                out.error = (f"values_read {s.values_read} != accepted {s.accepted} + quarantined {s.quarantined} "
                             f"(rows_read {s.rows_read}, stored {s.stored}, missing {s.missing})")
        except IngestError as exc:
            out.status, out.error = "rejected", str(exc)[:300]
        except Exception as exc:
            out.status = "crash"
            ours = [f for f in traceback.extract_tb(exc.__traceback__) if "/mutual/" in f.filename.replace("\\", "/")]
            where = f" (at {ours[-1].filename.split('/src/')[-1]}:{ours[-1].lineno} in {ours[-1].name})" if ours else ""
            out.error = f"{type(exc).__name__}: {str(exc)[:500]}{where}"
            self._recover()
        finally:
            path.unlink(missing_ok=True)
        now = time.perf_counter()
        stages[current] = stages.get(current, 0.0) + now - since
        out.seconds = now - t0
        return out

    def _recover(self) -> None:
        """After a crash the store may hold a half-done transaction: reopen the workspace."""
        with contextlib.suppress(Exception):
            self.m.store.con.rollback()
        with contextlib.suppress(Exception):
            self.close()
        self._open()


# -- the command -----------------------------------------------------------------------------------------------------

_worker: Harness | None = None
_worker_seed = 0


WORKER_SILENCE = 300  # seconds without any result before the run gives up on its workers


def _init_worker(home: str, base_seed: int) -> None:
    global _worker, _worker_seed
    shared = shared_data_dir()
    _worker = Harness(Path(home) / f"w{multiprocessing.current_process().pid}", load_seeds(shared), shared)
    _worker_seed = base_seed


def _run_in_worker(number: int) -> Outcome:
    assert _worker is not None
    return _worker.run(_worker_seed, number)


def run_cases(numbers: list[int], base_seed: int, jobs: int, home: Path) -> Iterator[Outcome]:
    if jobs <= 1:
        shared = shared_data_dir()
        harness = Harness(home / "w0", load_seeds(shared), shared)
        try:
            for n in numbers:
                yield harness.run(base_seed, n)
        finally:
            harness.close()
        return
    with multiprocessing.get_context("spawn").Pool(jobs, _init_worker, (str(home), base_seed)) as pool:
        results = pool.imap_unordered(_run_in_worker, numbers)  # chunks of one: an iterator that can time out
        for done in range(len(numbers)):
            try:
                yield results.next(timeout=WORKER_SILENCE)
            except multiprocessing.TimeoutError:
                # a worker that dies (killed for its memory, say) takes its cases with it and the pool waits
                # forever: every case still owed counts as a crash
                for _ in range(len(numbers) - done):
                    yield Outcome(-1, "?", "worker", (), "crash", WORKER_SILENCE,
                                  error=f"no result for {WORKER_SILENCE} s: a worker process died or hung")
                pool.terminate()
                return


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--files", type=int, default=1000, help="how many mutated files to ingest")
    ap.add_argument("--seed", type=int, default=0, help="run seed: the same seed gives the same files")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes, each with its own workspace")
    ap.add_argument("--case", type=int, action="append", help="run only this case number (repeatable)")
    ap.add_argument("--save", type=Path, help="write each crashing case's file into this folder")
    args = ap.parse_args(argv)
    console = Console(stderr=False)
    numbers = args.case or list(range(args.files))
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutual-fuzz-") as tmp, Progress(
            TextColumn("fuzz"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[crashes]} crashes"),
            TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("fuzz", total=len(numbers), crashes=0)
        crashes = 0
        for out in run_cases(numbers, args.seed, args.jobs, Path(tmp)):
            outcomes.append(out)
            crashes += out.failed
            bar.update(task, advance=1, crashes=crashes)
    elapsed = time.perf_counter() - start

    table = Table(title=f"{len(outcomes)} cases, seed {args.seed}, {elapsed:.1f} s")
    statuses = ["loaded", "rejected", "already", "crash", "invariant"]
    for col in ["seed kind", "cases", *statuses, "mean s"]:
        table.add_column(col, justify="left" if col == "seed kind" else "right")
    by_kind: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    for kind, outs in sorted(by_kind.items()):
        counts = Counter(o.status for o in outs)
        table.add_row(kind, str(len(outs)), *(str(counts[s]) for s in statuses),
                      f"{statuses and statistics.fmean(o.seconds for o in outs):.3f}")
    console.print(table)
    specs = Counter(o.spec or "-" for o in outcomes if o.status == "loaded")
    console.print("loaded by spec: " + ", ".join(f"{k} {v}" for k, v in specs.most_common()))
    if outcomes:
        secs = sorted(o.seconds for o in outcomes)
        stage_totals: Counter[str] = Counter()
        for o in outcomes:
            stage_totals.update(o.stages)
        p95 = secs[min(len(secs) - 1, int(len(secs) * 0.95))]
        console.print(f"throughput {len(outcomes) / elapsed:.1f} files/s with {args.jobs} job(s); per file: median "
                      f"{statistics.median(secs):.3f} s, p95 {p95:.3f} s, max {secs[-1]:.3f} s; 10,000 files ≈ "
                      f"{10000 * elapsed / len(outcomes) / 60:.1f} min")
        console.print("time by ingest stage (s, all cases): " + ", ".join(
            f"{k} {v:.1f}" for k, v in stage_totals.most_common()))
        for o in sorted(outcomes, key=lambda o: -o.seconds)[:3]:
            console.print(f"slow: case {o.case} ({o.seed_name}, {'+'.join(o.mutators)}) {o.seconds:.2f} s "
                          f"-> {o.status}")
    failed = [o for o in outcomes if o.failed]
    seeds = load_seeds(shared_data_dir()) if failed and args.save else []
    for o in sorted(failed, key=lambda o: o.case):
        console.print(f"[red]{o.status}[/red] case {o.case} (reproduce: --seed {args.seed} --case {o.case}); seed "
                      f"{o.seed_name}, mutators {'+'.join(o.mutators)}: {o.error}", markup=True, highlight=False,
                      soft_wrap=True)
        if args.save:
            case = make_case(seeds, args.seed, o.case)
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / case.name).write_bytes(case.data)
    print(f"fuzz_crashes {len(failed)} of {len(outcomes)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
