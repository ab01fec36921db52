"""Which reader a file needs, decided from its first bytes (never from its name alone), and staging it.

Order: a spreadsheet (zip) is an NHS England sitrep workbook when a layout spec matches it, else a table read
through a mapping spec; JSON and NDJSON are FHIR MeasureReports or DHIS2 dataValueSets; a CSV is DHIS2's
dataValueSet CSV when its header says so, else a table read through a mapping spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from mutual.ingest import dhis2, fhir, sitrep_xlsx, xlsx_table
from mutual.ingest.cells import Read, ReadContext, ReadError, stage_read
from mutual.ingest.csv_stage import read_header, stage_csv
from mutual.ingest.rawfile import text_copy
from mutual.ingest.specs import Spec, detect_spec, find_spec, plan_columns

HEAD = 64 << 10
TEXT_READERS = (fhir, dhis2)  # JSON and NDJSON, or DHIS2's CSV; anything else is a CSV table


@dataclass
class Staged:
    """A file staged as ``cells``, ``rate_cells`` and ``malformed_lines``, and what the rules need to know."""

    spec: Spec
    rows_read: int
    file_issues: list[tuple[str, str]] = field(default_factory=list)
    recognised: int = 0


def _head(ctx: ReadContext) -> bytes:
    with ctx.raw.path.open("rb") as f:
        return f.read(HEAD)


def _is_json(head: bytes) -> bool:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return text[:1] in (b"{", b"[")


def stage(con: duckdb.DuckDBPyConnection, ctx: ReadContext) -> Staged:
    """Stage the file with the reader its content calls for. Raises ReadError (or SpecError) for a file that
    cannot be read as a whole."""
    head = _head(ctx)
    if xlsx_table.looks_like(head, ctx.filename):
        if sitrep_xlsx.matching_layout(ctx.raw.path) is not None:
            return _staged(con, sitrep_xlsx.read(ctx))
        spec, rows, warnings = xlsx_table.stage(con, ctx)
        return Staged(spec, rows, warnings)
    for reader in TEXT_READERS:
        if reader.looks_like(head, ctx.filename):
            return _staged(con, reader.read(ctx))
    if _is_json(head):
        raise ReadError(f"{ctx.filename} is JSON but neither a FHIR MeasureReport (or Bundle of them) nor a DHIS2 "
                        "dataValueSet (an object with dataValues)")
    return _stage_csv(con, ctx)


def _staged(con: duckdb.DuckDBPyConnection, read: Read) -> Staged:
    stage_read(con, read)
    return Staged(read.spec, read.rows_read, list(read.file_issues), read.recognised)


def _stage_csv(con: duckdb.DuckDBPyConnection, ctx: ReadContext) -> Staged:
    raw = ctx.raw
    text_path = text_copy(raw, ctx.tmp_dir)
    try:
        header = read_header(str(text_path))
        spec = find_spec(ctx.spec_name) if ctx.spec_name else detect_spec(header)
        plan = plan_columns(spec, header, org_given=ctx.org is not None)
        staged = stage_csv(con, str(text_path), raw, plan, ctx.org)
    finally:
        if text_path != raw.path:
            text_path.unlink(missing_ok=True)
    issues = [("unmapped_column", f"column {h!r} is not mapped by spec {spec.name}; its values were not read (they "
               "stay in the archived file)") for h in plan.unmapped]
    if not raw.utf8:
        issues.append(("encoding", f"the file is not valid UTF-8 (first bad byte at offset {raw.first_bad_byte}); "
                       "unreadable characters were replaced"))
    return Staged(spec, staged.rows_read, issues)
